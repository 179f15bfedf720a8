"""The DAG engine: runs a loaded pipeline (`ir.Pipeline`) over a task backend.

Called by `appliance.api` with the local backend (`local.LocalBackend`); the Kubernetes backend
(pods from the component's image, each running `launcher`) will plug into the same `Backend`
protocol, so orchestration stays here, in one process, and no driver pods are needed.

What it does, in KFP's terms:
- a DAG's tasks start when their `dependentTasks` and input producers are done, up to
  `max_parallel` container tasks at once; after a failure no new task starts in that DAG except
  exit handlers (`triggerPolicy.strategy: ALL_UPSTREAM_TASKS_COMPLETED`), which get the
  `PipelineTaskFinalStatus` of the group they guard;
- `triggerPolicy.condition` (dsl.If/Elif/Else) is evaluated over the task's inputs (`conditions`);
- ParallelFor (`parameterIterator` raw or input lists, `artifactIterator`) runs the body DAG once
  per item, at most `iteratorPolicy.parallelismLimit` at a time, and collects outputs as lists;
- nested DAGs (groups and pipelines used as components) return outputs through `dag.outputs`,
  including `dsl.OneOf` (the first branch that produced a value);
- container tasks get KFP's ExecutorInput (`executor_input`), are retried per `retryPolicy` with
  backoff, and are cached: the same component and inputs reuse earlier outputs unless caching is
  off for the task (`cachingOptions`) or for the run;
- every state change goes to the run store (`runs`) and to progress events (`appliance.progress`).

The backend interface is in `backend`; parameter types, placeholders and cache keys in `values`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance import progress
from appliance.pipelines import backend as backends
from appliance.pipelines import conditions, errors, ir, runs, tasks, values

Options = tasks.Options  # for callers: run options (pipeline root, caching, parallelism)

MAX_LOOP_ITEMS = 10_000
MAX_LOOP_WORKERS = 64  # iterations in flight for a loop without parallelismLimit (container slots still apply)
WAIT_SLICE = 0.5  # seconds between checks of a DAG's running tasks (a notify wakes it earlier)


@dataclass
class RunResult:
    run_id: str
    state: str
    outputs: dict[str, Any]
    tasks: list[runs.TaskRecord]
    error: str = ""

    def failed_tasks(self) -> list[runs.TaskRecord]:
        return [t for t in self.tasks if t.state == "failed" and t.kind in ("container", "importer")]


class Engine:
    """Runs one pipeline; `run()` may be called once per instance."""

    def __init__(
        self,
        pipeline: ir.Pipeline,
        backend: backends.Backend,
        records: runs.RunStore,
        prog: progress.Progress,
        options: tasks.Options,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pipeline = pipeline
        self.backend = backend
        self.records = records
        self.progress = prog
        self.options = options
        self._sleep = sleep
        self.run_id = ""
        self._tasks: tasks.TaskRunner

    # --- run ---------------------------------------------------------------------------------------

    def resolve_parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Run-time parameters: given values (typed or CLI text) checked against the root's definitions."""
        specs = self.pipeline.root.input_parameters
        needed = sorted(n for n, a in self.pipeline.root.input_artifacts.items() if not a.optional)
        if needed:
            raise errors.InvalidParameter(
                f"pipeline {self.pipeline.name!r} takes input artifacts ({', '.join(needed)}): not supported yet",
                hint="pass the artifact's URI as a string parameter and use dsl.importer inside the pipeline",
            )
        unknown = sorted(set(given) - set(specs))
        if unknown:
            raise errors.InvalidParameter(
                f"pipeline {self.pipeline.name!r} has no parameter {unknown[0]!r}",
                hint=f"its parameters: {', '.join(sorted(specs)) or '(none)'}",
            )
        typed: dict[str, Any] = {}
        for name, spec in specs.items():
            if name in given:
                raw = given[name]
                try:
                    typed[name] = (
                        values.parse_cli_parameter(raw, spec.type)
                        if isinstance(raw, str)
                        else values.coerce(raw, spec.type)
                    )
                except ValueError as exc:
                    raise errors.InvalidParameter(
                        f"parameter {name}: {exc}", hint=f"{name} is {spec.type}; lists and structs are JSON"
                    ) from exc
            elif spec.has_default:
                typed[name] = values.coerce(spec.default, spec.type)
            elif not spec.optional:
                raise errors.InvalidParameter(
                    f"pipeline {self.pipeline.name!r} needs parameter {name!r} ({spec.type})",
                    hint=f"pass it with -p {name}=VALUE",
                )
        return typed

    def run(self, parameters: Mapping[str, Any], *, run_id: str | None = None) -> RunResult:
        typed = self.resolve_parameters(parameters)
        self.run_id = (
            run_id or f"{backends.slug(self.pipeline.name)}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        )
        self._tasks = tasks.TaskRunner(
            self.pipeline, self.backend, self.records, self.progress, self.options, self.run_id, sleep=self._sleep
        )
        self.records.create_run(
            runs.RunRecord(
                id=self.run_id,
                pipeline=self.pipeline.name,
                state="running",
                parameters=typed,
                pipeline_root=self.options.pipeline_root,
                created=time.time(),
            )
        )
        outcome = self._run_dag(self.pipeline.root, tasks.Inputs(parameters=typed), "")
        outputs = {**outcome.parameters, **{k: [a["uri"] for a in v] for k, v in outcome.artifacts.items()}}
        state = "succeeded" if outcome.ok else "failed"
        self.records.finish_run(self.run_id, state, outcome.error, outputs)
        return RunResult(self.run_id, state, outputs, self.records.tasks(self.run_id), outcome.error)

    # --- DAGs --------------------------------------------------------------------------------------

    def _run_dag(self, component: ir.Component, inputs: tasks.Inputs, path: str) -> tasks.Outcome:
        dag = component.dag
        assert dag is not None
        params = dict(inputs.parameters)
        for name, spec in component.input_parameters.items():
            if name not in params and spec.has_default:
                params[name] = spec.default
        inputs = tasks.Inputs(params, dict(inputs.artifacts))
        outcomes: dict[str, tasks.Outcome] = {}
        running: set[str] = set()
        pending = set(dag.tasks)
        changed = threading.Condition()
        failure = ""

        def finish(name: str, outcome: tasks.Outcome) -> None:
            with changed:
                outcomes[name] = outcome
                running.discard(name)
                changed.notify_all()

        def start(task: ir.Task) -> None:
            def body() -> None:
                try:
                    outcome = self._run_task(task, inputs, outcomes, path)
                except Exception as exc:  # a bug: keep the run going to a failed end, with the cause
                    outcome = tasks.Outcome(
                        "failed", error=f"engine error in {path}/{task.name}: {type(exc).__name__}: {exc}"
                    )
                finish(task.name, outcome)

            running.add(task.name)
            threading.Thread(target=body, name=f"task {path}/{task.name}", daemon=True).start()

        with changed:
            while pending or running:
                for name in sorted(pending):
                    task = dag.tasks[name]
                    upstream = task.upstream()
                    if any(u not in outcomes for u in upstream):
                        continue
                    pending.discard(name)
                    if task.all_upstream_completed:
                        start(task)
                    elif failure or any(not outcomes[u].ok for u in upstream):
                        outcomes[name] = tasks.Outcome("skipped", error="not run: an upstream task failed")
                        self._tasks.record_skip(self._task_id(path, name), name, "not run: an upstream task failed")
                    else:
                        start(task)
                for name, outcome in outcomes.items():
                    if not outcome.ok and not failure:
                        failure = outcome.error or f"task {name} failed"
                if pending or running:
                    changed.wait(WAIT_SLICE)
            failed = [outcomes[n].error or f"task {n} failed" for n in sorted(outcomes) if not outcomes[n].ok]
            failure = failure or (failed[0] if failed else "")
        if failure:
            return tasks.Outcome("failed", error=failure)
        return self._dag_outputs(dag, outcomes)

    def _dag_outputs(self, dag: ir.Dag, outcomes: Mapping[str, tasks.Outcome]) -> tasks.Outcome:
        result = tasks.Outcome("succeeded")
        for name, selectors in dag.output_parameters.items():
            for sel in selectors:
                produced = outcomes.get(sel.producer)
                if produced is not None and produced.state != "skipped" and sel.key in produced.parameters:
                    result.parameters[name] = produced.parameters[sel.key]
                    break
        for name, selectors in dag.output_artifacts.items():
            for sel in selectors:
                produced = outcomes.get(sel.producer)
                if produced is not None and produced.state != "skipped" and sel.key in produced.artifacts:
                    result.artifacts[name] = produced.artifacts[sel.key]
                    break
        return result

    @staticmethod
    def _task_id(path: str, name: str) -> str:
        return f"{path}/{name}".lstrip("/")

    # --- one task ----------------------------------------------------------------------------------

    def _resolve(
        self, task: ir.Task, inputs: tasks.Inputs, siblings: Mapping[str, tasks.Outcome], path: str
    ) -> tasks.Inputs:
        params: dict[str, Any] = {}
        templates: dict[str, str] = {}
        for name, source in task.parameters.items():
            if source.kind == "constant":
                value = source.value
                if isinstance(value, str) and "{{$" in value:
                    templates[name] = value  # filled once every other input is known
            elif source.kind == "component_input":
                if source.value not in inputs.parameters:
                    continue  # an optional input that was not given: the component's default applies
                value = inputs.parameters[source.value]
            elif source.kind == "task_final_status":
                produced = siblings[source.producer]
                value = {
                    "state": "SUCCEEDED" if produced.ok else "FAILED",
                    "pipelineJobResourceName": self.run_id,
                    "pipelineTaskName": source.producer,
                    "error": {} if produced.ok else {"code": 1, "message": produced.error},
                }
            else:
                produced = siblings[source.producer]
                if source.key not in produced.parameters:
                    why = "was skipped" if produced.state == "skipped" else f"has no output parameter {source.key!r}"
                    raise ValueError(f"input {name}: task {source.producer} {why}")
                value = produced.parameters[source.key]
            if source.selector:
                value = conditions.select(source.selector, value)
            params[name] = value
        for name, template in templates.items():
            params[name] = values.fill_placeholders(
                template, params, self._tasks.context(task.name, self._task_id(path, task.name))
            )
        artifacts: dict[str, list[dict[str, Any]]] = {}
        for name, asource in task.artifacts.items():
            if asource.kind == "component_input":
                if asource.name in inputs.artifacts:
                    artifacts[name] = inputs.artifacts[asource.name]
                continue
            produced = siblings[asource.producer]
            if asource.key not in produced.artifacts:
                why = "was skipped" if produced.state == "skipped" else f"has no output artifact {asource.key!r}"
                raise ValueError(f"input {name}: task {asource.producer} {why}")
            artifacts[name] = produced.artifacts[asource.key]
        return tasks.Inputs(params, artifacts)

    def _run_task(
        self, task: ir.Task, inputs: tasks.Inputs, siblings: Mapping[str, tasks.Outcome], path: str
    ) -> tasks.Outcome:
        task_id = self._task_id(path, task.name)
        try:
            resolved = self._resolve(task, inputs, siblings, path)
        except (ValueError, KeyError, errors.InvalidPipeline) as exc:
            return self._tasks.record_failure(task_id, task.name, f"task {task_id}: {exc}")
        if task.condition:
            try:
                holds = conditions.condition_holds(task.condition, resolved.parameters)
            except errors.InvalidPipeline as exc:
                return self._tasks.record_failure(task_id, task.name, f"task {task_id}: {exc}")
            if not holds:
                self._tasks.record_skip(task_id, task.name, "condition is false")
                return tasks.Outcome("skipped")
        component = self.pipeline.component(task.component)
        if task.iterator is not None:
            return self._run_loop(task, component, resolved, task_id)
        if component.dag is not None:
            return self._run_dag(component, resolved, task_id)
        return self._tasks.run(task, component, resolved, task_id)

    def _run_loop(self, task: ir.Task, body: ir.Component, inputs: tasks.Inputs, task_id: str) -> tasks.Outcome:
        iterator = task.iterator
        assert iterator is not None
        try:
            items = self._loop_items(iterator, inputs)
        except ValueError as exc:
            return self._tasks.record_failure(task_id, task.name, f"task {task_id}: {exc}")
        results: list[tasks.Outcome | None] = [None] * len(items)
        cursor = [0]
        take = threading.Lock()
        stop = threading.Event()  # an iteration failed: start no more (KFP's fail-fast)

        def worker() -> None:  # `parallelismLimit` workers (or up to MAX_LOOP_WORKERS) take items in order
            while True:
                with take:
                    index = cursor[0]
                    cursor[0] += 1
                if index >= len(items) or stop.is_set():
                    return
                item = items[index]
                if iterator.over_artifacts:
                    it_inputs = tasks.Inputs(dict(inputs.parameters), {**inputs.artifacts, iterator.item_input: [item]})
                else:
                    it_inputs = tasks.Inputs({**inputs.parameters, iterator.item_input: item}, dict(inputs.artifacts))
                try:
                    outcome = self._run_dag(body, it_inputs, f"{task_id}.{index}")
                except Exception as exc:
                    outcome = tasks.Outcome("failed", error=f"engine error in {task_id}.{index}: {exc}")
                results[index] = outcome
                if not outcome.ok:
                    stop.set()

        workers = min(len(items), iterator.parallelism or MAX_LOOP_WORKERS)
        threads = [threading.Thread(target=worker, name=f"{task_id} worker {i}", daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failed = [r for r in results if r is not None and not r.ok]
        if failed:
            return tasks.Outcome("failed", error=failed[0].error)
        done = [r for r in results if r is not None]
        if len(done) != len(items):
            return tasks.Outcome("failed", error=f"task {task_id}: {len(items) - len(done)} iterations did not finish")
        collected = tasks.Outcome("succeeded")
        assert body.dag is not None
        for name in body.dag.output_parameters:
            collected.parameters[name] = [r.parameters[name] for r in done if name in r.parameters]
        for name in body.dag.output_artifacts:
            collected.artifacts[name] = [a for r in done for a in r.artifacts.get(name, [])]
        return collected

    @staticmethod
    def _loop_items(iterator: ir.Iterator, inputs: tasks.Inputs) -> list[Any]:
        if iterator.raw_items is not None:
            items: Any = json.loads(iterator.raw_items)
        elif iterator.over_artifacts:
            items = inputs.artifacts.get(iterator.items_input or "", [])
        else:
            if iterator.items_input not in inputs.parameters:
                raise ValueError(f"the loop's list input {iterator.items_input!r} has no value")
            items = inputs.parameters[iterator.items_input or ""]
            if isinstance(items, str):
                items = json.loads(items)
        if not isinstance(items, list):
            raise ValueError(f"ParallelFor needs a list, got {type(items).__name__}")
        if len(items) > MAX_LOOP_ITEMS:
            raise ValueError(f"ParallelFor over {len(items)} items (at most {MAX_LOOP_ITEMS})")
        return items

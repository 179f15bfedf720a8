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
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from appliance import progress
from appliance.pipelines import conditions, errors, executor_input, ir, runs, store

MAX_LOOP_ITEMS = 10_000
MAX_LOOP_WORKERS = 64  # iterations in flight for a loop without parallelismLimit (container slots still apply)
WAIT_SLICE = 0.5  # seconds between checks of a DAG's running tasks (a notify wakes it earlier)


@dataclass
class TaskRequest:
    """One attempt of one container task, as a backend receives it."""

    run_id: str
    task_id: str
    attempt: int
    executor: ir.Executor
    executor_input: dict[str, Any]
    output_types: dict[str, str]
    outputs_dir: str
    pipeline_root: str
    context: dict[str, str]


@dataclass
class TaskResult:
    exit_code: int
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str = ""
    log_path: str = ""
    log_tail: str = ""


class Backend(Protocol):
    """Where container tasks run: `local.LocalBackend` (processes), later Kubernetes pods."""

    def outputs_dir(self, run_id: str, task_id: str, attempt: int) -> str: ...

    def run(self, request: TaskRequest) -> TaskResult: ...


@dataclass
class Outcome:
    state: str  # succeeded | failed | skipped | cached
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.state != "failed"


@dataclass
class Inputs:
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    pipeline_root: str
    enable_cache: bool = True
    max_parallel: int = 4


@dataclass
class RunResult:
    run_id: str
    state: str
    outputs: dict[str, Any]
    tasks: list[runs.TaskRecord]
    error: str = ""

    def failed_tasks(self) -> list[runs.TaskRecord]:
        return [t for t in self.tasks if t.state == "failed" and t.kind in ("container", "importer")]


class _TaskFailed(Exception):
    """Ends a task's progress step as failed; never escapes the engine."""


def coerce(value: Any, parameter_type: str) -> Any:
    """A parameter value as its declared type (loop items arrive as strings, integers as 4.0)."""
    try:
        if parameter_type == "NUMBER_INTEGER" and not isinstance(value, bool):
            return int(float(value)) if isinstance(value, str | float) else value
        if parameter_type == "NUMBER_DOUBLE" and isinstance(value, str | int) and not isinstance(value, bool):
            return float(value)
        if parameter_type == "BOOLEAN" and isinstance(value, str):
            return value.strip().lower() == "true"
        if parameter_type in ("LIST", "STRUCT") and isinstance(value, str):
            return json.loads(value)
        if parameter_type == "STRING" and not isinstance(value, str):
            return executor_input.format_parameter(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{value!r} is not a valid {parameter_type}") from exc
    return value


def parse_cli_parameter(text: str, parameter_type: str) -> Any:
    """`-p name=value` text as the parameter's type (lists and structs as JSON)."""
    if parameter_type == "BOOLEAN" and text.strip().lower() not in ("true", "false"):
        raise ValueError(f"{text!r} is not true or false")
    return coerce(text, parameter_type)


def cache_key(
    component: ir.Component,
    executor: ir.Executor,
    parameters: Mapping[str, Any],
    artifacts: Mapping[str, list[dict[str, Any]]],
) -> str:
    """Same component spec (names aside) and same inputs → same key."""
    spec = {k: v for k, v in component.raw.items() if k != "executorLabel"}
    payload = {
        "component": spec,
        "executor": executor.raw,
        "parameters": dict(parameters),
        "artifacts": {name: [(a.get("uri"), a.get("type")) for a in items] for name, items in artifacts.items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _slug(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", task_id.strip("/")).strip("-")


class Engine:
    """Runs one pipeline; `run()` may be called once per instance."""

    def __init__(
        self,
        pipeline: ir.Pipeline,
        backend: Backend,
        records: runs.RunStore,
        prog: progress.Progress,
        options: Options,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pipeline = pipeline
        self.backend = backend
        self.records = records
        self.progress = prog
        self.options = options
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max(1, options.max_parallel))
        self.run_id = ""
        self._created = ""

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
        values: dict[str, Any] = {}
        for name, spec in specs.items():
            if name in given:
                raw = given[name]
                try:
                    values[name] = (
                        parse_cli_parameter(raw, spec.type) if isinstance(raw, str) else coerce(raw, spec.type)
                    )
                except ValueError as exc:
                    raise errors.InvalidParameter(
                        f"parameter {name}: {exc}", hint=f"{name} is {spec.type}; lists and structs are JSON"
                    ) from exc
            elif spec.has_default:
                values[name] = coerce(spec.default, spec.type)
            elif not spec.optional:
                raise errors.InvalidParameter(
                    f"pipeline {self.pipeline.name!r} needs parameter {name!r} ({spec.type})",
                    hint=f"pass it with -p {name}=VALUE",
                )
        return values

    def run(self, parameters: Mapping[str, Any], *, run_id: str | None = None) -> RunResult:
        values = self.resolve_parameters(parameters)
        self.run_id = run_id or f"{_slug(self.pipeline.name)}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.records.create_run(
            runs.RunRecord(
                id=self.run_id,
                pipeline=self.pipeline.name,
                state="running",
                parameters=values,
                pipeline_root=self.options.pipeline_root,
                created=time.time(),
            )
        )
        outcome = self._run_dag(self.pipeline.root, Inputs(parameters=values), "")
        outputs = {**outcome.parameters, **{k: [a["uri"] for a in v] for k, v in outcome.artifacts.items()}}
        state = "succeeded" if outcome.ok else "failed"
        self.records.finish_run(self.run_id, state, outcome.error, outputs)
        return RunResult(self.run_id, state, outputs, self.records.tasks(self.run_id), outcome.error)

    # --- DAGs --------------------------------------------------------------------------------------

    def _run_dag(self, component: ir.Component, inputs: Inputs, path: str) -> Outcome:
        dag = component.dag
        assert dag is not None
        params = dict(inputs.parameters)
        for name, spec in component.input_parameters.items():
            if name not in params and spec.has_default:
                params[name] = spec.default
        inputs = Inputs(params, dict(inputs.artifacts))
        outcomes: dict[str, Outcome] = {}
        running: set[str] = set()
        pending = set(dag.tasks)
        changed = threading.Condition()
        failure = ""

        def finish(name: str, outcome: Outcome) -> None:
            with changed:
                outcomes[name] = outcome
                running.discard(name)
                changed.notify_all()

        def start(task: ir.Task) -> None:
            def body() -> None:
                try:
                    outcome = self._run_task(task, inputs, outcomes, path)
                except Exception as exc:  # a bug: keep the run going to a failed end, with the cause
                    outcome = Outcome(
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
                        outcomes[name] = Outcome("skipped", error="not run: an upstream task failed")
                        self._record_skip(self._task_id(path, name), name, "not run: an upstream task failed")
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
            return Outcome("failed", error=failure)
        return self._dag_outputs(dag, outcomes)

    def _dag_outputs(self, dag: ir.Dag, outcomes: Mapping[str, Outcome]) -> Outcome:
        result = Outcome("succeeded")
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

    def _context(self, task_name: str, task_id: str) -> dict[str, str]:
        """What KFP's `{{$.pipeline_job_name}}`-style placeholders (dsl.PIPELINE_*_PLACEHOLDER) stand for."""
        return {
            "pipeline_job_name": self.run_id,
            "pipeline_job_resource_name": self.run_id,
            "pipeline_job_uuid": self.run_id,
            "pipeline_job_create_time_utc": self._created,
            "pipeline_job_schedule_time_utc": self._created,
            "pipeline_task_name": task_name,
            "pipeline_task_uuid": f"{self.run_id}/{task_id}",
            "pipeline_root": self.options.pipeline_root,
        }

    def _fill_constant(self, value: str, params: Mapping[str, Any], task: ir.Task, task_id: str) -> str:
        """A constant input with placeholders, as the driver fills it: f-strings over pipeline channels
        (`{{$.inputs.parameters['pipelinechannel--x']}}`) and dsl.PIPELINE_*_PLACEHOLDER values."""
        context = self._context(task.name, task_id)

        def one(match: re.Match[str]) -> str:
            path = match.group(1)
            named = re.fullmatch(r"\.inputs\.parameters\[['\"]([^'\"]+)['\"]\]", path)
            if named is not None:
                if named.group(1) not in params:
                    raise ValueError(f"placeholder {match.group(0)} names no input of task {task_id}")
                return executor_input.format_parameter(params[named.group(1)])
            return context.get(path.lstrip("."), match.group(0))

        return re.sub(r"\{\{\$([^{}]*)\}\}", one, value)

    def _resolve(self, task: ir.Task, inputs: Inputs, siblings: Mapping[str, Outcome], path: str) -> Inputs:
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
            params[name] = self._fill_constant(template, params, task, self._task_id(path, task.name))
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
        return Inputs(params, artifacts)

    def _run_task(self, task: ir.Task, inputs: Inputs, siblings: Mapping[str, Outcome], path: str) -> Outcome:
        task_id = self._task_id(path, task.name)
        try:
            resolved = self._resolve(task, inputs, siblings, path)
        except (ValueError, KeyError, errors.InvalidPipeline) as exc:
            return self._record_failure(task_id, task.name, f"task {task_id}: {exc}")
        if task.condition:
            try:
                holds = conditions.condition_holds(task.condition, resolved.parameters)
            except errors.InvalidPipeline as exc:
                return self._record_failure(task_id, task.name, f"task {task_id}: {exc}")
            if not holds:
                self._record_skip(task_id, task.name, "condition is false")
                return Outcome("skipped")
        component = self.pipeline.component(task.component)
        if task.iterator is not None:
            return self._run_loop(task, component, resolved, task_id)
        if component.dag is not None:
            return self._run_dag(component, resolved, task_id)
        return self._run_executor(task, component, resolved, task_id)

    def _run_loop(self, task: ir.Task, body: ir.Component, inputs: Inputs, task_id: str) -> Outcome:
        iterator = task.iterator
        assert iterator is not None
        try:
            items = self._loop_items(iterator, inputs)
        except ValueError as exc:
            return self._record_failure(task_id, task.name, f"task {task_id}: {exc}")
        results: list[Outcome | None] = [None] * len(items)
        cursor = [0]
        take = threading.Lock()

        def worker() -> None:  # `parallelismLimit` workers (or up to MAX_LOOP_WORKERS) take items in order
            while True:
                with take:
                    index = cursor[0]
                    cursor[0] += 1
                if index >= len(items):
                    return
                item = items[index]
                if iterator.over_artifacts:
                    it_inputs = Inputs(dict(inputs.parameters), {**inputs.artifacts, iterator.item_input: [item]})
                else:
                    it_inputs = Inputs({**inputs.parameters, iterator.item_input: item}, dict(inputs.artifacts))
                try:
                    results[index] = self._run_dag(body, it_inputs, f"{task_id}.{index}")
                except Exception as exc:
                    results[index] = Outcome("failed", error=f"engine error in {task_id}.{index}: {exc}")

        workers = min(len(items), iterator.parallelism or MAX_LOOP_WORKERS)
        threads = [threading.Thread(target=worker, name=f"{task_id} worker {i}", daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = [r if r is not None else Outcome("failed", error="iteration did not finish") for r in results]
        failed = [r for r in done if not r.ok]
        if failed:
            return Outcome("failed", error=failed[0].error)
        collected = Outcome("succeeded")
        assert body.dag is not None
        for name in body.dag.output_parameters:
            collected.parameters[name] = [r.parameters[name] for r in done if name in r.parameters]
        for name in body.dag.output_artifacts:
            collected.artifacts[name] = [a for r in done for a in r.artifacts.get(name, [])]
        return collected

    @staticmethod
    def _loop_items(iterator: ir.Iterator, inputs: Inputs) -> list[Any]:
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

    # --- container and importer tasks --------------------------------------------------------------

    def _record_skip(self, task_id: str, name: str, why: str) -> None:
        now = time.time()
        self.records.save_task(
            runs.TaskRecord(self.run_id, task_id, name, "dag", "skipped", started=now, finished=now, error=why), why
        )
        self.progress.emit(progress.StepEvent(step_id=0, title=task_id, state="skipped", message=why, kind="end"))

    def _record_failure(self, task_id: str, name: str, why: str) -> Outcome:
        now = time.time()
        self.records.save_task(
            runs.TaskRecord(self.run_id, task_id, name, "dag", "failed", started=now, finished=now, error=why), why
        )
        try:
            with self.progress.step(task_id):
                raise _TaskFailed(why)
        except _TaskFailed:
            pass
        return Outcome("failed", error=why)

    def _run_executor(self, task: ir.Task, component: ir.Component, inputs: Inputs, task_id: str) -> Outcome:
        executor = self.pipeline.executors[component.executor_label]
        record = runs.TaskRecord(
            self.run_id, task_id, task.name, "importer" if executor.is_importer else "container", "running"
        )
        record.started = time.time()
        try:
            with self.progress.step(task_id) as step:
                outcome = self._execute(task, component, executor, inputs, record, step)
                if outcome.state == "cached":
                    step.message = "cached"
                if not outcome.ok:
                    raise _TaskFailed(outcome.error)
        except _TaskFailed:
            pass
        return outcome

    def _execute(
        self,
        task: ir.Task,
        component: ir.Component,
        executor: ir.Executor,
        inputs: Inputs,
        record: runs.TaskRecord,
        step: progress.Step,
    ) -> Outcome:
        task_id = record.task_id
        try:
            params = self._container_parameters(component, inputs.parameters, task_id)
        except ValueError as exc:
            return self._finish(record, Outcome("failed", error=str(exc)))
        if executor.is_importer:
            return self._import(executor, params, record)
        self.records.save_task(record)
        key = ""
        if self.options.enable_cache and task.enable_cache:
            key = cache_key(component, executor, params, inputs.artifacts)
            record.cache_key = key
            cached = self.records.cache_get(key)
            if cached is not None:
                return self._finish(record, Outcome("cached", cached["parameters"], cached["artifacts"]))
        base = store.join(self.options.pipeline_root, self.pipeline.name, self.run_id, _slug(task_id))
        outputs = {
            name: (spec.schema_title, spec.schema_version, store.join(base, name))
            for name, spec in component.output_artifacts.items()
        }
        policy = task.retry or ir.RetryPolicy()
        context = self._context(task.name, task_id)
        result = TaskResult(exit_code=-1)
        for attempt in range(1, policy.max_retries + 2):
            record.attempts = attempt
            outputs_dir = self.backend.outputs_dir(self.run_id, task_id, attempt)
            request = TaskRequest(
                run_id=self.run_id,
                task_id=task_id,
                attempt=attempt,
                executor=executor,
                executor_input=executor_input.build(
                    parameters=params,
                    artifacts=inputs.artifacts,
                    output_parameters={n: s.type for n, s in component.output_parameters.items()},
                    output_artifacts=outputs,
                    outputs_dir=outputs_dir,
                ),
                output_types={n: s.type for n, s in component.output_parameters.items()},
                outputs_dir=outputs_dir,
                pipeline_root=self.options.pipeline_root,
                context=context,
            )
            with self._slots:
                result = self.backend.run(request)
            record.exit_code, record.log_path, record.log_tail = result.exit_code, result.log_path, result.log_tail
            if result.exit_code == 0:
                break
            if attempt <= policy.max_retries:
                delay = policy.delay(attempt)
                message = f"attempt {attempt} failed (exit code {result.exit_code}); retry in {delay:g}s"
                step.update(message)
                self.records.save_task(record, message)
                self._sleep(delay)
        if result.exit_code != 0:
            why = result.error or f"exit code {result.exit_code}"
            tries = f" after {record.attempts} attempts" if record.attempts > 1 else ""
            return self._finish(record, Outcome("failed", error=f"task {task_id} failed{tries}: {why}"))
        missing = [n for n in component.output_parameters if n not in result.parameters]
        if missing:
            why = f"task {task_id} did not write its output parameter(s) {', '.join(missing)}"
            return self._finish(record, Outcome("failed", error=why))
        outcome = Outcome("succeeded", result.parameters, result.artifacts)
        if key:
            cached_outputs = {"parameters": outcome.parameters, "artifacts": outcome.artifacts}
            self.records.cache_put(key, cached_outputs, self.run_id, task_id)
        return self._finish(record, outcome)

    def _container_parameters(self, component: ir.Component, given: Mapping[str, Any], task_id: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, spec in component.input_parameters.items():
            if name in given and given[name] is not None:
                try:
                    params[name] = given[name] if spec.type == "TASK_FINAL_STATUS" else coerce(given[name], spec.type)
                except ValueError as exc:
                    raise ValueError(f"task {task_id}: input {name}: {exc}") from exc
            elif spec.has_default:
                params[name] = coerce(spec.default, spec.type)
            elif not spec.optional:
                raise ValueError(f"task {task_id}: required input parameter {name!r} has no value")
        for name, value in given.items():  # injected inputs (f-string channels) that the spec does not declare
            params.setdefault(name, value)
        return params

    def _import(self, executor: ir.Executor, params: Mapping[str, Any], record: runs.TaskRecord) -> Outcome:
        source = executor.importer_uri
        assert source is not None and executor.importer_type is not None
        uri = source.value if source.kind == "constant" else params.get(str(source.value), "")
        if not uri:
            return self._finish(record, Outcome("failed", error=f"task {record.task_id}: importer has no artifact URI"))
        artifact = executor_input.runtime_artifact(
            "artifact",
            executor.importer_type.schema_title,
            executor.importer_type.schema_version or "0.0.1",
            str(uri),
            executor.importer_metadata,
        )
        return self._finish(record, Outcome("succeeded", artifacts={"artifact": [artifact]}))

    def _finish(self, record: runs.TaskRecord, outcome: Outcome) -> Outcome:
        record.state = outcome.state
        record.finished = time.time()
        record.error = outcome.error
        record.outputs = {
            "parameters": outcome.parameters,
            "artifacts": {
                k: [{"uri": a["uri"], "type": a.get("type", {}), "metadata": a.get("metadata", {})} for a in v]
                for k, v in outcome.artifacts.items()
            },
        }
        self.records.save_task(record, outcome.error)
        return outcome

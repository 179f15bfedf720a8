"""One container or importer task of a run: caching, the attempts with retries and backoff, records.

Called by `engine` for each task whose component has an executor (a DAG component stays in the
engine). For each attempt it builds the ExecutorInput, asks the backend (`backend.Backend`) to run
it, and records the attempt; it reuses cached outputs when the component and inputs were seen
before, and stores them after a success. `Outcome`, `Inputs` and `Options` are shared with `engine`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance import progress
from appliance.pipelines import backend as backends
from appliance.pipelines import executor_input, ir, runs, store, values


@dataclass
class Outcome:
    """What a task, a DAG or a loop produced: its state and outputs (and why it failed)."""

    state: str  # succeeded | failed | skipped | cached
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.state != "failed"


@dataclass
class Inputs:
    """Resolved inputs of a task or DAG: parameter values, and runtime artifacts by input name."""

    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """Run options: where artifacts go, whether caching is on, how many container tasks at once."""

    pipeline_root: str
    enable_cache: bool = True
    max_parallel: int = 4


class _TaskFailed(Exception):
    """Ends a task's progress step as failed; never escapes the engine."""


class TaskRunner:
    """Runs the container and importer tasks of one run (`engine.Engine.run` makes one per run)."""

    def __init__(
        self,
        pipeline: ir.Pipeline,
        backend: backends.Backend,
        records: runs.RunStore,
        prog: progress.Progress,
        options: Options,
        run_id: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pipeline = pipeline
        self.backend = backend
        self.records = records
        self.progress = prog
        self.options = options
        self.run_id = run_id
        self._created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max(1, options.max_parallel))

    def context(self, task_name: str, task_id: str) -> dict[str, str]:
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

    def record_skip(self, task_id: str, name: str, why: str) -> None:
        now = time.time()
        self.records.save_task(
            runs.TaskRecord(self.run_id, task_id, name, "dag", "skipped", started=now, finished=now, error=why), why
        )
        self.progress.emit(progress.StepEvent(step_id=0, title=task_id, state="skipped", message=why, kind="end"))

    def record_failure(self, task_id: str, name: str, why: str) -> Outcome:
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

    def run(self, task: ir.Task, component: ir.Component, inputs: Inputs, task_id: str) -> Outcome:
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
            key = values.cache_key(component, executor, params, inputs.artifacts)
            record.cache_key = key
            cached = self.records.cache_get(key)
            if cached is not None:
                return self._finish(record, Outcome("cached", cached["parameters"], cached["artifacts"]))
        base = store.join(self.options.pipeline_root, self.pipeline.name, self.run_id, backends.slug(task_id))
        outputs = {
            name: (spec.schema_title, spec.schema_version, store.join(base, name))
            for name, spec in component.output_artifacts.items()
        }
        policy = task.retry or ir.RetryPolicy()
        context = self.context(task.name, task_id)
        result = backends.TaskResult(exit_code=-1)
        for attempt in range(1, policy.max_retries + 2):
            record.attempts = attempt
            outputs_dir = self.backend.outputs_dir(self.run_id, task_id, attempt)
            request = backends.TaskRequest(
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
                    params[name] = (
                        given[name] if spec.type == "TASK_FINAL_STATUS" else values.coerce(given[name], spec.type)
                    )
                except ValueError as exc:
                    raise ValueError(f"task {task_id}: input {name}: {exc}") from exc
            elif spec.has_default:
                params[name] = values.coerce(spec.default, spec.type)
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

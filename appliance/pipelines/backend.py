"""The interface between the engine and wherever container tasks run.

`engine` hands a `TaskRequest` (one attempt of one task: its executor, ExecutorInput, pipeline root)
to a `Backend` and gets a `TaskResult` back. `local.LocalBackend` runs it as a process on this
machine; the Kubernetes backend of the pipeline server will run it as a pod from the component's
image with `launcher` as its command. Everything else (retries, caching, loops, conditions, exit
handlers) stays in the engine, so a backend only has to start one attempt and report what it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from appliance.pipelines import ir


@dataclass
class TaskRequest:
    """One attempt of one container task, as a backend receives it."""

    run_id: str
    task_id: str  # the task's path in the run: "exit-handler-1/for-loop-2.0/square"
    attempt: int  # 1-based
    executor: ir.Executor
    executor_input: dict[str, Any]
    output_types: dict[str, str]  # output parameter name → parameterType
    outputs_dir: str  # where ExecutorInput says the task writes its output files (from outputs_dir())
    pipeline_root: str
    context: dict[str, str]  # what {{$.pipeline_job_name}}-style placeholders stand for


def launcher_spec(
    request: TaskRequest, *, mount_root: str, workdir: str, allow_pip: bool, timeout: float
) -> dict[str, Any]:
    """The launcher's task JSON (`python -m appliance.pipelines`) for one attempt: what both backends
    write; where the attempt runs decides `mount_root` and `workdir` (and the local backend adds the
    result and log files)."""
    return {
        "task": request.task_id,
        "executor_input": request.executor_input,
        "command": list(request.executor.command),
        "args": list(request.executor.args),
        "env": dict(request.executor.env),
        "output_types": request.output_types,
        "pipeline_root": request.pipeline_root,
        "mount_root": mount_root,
        "workdir": workdir,
        "context": request.context,
        "allow_pip": allow_pip,
        "timeout": timeout,
    }


@dataclass
class TaskResult:
    exit_code: int  # the component's; launcher failures 200, timeouts 124
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str = ""  # why, when the launcher (not the component) failed
    log_path: str = ""
    log_tail: str = ""


class Backend(Protocol):
    """Where container tasks run: `local.LocalBackend` (processes), later Kubernetes pods."""

    def outputs_dir(self, run_id: str, task_id: str, attempt: int) -> str: ...

    def run(self, request: TaskRequest) -> TaskResult: ...


def slug(task_id: str) -> str:
    """A task path as one file/object name component."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", task_id.strip("/")).strip("-")

"""`appliance pipelines run FILE --local`: run a compiled Kubeflow pipeline on this machine.

Registered in `appliance.cli.main`; calls `appliance.api.pipelines_run_local`, prints each task's
state as it changes (progress events), then a summary. A failed run exits non-zero naming the
failing task, its exit code and the tail of its log.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from appliance import api, progress
from appliance.cli import render
from appliance.cli.state import State, pass_state

# A task's state (runs.TaskRecord.state) as the step state whose mark and colour every front end shows.
TASK_STEP_STATE = {
    "succeeded": "done",
    "cached": "done",
    "failed": "failed",
    "skipped": "skipped",
    "running": "running",
}


class TaskPrinter:
    """A progress subscriber: one line per task state change (start, retry, end)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: progress.StepEvent) -> None:
        if event.kind == "start":
            mark, style = render.STEP_MARK["running"]
            self.console.print(Text(f"{mark} {event.title} running", style=style), highlight=False)
        elif event.kind == "update" and event.message:
            self.console.print(Text(f"↻ {event.title}: {event.message}", style="yellow"), highlight=False)
        elif event.kind == "end":
            mark, style = render.STEP_MARK[event.state]
            word = {"done": "succeeded"}.get(event.state, event.state)
            line = Text(f"{mark} {event.title} {word}", style=style) + Text(f" ({event.elapsed:.2f}s)", style="dim")
            if event.message:
                line.append(f": {event.message}" if event.state != "done" else f" ({event.message})", style="dim")
            self.console.print(line, highlight=False)


def _parameters(values: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise api.ApplianceError(f"-p expects NAME=VALUE, got {item!r}", hint="e.g. -p count=3 -p 'xs=[1,2]'")
        parsed[name.strip()] = value
    return parsed


def _summary(run: api.PipelineRun) -> Table:
    table = Table(title=f"run {run.run_id}", title_justify="left")
    table.add_column("task", overflow="fold")
    for column in ("state", "attempts", "exit", "seconds"):
        table.add_column(column, no_wrap=True)
    for task in run.tasks:
        if task.kind not in ("container", "importer") and task.state != "skipped":
            continue
        mark, style = render.STEP_MARK[TASK_STEP_STATE.get(task.state, "running")]
        table.add_row(
            task.task_id,
            Text(f"{mark} {task.state}", style=style),
            str(task.attempts or ""),
            "" if task.exit_code is None else str(task.exit_code),
            "" if task.seconds is None else f"{task.seconds:.2f}",
        )
    return table


@click.group()
def pipelines() -> None:
    """Kubeflow Pipelines v2: run pipelines compiled with the kfp SDK."""


@pipelines.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--local", "local_", is_flag=True, help="Run every task as a local process (required for now).")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A run-time parameter (repeat).")
@click.option("--pipeline-root", metavar="s3://BUCKET/PREFIX|DIR", help="Where artifacts go [default: data dir].")
@click.option("--no-cache", is_flag=True, help="Run every task even when an earlier run has its outputs.")
@click.option("--python", metavar="PATH", help="The Python (with kfp 2.x) that runs tasks [default: found].")
@click.option("--no-fork-server", is_flag=True, help="Start a fresh launcher process per task (slower).")
@click.option("--allow-pip-install", is_flag=True, help="Let components pip-install missing packages.")
@click.option("--max-parallel", type=click.IntRange(1, 256), default=4, show_default=True, help="Tasks at once.")
@click.option(
    "--task-timeout", type=click.FloatRange(1, 7 * 86400), default=3600, show_default=True, help="Seconds per task."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@pass_state
def run(
    state: State,
    file: str,
    local_: bool,
    params: tuple[str, ...],
    pipeline_root: str | None,
    no_cache: bool,
    python: str | None,
    no_fork_server: bool,
    allow_pip_install: bool,
    max_parallel: int,
    task_timeout: float,
    as_json: bool,
) -> None:
    """Run a compiled pipeline (FILE: the YAML/JSON from kfp.compiler.Compiler().compile).

    Artifacts go to --pipeline-root: an S3 bucket (MinIO; credentials from AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT) or a directory. Exits non-zero when a task fails.
    """
    if not local_:
        raise api.ApplianceError(
            "only local runs exist so far: add --local",
            hint="the in-cluster pipeline server is the next part of issue #7",
        )
    loaded = state.load_config()
    printer = TaskPrinter(state.err)
    result = api.pipelines_run_local(
        loaded,
        file,
        api.Progress(printer),
        parameters=_parameters(params),
        pipeline_root=pipeline_root,
        enable_cache=not no_cache,
        python=python,
        fork_server=not no_fork_server,
        allow_pip=allow_pip_install,
        max_parallel=max_parallel,
        task_timeout=task_timeout,
    )
    if as_json:
        click.echo(json.dumps(_as_dict(result), indent=2, default=str))
    else:
        state.out.print(_summary(result))
        for name, value in result.outputs.items():
            state.out.print(f"  output {name} = {value}", highlight=False)
        state.out.print(
            f"{result.pipeline}: {result.state} in {result.seconds:.2f}s; artifacts under {result.pipeline_root}",
            highlight=False,
        )
    if result.state != "succeeded":
        failed = result.failed[0] if result.failed else None
        if failed is not None and failed.log_tail:
            state.err.print(Text(f"--- last lines of {failed.log_path}", style="dim"), highlight=False)
            state.err.print(Text(failed.log_tail), highlight=False)
        if failed is None:
            raise api.ApplianceError(f"run {result.run_id} failed: {result.error}")
        raise api.ApplianceError(
            failed.error or f"task {failed.task_id} failed",
            hint=f"its log: {failed.log_path}" if failed.log_path else "fix the input named above and run again",
        )


def _as_dict(run_: api.PipelineRun) -> dict[str, Any]:
    return {
        "run_id": run_.run_id,
        "pipeline": run_.pipeline,
        "state": run_.state,
        "seconds": round(run_.seconds, 3),
        "outputs": run_.outputs,
        "error": run_.error,
        "pipeline_root": run_.pipeline_root,
        "tasks": [t.__dict__ for t in run_.tasks],
    }

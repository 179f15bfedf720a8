"""`appliance pipelines`: run compiled Kubeflow pipelines on this machine (`run FILE --local`) or on
the cluster's pipeline server (`upload | run | list | get | logs`).

Registered in `appliance.cli.main`; calls `appliance.api` (`pipelines_run_local`, and the pipeline
server section: `pipelines_server` resolves where the server is and its token). Task states print as
they change, then a summary. A failed run exits non-zero naming the failing task, its exit code and
the tail of its log.
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


def state_mark(state: str) -> tuple[str, str]:
    """The mark and style of a run's or task's state, from the table every front end uses."""
    return render.STEP_MARK[TASK_STEP_STATE.get(state, "running")]


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
        mark, style = state_mark(task.state)
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


def server_options(fn: Any) -> Any:
    fn = click.option("--token", metavar="TOKEN", help="The server's token [default: read from the cluster].")(fn)
    return click.option(
        "--server", metavar="URL", help="The pipeline server [default: the cluster's gateway, /ds-pipeline]."
    )(fn)


@pipelines.command("run")
@click.argument("file", metavar="FILE|PIPELINE", type=click.Path(dir_okay=False, path_type=str))
@click.option("--local", "local_", is_flag=True, help="Run every task as a local process, not on the cluster.")
@click.option("--version", metavar="V", help="Cluster: the pipeline version to run [default: the newest].")
@click.option("--no-wait", is_flag=True, help="Cluster: print the run id and return at once.")
@server_options
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
    version: str | None,
    no_wait: bool,
    server: str | None,
    token: str | None,
) -> None:
    """Run a compiled pipeline (FILE: the YAML/JSON from kfp.compiler.Compiler().compile).

    On the cluster (default): PIPELINE is an uploaded pipeline's name, or a FILE, uploaded first as a
    new version; the run's task states print until it ends. With --local every task is a process
    here, and artifacts go to --pipeline-root: an S3 bucket (MinIO; credentials from
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT) or a directory. Exits non-zero when
    a task fails.
    """
    loaded = state.load_config()
    if not local_:
        from pathlib import Path  # noqa: PLC0415

        if Path(file).is_file():
            api.pipelines_validate(file)  # a bad file is a usage error before any server is asked
        target = api.pipelines_server(loaded, url=server, token=token)
        _run_on_server(state, target, file, _parameters(params), version, not no_cache, no_wait, as_json)
        return
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


def _run_on_server(
    state: State,
    target: api.PipelineServer,
    name: str,
    params: dict[str, str],
    version: str | None,
    enable_cache: bool,
    no_wait: bool,
    as_json: bool,
) -> None:
    from pathlib import Path  # noqa: PLC0415
    from time import strftime  # noqa: PLC0415

    if Path(name).is_file():
        uploaded = api.pipelines_upload(target, name, version=version or strftime("v%Y%m%d-%H%M%S"))
        state.err.print(f"uploaded {uploaded['name']} version {uploaded['version']}", highlight=False)
        name, version = str(uploaded["name"]), str(uploaded["version"])
    run_ = api.pipelines_create_run(target, name, parameters=params, version=version, enable_cache=enable_cache)
    if no_wait:
        click.echo(json.dumps(run_, indent=2, default=str) if as_json else run_["run_id"])
        return
    state.err.print(f"run {run_['run_id']} ({run_['pipeline']} {run_['version']})", highlight=False)

    def changed(task: dict[str, Any]) -> None:
        if task["kind"] not in ("container", "importer") and task["state"] != "skipped":
            return
        mark, style = state_mark(task["state"])
        line = Text(f"{mark} {task['task_id']} {task['state']}", style=style)
        if task.get("attempts", 0) > 1:
            line.append(f" (attempt {task['attempts']})", style="dim")
        if task["state"] == "failed" and task.get("error"):
            line.append(f": {task['error']}", style="dim")
        state.err.print(line, highlight=False)

    done = api.pipelines_wait(target, run_["run_id"], on_change=changed)
    _print_run(state, done, as_json)


def _server_summary(run_: dict[str, Any]) -> Table:
    table = Table(title=f"run {run_['run_id']}", title_justify="left")
    table.add_column("task", overflow="fold")
    for column in ("state", "attempts", "exit", "seconds"):
        table.add_column(column, no_wrap=True)
    for task in run_["tasks"]:
        if task["kind"] not in ("container", "importer") and task["state"] != "skipped":
            continue
        mark, style = state_mark(task["state"])
        table.add_row(
            task["task_id"],
            Text(f"{mark} {task['state']}", style=style),
            str(task.get("attempts") or ""),
            "" if task.get("exit_code") is None else str(task["exit_code"]),
            "" if task.get("seconds") is None else f"{task['seconds']:.2f}",
        )
    return table


def _print_run(state: State, run_: dict[str, Any], as_json: bool) -> None:
    """The run's summary; a failed run exits non-zero with its failing task's exit code and log tail."""
    if as_json:
        click.echo(json.dumps(run_, indent=2, default=str))
    else:
        state.out.print(_server_summary(run_))
        for name, value in (run_.get("outputs") or {}).items():
            state.out.print(f"  output {name} = {value}", highlight=False)
        took = f" in {run_['finished'] - run_['created']:.2f}s" if run_.get("finished") else ""
        state.out.print(f"{run_['pipeline']}: {run_['state']}{took}", highlight=False)
    if run_["state"] != "failed":
        return
    failed = [t for t in run_["tasks"] if t["state"] == "failed" and t["kind"] in ("container", "importer")]
    if failed and failed[0].get("log_tail"):
        state.err.print(Text(f"--- last lines of the log of {failed[0]['task_id']}", style="dim"), highlight=False)
        state.err.print(Text(failed[0]["log_tail"]), highlight=False)
    raise api.ApplianceError(
        (failed[0].get("error") if failed else "") or run_.get("error") or f"run {run_['run_id']} failed",
        hint=f"the whole log: appliance pipelines logs {run_['run_id']} {failed[0]['task_id']}" if failed else None,
    )


@pipelines.command("upload")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=str))
@click.option("--name", metavar="NAME", help="The pipeline's name [default: its pipelineInfo name].")
@click.option("--version", metavar="V", help="Upload as version V of the pipeline (created if new) [default: v1].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@server_options
@pass_state
def upload(
    state: State, file: str, name: str | None, version: str | None, as_json: bool, server: str | None, token: str | None
) -> None:
    """Upload a compiled pipeline (FILE) to the cluster's pipeline server."""
    target = api.pipelines_server(state.load_config(), url=server, token=token)
    uploaded = api.pipelines_upload(target, file, name=name, version=version)
    if as_json:
        click.echo(json.dumps(uploaded, indent=2))
        return
    params = ", ".join(f"{k} ({v})" for k, v in uploaded.get("parameters", {}).items()) or "none"
    state.out.print(f"uploaded {uploaded['name']} version {uploaded['version']}; parameters: {params}", highlight=False)


@pipelines.command("list")
@click.option("--pipelines", "show_pipelines", is_flag=True, help="List uploaded pipelines instead of runs.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True, help="Runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_options
@pass_state
def list_(state: State, show_pipelines: bool, limit: int, as_json: bool, server: str | None, token: str | None) -> None:
    """The runs on the cluster's pipeline server, newest first (or the uploaded pipelines)."""
    import time  # noqa: PLC0415

    target = api.pipelines_server(state.load_config(), url=server, token=token)
    rows = api.pipelines_list(target) if show_pipelines else api.pipelines_runs(target, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if show_pipelines:
        table = Table("pipeline", "versions", "updated")
        for p in rows:
            updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p["updated"]))
            table.add_row(p["name"], str(p["versions"]), updated)
    else:
        table = Table("run", "pipeline", "state", "tasks", "created")
        for r in rows:
            mark, style = state_mark(r["state"])
            tasks = ", ".join(f"{n} {s}" for s, n in sorted(r["tasks"].items()))
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created"]))
            table.add_row(r["run_id"], f"{r['pipeline']} {r['version']}", Text(f"{mark} {r['state']}", style=style),
                          tasks, created)  # fmt: skip
    state.out.print(table)


@pipelines.command("get")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@server_options
@pass_state
def get(state: State, run_id: str, as_json: bool, server: str | None, token: str | None) -> None:
    """A run on the cluster with its tasks (state, attempts, exit code); exits 1 if it failed."""
    target = api.pipelines_server(state.load_config(), url=server, token=token)
    _print_run(state, api.pipelines_get_run(target, run_id), as_json)


@pipelines.command("logs")
@click.argument("run_id")
@click.argument("task", required=False)
@server_options
@pass_state
def logs(state: State, run_id: str, task: str | None, server: str | None, token: str | None) -> None:
    """A task's log (its last attempt); without TASK, the logs of the run's failed tasks (or all)."""
    target = api.pipelines_server(state.load_config(), url=server, token=token)
    if task:
        click.echo(api.pipelines_task_log(target, run_id, task), nl=False)
        return
    tasks = [t for t in api.pipelines_get_run(target, run_id)["tasks"] if t["kind"] == "container"]
    chosen = [t for t in tasks if t["state"] == "failed"] or tasks
    for t in chosen:
        state.err.print(Text(f"--- {t['task_id']} ({t['state']})", style="dim"), highlight=False)
        click.echo(api.pipelines_task_log(target, run_id, t["task_id"]), nl=False)


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

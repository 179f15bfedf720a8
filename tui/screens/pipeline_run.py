"""One pipeline run, live: its DAG's tasks with their states (polled every second in a worker until
the run ends), a task's log (`l`) and details (`d`/enter), and the run's output artifacts — opened
(URI, type, metadata, and the contents of small text-like ones) or downloaded (`g`).

Pushed by the pipelines screen (`tui.screens.pipelines`) when a run starts or one is chosen; esc
returns to it. Also the run form (`RunDialog`), built from the pipeline's declared input parameters.
States are words with marks (`✓ succeeded`, `✗ failed`, `• running`), never colour alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Label, Static

from appliance import api
from tui.screens.base import ResourceScreen
from tui.screens.dialogs import DIALOG_CSS, Field, FormDialog, FormScreen, TextViewer
from tui.widgets.resource_table import ResourceTable

POLL_INTERVAL = 1.0
MARKS = {
    "succeeded": "✓",
    "cached": "✓",
    "failed": "✗",
    "running": "•",
    "pending": "…",
    "skipped": "-",
}


def state_text(state: str) -> str:
    """`✓ succeeded`, `✗ failed`, `• running` (pure: unit-tested)."""
    mark = MARKS.get(state, "?")
    return f"{mark} {state}"


def task_row(task: dict[str, Any], now: float | None = None) -> tuple[str, ...]:
    """A task of GET /runs/ID as table cells: task, state, attempts, exit code, time — for a running
    task, the time since it started (pure: unit-tested)."""
    exit_code = task.get("exit_code")
    attempts = int(task.get("attempts") or 0)
    seconds = task.get("seconds")
    started = task.get("started")
    if seconds is None and task.get("state") == "running" and isinstance(started, int | float):
        seconds = max(0.0, (time.time() if now is None else now) - started)
    return (
        str(task["task_id"]),
        state_text(str(task["state"])),
        str(attempts) if attempts else "-",
        "-" if exit_code is None else str(exit_code),
        api.duration_text(seconds if isinstance(seconds, int | float) else None),
    )


def run_summary(run: dict[str, Any], now: float | None = None) -> str:
    """Two lines above the tasks: pipeline, version, state, duration; parameters, or the error (pure)."""
    version = f" {run['version']}" if run.get("version") else ""
    head = f"{run.get('pipeline', '')}{version}  {state_text(str(run['state']))}"
    head += f"  {api.duration_text(api.pipelines_run_seconds(run, now))}"
    if run.get("error"):
        return f"{head}\nerror: {run['error']}"
    params = ", ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in (run.get("parameters") or {}).items()
    )
    return f"{head}\nparameters: {params or '(defaults)'}"


class RunDialog(FormScreen):
    """The run form: one compact field per declared input parameter, labelled with its type and
    default (the default filled in); enter in the last field or Run starts it, esc cancels. Empty
    fields are left out, so the pipeline's defaults apply."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="RunDialog")
        + """
    RunDialog Static#title { text-style: bold; }
    RunDialog VerticalScroll { height: auto; max-height: 16; }
    RunDialog Input { height: 1; border: none; padding: 0 1; background: $boost; }
    RunDialog Input:focus { border: none; background: $accent 30%; }
    RunDialog Label.param { margin-top: 1; }
    """
    )

    def __init__(self, pipeline: str, parameters: Sequence[api.PipelineParameter]) -> None:
        super().__init__()
        self.pipeline, self.parameters = pipeline, list(parameters)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Run {self.pipeline}", id="title", markup=False)
            with VerticalScroll(id="params"):
                if not self.parameters:
                    yield Label("This pipeline declares no input parameters.", markup=False)
                for p in self.parameters:
                    yield Label(p.describe(), classes="param", markup=False)
                    yield Input(value=p.default_text, id=f"param-{p.name}")
            with Horizontal(classes="buttons"):
                yield Button("Run", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        inputs = list(self.query(Input))
        (inputs[0] if inputs else self.query_one("#ok", Button)).focus()

    def values(self) -> dict[str, str]:
        return {p.name: self.query_one(f"#param-{p.name}", Input).value.strip() for p in self.parameters}


class RunScreen(ResourceScreen):
    """A run's tasks and artifacts, polled until the run ends."""

    TITLE = "Pipeline run"
    NEEDS_CLUSTER = True

    DEFAULT_CSS = """
    RunScreen #summary { height: 2; padding: 0 1; }
    RunScreen #tasks { height: 1fr; }
    RunScreen #artifacts { height: 7; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "logs", "Logs"),
        Binding("d", "describe", "Describe"),
        Binding("g", "download", "Get artifact"),
        Binding("y", "yaml", "YAML", show=False),
    ]
    KEYS: ClassVar[list[tuple[str, str]]] = [
        ("l", "the selected task's log (its last attempt)"),
        ("d / enter", "on a task: its state, exit code, error, outputs and log tail"),
        ("d / enter", "on an artifact: its URI, type, metadata and (small text-like ones) contents"),
        ("g", "get: download the selected artifact to a local path"),
        ("y", "the whole run as YAML"),
        ("esc", "back to the pipelines and runs"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.run: dict[str, Any] | None = None
        self.tasks: dict[str, dict[str, Any]] = {}
        self.artifacts: dict[str, api.PipelineArtifact] = {}
        self.poll_timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("loading…", id="summary", markup=False)
        yield ResourceTable(("task", "state", "try", "exit", "time"), title="tasks", id="tasks")
        yield ResourceTable(("artifact", "type", "task"), title="artifacts", id="artifacts")

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = self.run_id
        self.query_one("#tasks", ResourceTable).focus()
        self.action_refresh()
        self.poll_timer = self.set_interval(POLL_INTERVAL, self.action_refresh)

    @property
    def tasks_table(self) -> ResourceTable:
        return self.query_one("#tasks", ResourceTable)

    @property
    def artifacts_table(self) -> ResourceTable:
        return self.query_one("#artifacts", ResourceTable)

    def action_refresh(self) -> None:
        backends, run_id = self.backends, self.run_id

        def fetch() -> tuple[dict[str, Any], list[api.PipelineArtifact]]:
            server = backends.pipeline_server()
            return api.pipelines_get_run(server, run_id), api.pipelines_artifacts(server, run_id)

        self.call_api(fetch, lambda got: self.show(*got), group="poll", failed=self.poll_failed)

    def poll_failed(self, exc: api.ApplianceError) -> None:
        """Said once in the summary (not a notification every second); polling goes on."""
        self.query_one("#summary", Static).update(f"{self.run_id}: cannot read the run\n{exc.message}")

    def show(self, run: dict[str, Any], artifacts: list[api.PipelineArtifact], now: float | None = None) -> None:
        self.run = run
        self.tasks = {str(t["task_id"]): t for t in run.get("tasks") or []}
        self.query_one("#summary", Static).update(run_summary(run, now))
        table = self.tasks_table
        counts: dict[str, int] = {}
        for t in self.tasks.values():
            counts[str(t["state"])] = counts.get(str(t["state"]), 0) + 1
        table.title = "tasks: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts else "tasks"
        table.set_rows((key, task_row(t, now)) for key, t in self.tasks.items())
        self.artifacts = {f"{a.task_id}:{a.name}": a for a in artifacts}
        self.artifacts_table.title = f"artifacts ({len(artifacts)}; enter opens, g downloads)"
        self.artifacts_table.set_rows((k, (a.name, a.kind, a.task_id)) for k, a in self.artifacts.items())
        if run["state"] in api.TERMINAL_RUN_STATES and self.poll_timer is not None:
            self.poll_timer.stop()
            self.poll_timer = None

    # --- tasks -----------------------------------------------------------------------------------

    def selected_task(self) -> dict[str, Any] | None:
        key = self.tasks_table.selected_key
        return self.tasks.get(key) if key else None

    def selected_artifact(self) -> api.PipelineArtifact | None:
        key = self.artifacts_table.selected_key
        return self.artifacts.get(key) if key else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "tasks":
            self.action_describe()
        elif event.data_table.id == "artifacts":
            self.open_artifact()

    def action_logs(self) -> None:
        task = self.selected_task()
        if task is None:
            self.notify("select a task first", severity="warning")
            return
        backends, run_id, task_id = self.backends, self.run_id, str(task["task_id"])
        self.call_api(
            lambda: api.pipelines_task_log(backends.pipeline_server(), run_id, task_id),
            lambda text: self.app.push_screen(TextViewer(f"log of {task_id} ({run_id})", text or "(empty)")),
            group="log",
        )

    def action_describe(self) -> None:
        if self.focused is self.artifacts_table:
            self.open_artifact()
            return
        task = self.selected_task()
        if task is None:
            return
        lines = [f"task: {task['task_id']} ({task.get('kind', '')})", f"state: {state_text(str(task['state']))}"]
        lines += [f"attempts: {task.get('attempts') or 0}", f"exit code: {task.get('exit_code')}"]
        lines.append(f"time: {api.duration_text(task.get('seconds'))}")
        if task.get("error"):
            lines.append(f"error: {task['error']}")
        outputs = (task.get("outputs") or {}).get("parameters") or {}
        lines += ["outputs:", *(f"  {k} = {v}" for k, v in outputs.items())] if outputs else []
        if task.get("log_tail"):
            lines += ["", "last lines of its log (l shows all of it):", str(task["log_tail"])]
        self.app.push_screen(TextViewer(f"task {task['task_id']}", "\n".join(lines)))

    def action_yaml(self) -> None:
        if self.run is not None:
            self.app.push_screen(TextViewer(f"run {self.run_id}", api.to_yaml(self.run)))

    # --- artifacts -------------------------------------------------------------------------------

    def open_artifact(self) -> None:
        artifact = self.selected_artifact()
        if artifact is None:
            return
        backends = self.backends
        self.call_api(
            lambda: api.pipelines_artifact_text(backends.pipeline_server(), artifact),
            lambda text: self.app.push_screen(TextViewer(f"artifact {artifact.name} of {artifact.task_id}", text)),
            group="artifact",
        )

    def action_download(self) -> None:
        artifact = self.selected_artifact()
        if artifact is None:
            self.notify("select an artifact first (tab moves to the artifacts)", severity="warning")
            return
        backends = self.backends

        def download(values: dict[str, str] | None) -> None:
            if not values or not values["dest"]:
                return
            dest = values["dest"]
            self.call_api(
                lambda: api.pipelines_download_artifact(backends.pipeline_server(), artifact, dest),
                lambda path: self.notify(f"saved {artifact.name} to {path}"),
                group="download",
                exclusive=False,
            )

        field = Field("dest", "save to (a file, or a directory)", value=str(Path.cwd() / artifact.name))
        self.app.push_screen(FormDialog(f"Download {artifact.uri}", [field], ok="Download"), download)

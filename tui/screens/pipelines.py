"""Pipelines: the pipeline server's uploaded pipelines and its runs — upload a compiled pipeline, run
one with parameters (a form built from its declared inputs), open a run to watch its tasks live.

Top: the pipelines (versions, last upload); below: the runs, newest first, with their state, duration
and task counts, refreshed every few seconds. The server is `Backends.pipeline_server()`: the one the
command line gave, else the cluster's behind the gateway with its token, found as the CLI finds it.
A run's detail is `tui.screens.pipeline_run.RunScreen`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import DataTable, Static

from appliance import api
from tui.screens.base import ResourceScreen
from tui.screens.dialogs import Field, FormDialog, TextViewer
from tui.screens.pipeline_run import MARKS, RunDialog, RunScreen, run_summary, state_text
from tui.widgets.resource_table import ResourceTable

REFRESH_INTERVAL = 3.0
HINT = "u: upload  enter/n: run the pipeline  enter on a run: watch it  l: its log"


def task_counts(counts: dict[str, int]) -> str:
    """`✓3 •1 ✗1` from a run's task counts by state (pure: unit-tested)."""
    order = ("succeeded", "cached", "running", "pending", "failed", "skipped")
    states = sorted(counts, key=lambda s: order.index(s) if s in order else len(order))
    return " ".join(f"{MARKS.get(s, '?')}{counts[s]}" for s in states if counts[s]) or "-"


def run_row(run: dict[str, Any], now: float | None = None) -> tuple[str, ...]:
    """A run of GET /runs as table cells: run, state, duration, tasks (pure: unit-tested)."""
    return (
        str(run["run_id"]),
        state_text(str(run["state"])),
        api.duration_text(api.pipelines_run_seconds(run, now)),
        task_counts(dict(run.get("tasks") or {})),
    )


class PipelinesScreen(ResourceScreen):
    NAME = "pipelines"
    ALIASES = ("pipeline", "runs", "pl", "dsp", "kfp")
    TITLE = "Pipelines"
    SUMMARY = "upload and run pipelines; watch their tasks, logs, artifacts"
    NEEDS_CLUSTER = True

    DEFAULT_CSS = """
    PipelinesScreen #pipelines { height: 8; }
    PipelinesScreen #runs { height: 1fr; }
    PipelinesScreen #status { height: 1; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "upload", "Upload"),
        Binding("n", "run", "Run"),
        Binding("l", "logs", "Logs"),
        Binding("d", "describe", "Describe"),
        Binding("y", "yaml", "YAML", show=False),
    ]
    KEYS: ClassVar[list[tuple[str, str]]] = [
        ("u", "upload a compiled pipeline (YAML from kfp's compiler); a new version when the name exists"),
        ("n / enter", "on a pipeline: the run form (its parameters, with types and defaults), then run it"),
        ("enter", "on a run: its tasks live, their logs and the run's artifacts"),
        ("l", "on a run: the log of its failed task (or of its last task)"),
        ("d / y", "describe the pipeline (versions, parameters) or the run / the run as YAML"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.refresh_timer: Timer | None = None
        self.server_problem = False  # the status line says the server does not answer

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(("pipeline", "versions", "updated"), title="pipelines", id="pipelines")
        yield ResourceTable(("run", "state", "duration", "tasks"), title="runs", id="runs")
        yield Static("", id="status", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.action_refresh()
        self.refresh_timer = self.set_interval(REFRESH_INTERVAL, self.action_refresh)

    @property
    def pipelines_table(self) -> ResourceTable:
        return self.query_one("#pipelines", ResourceTable)

    @property
    def runs_table(self) -> ResourceTable:
        return self.query_one("#runs", ResourceTable)

    def say(self, text: str) -> None:
        """The one-line status under the lists (upload results, validation errors, hints)."""
        self.query_one("#status", Static).update(text.splitlines()[0] if text else "")

    def server_known(self) -> bool:
        return (
            self.backends.pipelines is not None
            or bool(os.environ.get(api.PIPELINES_URL_ENV))
            or self.appliance.cluster_known_up
        )

    def action_refresh(self) -> None:
        if not self.server_known():
            self.say("Pipelines run on the cluster's pipeline server; no cluster answers yet (:overview installs it)")
            self.server_problem = True  # replaced by the hint once the server answers
            return
        backends = self.backends

        def fetch() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            server = backends.pipeline_server()
            return api.pipelines_list(server), api.pipelines_runs(server)

        self.call_api(fetch, lambda got: self.show(*got), group="list", failed=self.unreachable)

    def unreachable(self, exc: api.ApplianceError) -> None:
        table = self.pipelines_table
        table.title = table.border_title = "pipelines: the server does not answer (r retries)"
        self.say(f"✗ {exc.message}")
        self.server_problem = True

    def show(self, pipelines: list[dict[str, Any]], runs: list[dict[str, Any]], now: float | None = None) -> None:
        self.pipelines = {str(p["name"]): p for p in pipelines}
        table = self.pipelines_table
        table.title = f"pipelines ({len(pipelines)})"
        table.set_rows(
            (name, (name, str(p.get("versions", "")), when(p.get("updated")))) for name, p in self.pipelines.items()
        )
        self.runs = {str(r["run_id"]): r for r in runs}
        self.runs_table.title = f"runs ({len(runs)}, newest first)"
        self.runs_table.set_rows((key, run_row(r, now)) for key, r in self.runs.items())
        if self.server_problem or not self.query_one("#status", Static).content:  # the server answers again
            self.server_problem = False
            self.say(HINT if pipelines else "u uploads a compiled pipeline (kfp.compiler.Compiler().compile(...))")
        if self.focused is None:
            table.focus()

    # --- upload ----------------------------------------------------------------------------------

    def action_upload(self) -> None:
        def upload(values: dict[str, str] | None) -> None:
            if not values or not values["path"]:
                return
            path = Path(values["path"]).expanduser()
            name, version = values["name"] or None, values["version"] or None
            backends, known = self.backends, dict(self.pipelines)

            def run() -> dict[str, Any]:
                chosen = name or api.pipelines_validate(path)  # a bad file fails here, before the server
                new_version = version
                if new_version is None and chosen in known:  # uploaded before: this is its next version
                    new_version = f"v{int(known[chosen].get('versions') or 0) + 1}"
                return api.pipelines_upload(backends.pipeline_server(), path, name=chosen, version=new_version)

            self.say(f"uploading {path.name}…")
            self.call_api(run, self.uploaded, group="upload", failed=self.upload_failed)

        fields = [
            Field("path", "compiled pipeline (YAML from kfp.compiler)", placeholder="~/pipelines/train.yaml"),
            Field("name", "pipeline name (empty: the name in the file)"),
            Field("version", "version (empty: v1, or the next one when the pipeline exists)"),
        ]
        self.app.push_screen(FormDialog("Upload a pipeline", fields, ok="Upload"), upload)

    def uploaded(self, result: dict[str, Any]) -> None:
        params = ", ".join(f"{k} ({v})" for k, v in (result.get("parameters") or {}).items()) or "none"
        self.say(f"✓ uploaded {result['name']} {result['version']}; parameters: {params}")
        self.action_refresh()
        self.pipelines_table.select_key(str(result["name"]))

    def upload_failed(self, exc: api.ApplianceError) -> None:
        self.say(f"✗ upload failed: {exc.message}")
        self.fail(exc)

    # --- run -------------------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is None:
            return
        if event.data_table.id == "pipelines":
            self.run_form(str(key))
        elif event.data_table.id == "runs":
            self.app.push_screen(RunScreen(str(key)))

    def action_run(self) -> None:
        name = self.pipelines_table.selected_key
        if name is None:
            self.notify("no pipeline to run: u uploads one", severity="warning")
            return
        self.run_form(name)

    def run_form(self, pipeline: str) -> None:
        backends = self.backends

        def ask(parameters: list[api.PipelineParameter]) -> None:
            def start(values: dict[str, str] | None) -> None:
                if values is None:
                    return
                missing = [p.name for p in parameters if p.required and not values.get(p.name)]
                if missing:
                    self.say(f"✗ not run: {', '.join(missing)} needs a value")
                    return
                given = {k: v for k, v in values.items() if v}
                self.call_api(lambda: api.pipelines_create_run(backends.pipeline_server(), pipeline, parameters=given),
                              self.started, group="create", failed=self.run_failed)  # fmt: skip

            self.app.push_screen(RunDialog(pipeline, parameters), start)

        self.call_api(lambda: api.pipelines_parameters(backends.pipeline_server(), pipeline), ask, group="params")

    def started(self, run: dict[str, Any]) -> None:
        self.say(f"• started {run['run_id']}")
        self.action_refresh()
        self.app.push_screen(RunScreen(str(run["run_id"])))

    def run_failed(self, exc: api.ApplianceError) -> None:
        self.say(f"✗ not run: {exc.message}")
        self.fail(exc)

    # --- logs, describe --------------------------------------------------------------------------

    def selected_run(self) -> str | None:
        return self.runs_table.selected_key

    def action_logs(self) -> None:
        run_id = self.selected_run()
        if run_id is None:
            self.notify("select a run first", severity="warning")
            return
        backends = self.backends

        def logs() -> str:
            server = backends.pipeline_server()
            run = api.pipelines_get_run(server, run_id)
            tasks = [t for t in run["tasks"] if t["state"] == "failed" and t.get("kind") != "dag"]
            tasks = tasks or [t for t in run["tasks"] if t.get("kind") != "dag"][-1:]
            parts = [f"--- {t['task_id']} ({t['state']})\n{api.pipelines_task_log(server, run_id, t['task_id'])}"
                     for t in tasks]  # fmt: skip
            return "\n".join(parts) or "(no task has run)"

        self.call_api(logs, lambda text: self.app.push_screen(TextViewer(f"logs of {run_id}", text)), group="log")

    def action_describe(self, as_yaml: bool = False) -> None:
        backends = self.backends
        if self.focused is self.pipelines_table:
            name = self.pipelines_table.selected_key
            if name is None:
                return

            def pipeline() -> str:
                server = backends.pipeline_server()
                params = api.pipelines_parameters(server, name)
                info = dict(self.pipelines.get(name) or {})
                lines = [f"pipeline: {name}", f"versions: {info.get('versions', '-')}",
                         f"updated: {when(info.get('updated'))}", "parameters (of the newest version):"]  # fmt: skip
                lines += [f"  {p.describe()}" for p in params] or ["  (none)"]
                return "\n".join(lines)

            self.call_api(pipeline, lambda text: self.app.push_screen(TextViewer(f"pipeline {name}", text)))
            return
        run_id = self.selected_run()
        if run_id is None:
            return

        def run() -> str:
            got = api.pipelines_get_run(backends.pipeline_server(), run_id)
            if as_yaml:
                return api.to_yaml(got)
            lines = [f"run: {run_id}", *run_summary(got).splitlines()]
            lines += ["tasks:", *(f"  {t['task_id']}: {state_text(str(t['state']))}" for t in got["tasks"])]
            return "\n".join(lines)

        self.call_api(run, lambda text: self.app.push_screen(TextViewer(f"run {run_id}", text)))

    def action_yaml(self) -> None:
        self.action_describe(as_yaml=True)


def when(value: object) -> str:
    """Epoch seconds as local `YYYY-MM-DD HH:MM`; `-` when missing."""
    if not isinstance(value, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(value))

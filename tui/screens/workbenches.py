"""Workbenches: the cluster's JupyterLab Notebooks (kubeflow.org/v1) — list, create (image, size,
GPU), start/stop, open (the URL with its token, copied to the clipboard), logs, describe, YAML,
delete. Needs a cluster; without one the list says so.

Rows refresh every few seconds, so a new or started workbench is seen going Starting → Running.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from appliance import api
from tui.screens.base import ResourceScreen
from tui.screens.dialogs import ConfirmDialog, Field, FormDialog, TextViewer
from tui.widgets.resource_table import ResourceTable

REFRESH_INTERVAL = 5.0


def row(w: api.Workbench) -> tuple[str, ...]:
    """A workbench as table cells (pure: unit-tested)."""
    size = " ".join(x for x in (w.cpu and f"{w.cpu} CPU", w.memory, w.gpu and f"{w.gpu} GPU") if x)
    return (w.namespace, w.name, w.state, size, w.image.rsplit("/", 1)[-1], w.message)


class WorkbenchesScreen(ResourceScreen):
    NAME = "workbenches"
    ALIASES = ("notebooks", "nb", "wb", "jupyter")
    TITLE = "Workbenches"
    SUMMARY = "JupyterLab workbenches: create, start/stop, open, logs (needs a cluster)"
    NEEDS_CLUSTER = True

    DEFAULT_CSS = """
    WorkbenchesScreen #hint { height: auto; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "create", "New"),
        Binding("s", "start_stop", "Start/stop"),
        Binding("o", "open", "Open"),
        Binding("l", "logs", "Logs"),
        Binding("d", "describe", "Describe", show=False),
        Binding("y", "yaml", "YAML", show=False),
        Binding("ctrl+d", "delete", "Delete", show=False),
    ]
    KEYS: ClassVar[list[tuple[str, str]]] = [
        ("n", "new workbench: project, name, image, size, GPUs"),
        ("s", "stop a running workbench / start a stopped one (its files stay)"),
        ("o", "open: show the URL with its token and copy it to the clipboard"),
        ("l / d / y", "logs of its pod / describe / the Notebook as YAML"),
        ("ctrl+d", "delete the workbench (its storage volume stays)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, api.Workbench] = {}

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(("project", "name", "state", "size", "image", "message"), title="workbenches", id="list")
        yield Static("", id="hint", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.action_refresh()
        self.set_interval(REFRESH_INTERVAL, self.action_refresh)

    @property
    def table(self) -> ResourceTable:
        return self.query_one("#list", ResourceTable)

    def action_refresh(self) -> None:
        if not self.appliance.cluster_known_up:
            self.query_one("#hint", Static).update(
                "Workbenches run in the cluster. No cluster answers yet: install it from the overview (:overview)."
            )
            return
        loaded = self.backends.loaded
        self.call_api(lambda: api.workbenches(loaded), self.show, group="list", failed=self.show_problem)

    def show(self, rows: list[api.Workbench]) -> None:
        self.rows = {f"{w.namespace}/{w.name}": w for w in rows}
        self.table.set_rows((key, row(w)) for key, w in self.rows.items())
        hint = "n: new workbench" if not rows else "o: open (URL with token)  s: start/stop  l: logs"
        self.query_one("#hint", Static).update(hint)

    def show_problem(self, exc: api.ApplianceError) -> None:
        self.query_one("#hint", Static).update(f"cannot list workbenches: {exc.message}")

    def selected(self) -> api.Workbench | None:
        key = self.table.selected_key
        return self.rows.get(key) if key else None

    def action_create(self) -> None:
        loaded = self.backends.loaded

        def create(values: dict[str, str] | None) -> None:
            if not values:
                return
            try:
                gpu = int(values["gpu"] or "0")
                api.workbench_manifest(values["project"], values["name"], image=values["image"],
                                       size=values["size"], gpu=gpu)  # fmt: skip
            except ValueError:
                self.notify(f"GPUs: {values['gpu']!r} is not a number", severity="error")
                return
            except api.ApplianceError as exc:
                self.fail(exc)
                return
            self.call_api(
                lambda: api.workbench_create(loaded, values["project"], values["name"], image=values["image"],
                                             size=values["size"], gpu=gpu),
                lambda w: self.notify(f"created {w.namespace}/{w.name}: {w.state}"),
            )  # fmt: skip

        fields = [
            Field("project", "project (a namespace; made if missing)", value=api.WORKBENCH_PROJECT),
            Field("name", "name", placeholder="my-workbench"),
            Field("image", "image", value=api.WORKBENCH_IMAGE),
            Field("size", "size", value="small", options=api.WORKBENCH_SIZES),
            Field("gpu", "GPUs (nvidia.com/gpu)", value="0"),
        ]
        self.app.push_screen(FormDialog("New workbench", fields, ok="Create"), create)

    def action_start_stop(self) -> None:
        w = self.selected()
        if w is None:
            return
        stop = w.state in ("Running", "Starting", "Failed")
        loaded = self.backends.loaded
        self.call_api(
            lambda: api.workbench_set_stopped(loaded, w.namespace, w.name, stop),
            lambda _: self.notify(f"{'stopping' if stop else 'starting'} {w.namespace}/{w.name}"),
        )

    def action_open(self) -> None:
        w = self.selected()
        if w is None:
            return
        loaded = self.backends.loaded

        def show(url: str) -> None:
            self.app.copy_to_clipboard(url)
            self.app.push_screen(TextViewer(f"open {w.namespace}/{w.name} (copied to the clipboard)", url))

        self.call_api(lambda: api.workbench_url(loaded, w.namespace, w.name), show)

    def action_logs(self) -> None:
        w = self.selected()
        if w is None:
            return
        loaded = self.backends.loaded
        self.call_api(
            lambda: api.workbench_logs(loaded, w.namespace, w.name),
            lambda text: self.app.push_screen(TextViewer(f"logs {w.namespace}/{w.name}", text)),
        )

    def action_describe(self, as_yaml: bool = False) -> None:
        w = self.selected()
        if w is None:
            return
        loaded = self.backends.loaded

        def text() -> str:
            obj = api.workbench_object(loaded, w.namespace, w.name)
            if as_yaml:
                return api.to_yaml(obj)
            lines = [f"{k}: {v}" for k, v in w.as_dict().items()]
            conditions = (obj.get("status") or {}).get("conditions") or []
            lines += ["conditions:"] + [
                f"  {c.get('type')}={c.get('status')} {c.get('reason', '')} {c.get('message', '')}".rstrip()
                for c in conditions
            ]
            return "\n".join(lines)

        self.call_api(text, lambda t: self.app.push_screen(TextViewer(f"workbench {w.namespace}/{w.name}", t)))

    def action_yaml(self) -> None:
        self.action_describe(as_yaml=True)

    def action_delete(self) -> None:
        w = self.selected()
        if w is None:
            return
        loaded = self.backends.loaded

        def delete(yes: bool | None) -> None:
            if yes:
                self.call_api(
                    lambda: api.workbench_delete(loaded, w.namespace, w.name), lambda _: self.action_refresh()
                )

        self.app.push_screen(ConfirmDialog(f"Delete workbench {w.namespace}/{w.name}? (its volume stays)"), delete)

"""Overview and install: the first screen.

With no cluster it is a guided install: the `doctor` results first (every check with its status
word and hint), then a form — bundle, profile, components, GPU — and Install, which runs `api.up` in
a worker and shows each step live from the same progress events the CLI prints. With a cluster it
shows the cluster and node, the DataScienceCluster's phase and every component's condition as
words, the endpoints behind the gateway, and the MinIO credentials only when asked (`c`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from appliance import api
from tui.screens.base import ResourceScreen
from tui.widgets.resource_table import ResourceTable
from tui.widgets.steps import StepList

REFRESH_INTERVAL = 15.0
CHECK_WORD = {"pass": "✓ pass", "warn": "! warn", "fail": "✗ FAIL"}
CONDITION_WORD = {"True": "✓ ready", "False": "✗ not ready", "Unknown": "? unknown"}
PROFILES: dict[str, dict[str, bool]] = {
    "standard": dict(api.DEFAULT_COMPONENTS),
    "minimal": {name: name in ("workbenches", "kserve") for name in api.DEFAULT_COMPONENTS},
    "everything": dict.fromkeys(api.DEFAULT_COMPONENTS, True),
}


def component_row(item: dict[str, str]) -> tuple[str, str, str, str]:
    """A component's condition as words (pure: unit-tested): name, managementState, status, why."""
    word = "- off" if item["state"] == "Removed" else CONDITION_WORD.get(item["status"], item["status"])
    why = ": ".join(x for x in (item.get("reason", ""), item.get("message", "")) if x)
    return item["name"], item["state"], word, why


def nodes_table(status: api.ClusterStatus) -> Table:
    """The node's resources as `appliance status` shows them (a GPU column when a node has GPUs)."""
    gpus = any(node.get("allocatable_gpu") for node in status.nodes)
    table = Table(box=None, padding=(0, 2, 0, 0), title="node", title_justify="left")
    for column in ("node", "ready", "cpu", "memory", *(["gpu"] if gpus else []), "images", "usage"):
        table.add_column(column)
    usage = next(iter(status.resources.values()), "")
    for node in status.nodes:
        gpu = [str(node.get("allocatable_gpu") or "0")] if gpus else []
        table.add_row(Text(node["name"]), "yes" if node["ready"] else "NO", str(node["allocatable_cpu"]),
                      str(node["allocatable_memory"]), *gpu, str(node["images"]), Text(usage))  # fmt: skip
    return table


def endpoints_table(endpoints: list[dict[str, str]]) -> Table:
    """What `appliance status` lists as endpoints through the gateway: what, URL, how to authenticate."""
    table = Table(box=None, padding=(0, 2, 0, 0), show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("url")
    for item in endpoints:
        table.add_row(Text(item["name"]), Text(f"{item['url']}\n  auth: {item['auth']}", style=""))
    return table


class OverviewScreen(ResourceScreen):
    NAME = "overview"
    ALIASES = ("install", "status", "cluster", "home", "dsc")
    TITLE = "Overview"
    SUMMARY = "install the platform, or its health, endpoints and credentials"

    DEFAULT_CSS = """
    OverviewScreen #install, OverviewScreen #cluster { height: auto; }
    OverviewScreen #doctor { height: auto; max-height: 14; }
    OverviewScreen #components { height: auto; max-height: 16; }
    OverviewScreen #options { height: auto; }
    OverviewScreen #options > Vertical { width: 1fr; height: auto; }
    OverviewScreen #component-list { height: 9; }
    OverviewScreen .heading { text-style: bold; margin-top: 1; }
    OverviewScreen #credentials { display: none; }
    OverviewScreen #credentials.-shown { display: block; }
    OverviewScreen #install-button { margin: 1 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "credentials", "Credentials"),
        Binding("i", "install", "Install/up"),
    ]
    KEYS: ClassVar[list[tuple[str, str]]] = [
        ("i", "install (or re-assert) the platform with the options shown: `appliance up`"),
        ("c", "show / hide the MinIO credentials"),
        ("r", "refresh the status (and the doctor checks when there is no cluster)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status: api.ClusterStatus | None = None
        self.components_on: dict[str, bool] = dict(PROFILES["standard"])
        self.installing = False

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static("checking the cluster ...", id="summary", markup=False)
            yield StepList(id="steps")
            with Vertical(id="install"):
                yield Label("1. host checks (appliance doctor)", classes="heading")
                yield ResourceTable(("check", "status", "detail"), title="doctor", id="doctor")
                yield Label("2. what to install", classes="heading")
                with Horizontal(id="options"):
                    with Vertical():
                        yield Label("profile")
                        yield Select([(p, p) for p in PROFILES], value="standard", allow_blank=False, id="profile")
                        yield Label("GPU")
                        yield Select([(g, g) for g in ("auto", "on", "off")], value="auto", allow_blank=False, id="gpu")
                        yield Label("bundle to load first (empty: images built here)")
                        yield Input(placeholder="/path/to/odh-appliance.bundle", id="bundle")
                    with Vertical():
                        yield Label("components (enter or click: yes/no)")
                        yield ResourceTable(("component", "install"), id="component-list")
                yield Button("3. Install (i)", variant="primary", id="install-button")
            with Vertical(id="cluster"):
                yield ResourceTable(("component", "managementState", "status", "reason"), title="components",
                                    id="components")  # fmt: skip
                yield Static("", id="nodes")
                yield Label("endpoints", classes="heading")
                yield Static("", id="endpoints", markup=False)
                yield Static("", id="credentials", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#install").display = False
        self.query_one("#cluster").display = False
        self.show_components()
        self.action_refresh()
        self.set_interval(REFRESH_INTERVAL, self.refresh_health)

    def refresh_health(self) -> None:
        """Keep the health current while a cluster runs (not during an install: its steps show)."""
        if self.status is not None and self.status.running and not self.installing:
            self.action_refresh()

    def action_refresh(self) -> None:
        loaded = self.backends.loaded
        self.call_api(lambda: api.status(loaded), self.show_status, group="status", failed=self.no_status)

    # --- no cluster: doctor and the install form --------------------------------------------------

    def no_status(self, exc: api.ApplianceError) -> None:
        self.query_one("#summary", Static).update(f"cannot read the cluster's state: {exc.message}")
        self.show_install()

    def show_install(self) -> None:
        self.query_one("#install").display = True
        self.query_one("#cluster").display = False
        loaded = self.backends.loaded
        self.call_api(lambda: api.doctor(loaded), self.show_doctor, group="doctor")

    def show_doctor(self, report: api.DoctorReport) -> None:
        rows = []
        for r in report.results:
            detail = r.detail + (f" → {r.hint}" if r.hint and r.status != "pass" else "")
            rows.append((r.name, (r.name, CHECK_WORD[r.status], detail)))
        table = self.query_one("#doctor", ResourceTable)
        table.set_rows(rows)
        counts = report.counts()
        table.title = f"doctor: {counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed"
        table.border_title = table.title

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "profile" and isinstance(event.value, str):
            self.components_on = dict(PROFILES[event.value])
            self.show_components()

    def show_components(self) -> None:
        """The component choices as words (yes / no), not a coloured checkbox."""
        rows = ((name, (name, "yes" if on else "no")) for name, on in self.components_on.items())
        self.query_one("#component-list", ResourceTable).set_rows(rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        name = event.row_key.value
        if event.data_table.id == "component-list" and name in self.components_on:
            self.components_on[name] = not self.components_on[name]
            self.show_components()

    def install_flags(self) -> dict[str, Any]:
        """The form as configuration flags (the same settings `appliance --set ... up` takes)."""
        selected = {name for name, on in self.components_on.items() if on}
        gpu = self.query_one("#gpu", Select).value
        bundle = self.query_one("#bundle", Input).value.strip()
        return {
            "components": {name: name in selected for name in api.DEFAULT_COMPONENTS},
            "gpu": gpu if isinstance(gpu, str) else "auto",
            "bundle": bundle or None,
        }

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "install-button":
            self.action_install()

    def action_install(self) -> None:
        if self.installing:
            self.notify("an install is already running", severity="warning")
            return
        backends = self.backends
        try:
            flags = self.install_flags() if self.query_one("#install").display else {}
            loaded = api.load_config(config_file=backends.config_file, overrides=backends.overrides, flags=flags)
        except api.ApplianceError as exc:
            self.fail(exc)
            return
        steps = self.query_one("#steps", StepList)
        steps.reset()
        self.installing = True
        self.query_one("#install").display = False  # the steps take its place while `up` runs
        self.query_one("#summary", Static).update(
            "installing: each step below, live (the same steps as `appliance up`)"
        )

        bundle = flags.get("bundle")

        def up() -> object:
            prog = api.Progress(steps.subscriber())
            if bundle:  # as `appliance bundle load FILE` then `appliance up`
                api.bundle_load(loaded, bundle, prog)
            return api.up(loaded, prog)

        self.call_api(up, self.installed, group="install", failed=self.install_failed)

    def installed(self, kubeconfig: object) -> None:
        self.installing = False
        self.notify(f"the platform is up (kubeconfig {kubeconfig})")
        self.appliance.cluster_came_up()
        self.action_refresh()

    def install_failed(self, exc: api.ApplianceError) -> None:
        self.installing = False
        self.fail(exc)
        self.query_one("#install").display = True
        self.query_one("#summary", Static).update(Text(f"✗ install failed: {exc.message}", style="bold"))

    # --- a cluster: health, nodes, endpoints, credentials ----------------------------------------

    def show_status(self, status: api.ClusterStatus) -> None:
        self.status = status
        summary = self.query_one("#summary", Static)
        if not status.running:
            summary.update(f"No cluster {status.cluster!r} ({status.provider}: {status.state}). Install it below.")
            if not self.installing:
                self.show_install()
            return
        self.appliance.cluster_came_up()
        self.query_one("#install").display = False
        self.query_one("#cluster").display = True
        phase = status.platform_phase or "not installed (press i)"
        storage = status.object_storage or {}
        lines = [
            f"cluster {status.cluster} ({status.provider}): {status.state}, Kubernetes {status.server_version or '?'}",
            f"platform: DataScienceCluster {phase}; MinIO {CONDITION_WORD.get(storage.get('status', ''), '? unknown')}",
        ]
        if status.problem:
            lines.append(f"problem: {status.problem}")
        summary.update("\n".join(lines))
        self.query_one("#components", ResourceTable).set_rows(
            (item["name"], component_row(item)) for item in status.components
        )
        self.query_one("#nodes", Static).update(nodes_table(status))
        if status.endpoints:
            self.query_one("#endpoints", Static).update(endpoints_table(status.endpoints))
        else:
            self.query_one("#endpoints", Static).update("none from this host (no gateway port is mapped here)")

    def action_credentials(self) -> None:
        shown = self.query_one("#credentials", Static)
        if shown.has_class("-shown"):
            shown.remove_class("-shown")
            shown.update("")
            return
        loaded = self.backends.loaded

        def show(creds: dict[str, str]) -> None:
            shown.update(
                f"MinIO credentials (Secret {creds['secret']}; c hides them)\n"
                f"  access key  {creds['access_key']}\n  secret key  {creds['secret_key']}\n"
                f"  S3 endpoint from this host: {creds.get('gateway_endpoint', '(no gateway port here)')}\n"
                f"  S3 endpoint in the cluster: {creds['endpoint']}"
            )
            shown.add_class("-shown")

        self.call_api(lambda: api.credentials(loaded), show)

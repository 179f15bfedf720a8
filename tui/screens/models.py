"""Models: connect to a model server, or start one on this machine for a local .onnx or a model in
MinIO; "try it" with a form built from the model's Open Inference Protocol metadata; watch request
rate and latency read from the server's /metrics.

The form has one field per input, labelled with its name, datatype and shape (`?` for free
dimensions) and an example as placeholder; `api.model_parse_input` turns the text into a tensor
(JSON arrays or plain comma-separated values), so bad input is reported per field before anything is
sent. Local servers this screen starts are stopped when the app exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, Static

from appliance import api
from tui.screens.base import ResourceScreen
from tui.screens.dialogs import Field, FormDialog, TextViewer
from tui.widgets.resource_table import ResourceTable
from tui.widgets.steps import StepList

MODELS_BUCKET = "models"
METRICS_INTERVAL = 2.0
DEPLOYMENTS_INTERVAL = 5.0


def rates_text(rates: api.ModelRates | None, total: float | None = None) -> str:
    """The metrics line for one model (pure: unit-tested)."""
    if rates is None:
        return "requests: " + ("-" if total is None else f"{total:.0f} total") + " (rates after the next scrape)"
    latency = "-" if rates.mean_latency_ms is None else f"{rates.mean_latency_ms:.2f} ms"
    return (
        f"requests/s {rates.requests_per_s:.1f}  errors/s {rates.errors_per_s:.1f}\n"
        f"mean latency {latency}  total {rates.total_requests:.0f}"
    )


class ModelsScreen(ResourceScreen):
    NAME = "models"
    ALIASES = ("model", "serving", "isvc", "inferenceservices")
    TITLE = "Models"
    SUMMARY = "serve a model (local .onnx or from MinIO), try it, watch its metrics"
    AUTO_FOCUS = "#models"  # not the URL field: the screen's letter keys must work at once

    DEFAULT_CSS = """
    ModelsScreen #source { height: 3; }
    ModelsScreen #url { width: 1fr; }
    ModelsScreen #left { width: 34; }
    ModelsScreen #models { height: 1fr; }
    ModelsScreen #stored { height: 1fr; }
    ModelsScreen #rates { height: 2; padding: 0 1; }
    ModelsScreen #tryit { border: round $primary 50%; padding: 0 1; }
    ModelsScreen #form { height: auto; }
    ModelsScreen #form Input { height: 1; border: none; padding: 0 1; background: $boost; }
    ModelsScreen #form Input:focus { background: $accent 30%; }
    ModelsScreen #outputs { margin-top: 1; }
    ModelsScreen #serving { max-height: 3; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "serve_file", "Serve .onnx"),
        Binding("u", "upload", "Upload .onnx"),
        Binding("p", "deploy", "Deploy"),
        Binding("t", "try_deployed", "Try deployed", show=False),
        Binding("d", "describe", "Describe", show=False),
        Binding("y", "yaml", "YAML", show=False),
        Binding("l", "logs", "Logs", show=False),
    ]
    KEYS: ClassVar[list[tuple[str, str]]] = [
        ("enter", "on a model: build its try-it form; on a MinIO model: serve it here"),
        ("o", "serve a local .onnx file on this machine (a model server on 127.0.0.1)"),
        ("u", "upload a local .onnx into MinIO (models/<name>/model.onnx)"),
        ("p", "deploy the selected MinIO model to the cluster (an InferenceService); watch it become Ready"),
        ("t", "try the selected MinIO model's deployment (through the gateway, with its token)"),
        ("d / y", "the model's metadata / as YAML"),
        ("l", "the log of a model server this screen started"),
        ("enter in the last field", "send the inference (or the Send button)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.url: str | None = None
        self.token: str | None = None  # the Bearer token of a model behind the gateway
        self.model: str | None = None
        self.meta: api.ModelMetadata | None = None
        self.scrapes: list[api.MetricsScrape] = []
        self.stored: dict[str, api.StorageObject] = {}
        self.form_inputs: list[Input] = []  # the try-it fields of the current model, in input order
        self.form_generation = 0  # field ids are unique per form, so a rebuild never clashes with the old one
        self.focus_form = False  # set when a person picks a model: its form gets the cursor once built
        self.deployments: dict[str, api.Deployment] = {}  # by storage URI
        self.watching: set[tuple[str, str]] = set()  # deployed from here, not Ready yet

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="source"):
            yield Input(
                value=self.backends.model_server or "",
                placeholder="model server URL (http://127.0.0.1:8080), or o to serve a local .onnx",
                id="url",
            )
            yield Button("Connect", id="connect")
        with Horizontal():
            with Vertical(id="left"):
                yield ResourceTable(("model", "state"), title="served models", id="models")
                yield Static("", id="rates", markup=False)
                yield ResourceTable(("in MinIO: models/", "cluster"), title="MinIO models", id="stored")
            with VerticalScroll(id="tryit"):
                yield Static("Choose a model to try.", id="meta", markup=False)
                yield Vertical(id="form")
                yield Button("Send", id="send", variant="primary", disabled=True)
                yield Static("", id="outputs", markup=False)
        yield StepList(id="serving")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#tryit").border_title = "try it"
        self.set_interval(METRICS_INTERVAL, self.scrape)
        self.set_interval(DEPLOYMENTS_INTERVAL, self.load_deployments)
        if self.backends.model_server:
            self.connect(self.backends.model_server)
        self.load_stored()

    # --- the server and its models ---------------------------------------------------------------

    def connect(self, url: str, token: str | None = None) -> None:
        url = url.strip().rstrip("/")
        if not url:
            return
        if "://" not in url:
            url = "http://" + url
        self.url, self.token, self.scrapes = url, token, []
        self.query_one("#url", Input).value = url
        self.query_one("#rates", Static).update("")
        self.call_api(lambda: api.model_list(url, token=token), self.show_models, group="models")

    def action_refresh(self) -> None:
        if self.url:
            self.connect(self.url, self.token)
        self.load_stored()

    def show_models(self, models: list[dict[str, str]]) -> None:
        table = self.query_one("#models", ResourceTable)
        table.set_rows((m["name"], (m["name"], m.get("state", ""))) for m in models)
        if self.model is None and models:
            self.choose(models[0]["name"])
        table.focus()

    def choose(self, model: str) -> None:
        url, token = self.url, self.token
        if url is None:
            return
        self.model = model
        self.call_api(lambda: api.model_metadata(url, model, token=token), self.build_form, group="metadata")

    def build_form(self, meta: api.ModelMetadata) -> None:
        self.meta = meta
        outputs = ", ".join(o.describe() for o in meta.outputs)
        versions = ", ".join(meta.versions) or "-"
        self.query_one("#meta", Static).update(
            f"{meta.name} ({meta.platform}, versions {versions})\noutputs: {outputs}"
        )
        form = self.query_one("#form", Vertical)
        form.remove_children()
        self.form_generation += 1
        self.form_inputs = [
            Input(placeholder=api.model_example(spec), id=f"input-{self.form_generation}-{i}", classes="tensor")
            for i, spec in enumerate(meta.inputs)
        ]
        fields: list[Widget] = []
        for spec, field in zip(meta.inputs, self.form_inputs, strict=True):
            fields += [Label(spec.describe(), markup=False), field]
        form.mount_all(fields)
        self.query_one("#send", Button).disabled = False
        self.query_one("#outputs", Static).update("")
        if self.focus_form and self.form_inputs:  # the person picked this model: the cursor goes to its form
            self.focus_form = False
            self.call_after_refresh(self.form_inputs[0].focus)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is None:
            return
        if event.data_table.id == "models":
            self.focus_form = True  # the form is built when the metadata arrives (build_form focuses it)
            self.choose(str(key))
        elif event.data_table.id == "stored":
            self.serve_stored(str(key))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "connect":
            self.connect(self.query_one("#url", Input).value)
        elif event.button.id == "send":
            self.send()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "url":
            event.stop()
            self.connect(event.value)
        elif event.input in self.form_inputs:
            event.stop()
            if event.input is self.form_inputs[-1]:
                self.send()
            else:
                self.focus_next()
        else:
            super().on_input_submitted(event)

    # --- try it ----------------------------------------------------------------------------------

    def send(self) -> None:
        meta, url, token = self.meta, self.url, self.token
        if meta is None or url is None:
            return
        tensors = []
        try:
            for spec, field in zip(meta.inputs, self.form_inputs, strict=True):
                tensors.append(api.model_parse_input(spec, field.value))
        except api.ApplianceError as exc:
            self.fail(exc)
            return
        self.call_api(lambda: api.model_infer(url, meta.name, tensors, token=token), self.show_outputs, group="infer")

    def show_outputs(self, outputs: list[api.Tensor]) -> None:
        text = "\n".join(api.model_format_output(t) for t in outputs)
        self.query_one("#outputs", Static).update("outputs:\n" + text)
        self.scrape()

    # --- metrics ---------------------------------------------------------------------------------

    def scrape(self) -> None:
        url, token = self.url, self.token
        if url is None:
            return
        self.call_api(lambda: api.model_metrics(url, time.monotonic(), token=token), self.show_rates,
                      group="metrics", failed=self.no_metrics)  # fmt: skip

    def no_metrics(self, exc: api.ApplianceError) -> None:
        """A server without /metrics (or one that stopped answering): say so instead of numbers."""
        self.query_one("#rates", Static).update(f"metrics: not available ({exc.message})")

    def show_rates(self, scrape: api.MetricsScrape) -> None:
        self.scrapes = [*self.scrapes[-1:], scrape]
        model = self.model
        if model is None:
            return
        rates = None
        if len(self.scrapes) == 2:
            rates = next((r for r in api.model_rates(self.scrapes[0], scrape) if r.model == model), None)
        counters = scrape.models.get(model)
        self.query_one("#rates", Static).update(rates_text(rates, counters.requests if counters else None))

    # --- serving on this machine -----------------------------------------------------------------

    def load_stored(self) -> None:
        backends = self.backends

        def listing() -> list[api.StorageObject]:
            target = backends.storage_target()
            if MODELS_BUCKET not in {b.name for b in api.storage_buckets(target)}:
                return []
            return [o for o in api.storage_objects(target, MODELS_BUCKET) if o.key.endswith(".onnx")]

        self.call_api(listing, self.show_stored, group="stored", failed=self._no_storage)

    def _no_storage(self, exc: api.ApplianceError) -> None:
        self.query_one("#stored", ResourceTable).title = "MinIO models: not reachable"
        self.query_one("#stored", ResourceTable).set_rows([])

    def show_stored(self, objects: list[api.StorageObject]) -> None:
        self.stored = {o.key: o for o in objects}
        self.show_stored_rows()

    def show_stored_rows(self) -> None:
        def state(key: str) -> str:
            found = self.deployments.get(api.model_storage_uri(MODELS_BUCKET, key))
            return found.state if found else "-"

        self.query_one("#stored", ResourceTable).set_rows((k, (k, state(k))) for k in self.stored)

    # --- deployments on the cluster --------------------------------------------------------------

    def load_deployments(self) -> None:
        if not self.appliance.cluster_known_up:
            return
        loaded = self.backends.loaded
        self.call_api(lambda: api.model_deployments(loaded), self.show_deployments, group="deployments",
                      failed=lambda _exc: None)  # fmt: skip

    def show_deployments(self, deployments: list[api.Deployment]) -> None:
        self.deployments = {d.storage_uri: d for d in deployments}
        self.show_stored_rows()
        for d in deployments:
            if (d.namespace, d.name) in self.watching and d.state != "Loading":
                self.watching.discard((d.namespace, d.name))
                if d.ready:
                    self.notify(f"{d.namespace}/{d.name} is Ready; connecting through the gateway")
                    self.connect_deployment(d.namespace, d.name)
                else:
                    self.notify(f"{d.namespace}/{d.name}: {d.message}", severity="error")

    def connect_deployment(self, namespace: str, name: str) -> None:
        loaded = self.backends.loaded

        def connect(endpoint: tuple[str, str | None]) -> None:
            self.model = None
            self.connect(*endpoint)

        self.call_api(lambda: api.model_endpoint(loaded, namespace, name), connect)

    def action_try_deployed(self) -> None:
        key = self.query_one("#stored", ResourceTable).selected_key
        found = self.deployments.get(api.model_storage_uri(MODELS_BUCKET, key)) if key else None
        if found is None:
            self.notify("the selected MinIO model is not deployed (p deploys it)", severity="warning")
            return
        self.connect_deployment(found.namespace, found.name)

    def action_deploy(self) -> None:
        key = self.query_one("#stored", ResourceTable).selected_key
        if key is None:
            self.notify("select a model in MinIO first (u uploads one)", severity="warning")
            return
        if not self.appliance.cluster_known_up:
            self.notify("deploying needs a cluster: install it from the overview (:overview)", severity="warning")
            return
        uri = api.model_storage_uri(MODELS_BUCKET, key)
        loaded = self.backends.loaded

        def deploy(values: dict[str, str] | None) -> None:
            if not values or not values["name"]:
                return
            project, name = values["project"], values["name"]

            def done(_: object) -> None:
                self.watching.add((project, name))
                self.notify(f"deploying {uri} as {project}/{name}; the MinIO list shows its state")
                self.load_deployments()

            self.call_api(lambda: api.model_deploy(loaded, project, name, uri), done)

        fields = [
            Field("project", "project (a namespace; made if missing)", value="models"),
            Field("name", "deployment name", value=key.split("/")[0].removesuffix(".onnx").lower()),
        ]
        self.app.push_screen(FormDialog(f"Deploy {uri} to the cluster", fields, ok="Deploy"), deploy)

    def action_logs(self) -> None:
        server = next((s for s in self.appliance.local_servers if s.url == self.url), None)
        if server is None:
            self.notify("logs are shown for model servers started here (o, or enter on a MinIO model)")
            return
        self.app.push_screen(TextViewer(f"log of {server.model} ({server.url})", server.output() or "(empty)"))

    def serve_started(self, server: api.LocalModelServer) -> None:
        self.appliance.adopt_server(server)
        self.notify(f"serving {server.model} at {server.url}")
        self.model = None
        self.connect(server.url)

    def _serve(self, title: str, start: Callable[[], api.LocalModelServer]) -> None:
        steps = self.query_one("#serving", StepList)
        steps.reset()

        def run() -> api.LocalModelServer:
            with api.Progress(steps.subscriber()).step(title) as step:
                server = start()
                step.update(server.url)
            return server

        self.call_api(run, self.serve_started, group="serve", exclusive=False)

    def action_serve_file(self) -> None:
        def serve(values: dict[str, str] | None) -> None:
            if not values or not values["path"]:
                return
            path = Path(values["path"]).expanduser()
            name = values["name"] or path.stem
            self._serve(f"serve {path.name} as {name}", lambda: api.serve_background(name, model_path=path))

        fields = [
            Field("path", "local .onnx file (or a model directory)", placeholder="~/models/iris.onnx"),
            Field("name", "serve it as (empty: the file's name)"),
        ]
        self.app.push_screen(FormDialog("Serve a local model on this machine", fields, ok="Serve"), serve)

    def serve_stored(self, key: str) -> None:
        backends = self.backends
        name = key.split("/")[0] if "/" in key else key.removesuffix(".onnx")
        self._serve(
            f"serve {MODELS_BUCKET}/{key} as {name}",
            lambda: api.serve_background(name, storage=backends.storage_target(), bucket=MODELS_BUCKET, key=key),
        )

    def action_upload(self) -> None:
        def upload(values: dict[str, str] | None) -> None:
            if not values or not values["path"]:
                return
            path = Path(values["path"]).expanduser()
            key = f"{values['name'] or path.stem}/model.onnx"
            steps, backends = self.query_one("#serving", StepList), self.backends
            steps.reset()

            def run() -> api.StorageObject:
                target = backends.storage_target()
                if MODELS_BUCKET not in {b.name for b in api.storage_buckets(target)}:
                    api.storage_make_bucket(target, MODELS_BUCKET)
                return api.storage_upload(target, MODELS_BUCKET, key, path, api.Progress(steps.subscriber()))

            self.call_api(run, lambda _obj: self.load_stored(), group="upload", exclusive=False)

        fields = [
            Field("path", "local .onnx file", placeholder="~/models/iris.onnx"),
            Field("name", "model name in MinIO (empty: the file's name)"),
        ]
        self.app.push_screen(FormDialog("Upload a model into MinIO", fields, ok="Upload"), upload)

    def action_describe(self, as_yaml: bool = False) -> None:
        meta = self.meta
        if meta is None:
            return
        data = {
            "name": meta.name,
            "platform": meta.platform,
            "versions": list(meta.versions),
            "server": self.url,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.outputs],
        }
        if as_yaml:
            text = api.to_yaml(data)
        else:
            lines = [f"model {meta.name} at {self.url}", f"platform: {meta.platform}", "inputs:"]
            lines += [f"  {t.describe()}" for t in meta.inputs] + ["outputs:"]
            lines += [f"  {t.describe()}" for t in meta.outputs]
            text = "\n".join(lines)
        self.app.push_screen(TextViewer(f"model {meta.name}", text))

    def action_yaml(self) -> None:
        self.action_describe(as_yaml=True)

"""Storage: MinIO's buckets and objects — list, filter, upload, download, preview, delete.

Left: buckets; right: the selected bucket's objects (every key, folders included in the name).
Transfers run in workers and report bytes through `appliance.progress` into a StepList. Talks to
the object store chosen by `Backends.storage_target()` (the cluster's MinIO behind the gateway, or
an explicit endpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable

from appliance import api
from tui.screens.base import ResourceScreen
from tui.screens.dialogs import ConfirmDialog, Field, FormDialog, TextViewer
from tui.widgets.resource_table import ResourceTable
from tui.widgets.steps import StepList


def human_size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000  # type: ignore[assignment]
    return f"{count} B"


def when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else ""


class StorageScreen(ResourceScreen):
    NAME = "storage"
    ALIASES = ("buckets", "s3", "minio", "objects")
    TITLE = "Storage"
    SUMMARY = "MinIO buckets and objects: upload, download, delete"

    DEFAULT_CSS = """
    StorageScreen #buckets { width: 26; }
    StorageScreen #transfers { max-height: 4; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_bucket", "New bucket"),
        Binding("u", "upload", "Upload"),
        Binding("g", "download", "Get"),
        Binding("d", "describe", "Describe"),
        Binding("y", "yaml", "YAML", show=False),
        Binding("ctrl+d", "delete", "Delete"),
    ]
    KEYS: ClassVar[list[tuple[str, str]]] = [
        ("enter", "open the bucket (objects on the right)"),
        ("n", "new bucket"),
        ("u", "upload a local file into the bucket"),
        ("g", "get: download the selected object"),
        ("d / y", "describe the object (size, date, first bytes) / as YAML"),
        ("ctrl+d", "delete the object, or the bucket when the bucket list has focus (must be empty)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.bucket: str | None = None
        self.objects: dict[str, api.StorageObject] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            yield ResourceTable(("bucket",), title="buckets", id="buckets")
            yield ResourceTable(("key", "size", "modified"), title="objects", id="objects")
        yield StepList(id="transfers")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_refresh()

    @property
    def buckets_table(self) -> ResourceTable:
        return self.query_one("#buckets", ResourceTable)

    @property
    def objects_table(self) -> ResourceTable:
        return self.query_one("#objects", ResourceTable)

    def action_refresh(self) -> None:
        backends = self.backends
        self.call_api(lambda: api.storage_buckets(backends.storage_target()), self.show_buckets, group="buckets",
                      failed=self.unreachable)  # fmt: skip

    def unreachable(self, exc: api.ApplianceError) -> None:
        self.fail(exc)
        self.buckets_table.title = "buckets: not reachable (r retries)"
        self.buckets_table.set_rows([])

    def show_buckets(self, buckets: list[api.StorageBucket]) -> None:
        table = self.buckets_table
        table.title = "buckets"
        table.set_rows((b.name, (b.name,)) for b in buckets)
        if self.bucket not in {b.name for b in buckets}:  # none chosen yet, or deleted meanwhile
            self.bucket = buckets[0].name if buckets else None
        if self.bucket is not None:
            table.select_key(self.bucket)
            self.load_objects()
        else:
            self.objects = {}
            self.objects_table.title = "objects (n creates a bucket)"
            self.objects_table.set_rows([])
        if self.focused is None:
            table.focus()

    def load_objects(self) -> None:
        bucket, backends = self.bucket, self.backends
        if bucket is None:
            return
        self.call_api(
            lambda: api.storage_objects(backends.storage_target(), bucket),
            lambda objects: self.show_objects(objects, bucket),
            group="objects",
        )

    def show_objects(self, objects: list[api.StorageObject], bucket: str | None = None) -> None:
        if bucket is not None and bucket != self.bucket:
            return  # the answer for a bucket chosen before (worker threads finish in any order)
        self.objects = {o.key: o for o in objects}
        table = self.objects_table
        table.title = f"{self.bucket} ({len(objects)} objects)"
        table.set_rows((o.key, (o.key, human_size(o.size), when(o.modified))) for o in objects)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "buckets" and event.row_key.value is not None:
            self.bucket = str(event.row_key.value)
            self.load_objects()
            self.objects_table.focus()
        elif event.data_table.id == "objects":
            self.action_describe()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "buckets" and event.row_key.value is not None:
            chosen = str(event.row_key.value)
            if chosen != self.bucket:
                self.bucket = chosen
                self.load_objects()

    # --- actions ---------------------------------------------------------------------------------

    def selected_object(self) -> api.StorageObject | None:
        key = self.objects_table.selected_key
        return self.objects.get(key) if key else None

    def action_new_bucket(self) -> None:
        def create(values: dict[str, str] | None) -> None:
            if not values or not values["name"]:
                return
            name, backends = values["name"], self.backends
            self.bucket = name
            self.call_api(lambda: api.storage_make_bucket(backends.storage_target(), name), self._changed)

        self.app.push_screen(FormDialog("New bucket", [Field("name", "bucket name", placeholder="my-data")]), create)

    def action_upload(self) -> None:
        if self.bucket is None:
            self.notify("choose or create a bucket first (n)", severity="warning")
            return
        bucket = self.bucket

        def upload(values: dict[str, str] | None) -> None:
            if not values or not values["path"]:
                return
            path = Path(values["path"]).expanduser()
            key = values["key"] or path.name
            self.transfer(lambda prog: api.storage_upload(self.backends.storage_target(), bucket, key, path, prog))

        fields = [
            Field("path", "local file", placeholder="~/data/train.csv"),
            Field("key", f"object key in {bucket} (empty: the file's name)", placeholder="folder/name.csv"),
        ]
        self.app.push_screen(FormDialog(f"Upload into {bucket}", fields, ok="Upload"), upload)

    def action_download(self) -> None:
        obj = self.selected_object()
        if obj is None:
            self.notify("select an object first", severity="warning")
            return

        def download(values: dict[str, str] | None) -> None:
            if not values or not values["dest"]:
                return
            dest = values["dest"]
            self.transfer(
                lambda prog: api.storage_download(self.backends.storage_target(), obj.bucket, obj.key, dest, prog)
            )

        field = Field("dest", "save to (a file, or a directory)", value=str(Path.cwd() / obj.name))
        self.app.push_screen(FormDialog(f"Download {obj.bucket}/{obj.key}", [field], ok="Download"), download)

    def transfer(self, run: Callable[[api.Progress], object]) -> None:
        steps = self.query_one("#transfers", StepList)
        steps.reset()

        def go() -> object:
            return run(api.Progress(steps.subscriber()))

        self.call_api(go, self._transferred, group="transfer", exclusive=False)

    def _transferred(self, result: object) -> None:
        self.notify(f"done: {result.key if isinstance(result, api.StorageObject) else result}")
        self._changed(None)

    def _changed(self, _: object) -> None:
        self.action_refresh()

    def action_delete(self) -> None:
        backends = self.backends
        if self.focused is self.buckets_table:
            bucket = self.buckets_table.selected_key
            if bucket is None:
                return

            def remove_bucket(yes: bool | None) -> None:
                if yes:
                    self.bucket = None
                    self.call_api(lambda: api.storage_remove_bucket(backends.storage_target(), bucket), self._changed)

            self.app.push_screen(ConfirmDialog(f"Delete the bucket {bucket}? (it must be empty)"), remove_bucket)
            return
        obj = self.selected_object()
        if obj is None:
            return

        def remove(yes: bool | None) -> None:
            if yes:
                self.call_api(lambda: api.storage_delete(backends.storage_target(), obj.bucket, obj.key), self._changed)

        self.app.push_screen(ConfirmDialog(f"Delete {obj.bucket}/{obj.key} ({human_size(obj.size)})?"), remove)

    def action_describe(self, as_yaml: bool = False) -> None:
        obj = self.selected_object()
        if obj is None:
            return
        backends = self.backends

        def describe() -> str:
            info = {"bucket": obj.bucket, "key": obj.key, "size": obj.size, "modified": when(obj.modified)}
            if as_yaml:
                return api.to_yaml(info)
            head = api.storage_preview(backends.storage_target(), obj.bucket, obj.key, 4096)
            lines = [f"{k}: {v}" for k, v in info.items()]
            if b"\0" in head:
                lines.append(f"\n(binary; first bytes: {head[:32].hex(' ')})")
            else:
                lines.append("\nfirst 4 kB:\n" + head.decode(errors="replace"))
            return "\n".join(lines)

        self.call_api(describe, lambda text: self.app.push_screen(TextViewer(f"{obj.bucket}/{obj.key}", text)))

    def action_yaml(self) -> None:
        self.action_describe(as_yaml=True)

"""ResourceScreen: what every top-level screen shares — the header, the lost-cluster banner, the `/`
filter bar, the footer, and `call_api`, which runs an `appliance.api` call in a thread worker.

An expected failure (`api.ApplianceError`) becomes an error notification with its hint; anything
else propagates and Textual shows its traceback (a bug). Subclasses set NAME (what `:` jumps to),
ALIASES, TITLE and SUMMARY (the help screen), and NEEDS_CLUSTER.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Input
from textual.worker import Worker

from appliance import api
from tui.widgets.banner import Banner
from tui.widgets.resource_table import ResourceTable

if TYPE_CHECKING:
    from tui.app import ApplianceApp
    from tui.backends import Backends

T = TypeVar("T")


def error_text(exc: api.ApplianceError) -> str:
    return exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")


class ResourceScreen(Screen[None]):
    NAME: ClassVar[str] = ""
    ALIASES: ClassVar[tuple[str, ...]] = ()
    TITLE: ClassVar[str] = ""
    SUMMARY: ClassVar[str] = ""
    NEEDS_CLUSTER: ClassVar[bool] = False
    KEYS: ClassVar[list[tuple[str, str]]] = []  # this screen's keys, for the help screen

    _filtered: ResourceTable | None = None  # the table the filter bar is filtering

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("r", "refresh", "Refresh"),
    ]

    @property
    def appliance(self) -> ApplianceApp:
        return self.app  # type: ignore[return-value]

    @property
    def backends(self) -> Backends:
        return self.appliance.backends

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield Banner(id="banner")
        yield from self.compose_body()
        yield Input(placeholder="filter: words to match, !word to hide (enter: keep, esc: clear)", id="filter")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.title = self.TITLE
        self.query_one("#filter", Input).display = False
        self.sync_banner()

    def on_screen_resume(self) -> None:
        self.sync_banner()

    def sync_banner(self) -> None:
        banner = self.query_one("#banner", Banner)
        text = self.appliance.banner_text
        if text:
            banner.show(text)
        else:
            banner.hide()

    # --- calling the api without freezing the UI -------------------------------------------------

    def fail(self, exc: api.ApplianceError) -> None:
        self.notify(error_text(exc), title="error", severity="error", timeout=10)

    def call_api(
        self,
        fn: Callable[[], T],
        then: Callable[[T], Any] | None = None,
        *,
        group: str = "api",
        exclusive: bool = True,
        failed: Callable[[api.ApplianceError], Any] | None = None,
    ) -> Worker[None]:
        """Run `fn` in a thread; `then(result)` or `failed(error)` run on the UI thread afterwards."""

        def job() -> None:
            try:
                result = fn()
            except api.ApplianceError as exc:
                self.app.call_from_thread(self._after, failed or self.fail, exc)
                return
            if then is not None:
                self.app.call_from_thread(self._after, then, result)

        return self.run_worker(job, thread=True, group=group, exclusive=exclusive, exit_on_error=True)

    def _after(self, callback: Callable[[Any], Any], value: Any) -> None:
        if self.is_attached:
            callback(value)

    # --- the filter bar --------------------------------------------------------------------------

    def filter_target(self) -> ResourceTable | None:
        focused = self.focused
        if isinstance(focused, ResourceTable):
            return focused
        tables = list(self.query(ResourceTable))
        return tables[0] if tables else None

    def action_filter(self) -> None:
        target = self.filter_target()
        if target is None:
            return
        self._filtered = target
        bar = self.query_one("#filter", Input)
        bar.value = target.filter_text
        bar.display = True
        bar.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and self._filtered is not None:
            self._filtered.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            self.close_filter(keep=True)

    def close_filter(self, *, keep: bool) -> bool:
        """Hide the filter bar (clearing the filter unless `keep`); False when it was not open."""
        bar = self.query_one("#filter", Input)
        if not bar.display:
            return False
        target = self._filtered
        bar.display = False
        if target is not None:
            if not keep:
                target.set_filter("")
            target.focus()
        return True

    def action_refresh(self) -> None:
        """Reload what the screen shows (subclasses)."""

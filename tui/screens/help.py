"""The `?` help screen: the global keys, the current screen's keys, and every screen you can jump to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GLOBAL_KEYS = [
    (":", "jump to a screen (overview, workbenches, models, pipelines, storage); :q quits"),
    ("/", "filter the list (words; !word hides)"),
    ("?", "this help"),
    ("esc", "back: close a dialog, clear the filter, previous screen"),
    ("r", "refresh"),
    ("l / d / y", "logs / describe / YAML of the selected row"),
    ("ctrl+d", "delete the selected row (asks first)"),
    ("tab", "next pane"),
    ("ctrl+q", "quit"),
]


def keys_table(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("what")
    for key, what in rows:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, screen_title: str, screen_keys: Sequence[tuple[str, str]], kinds: Sequence[tuple[str, str]]):
        super().__init__()
        self.screen_title, self.screen_keys, self.kinds = screen_title, list(screen_keys), list(kinds)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "help (esc closes)"
            yield Static(keys_table("everywhere", GLOBAL_KEYS))
            if self.screen_keys:
                yield Static(keys_table(f"on {self.screen_title}", self.screen_keys))
            yield Static(keys_table("screens (jump with :name)", self.kinds))

    def action_close(self) -> None:
        self.dismiss(None)

"""ResourceTable: a row-cursor DataTable that keeps every row and shows those matching a filter.

Used by every list screen (buckets, objects, models, workbenches). Rows have a string key (what the
screen acts on); `set_rows` keeps the cursor on the same key across refreshes, so a list that
updates every few seconds does not jump. The filter (`tui.filtering`) shows in the border title.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from tui import filtering


class ResourceTable(DataTable[Text]):
    DEFAULT_CSS = """
    ResourceTable {
        height: 1fr;
        border: round $primary 50%;
    }
    ResourceTable:focus {
        border: round $accent;
    }
    """

    def __init__(self, columns: Sequence[str], *, title: str = "", id: str | None = None) -> None:
        super().__init__(cursor_type="row", id=id)
        self.columns_spec = tuple(columns)
        self.title = title
        self.rows_all: list[tuple[str, tuple[str, ...]]] = []
        self.filter_text = ""
        self.border_title = title

    def on_mount(self) -> None:
        self.add_columns(*self.columns_spec)

    def set_rows(self, rows: Iterable[tuple[str, Sequence[str]]]) -> None:
        self.rows_all = [(key, tuple(str(c) for c in cells)) for key, cells in rows]
        self._show()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._show()

    def visible_keys(self) -> list[str]:
        return [key for key, cells in self.rows_all if filtering.matches(cells, self.filter_text)]

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        row_key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        return None if row_key.value is None else str(row_key.value)

    def select_key(self, key: str) -> None:
        try:
            self.move_cursor(row=self.get_row_index(key))
        except RowDoesNotExist:  # the row went away (or is filtered out): keep the cursor where it is
            return

    def _show(self) -> None:
        keep = self.selected_key
        self.clear()
        shown = 0
        for key, cells in self.rows_all:
            if filtering.matches(cells, self.filter_text):
                self.add_row(*(Text(cell) for cell in cells), key=key)  # text, never markup: keys have [ ]
                shown += 1
        title = self.title
        if self.filter_text:
            title += f" [filter: {self.filter_text}] {shown}/{len(self.rows_all)}"
        self.border_title = title
        if keep is not None:
            self.select_key(keep)

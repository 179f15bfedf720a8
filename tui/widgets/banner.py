"""Banner: one line across the top for a state that affects every screen (the cluster was lost).

Hidden unless it has something to say; the text starts with a word that says what it is, so it does
not rely on its colour.
"""

from __future__ import annotations

from textual.widgets import Static


class Banner(Static):
    DEFAULT_CSS = """
    Banner {
        height: auto;
        width: 1fr;
        padding: 0 1;
        background: $error;
        color: $text;
        text-style: bold;
        display: none;
    }
    Banner.-shown {
        display: block;
    }
    """

    def show(self, text: str) -> None:
        self.update(text)
        self.add_class("-shown")

    def hide(self) -> None:
        self.update("")
        self.remove_class("-shown")

    @property
    def shown(self) -> bool:
        return self.has_class("-shown")

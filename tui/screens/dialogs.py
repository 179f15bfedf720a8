"""Small modal screens shared by every list: confirm (ctrl-d), a form (create, upload, download),
a read-only text view (logs, describe, YAML) and the `:` jump prompt.

Each returns its result through `dismiss`, so callers use `push_screen(dialog, callback)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

DIALOG_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 76;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $accent;
    background: $surface;
    padding: 0 1;
}}
{name} Horizontal.buttons {{
    height: auto;
    align-horizontal: right;
}}
{name} Button {{
    margin-left: 1;
}}
"""


class ConfirmDialog(ModalScreen[bool]):
    """Yes/no; `y` or enter on Yes confirms, `n`/esc cancels."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Yes, delete (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


@dataclass(frozen=True)
class Field:
    """One form field: a text input, or a choice when `options` are given."""

    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    options: Sequence[str] = ()


class FormScreen(ModalScreen[dict[str, str] | None]):
    """What every form does: enter in the last input or the `ok` button submits `values()`; enter in
    another input moves on; esc or any other button cancels (None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def values(self) -> dict[str, str]:
        raise NotImplementedError

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self.dismiss(self.values())
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.values() if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FormDialog(FormScreen):
    """Labelled fields; enter in the last field or OK submits, esc cancels."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="FormDialog")
        + """
    FormDialog Label.field { margin-top: 1; }
    FormDialog Static#title { text-style: bold; }
    """
    )

    def __init__(self, title: str, fields: Sequence[Field], *, ok: str = "OK") -> None:
        super().__init__()
        self.form_title, self.fields, self.ok = title, list(fields), ok

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.form_title, id="title", markup=False)
            for f in self.fields:
                yield Label(f.label, classes="field")
                if f.options:
                    value = f.value if f.value in f.options else f.options[0]
                    yield Select([(o, o) for o in f.options], value=value, allow_blank=False, id=f"field-{f.name}")
                else:
                    yield Input(value=f.value, placeholder=f.placeholder, id=f"field-{f.name}")
            with Horizontal(classes="buttons"):
                yield Button(self.ok, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def values(self) -> dict[str, str]:
        result = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.name}")
            value = widget.value if isinstance(widget, Input | Select) else ""
            result[f.name] = "" if value is Select.BLANK else str(value).strip()
        return result


class TextViewer(ModalScreen[None]):
    """A read-only, scrollable, selectable text (logs, describe, YAML); esc or q closes it."""

    DEFAULT_CSS = """
    TextViewer { align: center middle; }
    TextViewer TextArea { width: 100%; height: 100%; border: thick $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.view_title, self.text = title, text

    def compose(self) -> ComposeResult:
        area = TextArea(self.text, read_only=True, soft_wrap=True, id="text")
        area.border_title = self.view_title
        area.border_subtitle = "esc: close"
        yield area

    def action_close(self) -> None:
        self.dismiss(None)


class JumpDialog(ModalScreen[str | None]):
    """The `:` prompt: type a resource kind (or its start) and enter; esc cancels."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="JumpDialog")
        + """
    JumpDialog > Vertical { width: 78; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, kinds: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.kinds = list(kinds)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(placeholder="jump to: " + ", ".join(k for k, _ in self.kinds), id="jump")
            yield Static("\n".join(f"{k:<12} {summary}" for k, summary in self.kinds), id="kinds", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)

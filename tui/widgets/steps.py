"""StepList: renders `appliance.progress` events live — the same events the CLI prints.

A long operation (`api.up`, an upload) runs in a thread worker with `api.Progress(steps.subscriber())`;
every event is posted to the widget (thread-safe) and the widget redraws one line per step:
`✓ title (1.2s): message`, a running step with its latest message or `3.1/10.0 MB`. Marks carry the
state, not colour alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import Static

from appliance import api

STYLE = {"done": "green", "failed": "bold red", "skipped": "dim", "running": "cyan"}


def step_line(event: api.StepEvent) -> Text:
    """One step as a line of text (pure: unit-tested)."""
    mark = api.STEP_MARK[event.state]
    line = Text(f"{mark} {event.title}", style=STYLE[event.state])
    if event.state == "running":
        if event.total and event.unit == "B":
            line.append(f"  {_mb(event.completed or 0)}/{_mb(event.total)} MB", style="bold")
        elif event.message:
            line.append(f"  {event.message[-70:]}", style="dim")
        return line
    line.append(f" ({event.elapsed:.1f}s)", style="dim")
    if event.message:
        line.append(f": {event.message}", style="" if event.state == "failed" else "dim")
    return line


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f}"


class StepList(Static):
    """The steps of one operation, oldest first."""

    DEFAULT_CSS = """
    StepList {
        height: auto;
        min-height: 1;
        padding: 0 1;
    }
    """

    @dataclass
    class Event(Message):
        """A progress event, carried from the worker thread to the widget."""

        event: api.StepEvent

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.steps: dict[int, api.StepEvent] = {}

    def subscriber(self) -> Callable[[api.StepEvent], None]:
        """A progress subscriber for `api.Progress(...)`, callable from any thread."""

        def post(event: api.StepEvent) -> None:
            self.post_message(StepList.Event(event))

        return post

    def reset(self) -> None:
        self.steps.clear()
        self.update("")

    def on_step_list_event(self, message: StepList.Event) -> None:
        message.stop()
        self.apply(message.event)

    def apply(self, event: api.StepEvent) -> None:
        self.steps[event.step_id] = event
        self.update(Text("\n").join(step_line(e) for _, e in sorted(self.steps.items())))

    @property
    def failed(self) -> bool:
        return any(e.state == "failed" for e in self.steps.values())

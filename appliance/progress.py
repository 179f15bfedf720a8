"""Progress events for long operations, shared by every front end.

An operation (an action, a build, the doctor) opens steps on a `Progress`; each step starts, may
report updates (a message, or `completed`/`total` units such as bytes), and ends done ✓ or failed ✗
with its elapsed time. Front ends subscribe: the CLI renders events with rich
(`appliance.cli.render`), the TUI turns them into widget updates. Events are plain frozen
dataclasses so they can cross threads and be recorded in tests.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

StepState = Literal["running", "done", "failed", "skipped"]
# The mark every front end shows for a step's state (never colour alone: DESIGN.md, issue #8).
MARK: dict[str, str] = {"done": "✓", "failed": "✗", "skipped": "-", "running": "•"}


@dataclass(frozen=True)
class StepEvent:
    """One change of one step: what every subscriber receives."""

    step_id: int
    title: str
    state: StepState
    message: str = ""
    completed: float | None = None
    total: float | None = None
    unit: str = ""
    elapsed: float = 0.0
    kind: Literal["start", "update", "end"] = "update"


Subscriber = Callable[[StepEvent], None]


@dataclass
class Step:
    """A handle on a running step; obtained from `Progress.step`."""

    progress: Progress
    step_id: int
    title: str
    started: float = field(default_factory=time.monotonic)
    state: StepState = "running"
    message: str = ""

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(
        self,
        message: str | None = None,
        *,
        completed: float | None = None,
        total: float | None = None,
        unit: str = "",
    ) -> None:
        """Report what the step is doing now, optionally how far along it is."""
        if message is not None:
            self.message = message
        self.progress.emit(self._event("update", completed=completed, total=total, unit=unit))

    def skip(self, message: str) -> None:
        """End the step as not needed (already done, nothing to do): `up` on a healthy cluster."""
        self._end("skipped", message)

    def _end(self, state: StepState, message: str | None = None) -> None:
        if self.state != "running":
            return
        self.state = state
        if message is not None:
            self.message = message
        self.progress.emit(self._event("end"))

    def _event(self, kind: Literal["start", "update", "end"], **extra: object) -> StepEvent:
        return StepEvent(
            step_id=self.step_id,
            title=self.title,
            state=self.state,
            message=self.message,
            elapsed=self.elapsed,
            kind=kind,
            **extra,  # type: ignore[arg-type]
        )


class Progress:
    """The event source of one long operation; thread-safe, any number of subscribers."""

    def __init__(self, *subscribers: Subscriber) -> None:
        self._subscribers: list[Subscriber] = list(subscribers)
        self._lock = threading.Lock()
        self._next_id = 0

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it again."""
        with self._lock:
            self._subscribers.append(subscriber)
        return lambda: self._unsubscribe(subscriber)

    def _unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(subscriber)

    def emit(self, event: StepEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(event)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        """Run a block as one step: ✓ when it returns, ✗ (and re-raise) when it raises."""
        with self._lock:
            self._next_id += 1
            step = Step(self, self._next_id, title)
        self.emit(step._event("start"))
        try:
            yield step
        except BaseException as exc:
            step._end("failed", str(exc) or type(exc).__name__)
            raise
        step._end("done")


class Recorder:
    """A subscriber that keeps every event; for tests and for replaying a finished operation."""

    def __init__(self) -> None:
        self.events: list[StepEvent] = []

    def __call__(self, event: StepEvent) -> None:
        self.events.append(event)

    def final_states(self) -> dict[str, StepState]:
        return {e.title: e.state for e in self.events if e.kind == "end"}

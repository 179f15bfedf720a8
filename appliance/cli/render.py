"""Rich renderings of what `appliance.api` returns: progress steps, the doctor table, config."""

from __future__ import annotations

from typing import Any

import rich.progress
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from appliance import api, progress

STATUS_STYLE = {"pass": ("✓ pass", "green"), "warn": ("! warn", "yellow"), "fail": ("✗ fail", "bold red")}
STEP_MARK = {  # the marks every front end shows (appliance.progress.MARK), with the CLI's colours
    "done": (progress.MARK["done"], "green"),
    "failed": (progress.MARK["failed"], "red"),
    "skipped": (progress.MARK["skipped"], "dim"),
    "running": (progress.MARK["running"], "cyan"),
}


def doctor_table(report: api.DoctorReport) -> Table:
    table = Table(title="odh-appliance doctor", title_justify="left", expand=False, show_lines=False)
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail")
    for result in report.results:
        label, style = STATUS_STYLE[result.status]
        detail = Text(result.detail)
        if result.hint:
            detail.append("\n→ " + result.hint, style="dim")
        table.add_row(result.name, Text(label, style=style), detail)
    return table


def doctor_summary(report: api.DoctorReport) -> Text:
    counts = report.counts()
    return Text.assemble(
        (f"{counts['pass']} passed", "green"),
        ", ",
        (f"{counts['warn']} warnings", "yellow" if counts["warn"] else ""),
        ", ",
        (f"{counts['fail']} failed", "bold red" if counts["fail"] else ""),
    )


def sources_table(data: dict[str, Any]) -> Table:
    table = Table(title="settings not at their default", title_justify="left")
    table.add_column("setting", style="bold")
    table.add_column("source")
    for key, source in sorted(data["sources"].items()):
        table.add_row(key, source)
    return table


class StepPrinter:
    """A progress subscriber that prints one line per finished step: `✓ title (1.2s)`."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: progress.StepEvent) -> None:
        if event.kind == "start":
            self.console.print(Text(f"• {event.title} ...", style="cyan"))
        elif event.kind == "end":
            mark, style = STEP_MARK[event.state]
            line = Text(f"{mark} {event.title}", style=style) + Text(f" ({event.elapsed:.1f}s)", style="dim")
            if event.message and event.state != "done":
                line.append(f": {event.message}")
            self.console.print(line)


class LiveSteps:
    """A progress subscriber with live bars: one line per running step, with bytes, speed and ETA for
    steps that report byte counts (`unit="B"`), and the step's latest message otherwise. Finished steps
    are printed as `✓ title (1.2s)` lines above. On a console that is not a terminal (CI, pipes) only
    those finished lines appear. Use as a context manager around the operation.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars = rich.progress.Progress(
            rich.progress.SpinnerColumn(),
            rich.progress.TextColumn("{task.description}"),
            _BytesColumn(),
            rich.progress.TextColumn("[dim]{task.fields[message]}", markup=True),
            console=console,
            transient=True,
            refresh_per_second=8,
        )
        self._tasks: dict[int, rich.progress.TaskID] = {}

    def __enter__(self) -> LiveSteps:
        if self.console.is_terminal:
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.console.is_terminal:
            self._bars.stop()

    def __call__(self, event: progress.StepEvent) -> None:
        if event.kind == "start":
            self._tasks[event.step_id] = self._bars.add_task(event.title, total=None, message="", unit="")
            return
        task = self._tasks.get(event.step_id)
        if task is None:
            return
        if event.kind == "update":
            fields: dict[str, Any] = {"message": escape(event.message[-80:]), "unit": event.unit}
            if event.total is not None:
                fields["total"] = event.total
            if event.completed is not None:
                fields["completed"] = event.completed
            self._bars.update(task, **fields)
            return
        self._bars.remove_task(task)
        del self._tasks[event.step_id]
        if self.console.is_terminal:
            self._bars.refresh()  # so the finished step's bar is not drawn again under its ✓ line
        mark, style = STEP_MARK[event.state]
        line = Text(f"{mark} {event.title}", style=style) + Text(f" ({event.elapsed:.1f}s)", style="dim")
        if event.message:
            line.append(f": {event.message}", style="" if event.state == "failed" else "dim")
        self._bars.console.print(line, soft_wrap=True)


class _BytesColumn(rich.progress.ProgressColumn):
    """A bar with `done/total MB`, speed and time left, for steps that count bytes; nothing otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self._bar = rich.progress.BarColumn(bar_width=30)
        self._size = rich.progress.DownloadColumn()
        self._speed = rich.progress.TransferSpeedColumn()
        self._eta = rich.progress.TimeRemainingColumn()

    def render(self, task: rich.progress.Task) -> RenderableType:
        if task.fields.get("unit") != "B" or not task.total:
            return Text("")
        return _row(self._bar.render(task), self._size.render(task), self._speed.render(task), self._eta.render(task))


def _row(*cells: RenderableType) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_row(*cells)
    return grid


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"

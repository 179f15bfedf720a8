"""Rich renderings of what `appliance.api` returns: progress steps, the doctor table, config."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from appliance import api, progress

STATUS_STYLE = {"pass": ("✓ pass", "green"), "warn": ("! warn", "yellow"), "fail": ("✗ fail", "bold red")}
STEP_MARK = {
    "done": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("-", "dim"),
    "running": ("•", "cyan"),
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

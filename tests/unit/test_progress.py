"""Progress steps: start, updates, done ✓ / failed ✗ with elapsed time, fanned out to subscribers."""

from __future__ import annotations

import pytest
from rich.console import Console

from appliance import progress
from appliance.cli import render


def test_step_events_in_order() -> None:
    recorder = progress.Recorder()
    prog = progress.Progress(recorder)
    with prog.step("download") as step:
        step.update("halfway", completed=50, total=100, unit="bytes")
    kinds = [(e.kind, e.state) for e in recorder.events]
    assert kinds == [("start", "running"), ("update", "running"), ("end", "done")]
    update = recorder.events[1]
    assert (update.completed, update.total, update.unit, update.message) == (50, 100, "bytes", "halfway")
    assert recorder.events[-1].elapsed >= 0


def test_failed_step_reraises_and_reports() -> None:
    recorder = progress.Recorder()
    prog = progress.Progress(recorder)
    with pytest.raises(RuntimeError, match="boom"), prog.step("explode"):
        raise RuntimeError("boom")
    end = recorder.events[-1]
    assert (end.kind, end.state, end.message) == ("end", "failed", "boom")


def test_skip_and_unsubscribe() -> None:
    first, second = progress.Recorder(), progress.Recorder()
    prog = progress.Progress(first)
    remove = prog.subscribe(second)
    with prog.step("cluster") as step:
        step.skip("already running")
    remove()
    with prog.step("images"):
        pass
    assert first.final_states() == {"cluster": "skipped", "images": "done"}
    assert second.final_states() == {"cluster": "skipped"}


def test_step_ids_are_unique() -> None:
    recorder = progress.Recorder()
    prog = progress.Progress(recorder)
    for title in ("a", "b", "c"):
        with prog.step(title):
            pass
    assert len({e.step_id for e in recorder.events}) == 3


def test_cli_renders_done_and_failed_steps() -> None:
    console = Console(record=True, width=120, color_system=None)
    prog = progress.Progress(render.StepPrinter(console))
    with prog.step("write kubeconfig"):
        pass
    with pytest.raises(ValueError), prog.step("load images"):
        raise ValueError("image missing")
    lines = console.export_text().splitlines()
    assert lines[0] == "• write kubeconfig ..."
    assert lines[1].startswith("✓ write kubeconfig (")
    assert lines[3].startswith("✗ load images (") and lines[3].endswith(": image missing")

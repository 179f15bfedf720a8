"""The CLI's live progress renderer: finished steps as ✓/✗/- lines, byte bars only on a terminal."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from appliance import progress
from appliance.cli import render


def run_steps(console: Console) -> None:
    with render.LiveSteps(console) as live:
        prog = progress.Progress(live)
        with prog.step("save 2 images") as step:
            for done in range(0, 10_000_001, 1_000_000):
                step.update("docker save", completed=done, total=10_000_000, unit="B")
            time.sleep(0.3)  # let the live display (8 refreshes a second) draw the bar once
        with prog.step("image minio") as step:
            step.skip("up to date")
        with pytest.raises(RuntimeError), prog.step("pack x.odhbundle"):
            raise RuntimeError("disk full")


def test_finished_steps_are_printed_once_each_without_a_terminal() -> None:
    out = io.StringIO()
    run_steps(Console(file=out, force_terminal=False, width=120))
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert len(lines) == 3
    assert lines[0].startswith("✓ save 2 images (") and lines[0].endswith("): docker save")
    assert lines[1].startswith("- image minio (") and lines[1].endswith("): up to date")
    assert lines[2].startswith("✗ pack x.odhbundle (") and lines[2].endswith("): disk full")
    assert "MB" not in out.getvalue()  # no bars in logs


def test_a_terminal_gets_byte_bars_and_the_same_final_lines() -> None:
    out = io.StringIO()
    run_steps(Console(file=out, force_terminal=True, width=120, color_system=None))
    text = out.getvalue()
    assert "✓ save 2 images" in text and "✗ pack x.odhbundle" in text and "- image minio" in text
    assert "10.0/10.0 MB" in text
    assert text.count("✓ save 2 images") == 1


def test_human_bytes() -> None:
    assert render.human_bytes(512) == "512 B"
    assert render.human_bytes(1_500_000) == "1.5 MB"
    assert render.human_bytes(546_538_376) == "546.5 MB"
    assert render.human_bytes(1.9e9) == "1.9 GB"
    assert render.human_bytes(3e12) == "3000.0 GB"

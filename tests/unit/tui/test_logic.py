"""Pure logic of the TUI: the `/` filter, `:` resolution, step lines, rows as words, rates."""

from __future__ import annotations

import pytest

from appliance import api, progress
from tui import filtering, screens
from tui.screens.models import rates_text
from tui.screens.overview import PROFILES, component_row, endpoints_table, nodes_table
from tui.screens.pipeline_run import run_summary, state_text, task_row
from tui.screens.pipelines import run_row, task_counts
from tui.screens.storage import human_size
from tui.screens.workbenches import row
from tui.widgets.steps import step_line


@pytest.mark.parametrize(
    ("query", "cells", "expected"),
    [
        ("", ["anything"], True),
        ("csv", ["a/train.CSV", "4 kB"], True),
        ("csv train", ["a/train.csv"], True),
        ("csv test", ["a/train.csv"], False),
        ("!stopped", ["wb", "Stopped"], False),
        ("!stopped", ["wb", "Running"], True),
        ("run !gpu", ["wb", "Running", "1 GPU"], False),
        ("!", ["x"], True),
        ("4 kb", ["a", "4 kB"], True),
    ],
)
def test_filter(query: str, cells: list[str], expected: bool) -> None:
    assert filtering.matches(cells, query) is expected


def test_filter_terms() -> None:
    assert filtering.terms("A !b  c !") == (["a", "c"], ["b"])


@pytest.mark.parametrize(
    ("word", "name"),
    [("storage", "storage"), (":s3", "storage"), ("nb", "workbenches"), ("mod", "models"), ("Over", "overview"),
     ("isvc", "models"), ("install", "overview"), ("pipelines", "pipelines"), ("pl", "pipelines"),
     ("runs", "pipelines"), ("pip", "pipelines")],
)  # fmt: skip
def test_jump_words(word: str, name: str) -> None:
    found = screens.find(word)
    assert found is not None and name == found.NAME


@pytest.mark.parametrize("word", ["", "nothing", "s"])  # "s": storage, s3, serving, status... ambiguous
def test_jump_words_that_name_no_screen(word: str) -> None:
    assert screens.find(word) is None


def test_every_screen_is_documented_and_unique() -> None:
    names = [n for s in screens.SCREENS for n in (s.NAME, *s.ALIASES)]
    assert len(names) == len(set(names))
    for screen in screens.SCREENS:
        assert screen.TITLE and screen.SUMMARY and screen.KEYS, screen


def event(state: progress.StepState, kind: str = "end", **extra: object) -> api.StepEvent:
    return api.StepEvent(step_id=1, title="load images", state=state, elapsed=1.25, kind=kind, **extra)  # type: ignore[arg-type]


def test_step_lines_carry_the_state_in_words_and_marks() -> None:
    assert step_line(event("done")).plain == "✓ load images (1.2s)"
    assert step_line(event("failed", message="no space")).plain == "✗ load images (1.2s): no space"
    assert step_line(event("skipped", message="present")).plain == "- load images (1.2s): present"
    running = event("running", kind="update", completed=2_500_000, total=10_000_000, unit="B")
    assert step_line(running).plain == "• load images  2.5/10.0 MB"
    assert step_line(event("running", kind="update", message="3 of 9")).plain == "• load images  3 of 9"


def test_component_rows_say_what_the_condition_means() -> None:
    item = {"name": "kserve", "state": "Managed", "status": "False", "reason": "ImageNotPresent", "message": "build it"}
    assert component_row(item) == ("kserve", "Managed", "✗ not ready", "ImageNotPresent: build it")
    removed = {"name": "ray", "state": "Removed", "status": "False", "reason": "Removed", "message": ""}
    assert component_row(removed)[2] == "- off"
    assert component_row({**item, "status": "True", "reason": "", "message": ""})[2:] == ("✓ ready", "")


def test_profiles_cover_every_component() -> None:
    for components in PROFILES.values():
        assert set(components) == set(api.DEFAULT_COMPONENTS)
    assert PROFILES["standard"] == api.DEFAULT_COMPONENTS


def test_endpoints_table_lists_what_status_returns() -> None:
    table = endpoints_table([{"name": "MinIO S3 API (path-style)", "url": "http://127.0.0.1:8080", "auth": "creds"}])
    assert table.row_count == 1


def test_rates_text() -> None:
    assert rates_text(None, None).startswith("requests: -")
    assert "3 total" in rates_text(None, 3.0)
    text = rates_text(api.ModelRates("m", 2.0, 0.5, None, 10.0))
    assert "requests/s 2.0" in text and "errors/s 0.5" in text and "mean latency -" in text


def test_sizes_and_workbench_rows() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 4_551, 3_000_000)] == ["0 B", "999 B", "1.0 kB", "4.6 kB", "3.0 MB"]
    wb = api.Workbench(
        "p", "w", "localhost/odh-appliance/workbench:latest", "Running", True, "", "2", "4Gi", 1, "/", ""
    )
    assert row(wb) == ("p", "w", "Running", "2 CPU 4Gi 1 GPU", "workbench:latest", "")


def test_nodes_table_has_a_gpu_column_only_with_gpus() -> None:
    node = {"name": "n", "ready": True, "allocatable_cpu": "2", "allocatable_memory": "8Gi", "images": 3}
    status = api.ClusterStatus("odh", "kind", "running", True, nodes=[node])
    assert [c.header for c in nodes_table(status).columns] == ["node", "ready", "cpu", "memory", "images", "usage"]
    status.nodes = [{**node, "allocatable_gpu": "1"}]
    assert "gpu" in [c.header for c in nodes_table(status).columns]


@pytest.mark.parametrize(
    ("state", "text"),
    [("succeeded", "✓ succeeded"), ("failed", "✗ failed"), ("running", "• running"), ("skipped", "- skipped"),
     ("pending", "… pending"), ("cached", "✓ cached"), ("weird", "? weird")],
)  # fmt: skip
def test_pipeline_states_are_words_with_marks(state: str, text: str) -> None:
    assert state_text(state) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.42, "0.4s"), (9.94, "9.9s"), (12.7, "12s"), (185, "3m05s"), (3720, "1h02m")],
)
def test_duration_text(seconds: float | None, text: str) -> None:
    assert api.duration_text(seconds) == text


def test_pipeline_rows() -> None:
    run = {"run_id": "r-1", "state": "running", "created": 100.0, "finished": None,
           "tasks": {"failed": 1, "succeeded": 3, "running": 1, "skipped": 0}}  # fmt: skip
    assert run_row(run, now=112.0) == ("r-1", "• running", "12s", "✓3 •1 ✗1")
    assert task_counts({}) == "-"
    done = {**run, "state": "succeeded", "finished": 101.5}
    assert run_row(done, now=999.0)[1:3] == ("✓ succeeded", "1.5s")
    task = {"task_id": "dag/boom", "state": "failed", "attempts": 2, "exit_code": 3, "seconds": 0.25}
    assert task_row(task) == ("dag/boom", "✗ failed", "2", "3", "0.2s")
    assert task_row({"task_id": "t", "state": "pending"}) == ("t", "… pending", "-", "-", "-")
    running = {"task_id": "t", "state": "running", "attempts": 1, "started": 10.0, "seconds": None}
    assert task_row(running, now=25.0) == ("t", "• running", "1", "-", "15s")


def test_run_summary() -> None:
    run = {"pipeline": "demo", "version": "v2", "state": "succeeded", "created": 0.0, "finished": 65.0,
           "parameters": {"rows": 5, "loud": False, "tags": ["a"], "s": "x y"}, "error": ""}  # fmt: skip
    assert run_summary(run) == 'demo v2  ✓ succeeded  1m05s\nparameters: rows=5, loud=false, tags=["a"], s=x y'
    failed = {**run, "state": "failed", "error": "task boom failed: exit code 3"}
    assert run_summary(failed).endswith("\nerror: task boom failed: exit code 3")


@pytest.mark.parametrize(
    ("parameter", "default", "described"),
    [
        (api.PipelineParameter("n", "NUMBER_INTEGER", 4.0, True), "4", "n (NUMBER_INTEGER, default 4)"),
        (api.PipelineParameter("ok", "BOOLEAN", False, True), "false", "ok (BOOLEAN, default false)"),
        (api.PipelineParameter("tags", "LIST", ["a"], True), '["a"]', 'tags (LIST, default ["a"])'),
        (api.PipelineParameter("s", "STRING", "", True), "", 's (STRING, default "")'),
        (api.PipelineParameter("p", "STRING"), "", "p (STRING, required)"),
        (api.PipelineParameter("o", "STRING", None, False, True), "", "o (STRING, optional)"),
    ],
)
def test_pipeline_parameters_in_a_form(parameter: api.PipelineParameter, default: str, described: str) -> None:
    assert parameter.default_text == default
    assert parameter.describe() == described
    assert parameter.required is (not parameter.has_default and not parameter.optional)

"""Tasks are bounded: a per-task timeout (exit code 124), and closing the backend stops running tasks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from appliance import progress
from appliance.pipelines import engine, ir, local, runs
from tests.integration.pipelines.conftest import RunPipeline, by_id

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fork_server", [True, False], ids=["fork-server", "launcher-process"])
def test_a_task_past_its_timeout_is_stopped(run_pipeline: RunPipeline, tmp_path: Path, fork_server: bool) -> None:
    run, _ = run_pipeline("slow", root=str(tmp_path / "a"), task_timeout=1.0, fork_server=fork_server)
    assert run.state == "failed"
    task = by_id(run)["sleep"]
    assert task.exit_code == 124
    assert "ran past its timeout of 1s" in task.error
    assert "sleeping" in task.log_tail


def test_closing_the_backend_stops_running_tasks(task_python: str, compiled: dict[str, Path], tmp_path: Path) -> None:
    """What Ctrl-C does: api.pipelines_run_local closes the backend on the way out."""
    pipeline = ir.load(compiled["slow"])
    settings = local.LocalSettings(python=task_python, workdir=tmp_path / "work", pipeline_root=str(tmp_path / "a"))
    backend = local.LocalBackend(settings)
    recorder = progress.Recorder()
    records = runs.RunStore(tmp_path / "runs.db")
    results: list[engine.RunResult] = []
    with backend:
        eng = engine.Engine(pipeline, backend, records, progress.Progress(recorder), engine.Options(str(tmp_path)))
        thread = threading.Thread(target=lambda: results.append(eng.run({})), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(e.kind == "start" for e in recorder.events):
            time.sleep(0.05)
        log = next((tmp_path / "work").glob("*/sleep/attempt-1/task.log"))
        while time.monotonic() < deadline and "sleeping" not in log.read_text():
            time.sleep(0.05)
    thread.join(timeout=30)
    assert not thread.is_alive()  # the 60 s task was killed, so the run ended
    assert results and results[0].state == "failed"
    records.close()

"""The pipelines screen against a real pipeline server process (`python -m appliance.pipelines.server
--backend local`, a token, a temp directory as pipeline root) with pipelines compiled by the real kfp
SDK (in the task Python, as a user compiles them): upload, a bad upload's one-line error, the run form
built from the declared parameters, a run watched until Succeeded, a task log, artifacts opened and
downloaded, and a failing pipeline showing its failed task with exit code and log.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea

from appliance import api
from tests.conftest import free_port, wait_http_ok
from tests.integration.tui.conftest import drive, make_app, type_text, until
from tui.screens.dialogs import FormDialog, TextViewer
from tui.screens.pipeline_run import RunDialog, RunScreen
from tui.screens.pipelines import PipelinesScreen
from tui.widgets.resource_table import ResourceTable

pytestmark = pytest.mark.integration

SOURCES = Path(__file__).with_name("pipelines")
RUN_WAIT = 120.0


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tui_demo.py's two pipelines, compiled by kfp.compiler in the task Python (.venv-kfp)."""
    from appliance.pipelines import local  # noqa: PLC0415 - a test-only shortcut to the finder

    out = tmp_path_factory.mktemp("compiled")
    script = (
        f"import sys; sys.path.insert(0, {str(SOURCES)!r})\n"
        "from kfp import compiler\nimport tui_demo\n"
        f"compiler.Compiler().compile(tui_demo.pipeline, {str(out / 'demo.yaml')!r})\n"
        f"compiler.Compiler().compile(tui_demo.failing, {str(out / 'failing.yaml')!r})\n"
    )
    done = subprocess.run([local.find_task_python(), "-W", "ignore", "-c", script], capture_output=True, text=True,
                          timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (out / "bad.yaml").write_text("pipelineSpec: {}\nnot: a compiled pipeline\n")
    return {"demo": out / "demo.yaml", "failing": out / "failing.yaml", "bad": out / "bad.yaml"}


@pytest.fixture(scope="module")
def pipeline_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[api.PipelineServer]:
    from appliance.pipelines import local  # noqa: PLC0415

    home = tmp_path_factory.mktemp("pipeline-server")
    port, token = free_port(), secrets.token_urlsafe(16)
    env = {**os.environ, api.PIPELINES_TOKEN_ENV: token}
    argv = [sys.executable, "-m", "appliance.pipelines.server", "--backend", "local", "--port", str(port),
            "--data-dir", str(home / "data"), "--pipeline-root", str(home / "artifacts"),
            "--python", local.find_task_python()]  # fmt: skip
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", proc, log, 60, "the pipeline server")
        yield api.PipelineServer(f"http://127.0.0.1:{port}", token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def status_line(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    return str(screen.query_one("#status", Static).content) if isinstance(screen, PipelinesScreen) else ""


def viewer_text(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    return screen.query_one(TextArea).text if isinstance(screen, TextViewer) else ""


def rows(table: ResourceTable) -> dict[str, tuple[str, ...]]:
    return dict(table.rows_all)


async def upload(pilot: Pilot[None], path: Path) -> None:
    """u, the path, then enter through the name and version fields (empty: from the file, v1)."""
    await until(pilot, lambda: isinstance(pilot.app.screen, PipelinesScreen), "the pipelines screen")
    await pilot.press("u")
    await until(pilot, lambda: isinstance(pilot.app.screen, FormDialog), "the upload form")
    await type_text(pilot, str(path))
    await pilot.press("enter", "enter", "enter")


async def run_with(pilot: Pilot[None], pipeline: str, values: dict[str, str]) -> RunScreen:
    """Select the pipeline, open its run form (enter), fill `values`, Run; the run screen opens."""
    screen = pilot.app.screen
    assert isinstance(screen, PipelinesScreen)
    await until(pilot, lambda: pipeline in screen.pipelines, f"{pipeline} in the list")
    screen.pipelines_table.select_key(pipeline)
    screen.pipelines_table.focus()
    await pilot.press("enter")
    dialog = await until(pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, RunDialog) else None,
                         "the run form")  # fmt: skip
    for name, value in values.items():
        dialog.query_one(f"#param-{name}", Input).value = value
    await pilot.click("#ok")
    run = await until(pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, RunScreen) else None,
                      "the run screen")  # fmt: skip
    assert isinstance(run, RunScreen)
    return run


def run_state(screen: RunScreen) -> str:
    return str(screen.run["state"]) if screen.run else ""


async def open_and_download_artifacts(pilot: Pilot[None], run: RunScreen, tmp_path: Path) -> None:
    """The Dataset's CSV and the Markdown report shown inline with their URIs; `g` saves the CSV."""
    app = pilot.app
    await until(pilot, lambda: len(run.artifacts) >= 3, "the artifacts")
    assert {a.kind for a in run.artifacts.values()} >= {"Dataset", "Markdown", "Metrics"}
    run.artifacts_table.select_key("make-data:data")
    run.artifacts_table.focus()
    await pilot.press("enter")
    text = await until(pilot, lambda: viewer_text(app), "the artifact view")
    assert "uri: " in text and "type: system.Dataset" in text, text
    assert "x,y\n0,0\n1,1\n2,4\n3,9\n4,16" in text, text
    await pilot.press("escape")
    await until(pilot, lambda: isinstance(app.screen, RunScreen), "back on the run")
    run.artifacts_table.select_key("make-data:report")
    await pilot.press("d")
    text = await until(pilot, lambda: viewer_text(app), "the report")
    assert "# Report" in text and "5 rows of squares" in text, text
    await pilot.press("escape")
    await until(pilot, lambda: isinstance(app.screen, RunScreen), "back on the run")

    # g: download the Dataset to a local path.
    run.artifacts_table.select_key("make-data:data")
    await pilot.press("g")
    form = await until(pilot, lambda: app.screen if isinstance(app.screen, FormDialog) else None, "the form")
    form.query_one("#field-dest", Input).value = str(tmp_path / "squares.csv")
    await pilot.press("enter")
    await until(pilot, lambda: (tmp_path / "squares.csv").exists(), "the download")
    assert (tmp_path / "squares.csv").read_text().splitlines()[-1] == "4,16"


def test_upload_run_watch_log_and_artifacts(
    pipeline_server: api.PipelineServer, compiled: dict[str, Path], tmp_path: Path
) -> None:
    app = make_app(initial="pipelines", pipelines=pipeline_server)

    async def scenario(pilot: Pilot[None]) -> None:
        await upload(pilot, compiled["demo"])
        await until(pilot, lambda: "✓ uploaded tui-demo" in status_line(app), "the upload")
        assert "rows (NUMBER_INTEGER)" in status_line(app)

        # The run form: one field per declared parameter, labelled with type and default, filled in.
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        await until(pilot, lambda: "tui-demo" in screen.pipelines, "tui-demo in the list")
        screen.pipelines_table.select_key("tui-demo")
        screen.pipelines_table.focus()
        await pilot.press("n")
        dialog = await until(pilot, lambda: app.screen if isinstance(app.screen, RunDialog) else None, "the form")
        labels = [str(label.content) for label in dialog.query("Label.param")]
        assert labels == ["greeting (STRING, default hello)", "loud (BOOLEAN, default false)",
                          "rows (NUMBER_INTEGER, default 3)", "scale (NUMBER_DOUBLE, default 0.5)",
                          'tags (LIST, default ["a", "b"])']  # fmt: skip
        assert dialog.query_one("#param-rows", Input).value == "3"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, PipelinesScreen), "the form closed")

        run = await run_with(pilot, "tui-demo", {"rows": "5", "greeting": "hi there"})
        await until(pilot, lambda: run_state(run) == "succeeded", "the run to succeed", timeout=RUN_WAIT)
        await pilot.pause(0.2)
        tasks = rows(run.tasks_table)
        assert tasks["make-data"][1] == "✓ succeeded" and tasks["greet"][1] == "✓ succeeded", tasks
        summary = str(run.query_one("#summary", Static).content)
        assert "✓ succeeded" in summary and "rows=5" in summary, summary
        assert run.poll_timer is None  # polling stopped once the run ended

        # l: the greet task's log, with the parameters it got.
        run.tasks_table.select_key("greet")
        run.tasks_table.focus()
        await pilot.press("l")
        text = await until(pilot, lambda: viewer_text(app), "the task log")
        assert "hi there x5 scale=0.5 tags=a,b" in text, text
        await pilot.press("escape")

        await open_and_download_artifacts(pilot, run, tmp_path)

        # esc: back to the list, where the run is listed as succeeded with its duration and tasks.
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, PipelinesScreen), "the pipelines screen")
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        await until(pilot, lambda: rows(screen.runs_table).get(run.run_id, ("", ""))[1] == "✓ succeeded", "the run")
        assert rows(screen.runs_table)[run.run_id][3] == "✓2"

    drive(app, scenario)


def test_a_bad_upload_a_bad_parameter_and_a_failing_pipeline(
    pipeline_server: api.PipelineServer, compiled: dict[str, Path]
) -> None:
    app = make_app(initial="pipelines", pipelines=pipeline_server)

    async def scenario(pilot: Pilot[None]) -> None:
        # A file that is not a compiled pipeline: one line under the lists, nothing uploaded.
        await upload(pilot, compiled["bad"])
        await until(pilot, lambda: "✗ upload failed" in status_line(app), "the validation error")
        assert "\n" not in status_line(app)
        assert "tui-failing" not in {p["name"] for p in api.pipelines_list(pipeline_server)}

        await upload(pilot, compiled["failing"])
        await until(pilot, lambda: "✓ uploaded tui-failing" in status_line(app), "the upload")

        # A value that is not of the parameter's type: the server refuses, the line says why.
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        await until(pilot, lambda: "tui-failing" in screen.pipelines, "tui-failing listed")
        screen.pipelines_table.select_key("tui-failing")
        screen.pipelines_table.focus()
        await pilot.press("enter")
        dialog = await until(pilot, lambda: app.screen if isinstance(app.screen, RunDialog) else None, "the form")
        dialog.query_one("#param-code", Input).value = "three"
        await pilot.click("#ok")
        await until(pilot, lambda: "✗ not run" in status_line(app), "the parameter error")
        assert "code" in status_line(app)

        run = await run_with(pilot, "tui-failing", {"code": "3"})
        await until(pilot, lambda: run_state(run) == "failed", "the run to fail", timeout=RUN_WAIT)
        await pilot.pause(0.2)
        boom = rows(run.tasks_table)["boom"]
        assert boom[1] == "✗ failed" and boom[3] == "3", boom
        assert "error: " in str(run.query_one("#summary", Static).content)
        run.tasks_table.select_key("boom")
        run.tasks_table.focus()
        await pilot.press("enter")  # describe: state, exit code, error, log tail
        text = await until(pilot, lambda: viewer_text(app), "the task's details")
        assert "state: ✗ failed" in text and "exit code: 3" in text and "about to fail" in text, text
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "back on the run")
        await pilot.press("l")
        text = await until(pilot, lambda: viewer_text(app), "the log")
        assert "about to fail: the disk is full (simulated)" in text

    drive(app, scenario)


def test_without_a_cluster_or_server_the_screen_says_what_to_do(pipeline_server: api.PipelineServer) -> None:
    app = make_app(initial="pipelines")

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: "no cluster answers yet" in status_line(app), "the hint")
        assert not app._notifications  # nothing was called, so nothing failed
        app.backends.pipelines = pipeline_server  # as when the cluster (and its server) comes up
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        screen.action_refresh()
        await until(pilot, lambda: status_line(app).startswith(("u: upload", "u uploads")), "the list's hint")

    drive(app, scenario)


def test_a_server_that_does_not_answer(tmp_path: Path) -> None:
    app = make_app(initial="pipelines", pipelines=api.PipelineServer(f"http://127.0.0.1:{free_port()}", "t"))

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: "does not answer" in status_line(app), "the problem")
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        assert "does not answer" in screen.pipelines_table.border_title

    drive(app, scenario)


def test_the_line_clears_when_the_server_answers_again(pipeline_server: api.PipelineServer) -> None:
    app = make_app(initial="pipelines", pipelines=pipeline_server)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        await until(pilot, lambda: screen.pipelines_table.title.startswith("pipelines ("), "the first list")
        screen.unreachable(api.ApplianceError("the pipeline server at X does not answer"))
        assert "does not answer" in status_line(app)
        screen.action_refresh()
        await until(pilot, lambda: "does not answer" not in status_line(app), "the line to clear")
        assert status_line(app).startswith(("u: upload", "u uploads"))  # the hint again

    drive(app, scenario)

"""The models screen against real model-server processes: connect, the try-it form built from the
model's metadata, an inference and its outputs, per-field input errors, request counts read from
/metrics; serving a local .onnx from the screen (a child process the app stops on exit); uploading
a model into a real MinIO and serving it from there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from appliance import api
from tests import onnx_models
from tests.conftest import MinioServer
from tests.integration.serving.conftest import RunningServer, start_server, stop
from tests.integration.tui.conftest import drive, make_app, notes, screen_text, until
from tui.screens.dialogs import FormDialog
from tui.screens.models import ModelsScreen
from tui.widgets.resource_table import ResourceTable

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def four_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("tui-models")
    onnx_models.four_in_three_out(root / "four" / "model.onnx")
    running = start_server(root, root / "server.log", "--no-grpc")
    try:
        yield running
    finally:
        stop(running.proc)


def models(pilot: Pilot[None]) -> ModelsScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ModelsScreen)
    return screen


def outputs(screen: ModelsScreen) -> str:
    return str(screen.query_one("#outputs", Static).render())


async def form_ready(pilot: Pilot[None], model: str) -> ModelsScreen:
    screen = models(pilot)
    await until(pilot, lambda: screen.meta is not None and screen.meta.name == model, f"the metadata of {model}")
    await until(pilot, lambda: all(f.is_mounted for f in screen.form_inputs) and screen.form_inputs, "the form")
    return screen


def test_try_it_form_infers_and_counts(four_server: RunningServer) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        screen = await form_ready(pilot, "four")
        assert "four" in screen.query_one("#models", ResourceTable).visible_keys()
        await until(pilot, lambda: "a: FP32 [?, 4]" in screen_text(pilot.app), "the labelled fields")
        fields = screen.form_inputs
        assert [f.placeholder for f in fields] == ["0, 0, 0, 0"] * 4
        fields[0].value = "abc"
        for f in fields[1:]:
            f.value = "1, 2, 3, 4"
        fields[-1].focus()
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: any("'abc' is not a FP32 value" in n for n in notes(pilot.app)), "the input error")
        assert outputs(screen) == ""
        fields[0].value = "[[1, 1, 1, 1]]"
        fields[-1].focus()
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: "sum FP32 [1, 4] = 2, 3, 4, 5" in outputs(screen), "the outputs")
        assert "product FP32 [1, 4] = 1, 4, 9, 16" in outputs(screen)
        rates = screen.query_one("#rates", Static)
        await until(pilot, lambda: "total 1" in str(rates.render()), "the request count from /metrics", timeout=15)
        # choosing the model again rebuilds the form (new fields, no clash with the old ones)
        first = screen.form_generation
        screen.query_one("#models", ResourceTable).focus()
        await pilot.press("enter")
        await until(pilot, lambda: screen.form_generation > first, "the rebuilt form")
        await form_ready(pilot, "four")
        assert [f.value for f in screen.form_inputs] == [""] * 4

    drive(make_app(initial="models", model_server=four_server.url), scenario)


def test_serve_a_local_onnx_and_stop_it_on_exit(tmp_path: Path) -> None:
    model = onnx_models.identity("INT32", tmp_path / "ids.onnx")
    app = make_app(initial="models")

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("o")
        dialog = await until(pilot, lambda: isinstance(pilot.app.screen, FormDialog) and pilot.app.screen, "dialog")
        dialog.query_one("#field-path", Input).value = str(model)
        dialog.query_one("#field-name", Input).focus()
        await pilot.press("enter")
        screen = await form_ready(pilot, "ids")
        assert screen.url is not None and screen.url.startswith("http://127.0.0.1:")
        assert "✓ serve ids.onnx as ids" in screen_text(pilot.app)
        field = screen.form_inputs[0]
        field.value = "[[7, 8, 9]]"
        field.focus()
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: "y INT32 [1, 3] = 7, 8, 9" in outputs(screen), "the echo")

    drive(app, scenario)
    assert len(app.local_servers) == 1
    assert not app.local_servers[0].running, "the app must stop the model server it started"


def test_upload_to_minio_and_serve_from_there(minio_server: MinioServer, tmp_path: Path) -> None:
    model = onnx_models.four_in_three_out(tmp_path / "fourx.onnx")
    target = api.storage_target_for(minio_server.url, minio_server.access_key, minio_server.secret_key)
    app = make_app(initial="models", storage=target)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = models(pilot)
        await pilot.press("u")
        dialog = await until(pilot, lambda: isinstance(pilot.app.screen, FormDialog) and pilot.app.screen, "dialog")
        dialog.query_one("#field-path", Input).value = str(model)
        dialog.query_one("#field-name", Input).value = "fourx"
        dialog.query_one("#field-name", Input).focus()
        await pilot.press("enter")
        stored = screen.query_one("#stored", ResourceTable)
        await until(pilot, lambda: "fourx/model.onnx" in stored.visible_keys(), "the model in MinIO")
        stored.select_key("fourx/model.onnx")
        stored.focus()
        await pilot.press("enter")
        await form_ready(pilot, "fourx")

    drive(app, scenario)
    assert [o.key for o in api.storage_objects(target, "models", "fourx/")] == ["fourx/model.onnx"]
    assert not app.local_servers[0].running


def test_unreachable_server_is_a_notification() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: any("does not answer" in n for n in notes(pilot.app)), "the error")
        assert any("hint: is it running?" in n for n in notes(pilot.app))

    drive(make_app(initial="models", model_server="http://127.0.0.1:9"), scenario)

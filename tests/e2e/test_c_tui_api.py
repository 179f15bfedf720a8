"""What the TUI's storage and models screens call, on the real kind cluster through the gateway:
MinIO's buckets with the credentials `api.storage_target` resolves, an upload and download of a model,
a deployment from MinIO (`api.model_deploy`) that becomes Ready, and inference through the gateway
with the model's Bearer token (`api.model_endpoint`) — plus the storage screen listing the buckets.

Named `test_c_tui_*`: after the serving tests, before `test_y_cluster.py` (which ends with `down`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance import api, k8s
from tests import onnx_models
from tui.app import ApplianceApp
from tui.backends import Backends
from tui.screens.storage import StorageScreen

pytestmark = pytest.mark.e2e

PROJECT = "e2e-tui-models"
NAME = "tuifour"
READY_TIMEOUT = 300.0


def test_storage_through_the_gateway(loaded: api.Loaded, tmp_path: Path) -> None:
    target = api.storage_target(loaded)
    assert target.endpoint == api.gateway_url(loaded)
    assert {"models", "data", "pipelines"} <= {b.name for b in api.storage_buckets(target)}
    model = onnx_models.four_in_three_out(tmp_path / "four.onnx")
    api.storage_upload(target, "models", f"{NAME}/model.onnx", model, api.Progress())
    back = api.storage_download(target, "models", f"{NAME}/model.onnx", tmp_path / "back.onnx", api.Progress())
    assert back.read_bytes() == model.read_bytes()


def test_deploy_becomes_ready_and_answers_through_the_gateway(loaded: api.Loaded) -> None:
    uri = api.model_storage_uri("models", f"{NAME}/model.onnx")
    assert uri == f"s3://models/{NAME}"
    api.model_deploy(loaded, PROJECT, NAME, uri)

    def ready() -> tuple[bool, str]:
        found = [d for d in api.model_deployments(loaded) if (d.namespace, d.name) == (PROJECT, NAME)]
        return bool(found and found[0].ready), str(found[0] if found else "not listed yet")

    k8s.wait_for(f"{PROJECT}/{NAME} to be Ready", ready, timeout=READY_TIMEOUT,
                 hint=f"kubectl -n {PROJECT} describe isvc {NAME}")  # fmt: skip
    url, token = api.model_endpoint(loaded, PROJECT, NAME)
    assert token, "the gateway's model routes need a token"
    deadline = time.monotonic() + 60  # the gateway rolls out its new route within seconds
    while True:
        try:
            meta = api.model_metadata(url, NAME, token=token)
            break
        except api.ApplianceError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert [t.name for t in meta.inputs] == ["a", "b", "c", "d"]
    inputs = [api.model_parse_input(spec, "1, 2, 3, 4") for spec in meta.inputs]
    outputs = {t.name: t.data for t in api.model_infer(url, NAME, inputs, token=token)}
    assert outputs["sum"] == [2.0, 4.0, 6.0, 8.0]
    with pytest.raises(api.ApplianceError, match="401"):
        api.model_metadata(url, NAME)  # no token: refused


def test_the_storage_screen_lists_the_clusters_buckets(loaded: api.Loaded) -> None:
    app = ApplianceApp(Backends(loaded), initial="storage")

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, StorageScreen)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "models" not in screen.buckets_table.visible_keys():
                await pilot.pause(0.2)
            assert {"models", "data", "pipelines"} <= set(screen.buckets_table.visible_keys())

    asyncio.run(scenario())


def test_undeploy(loaded: api.Loaded) -> None:
    api.model_undeploy(loaded, PROJECT, NAME)

    def gone() -> tuple[bool, str]:
        names = [(d.namespace, d.name) for d in api.model_deployments(loaded)]
        return (PROJECT, NAME) not in names, str(names)

    k8s.wait_for(f"{PROJECT}/{NAME} to be deleted", gone, timeout=120, hint="kubectl get isvc -A")

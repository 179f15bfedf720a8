"""Workbenches through `appliance.api` and the TUI's workbenches screen, on the real kind cluster:
create (the form's Notebook), Running, the URL with its token, logs, stop, delete — the calls the
unit tests cannot make. (Written with issue #8; the TUI's other screens are tested in
tests/integration/tui against real MinIO and model-server processes.)
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest

from appliance import api, k8s
from tui.app import ApplianceApp
from tui.backends import Backends
from tui.screens.workbenches import WorkbenchesScreen

pytestmark = pytest.mark.e2e

PROJECT = "e2e-tui"
NAME = "tui-wb"
TIMEOUT = 300.0


def state_of(loaded: api.Loaded) -> str | None:
    row = next((w for w in api.workbenches(loaded) if (w.namespace, w.name) == (PROJECT, NAME)), None)
    return None if row is None else f"{row.state} {row.message}".strip()


def wait_state(loaded: api.Loaded, wanted: str | None) -> None:
    def check() -> tuple[bool, str]:
        now = state_of(loaded)
        return (now is None if wanted is None else bool(now and now.startswith(wanted))), str(now)

    k8s.wait_for(f"workbench {NAME} to be {wanted}", check, timeout=TIMEOUT,
                 hint=f"kubectl -n {PROJECT} describe notebook {NAME}")  # fmt: skip


def test_workbench_lifecycle_through_the_api(loaded: api.Loaded, cluster: k8s.Cluster) -> None:
    created = api.workbench_create(loaded, PROJECT, NAME, size="small")
    assert (created.namespace, created.name) == (PROJECT, NAME)
    wait_state(loaded, "Running")

    url = api.workbench_url(loaded, PROJECT, NAME)
    secret = cluster.call(cluster.core.read_namespaced_secret, f"{NAME}-token", PROJECT)
    token = base64.b64decode(secret.data["token"]).decode()
    assert url == f"{api.gateway_url(loaded)}/notebook/{PROJECT}/{NAME}/lab?token={token}"
    assert "jupyter" in api.workbench_logs(loaded, PROJECT, NAME).lower()
    notebook: dict[str, Any] = api.workbench_object(loaded, PROJECT, NAME)
    assert notebook["kind"] == "Notebook" and "kind: Notebook" in api.to_yaml(notebook)

    api.workbench_set_stopped(loaded, PROJECT, NAME, True)
    wait_state(loaded, "Stopped")
    api.workbench_set_stopped(loaded, PROJECT, NAME, False)
    wait_state(loaded, "Running")


def test_the_screen_lists_it_running(loaded: api.Loaded) -> None:
    app = ApplianceApp(Backends(loaded), initial="workbenches")

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + 60
            screen = app.screen
            assert isinstance(screen, WorkbenchesScreen)
            while time.monotonic() < deadline and f"{PROJECT}/{NAME}" not in screen.rows:
                await pilot.pause(0.2)
            assert screen.rows[f"{PROJECT}/{NAME}"].state == "Running"
            assert app.cluster_known_up and not app.banner_text

    asyncio.run(scenario())


def test_delete(loaded: api.Loaded) -> None:
    api.workbench_delete(loaded, PROJECT, NAME)
    wait_state(loaded, None)
    api.workbench_delete(loaded, PROJECT, NAME)  # gone already: no error

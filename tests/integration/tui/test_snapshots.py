"""Snapshot tests: the main layouts at 80x24, pinned as SVG screenshots under __snapshots__/.

Each screen first loads from its real backend (or finds none), then gets fixed rows, so the picture
does not depend on dates, ports or the host's doctor results. Update after an intended change with
`.venv/bin/pytest tests/integration/tui/test_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.pilot import Pilot

from appliance import api
from tests.integration.tui.conftest import make_app
from tui.screens.models import ModelsScreen, rates_text
from tui.screens.overview import OverviewScreen
from tui.screens.pipeline_run import RunDialog, RunScreen
from tui.screens.pipelines import PipelinesScreen
from tui.screens.storage import StorageScreen
from tui.screens.workbenches import WorkbenchesScreen
from tui.widgets.resource_table import ResourceTable

pytestmark = pytest.mark.integration
SnapCompare = Any
WHEN = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


async def settled(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def doctor_report() -> api.DoctorReport:
    return api.DoctorReport(
        [
            api.CheckResult("python", "pass", "Python 3.11.7"),
            api.CheckResult("docker", "pass", "Docker engine 20.10.24 (API 1.41)"),
            api.CheckResult("cgroups", "warn", "cgroup v1", "Kubernetes 1.34 is the newest that runs"),
            api.CheckResult("memory", "pass", "21.4 GiB available"),
            api.CheckResult("kind", "fail", "kind is not installed", "go install sigs.k8s.io/kind"),
        ]
    )


def test_install(snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, OverviewScreen)
        screen.show_doctor(doctor_report())
        screen.query_one("#summary").update("No cluster 'odh' (kind: no cluster). Install it below.")  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(make_app(), run_before=before)


def test_overview_with_a_cluster(snap_compare: SnapCompare) -> None:
    status = api.ClusterStatus(
        cluster="odh", provider="kind", state="running", running=True, kubeconfig="/k", server_version="v1.34.1",
        nodes=[{"name": "odh-control-plane", "ready": True, "kubelet_version": "v1.34.1", "container_runtime": "c",
                "images": 31, "allocatable_cpu": "2", "allocatable_memory": "24Gi"}],
        resources={"odh-control-plane": "CPU 12%, memory 1.0GiB"}, platform_phase="Not Ready",
        object_storage={"status": "True", "message": "MinIO answers"},
        components=[
            {"name": "workbenches", "state": "Managed", "condition": "WorkbenchesReady", "status": "True",
             "reason": "", "message": "2 notebooks, 1 running"},
            {"name": "kserve", "state": "Managed", "condition": "KserveReady", "status": "True", "reason": "",
             "message": "1 ready"},
            {"name": "datasciencepipelines", "state": "Managed", "condition": "DataSciencePipelinesReady",
             "status": "False", "reason": "NotImplemented", "message": "not implemented yet"},
            {"name": "ray", "state": "Removed", "condition": "RayReady", "status": "False", "reason": "Removed",
             "message": ""},
        ],
        endpoints=[
            {"name": "MinIO S3 API (path-style)", "url": "http://127.0.0.1:8080", "auth": "`appliance credentials`"},
            {"name": "workbench proj/wb", "url": "http://127.0.0.1:8080/notebook/proj/wb/",
             "auth": "token in Secret proj/wb-token"},
        ],
    )  # fmt: skip

    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, OverviewScreen)
        screen.show_status(status)
        await pilot.pause()

    assert snap_compare(make_app(), run_before=before)


def test_storage(snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, StorageScreen)
        screen.buckets_table.title = "buckets"  # the real first load found no cluster: "not reachable"
        screen.buckets_table.set_rows([(b, (b,)) for b in ("data", "models", "pipelines")])
        screen.bucket = "data"
        screen.show_objects([
            api.StorageObject("data", "iris/train.csv", 4_551, WHEN),
            api.StorageObject("data", "iris/test.csv", 1_203, WHEN),
            api.StorageObject("data", "readme.md", 88, WHEN),
        ])  # fmt: skip
        screen.objects_table.focus()
        await pilot.pause()

    # storage=None: there is no cluster, so the real first load fails (one notification, cleared below)
    app = make_app(initial="storage")

    async def clear_and_before(pilot: Pilot[None]) -> None:
        await before(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, run_before=clear_and_before)


def test_models_try_it(snap_compare: SnapCompare) -> None:
    meta = api.ModelMetadata(
        name="iris", platform="onnxruntime_onnx", versions=("1",),
        inputs=(api.TensorSpec("X", "FP32", (-1, 4)),),
        outputs=(api.TensorSpec("label", "INT64", (-1,)), api.TensorSpec("probabilities", "FP32", (-1, 3))),
    )  # fmt: skip

    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ModelsScreen)
        screen.query_one("#url").value = "http://127.0.0.1:8080"  # type: ignore[attr-defined]
        screen.query_one("#models", ResourceTable).set_rows([("iris", ("iris", "READY"))])
        screen.model = "iris"
        screen.build_form(meta)
        screen.query_one("#rates").update(rates_text(api.ModelRates("iris", 3.5, 0.0, 1.25, 42)))  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(make_app(initial="models"), run_before=before)


def test_workbenches(snap_compare: SnapCompare) -> None:
    def bench(name: str, state: str, gpu: int, message: str = "") -> api.Workbench:
        image = "localhost/odh-appliance/workbench:latest"
        url = f"/notebook/workbenches/{name}/"
        return api.Workbench("workbenches", name, image, state, state == "Running", message, "1", "2Gi", gpu, url, "")

    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, WorkbenchesScreen)
        screen.show([bench("train", "Running", 0), bench("gpu-lab", "Starting", 1, "ContainerCreating"),
                     bench("old", "Stopped", 0)])  # fmt: skip
        await pilot.pause()

    assert snap_compare(make_app(initial="workbenches"), run_before=before)


def test_help(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(initial="workbenches"), press=["question_mark"])


def test_jump_prompt(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(initial="workbenches"), press=["colon", "s", "t"])


def test_lost_cluster_banner(snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        app = pilot.app
        app.cluster_answered(None)  # type: ignore[attr-defined]
        app.cluster_answered("the Kubernetes API server does not answer (MaxRetryError)")  # type: ignore[attr-defined]
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(initial="storage"), run_before=before)


UPDATED = WHEN.timestamp()
NO_SERVER = api.PipelineServer("http://127.0.0.1:9", "")  # discard port: every call fails at once


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC for the test (the pipelines screen shows upload times in local time)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("utc")
def test_pipelines(snap_compare: SnapCompare) -> None:
    pipelines = [{"name": "iris-train", "created": UPDATED, "versions": 3, "updated": UPDATED},
                 {"name": "tui-demo", "created": UPDATED, "versions": 1, "updated": UPDATED}]  # fmt: skip
    runs = [
        {"run_id": "iris-train-20261122-093001-4f2a1c", "state": "running", "created": 100.0, "finished": None,
         "tasks": {"succeeded": 2, "running": 1}},
        {"run_id": "tui-demo-20261122-092512-9c1e7b", "state": "succeeded", "created": 100.0, "finished": 104.2,
         "tasks": {"succeeded": 2}},
        {"run_id": "iris-train-20261122-091003-77ab02", "state": "failed", "created": 100.0, "finished": 161.0,
         "tasks": {"succeeded": 1, "failed": 1, "skipped": 2}},
    ]  # fmt: skip

    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, PipelinesScreen) and screen.refresh_timer is not None
        screen.refresh_timer.stop()  # the rows below stay; no refresh replaces them
        await pilot.app.workers.wait_for_complete()
        screen.say("")
        screen.show(pipelines, runs, now=112.0)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(initial="pipelines", pipelines=NO_SERVER), run_before=before)


def test_pipeline_run(snap_compare: SnapCompare) -> None:
    def task(task_id: str, state: str, attempts: int, exit_code: int | None, seconds: float | None,
             kind: str = "container") -> dict[str, Any]:  # fmt: skip
        return {"task_id": task_id, "kind": kind, "state": state, "attempts": attempts, "exit_code": exit_code,
                "started": 1.0, "seconds": seconds}  # fmt: skip

    run = {
        "run_id": "tui-demo-x", "pipeline": "tui-demo", "version": "v1", "state": "running", "created": 0.0,
        "finished": None, "parameters": {"rows": 5, "greeting": "hi"}, "error": "",
        "tasks": [task("make-data", "succeeded", 1, 0, 2.1), task("exit-handler-1", "running", 0, None, None, "dag"),
                  task("exit-handler-1/boom", "failed", 2, 3, 1.2),
                  task("exit-handler-1/after", "skipped", 0, None, None), task("final", "running", 1, None, None)],
    }  # fmt: skip
    artifacts = [
        api.PipelineArtifact("tui-demo-x", "make-data", name, f"s3://pipelines/tui-demo/x/make-data/{name}", kind, {})
        for name, kind in (("data", "system.Dataset"), ("report", "system.Markdown"), ("metrics", "system.Metrics"))
    ]

    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = RunScreen("tui-demo-x")
        await pilot.app.push_screen(screen)
        await pilot.pause()
        assert screen.poll_timer is not None
        screen.poll_timer.stop()
        await pilot.app.workers.wait_for_complete()
        screen.show(run, artifacts, now=20.0)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(initial="pipelines", pipelines=NO_SERVER), run_before=before)


def test_pipeline_run_form(snap_compare: SnapCompare) -> None:
    parameters = [
        api.PipelineParameter("greeting", "STRING", "hello", True, True),
        api.PipelineParameter("rows", "NUMBER_INTEGER", 3.0, True, True),
        api.PipelineParameter("loud", "BOOLEAN", False, True, True),
        api.PipelineParameter("data_path", "STRING"),
    ]

    async def before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, PipelinesScreen) and screen.refresh_timer is not None
        screen.refresh_timer.stop()
        await pilot.app.workers.wait_for_complete()
        pilot.app.clear_notifications()
        await pilot.app.push_screen(RunDialog("tui-demo", parameters))
        await pilot.pause()

    assert snap_compare(make_app(initial="pipelines", pipelines=NO_SERVER), run_before=before)

"""Data science pipelines on the real kind cluster: the operator deploys the pipeline server when
`datasciencepipelines` is Managed, and `appliance pipelines upload | run | list | get | logs` drive
it through the gateway. Pipelines from the part-1 integration set (compiled by the real kfp SDK) run
with each task a pod on the pipeline-runner image (their `python:3.x` image is not on the node);
a failing task shows its exit code and log tail; retries are honoured (each attempt a new pod);
deleting the server's pod mid-run fails the run with the reason, and its task pod is cleaned up.

Named `test_d_*` so it runs before `test_y_cluster.py` (which ends with `appliance down`). It also runs
alone: the `cluster` fixture brings the platform up.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from appliance import k8s
from appliance.actions import platform
from appliance.operator import crds, install, pipelineserver
from appliance.pipelines import kube, server
from tests.e2e.conftest import Appliance
from tests.integration.pipelines.conftest import PIPELINES, SOURCES

pytestmark = pytest.mark.e2e

READY_TIMEOUT = 300.0
RUN_TIMEOUT = 600
E2E_SOURCES = Path(__file__).with_name("pipelines")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The integration set, plus the S3-counting retry pipeline, compiled by the task Python's kfp."""
    from appliance.pipelines import local  # noqa: PLC0415

    python = local.find_task_python()
    out = tmp_path_factory.mktemp("compiled")
    wanted = {**PIPELINES, "retries-s3": ("retries", "pipeline")}
    script = "\n".join(
        [
            "import importlib, sys",
            f"sys.path[:0] = [{str(SOURCES)!r}, {str(E2E_SOURCES)!r}]",
            "from kfp import compiler",
            "def build(module, function, path):",
            "    compiler.Compiler().compile(getattr(importlib.import_module(module), function), path)",
            *(f"build({m!r}, {f!r}, {str(out / n) + '.yaml'!r})" for n, (m, f) in wanted.items()),
        ]
    )
    argv = [python, "-W", "ignore", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return {name: out / f"{name}.yaml" for name in wanted}


@pytest.fixture(scope="module")
def pipelines_ready(cluster: k8s.Cluster, appliance: Appliance) -> k8s.Cluster:
    """datasciencepipelines Managed (whatever the default), and DataSciencePipelinesReady=True."""
    from kubernetes import client  # noqa: PLC0415

    api = client.CustomObjectsApi(cluster.api_client)
    patch = {"spec": {"components": {"datasciencepipelines": {"managementState": "Managed"}}}}
    api.patch_cluster_custom_object(crds.DSC_GROUP, "v1", "datascienceclusters", install.DSC_NAME, patch)

    def ready() -> tuple[bool, str]:
        state = platform.platform_state(cluster)
        item = next(c for c in state.components if c["name"] == "datasciencepipelines")
        assert item["reason"] != "NotImplemented", (
            "the operator running in the cluster does not implement datasciencepipelines: its image is not this "
            "checkout's (another build retagged the shared operator:latest between `images build` and `up`); rerun"
        )
        return item["status"] == "True", f"{item['reason']}: {item['message']}"

    k8s.wait_for("DataSciencePipelinesReady", ready, timeout=READY_TIMEOUT, hint="kubectl -n opendatahub get pods")
    return cluster


def cli(appliance: Appliance, *args: str) -> subprocess.CompletedProcess[str]:
    return appliance.run("pipelines", *args, timeout=RUN_TIMEOUT)


def run_json(appliance: Appliance, *args: str) -> dict[str, Any]:
    result = cli(appliance, "run", *args, "--json")
    assert result.stdout, result.stderr
    return dict(json.loads(result.stdout))


def tasks_by_id(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["task_id"]: t for t in run["tasks"]}


def test_kfp_pipelines_run_on_the_cluster_each_task_a_pod(
    pipelines_ready: k8s.Cluster, appliance: Appliance, compiled: dict[str, Path]
) -> None:
    up = cli(appliance, "upload", str(compiled["trivial"]))
    assert up.returncode == 0, up.stderr
    assert "uploaded trivial version v1" in up.stdout
    trivial = run_json(appliance, "trivial", "-p", "x=5")
    assert trivial["state"] == "succeeded", trivial["error"]
    assert trivial["outputs"] == {"Output": 8}
    assert [t["exit_code"] for t in trivial["tasks"]] == [0, 0, 0]

    features = run_json(appliance, str(compiled["features"]), "-p", "count=4")
    assert features["state"] == "succeeded", features["error"]
    tasks = tasks_by_id(features)
    assert tasks["exit-handler-1/total"]["outputs"]["parameters"] == {"sum": 14, "label": "big"}
    model = tasks["exit-handler-1/total"]["outputs"]["artifacts"]["model"][0]["uri"]
    assert model.startswith("s3://pipelines/features/")
    assert tasks["cleanup"]["outputs"]["parameters"]["Output"] == "SUCCEEDED"

    collections = run_json(appliance, str(compiled["collections"]), "-p", "who=ana")
    assert collections["state"] == "succeeded", collections["error"]
    assert tasks_by_id(collections)["read-all"]["outputs"]["parameters"]["Output"] == "1.10,1.20,2.10,2.20"

    listed = cli(appliance, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["pipeline"] for r in json.loads(listed.stdout)} >= {"trivial", "features", "collections"}
    # Every task pod was deleted after its attempt.
    selector = ",".join(f"{k}={v}" for k, v in kube.MANAGED_BY.items())
    assert pipelines_ready.core.list_namespaced_pod("opendatahub", label_selector=selector).items == []


def test_a_failing_task_shows_its_exit_code_and_log_tail(appliance: Appliance, compiled: dict[str, Path]) -> None:
    result = cli(appliance, "run", str(compiled["failing"]), "-p", "marker_dir=/tmp", "-p", "code=9")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: task exit-handler-1/boom failed: exit code 9" in result.stderr
    assert "about to fail: the disk is full (simulated)" in result.stderr  # the log tail
    assert "Traceback" not in result.stderr
    run_id = json.loads(cli(appliance, "list", "--json").stdout)[0]["run_id"]
    log = cli(appliance, "logs", run_id, "exit-handler-1/boom")
    assert log.returncode == 0 and "the disk is full (simulated)" in log.stdout


def test_retries_are_honoured_each_attempt_a_new_pod(appliance: Appliance, compiled: dict[str, Path]) -> None:
    key = f"e2e/counters/{uuid.uuid4().hex}"
    run = run_json(appliance, str(compiled["retries-s3"]), "-p", f"key={key}", "-p", "fail_times=2")
    assert run["state"] == "succeeded", run["error"]
    (flaky,) = run["tasks"]
    assert flaky["attempts"] == 3 and flaky["outputs"]["parameters"]["Output"] == 3


def test_deleting_the_server_pod_mid_run_fails_the_run_with_the_reason(
    pipelines_ready: k8s.Cluster, appliance: Appliance, compiled: dict[str, Path]
) -> None:
    cluster = pipelines_ready
    started = cli(appliance, "run", str(compiled["slow"]), "-p", "seconds=120", "--no-wait")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip().splitlines()[-1]
    namespace = "opendatahub"
    run_selector = f"{kube.RUN_LABEL}={kube.run_label(run_id)}"

    def task_running() -> tuple[bool, str]:
        pods = cluster.core.list_namespaced_pod(namespace, label_selector=run_selector).items
        phases = [p.status.phase for p in pods]
        return "Running" in phases, f"task pods: {phases}"

    k8s.wait_for("the slow task's pod", task_running, timeout=RUN_TIMEOUT, hint="")
    server_selector = ",".join(f"{k}={v}" for k, v in pipelineserver.SELECTOR.items())
    (old,) = cluster.core.list_namespaced_pod(namespace, label_selector=server_selector).items
    cluster.core.delete_namespaced_pod(old.metadata.name, namespace)
    k8s.wait_for(
        "a new pipeline server", lambda: k8s.deployment_ready(cluster, namespace, pipelineserver.NAME),
        timeout=READY_TIMEOUT, hint="",
    )  # fmt: skip
    deadline = time.monotonic() + READY_TIMEOUT
    got = cli(appliance, "get", run_id, "--json")
    while not got.stdout.strip() and time.monotonic() < deadline:  # until the new server answers (behind the gateway)
        time.sleep(1)
        got = cli(appliance, "get", run_id, "--json")
    assert got.stdout.strip(), got.stderr
    run = json.loads(got.stdout)
    # Deleted gracefully, the server fails its runs on SIGTERM; killed, its successor does on start.
    reasons = (server.STOP_REASON, server.RESTART_REASON)
    assert run["state"] == "failed" and run["error"] in reasons, run["error"]
    (sleep,) = run["tasks"]
    assert sleep["state"] == "failed" and sleep["error"] == run["error"]
    assert f"error: {run['error']}" in got.stderr
    # The interrupted task's pod is gone, and new runs work.
    assert cluster.core.list_namespaced_pod(namespace, label_selector=run_selector).items == []
    again = run_json(appliance, "trivial", "-p", "x=1", "--no-cache")
    assert again["state"] == "succeeded" and again["outputs"] == {"Output": 4}

"""Data science pipelines on the real kind cluster: the operator deploys the pipeline server when
`datasciencepipelines` is Managed, and `appliance pipelines upload | run | list | get | logs` drive
it through the gateway. Pipelines from the part-1 integration set (compiled by the real kfp SDK) run
with each task a pod on the pipeline-runner image (their `python:3.x` image is not on the node);
a failing task shows its exit code and log tail; retries are honoured (each attempt a new pod);
deleting the server's pod mid-run fails the run with the reason, and its task pod is cleaned up.
examples/iris_onnx runs end to end (its model served, smoke-tested in the cluster and called from here).

Named `test_d_*` so it runs before `test_y_cluster.py` (which ends with `appliance down`). It also runs
alone: the `cluster` fixture brings the platform up.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client

from appliance import api, k8s
from appliance.actions import platform
from appliance.operator import crds, gateway, inference, install, pipelineserver
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


EXAMPLE = Path(__file__).parents[2] / "examples" / "iris_onnx"


@pytest.fixture(scope="module")
def example_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/iris_onnx compiled as its README says (`python pipeline.py OUT.yaml`), by the task Python's kfp."""
    from appliance.pipelines import local  # noqa: PLC0415

    target = tmp_path_factory.mktemp("example") / "iris_onnx.yaml"
    argv = [local.find_task_python(), "-W", "ignore", str(EXAMPLE / "pipeline.py"), str(target)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return target


def test_the_example_trains_serves_and_smoke_tests_a_model(
    pipelines_ready: k8s.Cluster, appliance: Appliance, loaded: api.Loaded, example_yaml: Path
) -> None:
    """examples/README.md on the cluster: the CSV uploaded to MinIO through the gateway, the pipeline run by
    the pipeline server (ingest → train → ONNX → InferenceService → in-cluster smoke test), then the model
    called from this host through the gateway with its token, and the InferenceService deleted."""
    import minio  # noqa: PLC0415

    cluster, namespace, name = pipelines_ready, "opendatahub", "iris-e2e"
    server_pod = cluster.apps.read_namespaced_deployment(pipelineserver.NAME, namespace).spec.template.spec
    assert "--task-service-account" in server_pod.containers[0].command, (
        "the operator running in the cluster predates task pods' own ServiceAccount: its image is not this "
        "checkout's (another build retagged the shared operator:latest between `images build` and `up`); rerun"
    )
    creds = api.credentials(loaded)
    s3 = minio.Minio(urlsplit(appliance.gateway_url).netloc, creds["access_key"], creds["secret_key"], secure=False)
    s3.fput_object("data", "iris/iris.csv", str(EXAMPLE / "iris.csv"))
    custom = client.CustomObjectsApi(cluster.api_client)
    group, version, plural = inference.ISVC
    try:
        uploaded = cli(appliance, "upload", str(example_yaml))  # as examples/README.md: upload, then run by name
        assert uploaded.returncode == 0 and "uploaded iris-onnx version v1" in uploaded.stdout, uploaded.stderr
        started = time.monotonic()
        run = run_json(appliance, "iris-onnx", "-p", f"model_name={name}")
        seconds = ", ".join(f"{t['task_id']} {t['seconds']:.1f}s" for t in run["tasks"] if t.get("seconds"))
        print(f"iris-onnx: submit → {run['state']} {time.monotonic() - started:.1f}s wall; {seconds}")  # benchmarks
        tails = "\n".join(f"--- {t['task_id']}: {t['error']}\n{t['log_tail']}" for t in run["tasks"] if t["error"])
        assert run["state"] == "succeeded", f"{run['error']}\n{tails}"
        tasks = tasks_by_id(run)
        assert tasks["ingest"]["outputs"]["parameters"]["Output"] == 150
        assert run["outputs"]["Output"] >= 0.9  # the test accuracy
        smoke = tasks["condition-1/smoke-test"]["outputs"]["parameters"]["Output"]
        assert smoke == f"{name}: 150 rows, served labels equal scikit-learn's"
        isvc = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        assert isvc["spec"]["predictor"]["model"]["storageUri"].startswith("s3://pipelines/iris-onnx/")

        # From this host through the gateway: the token is required, the answers are the iris species.
        url = f"{isvc['status']['url']}/v2/models/{name}/infer"
        assert url.startswith(f"{appliance.gateway_url}/serving/{namespace}/{name}/")
        secret = cluster.core.read_namespaced_secret(gateway.token_secret_name(name), namespace)
        token = base64.b64decode(secret.data["token"]).decode()
        rows = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [7.7, 3.0, 6.1, 2.3]]  # one of each species
        flat = [value for row in rows for value in row]
        body = {"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "data": flat}]}
        answer: dict[str, Any] = {}

        def answers() -> tuple[bool, str]:  # the gateway routes the model once it has rolled its new config
            code, got = post_json(url, body, token)
            answer.update(got)
            return code == 200, f"HTTP {code}: {got}"

        k8s.wait_for("the model through the gateway", answers, timeout=90, hint="kubectl -n opendatahub get pods")
        labels = next(o for o in answer["outputs"] if o["name"] == "label")
        assert labels["data"] == [0, 1, 2]  # setosa, versicolor, virginica
        assert post_json(url, body, None)[0] == 401
    finally:
        with contextlib.suppress(client.ApiException):
            custom.delete_namespaced_custom_object(group, version, namespace, plural, name)

    def gone() -> tuple[bool, str]:
        names = [d.metadata.name for d in cluster.apps.list_namespaced_deployment(namespace).items]
        return f"{name}-predictor" not in names, f"deployments: {names}"

    k8s.wait_for("the example's predictor deleted", gone, timeout=120, hint="")


def post_json(url: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), dict(json.load(response))
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode(errors="replace")[:300]}
    except (urllib.error.URLError, ConnectionError) as exc:
        return 0, {"error": str(exc)}

"""Workbenches on the real kind cluster: a Notebook in the upstream YAML shape (as a workshop applies
it) starts JupyterLab behind its Service with token auth, stops and starts with the annotation, trains
a scikit-learn model in the workbench pod and puts its ONNX export into MinIO through the data
connection, reports bad specs and missing images as conditions + Warning Events, and is culled when
idle.

Named `test_b_*`: after `test_a_platform.py`, before `test_y_cluster.py` (which ends with `down`).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from appliance import k8s
from appliance.operator import crds, dataconnection, install, notebook
from tests.e2e.conftest import Appliance
from tests.e2e.test_a_platform import condition, dsc, wait_secret

pytestmark = pytest.mark.e2e

PROJECT = "e2e-workbench"
NAME = "wb"
NOTEBOOK_YAML = f"""
apiVersion: kubeflow.org/v1
kind: Notebook
metadata:
  name: {NAME}
  namespace: {PROJECT}
  labels:
    app: {NAME}
    opendatahub.io/dashboard: "true"
  annotations:
    openshift.io/display-name: My workbench
    notebooks.opendatahub.io/inject-oauth: "false"
spec:
  template:
    spec:
      containers:
        - name: {NAME}
          image: localhost/odh-appliance/workbench:latest
          imagePullPolicy: IfNotPresent
          resources:
            requests: {{cpu: 100m, memory: 256Mi}}
            limits: {{memory: 2Gi}}
          envFrom:
            - secretRef:
                name: aws-connection-minio
"""
STATUS_URL = f"http://{NAME}.{PROJECT}.svc.cluster.local/notebook/{PROJECT}/{NAME}/api/status"
PROBE = """
import os, sys, urllib.request, urllib.error
url = sys.argv[1]
def get(headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
code, body = get({"Authorization": "token " + os.environ["JUPYTER_TOKEN"]})
print("with-token", code, body)
print("without-token", get({})[0])
"""
TRAIN = """
import os, boto3, numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx
import onnxruntime as ort
X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(X, y)
onx = to_onnx(model, X[:1].astype(np.float32), options={"zipmap": False}).SerializeToString()
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_S3_ENDPOINT"], region_name=os.environ["AWS_DEFAULT_REGION"])
bucket = os.environ["AWS_S3_BUCKET"]
s3.put_object(Bucket=bucket, Key="e2e-workbench/iris.onnx", Body=onx)
back = s3.get_object(Bucket=bucket, Key="e2e-workbench/iris.onnx")["Body"].read()
sess = ort.InferenceSession(back)
pred = sess.run(None, {sess.get_inputs()[0].name: X[:3].astype(np.float32)})[0]
print("uploaded", bucket, len(onx), "pred", list(pred))
"""


def notebooks_api(cluster: k8s.Cluster) -> Any:
    from kubernetes import client  # noqa: PLC0415

    return client.CustomObjectsApi(cluster.api_client)


def read_notebook(cluster: k8s.Cluster, name: str = NAME) -> dict[str, Any]:
    api = notebooks_api(cluster)
    return dict(api.get_namespaced_custom_object(crds.KUBEFLOW_GROUP, "v1", PROJECT, "notebooks", name))


def annotate(cluster: k8s.Cluster, name: str, value: str | None) -> None:
    body = {"metadata": {"annotations": {notebook.STOP_ANNOTATION: value}}}
    notebooks_api(cluster).patch_namespaced_custom_object(crds.KUBEFLOW_GROUP, "v1", PROJECT, "notebooks", name, body)


def ready(cluster: k8s.Cluster, name: str = NAME) -> tuple[bool, str]:
    status = read_notebook(cluster, name).get("status") or {}
    ok = status.get("readyReplicas") == 1 and condition({"status": status}, "Ready").get("status") == "True"
    return ok, f"status: {json.dumps(status)[:300]}"


def replicas(cluster: k8s.Cluster, name: str = NAME) -> int:
    return int(cluster.apps.read_namespaced_stateful_set(name, PROJECT).spec.replicas)


def pod_exists(cluster: k8s.Cluster, name: str) -> bool:
    return any(p.metadata.name == f"{name}-0" for p in cluster.core.list_namespaced_pod(PROJECT).items)


def exec_python(cluster: k8s.Cluster, script: str, *args: str, timeout: int = 180) -> str:
    """Run a Python script in the workbench pod (the stream API, as `kubectl exec`); its stdout."""
    from kubernetes import client  # noqa: PLC0415
    from kubernetes.stream import stream  # noqa: PLC0415

    core = client.CoreV1Api(cluster.api_client)
    resp = stream(core.connect_get_namespaced_pod_exec, f"{NAME}-0", PROJECT, container=NAME,
                  command=["python3", "-c", script, *args], stdout=True, stderr=True, stdin=False, tty=False,
                  _preload_content=False)  # fmt: skip
    resp.run_forever(timeout=timeout)
    out, err = resp.read_stdout(), resp.read_stderr()
    assert resp.returncode == 0, f"exec failed ({resp.returncode}):\n{out}\n{err}"
    return str(out)


def warned(cluster: k8s.Cluster, name: str, reason: str) -> tuple[bool, str]:
    events = cluster.core.list_namespaced_event(PROJECT, field_selector="type=Warning").items
    found = any(e.involved_object.name == name and e.reason == reason for e in events)
    return found, f"no Warning event {reason} on {name}"


@pytest.fixture(scope="module")
def project(cluster: k8s.Cluster) -> str:
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": PROJECT, "labels": {dataconnection.PROJECT_LABEL: "true"}}}  # fmt: skip
    cluster.apply([ns])
    wait_secret(cluster, PROJECT, dataconnection.NAME)
    return PROJECT


@pytest.fixture(scope="module")
def workbench(cluster: k8s.Cluster, project: str) -> str:
    cluster.apply_yaml(NOTEBOOK_YAML)
    k8s.wait_for("the workbench to be ready", lambda: ready(cluster), timeout=240,
                 hint=f"kubectl -n {PROJECT} describe pod {NAME}-0; the operator's logs")  # fmt: skip
    return NAME


def test_workbenches_ready_in_the_dsc(cluster: k8s.Cluster) -> None:
    k8s.wait_for("WorkbenchesReady", lambda: (condition(dsc(cluster), "WorkbenchesReady").get("status") == "True",
                 str(condition(dsc(cluster), "WorkbenchesReady"))), timeout=60, hint="")  # fmt: skip
    assert dsc(cluster)["status"]["installedComponents"]["workbenches"] is True


def test_notebook_runs_as_upstream(cluster: k8s.Cluster, workbench: str) -> None:
    svc = cluster.core.read_namespaced_service(NAME, PROJECT)
    assert [(p.port, p.target_port) for p in svc.spec.ports] == [(80, 8888)]
    assert svc.spec.selector == {"statefulset": NAME}
    assert cluster.core.read_namespaced_persistent_volume_claim(NAME, PROJECT).status.phase == "Bound"
    secret = cluster.core.read_namespaced_secret(notebook.token_secret_name(NAME), PROJECT)
    assert secret.metadata.owner_references[0].kind == "Notebook"
    status = read_notebook(cluster)["status"]
    assert "running" in status["containerState"]
    assert status["url"] == f"/notebook/{PROJECT}/{NAME}/"


def test_jupyterlab_answers_on_the_service_with_the_token_only(cluster: k8s.Cluster, workbench: str) -> None:
    def answered() -> tuple[bool, str]:
        out = exec_python(cluster, PROBE, STATUS_URL)
        return "with-token 200" in out, out

    k8s.wait_for("JupyterLab through the Service", answered, timeout=90, hint="")
    out = exec_python(cluster, PROBE, STATUS_URL)
    assert "last_activity" in out
    without = out.split("without-token", 1)[1].split()[0]
    assert without in ("403", "302", "401"), out


def jupyter_token(cluster: k8s.Cluster) -> str:
    secret = cluster.core.read_namespaced_secret(notebook.token_secret_name(NAME), PROJECT)
    return base64.b64decode(secret.data[notebook.TOKEN_KEY]).decode()


def gateway_get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError as exc:
        return 0, str(exc)


def test_jupyterlab_answers_through_the_gateway_with_its_token(
    cluster: k8s.Cluster, appliance: Appliance, workbench: str
) -> None:
    url = f"{appliance.gateway_url}/notebook/{PROJECT}/{NAME}/api/status"
    auth = {"Authorization": f"token {jupyter_token(cluster)}"}

    def answered() -> tuple[bool, str]:
        code, body = gateway_get(url, auth)
        return code == 200, f"{code} {body[:200]}"

    k8s.wait_for("JupyterLab through the gateway", answered, timeout=90, hint="the route should come within seconds")
    assert "last_activity" in gateway_get(url, auth)[1]
    assert gateway_get(url, {})[0] in (401, 403)
    assert gateway_get(url, {"Authorization": "token wrong"})[0] in (401, 403)


def run_in_kernel(base: str, token: str, code: str, timeout: float = 300) -> str:
    """Start a kernel through the gateway (REST), run `code` over its websocket channel (Jupyter
    messaging protocol 5.3), and return its stdout; fail with the traceback when the cell fails."""
    from websockets.sync.client import connect  # noqa: PLC0415

    auth = {"Authorization": f"token {token}"}
    request = urllib.request.Request(f"{base}/api/kernels", data=b"{}", headers=auth, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        kernel = json.loads(resp.read())["id"]
    session, msg_id = uuid.uuid4().hex, uuid.uuid4().hex
    message = {
        "header": {"msg_id": msg_id, "username": "e2e", "session": session, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }  # fmt: skip
    out: list[str] = []
    deadline = time.monotonic() + timeout
    ws_url = f"{base.replace('http://', 'ws://')}/api/kernels/{kernel}/channels?session_id={session}"
    try:
        with connect(ws_url, additional_headers=auth, open_timeout=30, max_size=None) as ws:
            ws.send(json.dumps(message))
            while time.monotonic() < deadline:
                reply = json.loads(ws.recv(timeout=max(1.0, deadline - time.monotonic())))
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = reply["msg_type"], reply["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    raise AssertionError("the cell failed:\n" + "\n".join(content["traceback"]))
                elif kind == "execute_reply":
                    assert content["status"] == "ok", content
                    return "".join(out)
        raise AssertionError(f"no execute_reply within {timeout} s; output so far: {''.join(out)}")
    finally:
        delete = urllib.request.Request(f"{base}/api/kernels/{kernel}", headers=auth, method="DELETE")
        urllib.request.urlopen(delete, timeout=30).close()


def test_kernel_trains_exports_onnx_and_uploads_through_the_data_connection(
    cluster: k8s.Cluster, appliance: Appliance, workbench: str
) -> None:
    base = f"{appliance.gateway_url}/notebook/{PROJECT}/{NAME}"
    out = run_in_kernel(base, jupyter_token(cluster), TRAIN)
    assert "uploaded data" in out, out
    listing = exec_python(cluster, "import os, boto3; s3 = boto3.client('s3', endpoint_url=os.environ["
                          "'AWS_S3_ENDPOINT']); print(s3.head_object(Bucket='data', Key='e2e-workbench/iris.onnx')"
                          "['ContentLength'])")  # fmt: skip
    assert int(listing.strip()) > 100


ISVC_YAML = f"""
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  namespace: {PROJECT}
spec:
  predictor:
    model:
      modelFormat: {{name: onnx}}
      storageUri: s3://data/e2e-workbench/iris.onnx
"""


def test_the_model_the_kernel_trained_serves_through_the_gateway(
    cluster: k8s.Cluster, appliance: Appliance, workbench: str
) -> None:
    """The data science loop: the ONNX file the kernel wrote to MinIO becomes an InferenceService that
    answers OIP v2 through the gateway with its token, and agrees with scikit-learn."""
    import numpy as np  # noqa: PLC0415
    import tritonclient.http as httpclient  # noqa: PLC0415

    from appliance.operator import gateway, inference  # noqa: PLC0415

    cluster.apply_yaml(ISVC_YAML)
    group, version, plural = inference.ISVC
    api = notebooks_api(cluster)

    def ready_isvc() -> tuple[bool, str]:
        status = api.get_namespaced_custom_object(group, version, PROJECT, plural, "iris").get("status") or {}
        return condition({"status": status}, "Ready").get("status") == "True", json.dumps(status)[:400]

    try:
        k8s.wait_for("the iris InferenceService", ready_isvc, timeout=240, hint="")
        secret = cluster.core.read_namespaced_secret(gateway.token_secret_name("iris"), PROJECT)
        headers = {"Authorization": f"Bearer {base64.b64decode(secret.data['token']).decode()}"}
        url = f"{appliance.gateway_url.removeprefix('http://')}/serving/{PROJECT}/iris"
        client = httpclient.InferenceServerClient(url=url)
        k8s.wait_for("the route", lambda: (gateway_get(f"http://{url}/v2/health/ready", headers)[0] == 200, ""),
                     timeout=60, hint="")  # fmt: skip
        meta = client.get_model_metadata("iris", headers=headers)
        first = meta["inputs"][0]
        rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)  # a setosa, a virginica
        item = httpclient.InferInput(first["name"], list(rows.shape), "FP32")
        item.set_data_from_numpy(rows)
        result = client.infer("iris", [item], headers=headers)
        labels = result.as_numpy(meta["outputs"][0]["name"])
        assert labels is not None and labels.ravel().tolist() == [0, 2]
    finally:
        api.delete_namespaced_custom_object(group, version, PROJECT, plural, "iris")


def test_stop_and_start_with_the_annotation(cluster: k8s.Cluster, workbench: str) -> None:
    annotate(cluster, NAME, "2026-01-01T00:00:00Z")
    k8s.wait_for("stopped", lambda: (replicas(cluster) == 0 and not pod_exists(cluster, NAME), "still running"),
                 timeout=120, hint="")  # fmt: skip
    k8s.wait_for("status 0 ready",
                 lambda: ((read_notebook(cluster).get("status") or {}).get("readyReplicas") == 0, "not yet"),
                 timeout=60, hint="")  # fmt: skip
    annotate(cluster, NAME, None)
    k8s.wait_for("started again", lambda: ready(cluster), timeout=180, hint="")
    assert replicas(cluster) == 1


def test_no_containers_is_invalid_spec_and_an_event(cluster: k8s.Cluster, project: str) -> None:
    bad = {"apiVersion": "kubeflow.org/v1", "kind": "Notebook", "metadata": {"name": "empty", "namespace": PROJECT},
           "spec": {"template": {"spec": {"containers": []}}}}  # fmt: skip
    cluster.apply([bad])

    def invalid() -> tuple[bool, str]:
        cond = condition(read_notebook(cluster, "empty"), "Ready")
        return cond.get("reason") == "InvalidSpec", str(cond)

    k8s.wait_for("InvalidSpec", invalid, timeout=60, hint="")
    k8s.wait_for("a Warning event", lambda: warned(cluster, "empty", "InvalidSpec"), timeout=30, hint="")
    assert "containers" in condition(read_notebook(cluster, "empty"), "Ready")["message"]


def test_missing_image_is_a_condition_and_an_event(cluster: k8s.Cluster, project: str) -> None:
    container = {"name": "noimage", "image": "localhost/odh-appliance/not-built:1", "imagePullPolicy": "Never"}
    bad = {"apiVersion": "kubeflow.org/v1", "kind": "Notebook", "metadata": {"name": "noimage", "namespace": PROJECT},
           "spec": {"template": {"spec": {"containers": [container]}}}}  # fmt: skip
    cluster.apply([bad])

    def unavailable() -> tuple[bool, str]:
        cond = condition(read_notebook(cluster, "noimage"), "Ready")
        return cond.get("reason") == "ImageNotAvailable", str(cond)

    k8s.wait_for("ImageNotAvailable", unavailable, timeout=90, hint="")
    k8s.wait_for("a Warning event", lambda: warned(cluster, "noimage", "ImageNotAvailable"), timeout=30, hint="")
    assert "ErrImageNeverPull" in condition(read_notebook(cluster, "noimage"), "Ready")["message"]
    for name in ("empty", "noimage"):
        notebooks_api(cluster).delete_namespaced_custom_object(crds.KUBEFLOW_GROUP, "v1", PROJECT, "notebooks", name)


def restart_operator(cluster: k8s.Cluster) -> None:
    selector = ",".join(f"{k}={v}" for k, v in install.LABELS.items())
    old = {p.metadata.name for p in cluster.core.list_namespaced_pod(install.NAMESPACE, label_selector=selector).items}
    for name in old:
        cluster.core.delete_namespaced_pod(name, install.NAMESPACE, grace_period_seconds=0)

    def fresh() -> tuple[bool, str]:
        pods = cluster.core.list_namespaced_pod(install.NAMESPACE, label_selector=selector).items
        if not any(p.metadata.name not in old for p in pods):
            return False, "no new operator pod"
        return k8s.deployment_ready(cluster, install.NAMESPACE, install.NAME)

    k8s.wait_for("the operator restarted", fresh, timeout=120, hint="")


def test_idle_notebook_is_culled(cluster: k8s.Cluster, workbench: str) -> None:
    """Culling on (CULL_IDLE_TIME=1, IDLENESS_CHECK_PERIOD=1 through the operator's ConfigMap): the idle
    notebook gets `kubeflow-resource-stopped` and scales to 0 within 4 minutes."""
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": install.CULLER_CONFIG, "namespace": install.NAMESPACE},
              "data": {"ENABLE_CULLING": "true", "CULL_IDLE_TIME": "1", "IDLENESS_CHECK_PERIOD": "1"}}  # fmt: skip
    cluster.apply([config])
    try:
        restart_operator(cluster)
        k8s.wait_for("ready before culling", lambda: ready(cluster), timeout=120, hint="")

        def culled() -> tuple[bool, str]:
            annotations = read_notebook(cluster)["metadata"].get("annotations") or {}
            return notebook.STOP_ANNOTATION in annotations and replicas(cluster) == 0, str(annotations)

        k8s.wait_for("the idle notebook culled", culled, timeout=240, interval=5, hint="see the operator's logs")
        annotations = read_notebook(cluster)["metadata"]["annotations"]
        assert "notebooks.kubeflow.org/last-activity" in annotations
    finally:
        cluster.core.delete_namespaced_config_map(install.CULLER_CONFIG, install.NAMESPACE)
        restart_operator(cluster)

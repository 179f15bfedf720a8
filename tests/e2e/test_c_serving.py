"""Model serving on the real kind cluster: an InferenceService in the upstream YAML shape serves an
ONNX model from MinIO through the project's data connection, answers Open Inference Protocol v2
requests (REST and gRPC) from inside the cluster, rolls out a new model version without dropping a
request, reports bad specs as conditions and Warning events, and takes its Deployment and Service
with it on delete.

Named `test_c_*` so it runs after the platform tests and before `test_y_cluster.py` (which ends with
`appliance down`). It also runs alone: the `cluster` fixture brings the platform up.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from appliance import k8s
from appliance.actions import platform
from appliance.operator import crds, dataconnection, gateway, inference, install
from tests import onnx_models
from tests.e2e import conftest
from tests.e2e.conftest import Appliance

pytestmark = pytest.mark.e2e

PROJECT = "e2e-serving"
IMAGE = "localhost/odh-appliance/model-server:latest"  # python3 with the minio client
ISVC_YAML = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
  namespace: {namespace}
  annotations:
    serving.kserve.io/deploymentMode: RawDeployment
spec:
  predictor:
    minReplicas: 1
    model:
      modelFormat:
        name: {format}
      storageUri: {uri}
      storage:
        key: {key}
"""
UPLOAD = """
import base64, io, os, urllib.parse
from minio import Minio
url = urllib.parse.urlparse(os.environ["AWS_S3_ENDPOINT"])
s3 = Minio(url.netloc, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], secure=False,
           region=os.environ["AWS_DEFAULT_REGION"])
for key in ("V1", "V2"):
    data = base64.b64decode(os.environ[key])
    s3.put_object("models", f"e2e/demo/{key.lower()}/model.onnx", io.BytesIO(data), len(data))
    print("uploaded", key)
"""
INFER = """
import json, os, sys, time, urllib.request
body = json.dumps({"inputs": [{"name": n, "datatype": "FP32", "shape": [1, 4], "data": [v + i for v in (1, 2, 3, 4)]}
                              for i, n in enumerate("abcd")]}).encode()
def infer():
    url = os.environ["URL"] + "/v2/models/demo/infer"
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return {o["name"]: o["data"] for o in json.load(resp)["outputs"]}
mode = os.environ.get("MODE", "once")
if mode == "once":
    print("RESULT " + json.dumps(infer()))
    sys.exit(0)
# loop: ask until SECONDS pass or WANT (a JSON answer) came back 10 times in a row; count failures.
want, ok, failures, count, streak = json.loads(os.environ["WANT"]), 0, [], 0, 0
deadline = time.monotonic() + float(os.environ["SECONDS"])
print("started", flush=True)
while time.monotonic() < deadline and streak < 10:
    count += 1
    try:
        got = infer()
        streak = streak + 1 if all(abs(x - y) < 1e-4 for k in want for x, y in zip(got[k], want[k])) else 0
    except Exception as exc:
        failures.append(repr(exc))
    time.sleep(0.05)
print("LOOP " + json.dumps({"count": count, "failures": failures, "streak": streak}))
"""


def second_version(path: Path) -> Path:
    """The same 4-in/3-out signature with other arithmetic: sum = a - b, product = c + d, mixed = a * d."""
    fp = TensorProto.FLOAT
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["a", "b"], ["sum"]),
            helper.make_node("Add", ["c", "d"], ["product"]),
            helper.make_node("Mul", ["a", "d"], ["mixed"]),
        ],
        "four_in_three_out_v2",
        [helper.make_tensor_value_info(n, fp, ["batch", 4]) for n in "abcd"],
        [helper.make_tensor_value_info(n, fp, ["batch", 4]) for n in ("sum", "product", "mixed")],
    )
    return onnx_models._save(graph, path)


def inputs() -> list[np.ndarray]:
    return [np.array([[v + i for v in (1, 2, 3, 4)]], dtype=np.float32) for i in range(4)]


def expected_v1() -> dict[str, list[float]]:
    a, b, c, d = inputs()
    return {k: v.ravel().tolist() for k, v in onnx_models.four_in_three_out_reference(a, b, c, d).items()}


def expected_v2() -> dict[str, list[float]]:
    a, b, c, d = inputs()
    return {"sum": (a - b).ravel().tolist(), "product": (c + d).ravel().tolist(), "mixed": (a * d).ravel().tolist()}


def custom(cluster: k8s.Cluster) -> Any:
    from kubernetes import client  # noqa: PLC0415

    return client.CustomObjectsApi(cluster.api_client)


def read_isvc(cluster: k8s.Cluster, name: str) -> dict[str, Any]:
    group, version, plural = inference.ISVC
    return dict(custom(cluster).get_namespaced_custom_object(group, version, PROJECT, plural, name))


def ready(cluster: k8s.Cluster, name: str) -> dict[str, Any]:
    for cond in (read_isvc(cluster, name).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return dict(cond)
    return {}


def apply_isvc(cluster: k8s.Cluster, name: str, uri: str, fmt: str = "onnx", key: str = dataconnection.NAME) -> None:
    cluster.apply_yaml(ISVC_YAML.format(name=name, namespace=PROJECT, uri=uri, format=fmt, key=key))


def start_pod(cluster: k8s.Cluster, prefix: str, script: str, env: dict[str, str]) -> str:
    name = f"e2e-{prefix}-{int(time.time() * 1000) % 10**8}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": PROJECT},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                "command": ["python3", "-c", script],
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "envFrom": [{"secretRef": {"name": dataconnection.NAME}}],
            }],
        },
    }  # fmt: skip
    cluster.apply([pod])
    return name


def finish_pod(cluster: k8s.Cluster, name: str, timeout: float = 180) -> str:
    return conftest.finish_pod(cluster, name, PROJECT, timeout)


def infer_once(cluster: k8s.Cluster, url: str) -> dict[str, list[float]]:
    log = finish_pod(cluster, start_pod(cluster, "infer", INFER, {"URL": url}))
    (line,) = [x for x in log.splitlines() if x.startswith("RESULT ")]
    return dict(json.loads(line.removeprefix("RESULT ")))


def close(got: dict[str, list[float]], want: dict[str, list[float]]) -> bool:
    return set(got) == set(want) and all(np.allclose(got[k], want[k], atol=1e-5) for k in want)


def wait_ready(cluster: k8s.Cluster, name: str, timeout: float = 240) -> None:
    def check() -> tuple[bool, str]:
        obj = read_isvc(cluster, name)
        cond = ready(cluster, name)
        fresh = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
        return cond.get("status") == "True" and fresh, f"{cond.get('reason')}: {cond.get('message')}"

    k8s.wait_for(f"InferenceService {name} Ready", check, timeout=timeout, hint="see the operator's logs")


def gone(cluster: k8s.Cluster, name: str) -> tuple[bool, str]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    for fn in (cluster.apps.read_namespaced_deployment, cluster.core.read_namespaced_service):
        try:
            fn(name, PROJECT)
            return False, f"{fn.__name__} still finds {name}"
        except ApiException as exc:
            if exc.status != 404:
                raise
    return True, ""


@pytest.fixture(scope="module")
def project(cluster: k8s.Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A data science project with two versions of a model uploaded through its data connection."""
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": PROJECT, "labels": {dataconnection.PROJECT_LABEL: "true"}}}  # fmt: skip
    cluster.apply([ns])
    k8s.wait_for("the data connection",
                 lambda: (any(s.metadata.name == dataconnection.NAME
                              for s in cluster.core.list_namespaced_secret(PROJECT).items), "absent"),
                 timeout=120, hint="the operator did not create it")  # fmt: skip
    models = tmp_path_factory.mktemp("models")
    v1 = onnx_models.four_in_three_out(models / "v1.onnx").read_bytes()
    v2 = second_version(models / "v2.onnx").read_bytes()
    env = {"V1": base64.b64encode(v1).decode(), "V2": base64.b64encode(v2).decode()}
    log = finish_pod(cluster, start_pod(cluster, "upload", UPLOAD, env))
    assert "uploaded V2" in log
    return PROJECT


def test_project_gets_the_default_onnx_serving_runtime(cluster: k8s.Cluster, project: str) -> None:
    group, version, plural = inference.RUNTIMES

    def present() -> tuple[bool, str]:
        items = custom(cluster).list_namespaced_custom_object(group, version, project, plural)["items"]
        return any(rt["metadata"]["name"] == inference.DEFAULT_RUNTIME for rt in items), "absent"

    k8s.wait_for("the default ServingRuntime", present, timeout=60, hint="")
    rt = custom(cluster).get_namespaced_custom_object(group, version, project, plural, inference.DEFAULT_RUNTIME)
    assert rt["spec"]["supportedModelFormats"][0]["name"] == "onnx"


def test_dsc_reports_kserve_ready(cluster: k8s.Cluster, project: str) -> None:
    """KserveReady is True only because the controller runs and the model-server image is on the node."""

    def kserve() -> dict[str, Any]:
        dsc = platform.read_cluster_object(cluster, crds.DSC_GROUP, "v1", "datascienceclusters", install.DSC_NAME)
        conds = ((dsc or {}).get("status") or {}).get("conditions") or []
        return next((dict(c) for c in conds if c["type"] == "KserveReady"), {})

    k8s.wait_for("KserveReady", lambda: (kserve().get("status") == "True", str(kserve())), timeout=60, hint="")
    cond = kserve()
    assert cond["reason"] == "ReconcileCompleted"
    assert "the InferenceService controller runs" in cond["message"]


def test_inference_service_serves_rolls_out_and_is_deleted(
    cluster: k8s.Cluster, appliance: Appliance, project: str
) -> None:
    apply_isvc(cluster, "demo", "s3://models/e2e/demo/v1")
    wait_ready(cluster, "demo")
    status = read_isvc(cluster, "demo")["status"]
    internal = status["address"]["url"]
    assert internal == f"http://demo-predictor.{project}.svc.cluster.local:8080"
    assert status["url"] == f"{appliance.gateway_url}/serving/{project}/demo"
    assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
    assert close(infer_once(cluster, internal), expected_v1())
    through_the_gateway(cluster, appliance, project, "demo", expected_v1())
    # The same model over gRPC on the predictor's own grpc port, no gateway in between (the model-server
    # image carries no gRPC client: the server is pygrpc-native), with grpcio's generated stub from here.
    assert close(grpc_direct(cluster, project, "demo"), expected_v1())

    # A new storageUri: a new ReplicaSet rolls out while a client keeps asking; no request fails.
    dep = cluster.apps.read_namespaced_deployment("demo-predictor", project)
    assert dep.spec.strategy.rolling_update.max_unavailable == 0
    looper = start_pod(cluster, "loop", INFER, {"URL": internal, "MODE": "loop", "SECONDS": "150",
                                                "WANT": json.dumps(expected_v2())})  # fmt: skip
    k8s.wait_for("the client loop to start",
                 lambda: ("started" in _log(cluster, looper), "not yet"), timeout=60, hint="")  # fmt: skip
    apply_isvc(cluster, "demo", "s3://models/e2e/demo/v2")
    wait_ready(cluster, "demo")
    log = finish_pod(cluster, looper, timeout=200)
    (line,) = [x for x in log.splitlines() if x.startswith("LOOP ")]
    loop = json.loads(line.removeprefix("LOOP "))
    assert loop["failures"] == [], loop
    assert loop["streak"] >= 10, loop  # it saw the new model answer
    assert close(infer_once(cluster, internal), expected_v2())
    selector = ",".join(f"{k}={v}" for k, v in inference.selector("demo").items())
    sets = cluster.apps.list_namespaced_replica_set(project, label_selector=selector).items
    assert len(sets) >= 2  # the old ReplicaSet (scaled to 0) and the new one

    token = model_token(cluster, "demo")
    group, version, plural = inference.ISVC
    custom(cluster).delete_namespaced_custom_object(group, version, project, plural, "demo")
    k8s.wait_for("the predictor Deployment and Service gone", lambda: gone(cluster, "demo-predictor"),
                 timeout=120, hint="owner references should let the garbage collector remove them")  # fmt: skip
    k8s.wait_for("the token Secret gone", lambda: (not secret_exists(cluster, gateway.token_secret_name("demo")),
                 "still there"), timeout=60, hint="")  # fmt: skip
    k8s.wait_for("the route gone", lambda: (http_status(f"{status['url']}/v2/health/ready", token) != 200,
                 "still answers"), timeout=60, hint="")  # fmt: skip


def secret_exists(cluster: k8s.Cluster, name: str) -> bool:
    return any(s.metadata.name == name for s in cluster.core.list_namespaced_secret(PROJECT).items)


def http_status(url: str, token: str | None) -> int:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def model_token(cluster: k8s.Cluster, name: str) -> str:
    secret = cluster.core.read_namespaced_secret(gateway.token_secret_name(name), PROJECT)
    return base64.b64decode(secret.data["token"]).decode()


def infer_inputs(kind: Any, values: dict[str, np.ndarray]) -> list[Any]:
    """tritonclient InferInputs (http or grpc flavour, `kind`) for FP32 arrays by name."""
    found = []
    for n, value in values.items():
        item = kind(n, list(value.shape), "FP32")
        item.set_data_from_numpy(value)
        found.append(item)
    return found


def grpc_direct(cluster: k8s.Cluster, project: str, name: str) -> dict[str, list[float]]:
    """ModelReady and ModelInfer with tritonclient straight to a predictor pod's gRPC port, through a
    port-forward (no gateway, no token); the outputs by name."""
    import tritonclient.grpc as grpcclient  # noqa: PLC0415

    selector = ",".join(f"{k}={v}" for k, v in inference.selector(name).items())
    pods = [p for p in cluster.core.list_namespaced_pod(project, label_selector=selector).items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp]  # fmt: skip
    assert pods, f"no running predictor pod for {name}"
    with conftest.port_forward(cluster, project, pods[0].metadata.name, inference.GRPC_PORT) as port:
        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")
        try:
            assert client.is_model_ready(name)
            values = dict(zip("abcd", inputs(), strict=True))
            reply = client.infer(name, infer_inputs(grpcclient.InferInput, values))
        finally:
            client.close()
    return {k: reply.as_numpy(k).ravel().tolist() for k in expected_v1()}


def through_the_gateway(cluster: k8s.Cluster, appliance: Appliance, project: str, name: str,
                        want: dict[str, Any]) -> None:  # fmt: skip
    """OIP REST and gRPC from this host through the gateway, with tritonclient: the token is required."""
    import tritonclient.grpc as grpcclient  # noqa: PLC0415
    import tritonclient.http as httpclient  # noqa: PLC0415
    from tritonclient.utils import InferenceServerException  # noqa: PLC0415

    token = model_token(cluster, name)
    base = f"{appliance.gateway_url}/serving/{project}/{name}"
    k8s.wait_for("the gateway route", lambda: (http_status(f"{base}/v2/health/ready", token) == 200, "not yet"),
                 timeout=90, hint="the gateway should get the route within seconds")  # fmt: skip
    assert http_status(f"{base}/v2/health/ready", None) == 401
    assert http_status(f"{base}/v2/health/ready", "wrong") == 401
    values = dict(zip("abcd", inputs(), strict=True))
    rest = httpclient.InferenceServerClient(url=base.removeprefix("http://"))
    result = rest.infer(name, infer_inputs(httpclient.InferInput, values), headers={"Authorization": f"Bearer {token}"})
    assert close({k: result.as_numpy(k).ravel().tolist() for k in want}, want)
    grpc = grpcclient.InferenceServerClient(url=appliance.grpc_address,
                                            channel_args=[("grpc.default_authority", f"{name}.{project}")])  # fmt: skip
    reply = grpc.infer(name, infer_inputs(grpcclient.InferInput, values), headers={"authorization": f"Bearer {token}"})
    assert close({k: reply.as_numpy(k).ravel().tolist() for k in want}, want)
    with pytest.raises(InferenceServerException, match="bearer token"):
        grpc.is_model_ready(name)


def _log(cluster: k8s.Cluster, pod: str) -> str:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        return str(cluster.core.read_namespaced_pod_log(pod, PROJECT))
    except ApiException:
        return ""  # not started yet


@pytest.mark.parametrize(
    ("name", "uri", "fmt", "key", "reason", "text"),
    [
        ("bad-uri", "http://example.com/model.onnx", "onnx", dataconnection.NAME, "InvalidStorageUri",
         "is not s3://BUCKET/PATH"),
        ("bad-format", "s3://models/e2e/demo/v1", "tensorflow", dataconnection.NAME, "NoSupportingRuntime",
         "'tensorflow'"),
        ("bad-path", "s3://models/e2e/no-such-model", "onnx", dataconnection.NAME, "StorageInitializerFailed",
         "no objects at"),
        ("no-secret", "s3://models/e2e/demo/v1", "onnx", "no-such-connection", "DataConnectionNotFound",
         "no-such-connection does not exist"),
    ],
)  # fmt: skip
def test_bad_specs_are_ready_false_with_a_clear_message_and_a_warning(
    cluster: k8s.Cluster, project: str, name: str, uri: str, fmt: str, key: str, reason: str, text: str
) -> None:
    apply_isvc(cluster, name, uri, fmt, key)
    try:

        def failed() -> tuple[bool, str]:
            cond = ready(cluster, name)
            return cond.get("reason") == reason, f"{cond.get('reason')}: {cond.get('message')}"

        k8s.wait_for(f"{reason} on {name}", failed, timeout=120, hint="")
        cond = ready(cluster, name)
        assert cond["status"] == "False"
        assert text in cond["message"]

        def warned() -> tuple[bool, str]:
            events = cluster.core.list_namespaced_event(project, field_selector="type=Warning").items
            return any(e.involved_object.name == name and reason in (e.message or "") for e in events), "none yet"

        k8s.wait_for("a Warning event", warned, timeout=30, hint="")
    finally:
        group, version, plural = inference.ISVC
        custom(cluster).delete_namespaced_custom_object(group, version, project, plural, name)
    k8s.wait_for(f"{name} cleaned up", lambda: gone(cluster, f"{name}-predictor"), timeout=120, hint="")

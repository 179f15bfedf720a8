"""The operator issue's first increment on the real kind cluster that `appliance up` made: the CRDs,
the operator, DSCInitialization/DataScienceCluster status, MinIO answering S3 with the generated
credentials, the data connection in a data science project, recreation of a deleted StatefulSet,
and convergence after the operator pod is killed.

Named `test_a_*` so it runs before `test_y_cluster.py`, which ends with `appliance down`.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from appliance import k8s
from appliance.actions import platform
from appliance.operator import crds, dataconnection, install, minio
from tests.e2e import conftest
from tests.e2e.conftest import Appliance

pytestmark = pytest.mark.e2e

PROJECT = "e2e-project"
APPS = "opendatahub"
CLIENT_IMAGE = "localhost/odh-appliance/model-server:latest"  # python3 with the minio client
S3_SCRIPT = """
import os, io, urllib.parse
from minio import Minio
url = urllib.parse.urlparse(os.environ["AWS_S3_ENDPOINT"])
s3 = Minio(url.netloc, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], secure=False,
           region=os.environ["AWS_DEFAULT_REGION"])
buckets = sorted(b.name for b in s3.list_buckets())
print("buckets", buckets)
bucket = os.environ["AWS_S3_BUCKET"]
s3.put_object(bucket, "e2e/hello.txt", io.BytesIO(b"hello-minio"), 11)
print("read", s3.get_object(bucket, "e2e/hello.txt").read().decode())
try:
    Minio(url.netloc, "minioadmin", "minioadmin", secure=False).list_buckets()
    print("default-credentials-accepted")
except Exception as exc:
    print("default-credentials-refused", type(exc).__name__)
"""


def dsc(cluster: k8s.Cluster) -> dict[str, Any]:
    obj = platform.read_cluster_object(cluster, crds.DSC_GROUP, "v1", "datascienceclusters", install.DSC_NAME)
    assert obj is not None
    return dict(obj)


def dsci(cluster: k8s.Cluster) -> dict[str, Any]:
    obj = platform.read_cluster_object(cluster, crds.DSCI_GROUP, "v1", "dscinitializations", install.DSCI_NAME)
    assert obj is not None
    return dict(obj)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def secret_data(cluster: k8s.Cluster, namespace: str, name: str) -> dict[str, str] | None:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        secret = cluster.core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def wait_secret(cluster: k8s.Cluster, namespace: str, name: str, timeout: float = 90) -> dict[str, str]:
    k8s.wait_for(f"Secret {namespace}/{name}", lambda: (secret_data(cluster, namespace, name) is not None, "absent"),
                 timeout=timeout, hint="the operator did not create it; see its logs")  # fmt: skip
    data = secret_data(cluster, namespace, name)
    assert data is not None
    return data


def minio_ready(cluster: k8s.Cluster) -> tuple[bool, str]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        sts = cluster.apps.read_namespaced_stateful_set(minio.NAME, APPS)
    except ApiException as exc:
        if exc.status == 404:
            return False, "no StatefulSet"
        raise
    return minio.statefulset_ready(cluster.api_client.sanitize_for_serialization(sts))


def set_component(cluster: k8s.Cluster, name: str, state: str) -> None:
    """A merge patch, as `kubectl patch --type merge` would (an apply would take the map from `up`)."""
    from kubernetes import client  # noqa: PLC0415

    body = {"spec": {"components": {name: {"managementState": state}}}}
    client.CustomObjectsApi(cluster.api_client).patch_cluster_custom_object(
        crds.DSC_GROUP, "v1", "datascienceclusters", install.DSC_NAME, body
    )


@pytest.fixture(scope="module")
def project(cluster: k8s.Cluster) -> str:
    """A data science project: a namespace labelled like the ODH dashboard labels one."""
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": PROJECT, "labels": {dataconnection.PROJECT_LABEL: "true"}}}  # fmt: skip
    cluster.apply([ns])
    return PROJECT


def run_s3_pod(cluster: k8s.Cluster, namespace: str) -> str:
    name = f"e2e-s3-{int(time.time())}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": CLIENT_IMAGE, "imagePullPolicy": "Never",
                "command": ["python3", "-c", S3_SCRIPT],
                "envFrom": [{"secretRef": {"name": dataconnection.NAME}}],
            }],
        },
    }  # fmt: skip
    cluster.apply([pod])
    return conftest.finish_pod(cluster, name, namespace)


def test_up_installed_the_crds_and_the_operator(cluster: k8s.Cluster) -> None:
    from kubernetes import client  # noqa: PLC0415

    ext = client.ApiextensionsV1Api(cluster.api_client)
    names = {crd.metadata.name for crd in ext.list_custom_resource_definition().items}
    assert set(crds.crd_names()) <= names
    assert k8s.deployment_ready(cluster, install.NAMESPACE, install.NAME)[0]


def test_dsci_is_ready_with_object_storage(cluster: k8s.Cluster) -> None:
    obj = dsci(cluster)
    assert obj["status"]["phase"] == "Ready"
    assert obj["status"]["applicationsNamespace"] == APPS
    assert condition(obj, "Ready")["status"] == "True"
    assert condition(obj, "ObjectStorageReady")["status"] == "True"
    assert condition(obj, "GatewayReady")["status"] == "True"


def wait_dsc(cluster: k8s.Cluster, kind: str, reason: str, timeout: float = 90) -> dict[str, Any]:
    """The DataScienceCluster once its condition `kind` has `reason`."""
    found: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        found.update(dsc(cluster))
        cond = condition(found, kind) if found.get("status") else {}
        return cond.get("reason") == reason, str(cond)

    k8s.wait_for(f"{kind} {reason}", check, timeout=timeout, hint="")
    return found


def test_up_reached_dsc_ready(cluster: k8s.Cluster) -> None:
    obj = dsc(cluster)
    assert obj["status"]["phase"] == "Ready", obj["status"]
    assert condition(obj, "Ready")["status"] == "True"
    assert condition(obj, "WorkbenchesReady")["status"] == "True"
    assert condition(obj, "KserveReady")["status"] == "True"
    # Components the appliance does not implement are Removed by default, not silently "ready".
    assert obj["spec"]["components"]["dashboard"]["managementState"] == "Removed"
    assert condition(obj, "RayReady")["reason"] == "Removed"


def test_dsc_reports_unimplemented_managed_components_honestly(cluster: k8s.Cluster) -> None:
    set_component(cluster, "dashboard", "Managed")
    try:
        obj = wait_dsc(cluster, "DashboardReady", "NotImplemented")
        assert condition(obj, "DashboardReady")["status"] == "False"
        assert "does not implement" in condition(obj, "DashboardReady")["message"]
        assert condition(obj, "ComponentsReady")["status"] == "False"
        assert "dashboard (NotImplemented)" in condition(obj, "Ready")["message"]
        assert obj["status"]["phase"] == "Not Ready"
    finally:
        set_component(cluster, "dashboard", "Removed")
    assert wait_dsc(cluster, "Ready", "ReconcileCompleted")["status"]["phase"] == "Ready"


def test_status_and_credentials_commands(appliance: Appliance, cluster: k8s.Cluster) -> None:
    result = appliance.run("status", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["platform_phase"] == "Ready"
    assert status["object_storage"]["status"] == "True"
    by_name = {c["name"]: c for c in status["components"]}
    assert by_name["dashboard"]["reason"] == "Removed"
    assert by_name["kserve"]["condition"] == "KserveReady"
    urls = {e["name"]: e["url"] for e in status["endpoints"]}
    assert urls["MinIO console"] == f"{appliance.gateway_url}/minio/ui/"
    creds = appliance.run("credentials", "--json", timeout=60)
    assert creds.returncode == 0, creds.stderr
    shown = json.loads(creds.stdout)
    stored = secret_data(cluster, APPS, minio.SECRET)
    assert stored is not None
    assert shown["access_key"] == stored["MINIO_ROOT_USER"]
    assert shown["secret_key"] == stored["MINIO_ROOT_PASSWORD"] != "minioadmin"
    assert shown["gateway_endpoint"] == appliance.gateway_url
    plain = appliance.run("status", timeout=60)
    assert "KserveReady" in plain.stdout and "MinIO console" in plain.stdout
    assert stored["MINIO_ROOT_PASSWORD"] not in plain.stdout  # credentials only on request


def test_dsci_reports_the_gateway(cluster: k8s.Cluster, appliance: Appliance) -> None:
    cond = condition(dsci(cluster), "GatewayReady")
    assert cond["status"] == "True" and appliance.gateway_url in cond["message"]


def test_minio_s3_api_and_console_through_the_gateway(appliance: Appliance, cluster: k8s.Cluster) -> None:
    import io  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    from minio import Minio  # noqa: PLC0415

    stored = secret_data(cluster, APPS, minio.SECRET)
    assert stored is not None
    host = appliance.gateway_url.removeprefix("http://")
    s3 = Minio(host, stored["MINIO_ROOT_USER"], stored["MINIO_ROOT_PASSWORD"], secure=False, region="us-east-1")
    assert {"data", "models", "pipelines"} <= {b.name for b in s3.list_buckets()}
    s3.put_object("data", "e2e/from-host.txt", io.BytesIO(b"through the gateway"), 19)
    assert s3.get_object("data", "e2e/from-host.txt").read() == b"through the gateway"
    with urllib.request.urlopen(f"{appliance.gateway_url}/minio/ui/", timeout=10) as resp:
        assert resp.status == 200 and b"MinIO Console" in resp.read()


def test_minio_answers_s3_through_the_data_connection(cluster: k8s.Cluster, project: str) -> None:
    connection = wait_secret(cluster, project, dataconnection.NAME)
    assert set(connection) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_S3_ENDPOINT", "AWS_S3_BUCKET",
                               "AWS_DEFAULT_REGION"}  # fmt: skip
    secret = cluster.core.read_namespaced_secret(dataconnection.NAME, project)
    assert secret.metadata.labels["opendatahub.io/dashboard"] == "true"
    assert secret.metadata.annotations["opendatahub.io/connection-type"] == "s3"
    log = run_s3_pod(cluster, project)
    assert "buckets ['data', 'models', 'pipelines']" in log
    assert "read hello-minio" in log
    assert "default-credentials-refused" in log


def test_unlabelled_namespace_gets_no_connection(cluster: k8s.Cluster, project: str) -> None:
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "e2e-plain"}}])
    time.sleep(3)  # the connection would appear within a second if the operator thought it should
    assert secret_data(cluster, "e2e-plain", dataconnection.NAME) is None
    assert secret_data(cluster, project, dataconnection.NAME) is not None


def test_deleted_minio_statefulset_is_recreated(cluster: k8s.Cluster) -> None:
    before = cluster.apps.read_namespaced_stateful_set(minio.NAME, APPS).metadata.uid
    creds_before = secret_data(cluster, APPS, minio.SECRET)
    cluster.apps.delete_namespaced_stateful_set(minio.NAME, APPS)

    def recreated() -> tuple[bool, str]:
        ready, why = minio_ready(cluster)
        if not ready:
            return False, why
        return cluster.apps.read_namespaced_stateful_set(minio.NAME, APPS).metadata.uid != before, "old one"

    k8s.wait_for("MinIO recreated", recreated, timeout=180, hint="the operator did not recreate the StatefulSet")
    assert secret_data(cluster, APPS, minio.SECRET) == creds_before  # same credentials, same data


def test_deleted_gateway_deployment_is_recreated_and_answers(cluster: k8s.Cluster, appliance: Appliance) -> None:
    import urllib.request  # noqa: PLC0415

    from appliance.operator import gateway  # noqa: PLC0415

    before = cluster.apps.read_namespaced_deployment(gateway.NAME, APPS).metadata.uid
    cluster.apps.delete_namespaced_deployment(gateway.NAME, APPS)

    def answers() -> tuple[bool, str]:
        ready, why = k8s.deployment_ready(cluster, APPS, gateway.NAME)
        if not ready or cluster.apps.read_namespaced_deployment(gateway.NAME, APPS).metadata.uid == before:
            return False, why
        try:
            with urllib.request.urlopen(f"{appliance.gateway_url}/healthz", timeout=5) as resp:
                return resp.status == 200, "healthz"
        except OSError as exc:
            return False, str(exc)

    k8s.wait_for("the gateway recreated", answers, timeout=120, hint="the operator did not recreate it")


def test_operator_killed_converges(cluster: k8s.Cluster, project: str) -> None:
    """Kill the operator; while it is gone, change the DSC and delete a managed Secret; the new pod converges."""
    selector = ",".join(f"{k}={v}" for k, v in install.LABELS.items())
    (old,) = cluster.core.list_namespaced_pod(install.NAMESPACE, label_selector=selector).items
    cluster.core.delete_namespaced_pod(old.metadata.name, install.NAMESPACE, grace_period_seconds=0)
    set_component(cluster, "ray", "Managed")
    cluster.core.delete_namespaced_secret(dataconnection.NAME, project)

    def converged() -> tuple[bool, str]:
        pods = cluster.core.list_namespaced_pod(install.NAMESPACE, label_selector=selector).items
        fresh = [p for p in pods if p.metadata.name != old.metadata.name]
        if not fresh or not k8s.deployment_ready(cluster, install.NAMESPACE, install.NAME)[0]:
            return False, "new operator pod not ready"
        if condition(dsc(cluster), "RayReady").get("reason") != "NotImplemented":
            return False, "RayReady not updated"
        return secret_data(cluster, project, dataconnection.NAME) is not None, "data connection not recreated"

    try:
        k8s.wait_for("the operator to converge", converged, timeout=240, hint="see the operator's logs")
    finally:
        set_component(cluster, "ray", "Removed")
    k8s.wait_for("RayReady back to Removed",
                 lambda: (condition(dsc(cluster), "RayReady").get("reason") == "Removed", "not yet"),
                 timeout=60, hint="")  # fmt: skip


def test_bad_dsci_spec_is_a_condition_and_an_event_not_a_crash(cluster: k8s.Cluster) -> None:
    from kubernetes import client  # noqa: PLC0415

    api = client.CustomObjectsApi(cluster.api_client)

    def set_namespace(value: str) -> None:
        api.patch_cluster_custom_object(crds.DSCI_GROUP, "v1", "dscinitializations", install.DSCI_NAME,
                                        {"spec": {"applicationsNamespace": value}})  # fmt: skip

    set_namespace("Not_A_Namespace")
    try:
        k8s.wait_for("InvalidSpec on the DSCI",
                     lambda: (condition(dsci(cluster), "Ready").get("reason") == "InvalidSpec", "not yet"),
                     timeout=60, hint="")  # fmt: skip
        assert dsci(cluster)["status"]["phase"] == "Error"
        assert "Not_A_Namespace" in condition(dsci(cluster), "Ready")["message"]

        def warned() -> tuple[bool, str]:
            events = cluster.core.list_event_for_all_namespaces(field_selector="type=Warning").items
            return any(e.involved_object.name == install.DSCI_NAME and "InvalidSpec" in (e.message or "")
                       for e in events), "no Warning event yet"  # fmt: skip

        k8s.wait_for("a Warning event", warned, timeout=30, hint="")
    finally:
        set_namespace(APPS)
    k8s.wait_for("the DSCI Ready again",
                 lambda: (condition(dsci(cluster), "Ready").get("status") == "True", "not yet"),
                 timeout=60, hint="")  # fmt: skip
    assert k8s.deployment_ready(cluster, install.NAMESPACE, install.NAME)[0]  # it never crashed
    selector = ",".join(f"{k}={v}" for k, v in install.LABELS.items())
    (pod,) = cluster.core.list_namespaced_pod(install.NAMESPACE, label_selector=selector).items
    assert all((s.restart_count or 0) == 0 for s in pod.status.container_statuses or [])

"""Model deployments for front ends: deploy a model from MinIO as a KServe InferenceService
(RawDeployment), list deployments with their readiness, delete one.

Called by `appliance.api` (the TUI's models screen: "deploy", then watch it become Ready). The
InferenceService is the upstream shape the operator serves (`appliance.operator.inference`), in a
data science project (a namespace labelled for the dashboard, so it gets the data connection and the
ONNX runtime). The pure parts — the manifest, the storage URI of an object, a deployment as a row —
are unit-tested; the calls against a cluster are exercised by the e2e tier.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from appliance import errors, k8s
from appliance.actions import workbenches
from appliance.operator import dataconnection, gateway, inference

GROUP, VERSION, PLURAL = inference.ISVC


@dataclass(frozen=True)
class Deployment:
    namespace: str
    name: str
    storage_uri: str
    state: str  # Ready, Loading, Failed
    ready: bool
    message: str
    url: str  # in the cluster


def storage_uri(bucket: str, key: str) -> str:
    """Where the model lives: the folder of a `.../model.onnx` (KServe's layout), else the object itself."""
    folder, _, base = key.rpartition("/")
    return f"s3://{bucket}/{folder}" if folder and base == "model.onnx" else f"s3://{bucket}/{key}"


def manifest(namespace: str, name: str, uri: str) -> dict[str, Any]:
    workbenches.validate_name(namespace, "project name")
    workbenches.validate_name(name, "deployment name")
    if not uri.startswith("s3://"):
        raise errors.UsageError(f"{uri!r} is not an s3:// URI", hint="deploy a model that is in MinIO")
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {dataconnection.PROJECT_LABEL: "true"},
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment", "openshift.io/display-name": name},
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "model": {
                    "modelFormat": {"name": "onnx"},
                    "storageUri": uri,
                    "storage": {"key": dataconnection.NAME},
                },
            }
        },
    }


def summarize(obj: dict[str, Any]) -> Deployment:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    model = ((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if ready.get("status") == "True":
        state, message = "Ready", ""
    elif failure or ready.get("reason") not in (None, "", "Progressing"):
        state = "Failed"
        message = ": ".join(x for x in (failure.get("reason") or ready.get("reason"),
                                        failure.get("message") or ready.get("message")) if x)  # fmt: skip
    else:
        state, message = "Loading", str(ready.get("message") or "")
    return Deployment(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        storage_uri=str(model.get("storageUri", "")),
        state=state,
        ready=state == "Ready",
        message=message,
        url=str(status.get("url", "")),
    )


def _custom(cluster: k8s.Cluster) -> Any:
    from kubernetes import client  # noqa: PLC0415

    return client.CustomObjectsApi(cluster.api_client)


def list_all(cluster: k8s.Cluster) -> list[Deployment]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        found = cluster.call(_custom(cluster).list_cluster_custom_object, GROUP, VERSION, PLURAL)
    except ApiException as exc:
        if exc.status == 404:
            raise errors.ApplianceError(
                "this cluster has no InferenceService API", hint="run `appliance up` to install model serving"
            ) from None
        raise
    return sorted((summarize(i) for i in found.get("items") or []), key=lambda d: (d.namespace, d.name))


def deploy(cluster: k8s.Cluster, namespace: str, name: str, uri: str) -> None:
    cluster.apply([workbenches.project_manifest(namespace), manifest(namespace, name, uri)])


def delete(cluster: k8s.Cluster, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        cluster.call(_custom(cluster).delete_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def token(cluster: k8s.Cluster, namespace: str, name: str) -> str | None:
    """The Bearer token the gateway wants for this InferenceService (None when its auth is off)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        isvc = cluster.call(_custom(cluster).get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
        if not gateway.auth_enabled(isvc):
            return None
        secret = cluster.call(cluster.core.read_namespaced_secret, gateway.token_secret_name(name), namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise errors.ApplianceError(
                f"model {namespace}/{name} or its token does not exist (yet)",
                hint="the operator makes the token on the first reconcile; wait a few seconds and try again",
            ) from None
        raise
    return base64.b64decode((secret.data or {}).get("token", "")).decode() or None

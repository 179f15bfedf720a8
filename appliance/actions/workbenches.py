"""Workbenches for front ends: list, create, start, stop, open, logs and delete `kubeflow.org/v1`
Notebooks on the cluster, as the ODH dashboard does.

Called by `appliance.api` (the TUI's workbenches screen). The Notebook shape, the stop annotation,
the token Secret and the base URL are the operator's (`appliance.operator.notebook`), so what this
module creates is exactly what workshop YAML would. The pure parts — the Notebook a form produces,
the summary row of a Notebook, the URL with its token — are unit-tested; the calls that talk to
the cluster are exercised by the e2e tier.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance import errors, k8s
from appliance.operator import crds, dataconnection, notebook

VERSION = "v1"
PLURAL = "notebooks"
DEFAULT_IMAGE = "localhost/odh-appliance/workbench:latest"
DEFAULT_PROJECT = "workbenches"
GPU_RESOURCE = "nvidia.com/gpu"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")


@dataclass(frozen=True)
class Size:
    """A container size, as the dashboard's notebook sizes (scaled down for one machine)."""

    name: str
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


SIZES = {
    s.name: s
    for s in (
        Size("small", "100m", "1", "512Mi", "2Gi"),
        Size("medium", "500m", "2", "1Gi", "4Gi"),
        Size("large", "1", "4", "2Gi", "8Gi"),
    )
}


@dataclass(frozen=True)
class Workbench:
    """One Notebook as a row: what a person needs to see, read from its spec and status."""

    namespace: str
    name: str
    image: str
    state: str  # Running, Starting, Stopped, Stopping, Failed
    ready: bool
    message: str
    cpu: str
    memory: str
    gpu: int
    url_path: str
    created: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def validate_name(name: str, what: str = "workbench name") -> str:
    if not _NAME.fullmatch(name):
        raise errors.UsageError(
            f"{name!r} is not a valid {what}",
            hint="lower-case letters, digits and '-', starting and ending with a letter or digit, at most 52",
        )
    return name


def manifest(
    namespace: str, name: str, *, image: str = DEFAULT_IMAGE, size: str = "small", gpu: int = 0
) -> dict[str, Any]:
    """The Notebook the create form makes: the upstream shape with the project's data connection."""
    validate_name(namespace, "project name")
    validate_name(name)
    if size not in SIZES:
        raise errors.UsageError(f"unknown size {size!r}", hint=f"one of {', '.join(SIZES)}")
    if gpu < 0:
        raise errors.UsageError("the GPU count cannot be negative")
    chosen = SIZES[size]
    limits: dict[str, Any] = {"cpu": chosen.cpu_limit, "memory": chosen.memory_limit}
    if gpu:
        limits[GPU_RESOURCE] = gpu
    return {
        "apiVersion": f"{crds.KUBEFLOW_GROUP}/{VERSION}",
        "kind": "Notebook",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": name, dataconnection.PROJECT_LABEL: "true"},
            "annotations": {"openshift.io/display-name": name, "notebooks.opendatahub.io/last-size-selection": size},
        },
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {
                                "requests": {"cpu": chosen.cpu_request, "memory": chosen.memory_request},
                                "limits": limits,
                            },
                            "envFrom": [{"secretRef": {"name": dataconnection.NAME}}],
                        }
                    ]
                }
            }
        },
    }


def project_manifest(namespace: str) -> dict[str, Any]:
    """A data science project: a namespace with the dashboard's label (it gets the data connection)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": validate_name(namespace, "project name"),
            "labels": {dataconnection.PROJECT_LABEL: "true"},
        },
    }


def summarize(obj: dict[str, Any]) -> Workbench:
    """A Notebook object (spec and status, as the API returns it) → a row."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    containers = ((((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or [{}]
    first = containers[0] if isinstance(containers[0], dict) else {}
    resources = first.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    stopped = notebook.STOP_ANNOTATION in (meta.get("annotations") or {})
    ready_replicas = int(status.get("readyReplicas") or 0)
    problem = notebook.problem(status)
    waiting = (status.get("containerState") or {}).get("waiting") or {}
    if problem is not None:
        state, message = "Failed", f"{problem[0]}: {problem[1]}"
    elif stopped:
        state, message = ("Stopping", "waiting for the pod to end") if ready_replicas else ("Stopped", "")
    elif ready_replicas:
        state, message = "Running", ""
    else:
        state, message = "Starting", str(waiting.get("reason") or "")
    return Workbench(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        image=str(first.get("image", "")),
        state=state,
        ready=state == "Running",
        message=message,
        cpu=str(limits.get("cpu") or requests.get("cpu") or ""),
        memory=str(limits.get("memory") or requests.get("memory") or ""),
        gpu=int(limits.get(GPU_RESOURCE) or 0),
        url_path=notebook.prefix(str(meta.get("namespace", "")), str(meta.get("name", ""))) + "/",
        created=str(meta.get("creationTimestamp", "")),
    )


def url(base: str, namespace: str, name: str, token: str) -> str:
    """The browser URL of a workbench behind the gateway at `base`, with its token."""
    return f"{base.rstrip('/')}{notebook.prefix(namespace, name)}/lab?token={token}"


def stop_patch(stop: bool) -> dict[str, Any]:
    """The merge patch that stops (annotation set to the time) or starts (annotation removed) a Notebook."""
    value = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if stop else None
    return {"metadata": {"annotations": {notebook.STOP_ANNOTATION: value}}}


# --- against the cluster (exercised by the e2e tier) ----------------------------------------------


def _custom(cluster: k8s.Cluster) -> Any:
    from kubernetes import client  # noqa: PLC0415

    return client.CustomObjectsApi(cluster.api_client)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def list_all(cluster: k8s.Cluster) -> list[Workbench]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        found = cluster.call(_custom(cluster).list_cluster_custom_object, crds.KUBEFLOW_GROUP, VERSION, PLURAL)
    except ApiException as exc:
        if _not_found(exc):
            raise errors.ApplianceError(
                "this cluster has no Notebook API (kubeflow.org/v1)",
                hint="run `appliance up` to install the platform with workbenches",
            ) from None
        raise
    rows = [summarize(item) for item in found.get("items") or []]
    return sorted(rows, key=lambda w: (w.namespace, w.name))


def get(cluster: k8s.Cluster, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        obj = cluster.call(
            _custom(cluster).get_namespaced_custom_object, crds.KUBEFLOW_GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if _not_found(exc):
            raise errors.ApplianceError(
                f"workbench {namespace}/{name} does not exist", hint="refresh the list"
            ) from None
        raise
    return dict(obj)


def create(cluster: k8s.Cluster, namespace: str, name: str, *, image: str, size: str, gpu: int) -> Workbench:
    body = manifest(namespace, name, image=image, size=size, gpu=gpu)
    cluster.apply([project_manifest(namespace), body])
    return summarize(get(cluster, namespace, name))


def set_stopped(cluster: k8s.Cluster, namespace: str, name: str, stop: bool) -> None:
    get(cluster, namespace, name)  # a clear error when it is gone
    cluster.call(
        _custom(cluster).patch_namespaced_custom_object,
        crds.KUBEFLOW_GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        stop_patch(stop),
    )


def delete(cluster: k8s.Cluster, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        cluster.call(
            _custom(cluster).delete_namespaced_custom_object, crds.KUBEFLOW_GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if not _not_found(exc):
            raise


def token(cluster: k8s.Cluster, namespace: str, name: str) -> str:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        secret = cluster.call(cluster.core.read_namespaced_secret, notebook.token_secret_name(name), namespace)
    except ApiException as exc:
        if _not_found(exc):
            raise errors.ApplianceError(
                f"workbench {namespace}/{name} has no token yet", hint="the operator makes it within seconds; try again"
            ) from None
        raise
    return base64.b64decode((secret.data or {}).get(notebook.TOKEN_KEY, "")).decode()


def logs(cluster: k8s.Cluster, namespace: str, name: str, tail: int = 500) -> str:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        return str(
            cluster.call(cluster.core.read_namespaced_pod_log, f"{name}-0", namespace, container=name, tail_lines=tail)
        )
    except ApiException as exc:
        if exc.status in (400, 404):
            raise errors.ApplianceError(
                f"workbench {namespace}/{name} has no running pod to read logs from",
                hint="start it and wait until it is Running",
            ) from None
        raise

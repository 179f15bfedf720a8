"""The Kubernetes helper: one API client per kubeconfig, server-side apply, and bounded waits.

Called by the actions (`up` waits for the node, CoreDNS and workloads; `status` reads nodes and
images) and by the e2e tests. Every wait has a deadline and raises `errors.ApplianceError` with a
hint naming what was still missing; API errors that mean "the cluster is not there" become expected
errors too, everything else is a bug and propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from appliance import errors

T = TypeVar("T")
FIELD_MANAGER = "odh-appliance"


class Cluster:
    """A connection to one cluster, from a kubeconfig file."""

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config  # noqa: PLC0415 - slow import, only when a cluster is used

        if not kubeconfig.is_file():
            raise errors.ApplianceError(
                f"kubeconfig {kubeconfig} does not exist", hint="run `appliance up` to create the cluster"
            )
        self.kubeconfig = kubeconfig
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.version_api = client.VersionApi(self.api_client)

    def dynamic(self) -> Any:
        from kubernetes import dynamic  # noqa: PLC0415

        return dynamic.DynamicClient(self.api_client)

    def server_version(self) -> str:
        return str(self.call(self.version_api.get_code).git_version)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the API; connection failures become an expected error with a hint."""
        import urllib3.exceptions  # noqa: PLC0415

        try:
            return fn(*args, **kwargs)
        except (urllib3.exceptions.HTTPError, ConnectionError, OSError) as exc:
            raise errors.ApplianceError(
                f"the Kubernetes API server does not answer ({type(exc).__name__})",
                hint="is the cluster running? `appliance status` shows it; `appliance up` starts it",
            ) from exc

    def apply(self, documents: Iterable[dict[str, Any]]) -> list[str]:
        """Server-side apply each object (create or update); returns `kind/name` of each."""
        client = self.dynamic()
        applied = []
        for doc in documents:
            if not doc:
                continue
            resource = self.call(client.resources.get, api_version=doc["apiVersion"], kind=doc["kind"])
            meta = doc.get("metadata", {})
            self.call(
                client.server_side_apply,
                resource,
                body=doc,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
            applied.append(f"{doc['kind']}/{meta['name']}")
        return applied

    def apply_yaml(self, text: str) -> list[str]:
        return self.apply(doc for doc in yaml.safe_load_all(text) if doc)


@dataclass(frozen=True)
class NodeStatus:
    name: str
    ready: bool
    kubelet_version: str
    container_runtime: str
    images: int
    allocatable_cpu: str
    allocatable_memory: str
    allocatable_gpu: str = ""  # nvidia.com/gpu, once the device plugin registered (docs/gpu.md)


def nodes(cluster: Cluster) -> list[NodeStatus]:
    result = []
    for node in cluster.call(cluster.core.list_node).items:
        conditions = {c.type: c.status for c in node.status.conditions or []}
        info = node.status.node_info
        result.append(
            NodeStatus(
                name=node.metadata.name,
                ready=conditions.get("Ready") == "True",
                kubelet_version=info.kubelet_version,
                container_runtime=info.container_runtime_version,
                images=len(node.status.images or []),
                allocatable_cpu=str((node.status.allocatable or {}).get("cpu", "")),
                allocatable_memory=str((node.status.allocatable or {}).get("memory", "")),
                allocatable_gpu=str((node.status.allocatable or {}).get("nvidia.com/gpu", "")),
            )
        )
    return result


def wait_for(
    what: str,
    check: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    interval: float = 2.0,
    on_wait: Callable[[str], None] | None = None,
    hint: str,
) -> None:
    """Poll `check` (returns done, detail) until done or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    detail = ""
    while True:
        done, detail = check()
        if done:
            return
        if on_wait is not None:
            on_wait(detail)
        if time.monotonic() >= deadline:
            raise errors.ApplianceError(f"timed out after {timeout:.0f}s waiting for {what}: {detail}", hint=hint)
        time.sleep(interval)


def deployment_ready(cluster: Cluster, namespace: str, name: str) -> tuple[bool, str]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        dep = cluster.call(cluster.apps.read_namespaced_deployment, name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False, f"deployment {namespace}/{name} does not exist yet"
        raise
    want = dep.spec.replicas if dep.spec.replicas is not None else 1
    ready = dep.status.ready_replicas or 0
    if (dep.status.observed_generation or 0) < (dep.metadata.generation or 0):
        return False, f"{ready}/{want} replicas ready; the new spec is not rolled out yet"
    return ready >= want and (dep.status.updated_replicas or 0) >= want, f"{ready}/{want} replicas ready"

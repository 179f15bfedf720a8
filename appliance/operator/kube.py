"""The operator's API access: the shared `appliance.k8s.Cluster`, in-cluster or from a kubeconfig,
plus the few calls the handlers need (read-or-none, create-once, status patches).

Called by `handlers`. In the operator pod the service account's in-cluster config is used; run
locally (`python -m appliance.operator --kubeconfig ...`), the KUBECONFIG file is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from appliance import k8s

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class Client(k8s.Cluster):
    """`k8s.Cluster` (apply, call) that also works in-cluster, with a CustomObjectsApi."""

    def __init__(self, kubeconfig: Path | None = None) -> None:
        from kubernetes import client, config  # noqa: PLC0415

        path = kubeconfig or (Path(os.environ["KUBECONFIG"]) if os.environ.get("KUBECONFIG") else None)
        if path is not None or not IN_CLUSTER_TOKEN.exists():
            super().__init__(path or Path.home() / ".kube" / "config")
        else:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            self.kubeconfig = IN_CLUSTER_TOKEN
            self.api_client = client.ApiClient(configuration)
            self.core = client.CoreV1Api(self.api_client)
            self.apps = client.AppsV1Api(self.api_client)
            self.version_api = client.VersionApi(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def read(self, fn: Any, *args: Any) -> Any | None:
        """The object as a plain dict, or None when it does not exist."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            obj = self.call(fn, *args)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj if isinstance(obj, dict) else self.api_client.sanitize_for_serialization(obj)

    def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        import base64  # noqa: PLC0415

        secret = self.read(self.core.read_namespaced_secret, name, namespace)
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def create_once(self, doc: dict[str, Any]) -> bool:
        """Create a namespaced Secret unless it exists (never overwrites); True when this call created it."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            self.call(self.core.create_namespaced_secret, doc["metadata"]["namespace"], doc)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def list_cluster_objects(self, group: str, version: str, plural: str) -> list[dict[str, Any]]:
        result = self.call(self.custom.list_cluster_custom_object, group, version, plural)
        return list(result.get("items") or [])

    def patch_cluster_status(self, group: str, version: str, plural: str, name: str, status: dict[str, Any]) -> None:
        self.call(self.custom.patch_cluster_custom_object_status, group, version, plural, name, {"status": status})

"""MinIO, the platform's object storage, as desired Kubernetes objects (pure functions).

Called by `handlers` when a DSCInitialization is reconciled: the root credentials Secret (random,
generated once — never a default password, DESIGN.md §7), a StatefulSet whose PVC comes from the
default StorageClass, a Service for the S3 API, and the list of buckets every installation starts
with. The handler creates the Secret only when it is missing, so credentials never change under
existing data.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

NAME = "minio"
SECRET = "minio-root"  # keys: MINIO_ROOT_USER, MINIO_ROOT_PASSWORD
API_PORT = 9000
CONSOLE_PORT = 9001  # the web console, reached through the gateway at /minio/ui/
CONSOLE_PATH = "/minio/ui"
DEFAULT_IMAGE = "localhost/odh-appliance/minio:latest"
DEFAULT_BUCKETS = ("models", "data", "pipelines")
DEFAULT_REGION = "us-east-1"
STORAGE_REQUEST = "20Gi"
LABELS = {
    "app.kubernetes.io/name": NAME,
    "app.kubernetes.io/part-of": "odh-appliance",
    "app.kubernetes.io/managed-by": "odh-appliance-operator",
}
SELECTOR = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "odh-appliance"}

_ALPHABET = string.ascii_letters + string.digits


def generate_credentials() -> dict[str, str]:
    """A fresh random access key (20 characters) and secret key (40), from the OS's CSPRNG."""
    user = "odh-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(16))
    password = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    return {"MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": password}


def credentials_secret(namespace: str, credentials: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": namespace, "labels": dict(LABELS)},
        "type": "Opaque",
        "stringData": dict(credentials),
    }


def endpoint(namespace: str) -> str:
    """The in-cluster S3 endpoint URL."""
    return f"http://{NAME}.{namespace}.svc.cluster.local:{API_PORT}"


def service(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": namespace, "labels": dict(LABELS)},
        "spec": {
            "selector": dict(SELECTOR),
            "ports": [
                {"name": "api", "port": API_PORT, "targetPort": "api", "protocol": "TCP"},
                {"name": "console", "port": CONSOLE_PORT, "targetPort": "console", "protocol": "TCP"},
            ],
        },
    }


def statefulset(
    namespace: str, image: str = DEFAULT_IMAGE, storage: str = STORAGE_REQUEST, *, gateway_url: str | None = None
) -> dict[str, Any]:
    """The MinIO StatefulSet; with `gateway_url`, the console is on and redirects to `<gateway>/minio/ui`."""

    def secret_env(name: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": name}}}

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "api"},
            "periodSeconds": period,
            "failureThreshold": failures,
            "timeoutSeconds": 5,
        }

    console = f":{CONSOLE_PORT}"
    browser = [{"name": "MINIO_BROWSER", "value": "off"}]
    if gateway_url:
        browser = [
            {"name": "MINIO_BROWSER", "value": "on"},
            {"name": "MINIO_BROWSER_REDIRECT_URL", "value": gateway_url.rstrip("/") + CONSOLE_PATH},
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": NAME, "namespace": namespace, "labels": dict(LABELS)},
        "spec": {
            "serviceName": NAME,
            "replicas": 1,
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "securityContext": {"runAsUser": 1001, "runAsGroup": 0, "runAsNonRoot": True},
                    "containers": [
                        {
                            "name": NAME,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",  # loaded into the node; nothing is pulled
                            "args": ["server", "/data", "--address", f":{API_PORT}", "--console-address", console],
                            "env": [
                                secret_env("MINIO_ROOT_USER"),
                                secret_env("MINIO_ROOT_PASSWORD"),
                                *browser,
                            ],
                            "ports": [
                                {"name": "api", "containerPort": API_PORT},
                                {"name": "console", "containerPort": CONSOLE_PORT},
                            ],
                            "readinessProbe": probe("/minio/health/ready", 5, 3),
                            "livenessProbe": probe("/minio/health/live", 20, 6),
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": dict(SELECTOR)},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
                }
            ],
        },
    }


def objects(namespace: str, image: str = DEFAULT_IMAGE, *, gateway_url: str | None = None) -> list[dict[str, Any]]:
    """Everything but the credentials Secret, in apply order."""
    return [service(namespace), statefulset(namespace, image, gateway_url=gateway_url)]


def statefulset_ready(sts: dict[str, Any] | None) -> tuple[bool, str]:
    """(ready, why) from a StatefulSet as the API returns it (None: it does not exist)."""
    if sts is None:
        return False, "the MinIO StatefulSet does not exist yet"
    want = (sts.get("spec") or {}).get("replicas", 1)
    status = sts.get("status") or {}
    ready = status.get("readyReplicas") or 0
    if ready >= want and status.get("observedGeneration", 0) >= (sts.get("metadata") or {}).get("generation", 0):
        return True, f"MinIO answers on {NAME}:{API_PORT} ({ready}/{want} ready)"
    return False, f"MinIO is starting ({ready}/{want} replicas ready)"

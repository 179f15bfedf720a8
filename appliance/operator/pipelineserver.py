"""Data science pipelines: the platform-wide pipeline server as desired Kubernetes objects (pure functions).

Called by `pipelineserver_handlers` when the DataScienceCluster has `datasciencepipelines: Managed`,
and by the unit tests. What upstream's DataSciencePipelinesApplication (DSPA) deploys, reduced to
what this appliance runs: one server (`python -m appliance.pipelines.server`, the pipeline-runner
image) in the applications namespace, with MinIO as object storage (bucket `pipelines`).

- `ds-pipeline` Deployment (one replica, `Recreate`: SQLite on the PVC has one writer), Service on
  port 8888 (upstream's `ds-pipeline-<dspa>` port), PVC `ds-pipeline-db` for runs.db and task logs.
- Secret `ds-pipeline-s3`: the MinIO credentials in a data connection's keys (AWS_*); the server
  and every task pod read it through `envFrom`.
- Secret `ds-pipeline-token`: the bearer token (random, made once by the handler) that the server
  and the gateway's `/ds-pipeline/` route both demand.
- RBAC, namespaced and tight: ServiceAccount `ds-pipeline`, bound by a RoleBinding in the
  applications namespace only to the ClusterRole `ds-pipeline` (`cluster_role`, installed by
  `appliance up` with the operator, which may only `bind` it) — pods: create, get, list, watch,
  delete (one pod per task attempt, deleted after, and those of interrupted runs on restart);
  pods/log: get (the launcher's result and the task log); events: list (an image missing on the
  node). Nothing cluster-wide: which images the node has is learnt by trying
  (`appliance.pipelines.kube`).
- Task pods run under their own ServiceAccount, `pipeline-runner-ds-pipeline` (upstream DSPA's
  `pipeline-runner-<name>`), bound in the applications namespace only to the ClusterRole of that name
  (`task_cluster_role`): InferenceServices get/create/patch/delete — what a pipeline that deploys its
  model needs (examples/iris_onnx) — and nothing else: no Secrets (the object-store credentials come
  through `envFrom`; the in-cluster model URL needs no token), no pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.operator import minio

NAME = "ds-pipeline"
PORT = 8888
PVC = "ds-pipeline-db"
S3_SECRET = "ds-pipeline-s3"
TOKEN_SECRET = "ds-pipeline-token"
TASK_ACCOUNT = f"pipeline-runner-{NAME}"  # upstream's task ServiceAccount name for a DSPA called ds-pipeline
BUCKET = "pipelines"
DEFAULT_IMAGE = "localhost/odh-appliance/pipeline-runner:latest"
IMAGE_ENV = "ODH_OPERATOR_PIPELINE_RUNNER_IMAGE"
STORAGE_REQUEST = "1Gi"
DATA_DIR = "/data"
LABELS = {
    "app.kubernetes.io/name": NAME,
    "app.kubernetes.io/part-of": "odh-appliance",
    "app.kubernetes.io/managed-by": "odh-appliance-operator",
}
SELECTOR = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "odh-appliance"}


def url(namespace: str) -> str:
    """The in-cluster address of the server (the gateway routes `/ds-pipeline/` here)."""
    return f"http://{NAME}.{namespace}.svc.cluster.local:{PORT}"


def s3_secret(namespace: str, credentials: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": S3_SECRET, "namespace": namespace, "labels": dict(LABELS)},
        "type": "Opaque",
        "stringData": {
            "AWS_ACCESS_KEY_ID": credentials["MINIO_ROOT_USER"],
            "AWS_SECRET_ACCESS_KEY": credentials["MINIO_ROOT_PASSWORD"],
            "AWS_S3_ENDPOINT": minio.endpoint(namespace),
            "AWS_S3_BUCKET": BUCKET,
            "AWS_DEFAULT_REGION": minio.DEFAULT_REGION,
        },
    }


def token_secret(namespace: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TOKEN_SECRET, "namespace": namespace, "labels": dict(LABELS)},
        "type": "Opaque",
        "stringData": {"token": token},
    }


def cluster_role() -> dict[str, Any]:
    """What the server may do with task pods; granted per namespace by `rbac`'s RoleBinding only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": NAME, "labels": dict(LABELS)},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            # ErrImageNeverPull shows in an Event at once (the pod status lags): whether the node has an image
            {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
        ],
    }


def task_cluster_role() -> dict[str, Any]:
    """What task pods may do: manage InferenceServices (a pipeline deploys its model); granted per
    namespace by `rbac`'s RoleBinding only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": TASK_ACCOUNT, "labels": dict(LABELS)},
        "rules": [
            {
                "apiGroups": ["serving.kserve.io"],
                "resources": ["inferenceservices"],
                "verbs": ["get", "create", "patch", "delete"],
            },
        ],
    }


def rbac(namespace: str) -> list[dict[str, Any]]:
    """The server's and the task pods' ServiceAccounts, each bound in `namespace` only to its ClusterRole."""
    meta = {"namespace": namespace, "labels": dict(LABELS)}
    out: list[dict[str, Any]] = []
    for account in (NAME, TASK_ACCOUNT):
        out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, **meta}})
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": account, **meta},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            }
        )
    return out


def objects(
    namespace: str, image: str = DEFAULT_IMAGE, storage: str = STORAGE_REQUEST, *, replicas: int = 1
) -> list[dict[str, Any]]:
    """RBAC, PVC, Service and Deployment in apply order (the Secrets are made by the handler);
    `replicas=0` when the component is Removed: the server stops, its PVC (the run history) stays."""
    meta = {"namespace": namespace, "labels": dict(LABELS)}
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": PVC, **meta},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, **meta},
        "spec": {"selector": dict(SELECTOR), "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]},
    }
    command = [
        "python", "-m", "appliance.pipelines.server", "--host", "0.0.0.0", "--port", str(PORT),
        "--data-dir", DATA_DIR, "--pipeline-root", f"s3://{BUCKET}", "--backend", "kube",
        "--namespace", namespace, "--runner-image", image, "--credentials-secret", S3_SECRET,
        "--task-service-account", TASK_ACCOUNT,
    ]  # fmt: skip
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2, "timeoutSeconds": 3}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, **meta},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},  # one SQLite writer on a ReadWriteOnce volume
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {"runAsUser": 1001, "runAsGroup": 0, "fsGroup": 0, "runAsNonRoot": True},
                    "terminationGracePeriodSeconds": 10,
                    "containers": [
                        {
                            "name": "server",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",  # loaded into the node; nothing is pulled
                            "command": command,
                            "env": [
                                {
                                    "name": "ODH_PIPELINES_TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": "token"}},
                                },
                                {"name": "PYTHONUNBUFFERED", "value": "1"},
                            ],
                            "envFrom": [{"secretRef": {"name": S3_SECRET}}],
                            "ports": [{"name": "http", "containerPort": PORT}],
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 6},
                            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
                            "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        }
                    ],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": PVC}}],
                },
            },
        },
    }
    return [*rbac(namespace), pvc, service, deployment]


def health(deployment: Mapping[str, Any] | None, namespace: str) -> tuple[bool, str, str]:
    """(ready, reason, message) of DataSciencePipelinesReady from the server's Deployment (None: missing)."""
    if deployment is None:
        return False, "Progressing", f"the pipeline server {namespace}/{NAME} is being deployed"
    want = (deployment.get("spec") or {}).get("replicas", 1)
    status = deployment.get("status") or {}
    ready = status.get("readyReplicas") or 0
    if want == 0:
        return False, "Removed", "the pipeline server is scaled to 0 (datasciencepipelines is not Managed)"
    if ready >= want:
        return True, "Ready", f"the pipeline server answers on {NAME}.{namespace}:{PORT} ({ready}/{want} ready)"
    return False, "Progressing", f"the pipeline server is starting ({ready}/{want} replicas ready)"

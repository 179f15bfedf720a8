"""The manifests that install the operator, and the default DSCInitialization and DataScienceCluster.

Called by `appliance.actions.platform` during `appliance up` (pure: it returns objects, the action
applies them). The operator gets the least rights it needs for what it manages today: its own
custom resources and their status, namespaces (to find data science projects), Secrets (MinIO
credentials, data connections, tokens, the gateway's configuration), Services, StatefulSets and
Deployments (MinIO, workbenches, model servers, the gateway, the pipeline server), and Events; for the
pipeline server, ServiceAccounts and RoleBindings to the two ClusterRoles it may bind
(`pipelineserver.cluster_role` for the server, `task_cluster_role` for its task pods; installed here,
granted in the applications namespace only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.operator import components, crds, gateway, inference, initialization, pipelineserver

NAMESPACE = "odh-appliance-system"
NAME = "odh-operator"
DSCI_NAME = "default-dsci"
DSC_NAME = "default-dsc"
HEALTH_PORT = 8080
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "odh-appliance"}
MINIO_IMAGE_ENV = "ODH_OPERATOR_MINIO_IMAGE"
CULLER_CONFIG = "notebook-controller-culler-config"  # upstream Kubeflow's ConfigMap name


def cluster_role() -> dict[str, Any]:
    read_write = ["get", "list", "watch", "create", "patch", "update"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": NAME, "labels": dict(LABELS)},
        "rules": [
            {
                "apiGroups": [crds.DSC_GROUP, crds.DSCI_GROUP],
                "resources": [
                    "datascienceclusters",
                    "datascienceclusters/status",
                    "dscinitializations",
                    "dscinitializations/status",
                ],
                "verbs": ["get", "list", "watch", "patch", "update"],
            },
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": [""], "resources": ["secrets", "services"], "verbs": read_write},
            {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": read_write},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            # Workbenches: Notebook → StatefulSet + Service + PVC + token Secret; the pod for status.
            {
                "apiGroups": [crds.KUBEFLOW_GROUP],
                "resources": ["notebooks", "notebooks/status"],
                "verbs": ["get", "list", "watch", "patch", "update"],
            },
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": read_write},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            # Model serving: InferenceService → Deployment + Service; the default ServingRuntime.
            {
                "apiGroups": [crds.KSERVE_GROUP],
                "resources": ["inferenceservices", "inferenceservices/status", "servingruntimes"],
                "verbs": ["get", "list", "watch", "create", "patch", "update"],
            },
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": read_write},
            # KserveReady: is the model-server image on the node?
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
            # Data science pipelines (`pipelineserver`): the server's ServiceAccount, and a RoleBinding in the
            # applications namespace to the `ds-pipeline` ClusterRole below, and its task pods' to
            # `pipeline-runner-ds-pipeline` — `bind` on those two roles only, so the operator never holds the
            # pod- and InferenceService-deleting rights it grants them (RBAC's escalation rule).
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": read_write},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": read_write},
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "resourceNames": [pipelineserver.NAME, pipelineserver.TASK_ACCOUNT],
                "verbs": ["bind"],
            },
            # kopf watches CRDs to notice resources appearing; read-only.
            {
                "apiGroups": ["apiextensions.k8s.io"],
                "resources": ["customresourcedefinitions"],
                "verbs": ["get", "list", "watch"],
            },
        ],
    }


def operator_manifests(
    operator_image: str,
    minio_image: str,
    model_server_image: str = inference.DEFAULT_IMAGE,
    *,
    gateway_image: str = gateway.DEFAULT_IMAGE,
    gateway_url: str | None = None,
    pipeline_runner_image: str = pipelineserver.DEFAULT_IMAGE,
) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount, ClusterRole(Binding) and the operator Deployment, in apply order.

    `gateway_url`: how a person reaches the gateway from the host (`http://127.0.0.1:8080`); it goes
    into InferenceService URLs and MinIO's console redirect. None where the appliance cannot know it."""
    env = [
        {"name": MINIO_IMAGE_ENV, "value": minio_image},
        {"name": inference.MODEL_SERVER_IMAGE_ENV, "value": model_server_image},
        {"name": gateway.IMAGE_ENV, "value": gateway_image},
        {"name": pipelineserver.IMAGE_ENV, "value": pipeline_runner_image},
    ]
    if gateway_url:
        env.append({"name": gateway.URL_ENV, "value": gateway_url})
    meta = {"namespace": NAMESPACE, "labels": dict(LABELS)}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, **meta},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # never two operators reconciling at once
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1001},
                    "containers": [
                        {
                            "name": "operator",
                            "image": operator_image,
                            "imagePullPolicy": "IfNotPresent",  # loaded into the node; nothing is pulled
                            "env": env,
                            # Culling (ENABLE_CULLING, CULL_IDLE_TIME, IDLENESS_CHECK_PERIOD) as upstream.
                            "envFrom": [{"configMapRef": {"name": CULLER_CONFIG, "optional": True}}],
                            "ports": [{"name": "health", "containerPort": HEALTH_PORT}],
                            # kopf's health endpoint answers once the operator has started.
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "health"},
                                "periodSeconds": 5,
                                "timeoutSeconds": 5,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": "health"},
                                "initialDelaySeconds": 10,
                                "periodSeconds": 15,
                                "timeoutSeconds": 5,
                                "failureThreshold": 4,
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": dict(LABELS)}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NAME, **meta}},
        cluster_role(),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": dict(LABELS)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
        pipelineserver.cluster_role(),
        pipelineserver.task_cluster_role(),
        deployment,
    ]


def dsci(applications_namespace: str = initialization.DEFAULT_NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": f"{crds.DSCI_GROUP}/v1",
        "kind": "DSCInitialization",
        "metadata": {"name": DSCI_NAME},
        "spec": {"applicationsNamespace": applications_namespace},
    }


def dsc(enabled: Mapping[str, bool]) -> dict[str, Any]:
    """The DataScienceCluster for the appliance config's `components:` map (True → Managed)."""
    return {
        "apiVersion": f"{crds.DSC_GROUP}/v1",
        "kind": "DataScienceCluster",
        "metadata": {"name": DSC_NAME},
        "spec": {
            "components": {
                name: {"managementState": "Managed" if on else "Removed"}
                for name, on in sorted(enabled.items())
                if name in components.COMPONENTS
            }
        },
    }

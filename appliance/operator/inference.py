"""KServe RawDeployment as pure functions: InferenceService + ServingRuntime → Deployment + Service + status.

Called by `inference_handlers` on every InferenceService reconcile, and by the unit tests. The shapes
are upstream's (`serving.kserve.io/v1beta1` InferenceService, `v1alpha1` ServingRuntime, DESIGN.md §3):

- `spec.predictor.model.modelFormat.name` picks a ServingRuntime in the namespace that lists that
  format with `autoSelect: true` (or the one named by `spec.predictor.model.runtime`). The operator
  puts a default runtime, `odh-onnx-runtime` (our model server, ONNX), into every data science project
  and never overwrites it afterwards, so users may edit or disable it like any ServingRuntime.
- `storageUri: s3://bucket/path` (or ODH's `storage: {key, path}`) is downloaded by an init container
  (`python -m appliance.serving.storage`, the same image) into an emptyDir at `/mnt/models`. The
  credentials come from the data connection Secret named by `storage.key` (default:
  `aws-connection-minio`, the one every project gets) through `envFrom`, in ODH's key names.
- The Deployment and Service are named `<name>-predictor`, as KServe's RawDeployment names them. A
  new `storageUri` changes the pod template, so a new ReplicaSet rolls out with `maxUnavailable: 0`
  behind a readiness probe on `/v2/models/<name>/ready`: no request is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.operator import components, conditions, dataconnection

GROUP = "serving.kserve.io"
ISVC = (GROUP, "v1beta1", "inferenceservices")
RUNTIMES = (GROUP, "v1alpha1", "servingruntimes")
DEFAULT_RUNTIME = "odh-onnx-runtime"
DEFAULT_IMAGE = "localhost/odh-appliance/model-server:latest"
# The operator Deployment sets this to the content-hash tag `appliance up` found, so that a rebuilt
# model-server image rolls the predictors; without it, DEFAULT_IMAGE.
MODEL_SERVER_IMAGE_ENV = "ODH_OPERATOR_MODEL_SERVER_IMAGE"
MODEL_DIR = "/mnt/models"
HTTP_PORT = 8080
GRPC_PORT = 8081
PRESTOP_SECONDS = 3
ISVC_LABEL = "serving.kserve.io/inferenceservice"
MANAGED_BY = {"app.kubernetes.io/managed-by": "odh-appliance-operator"}
_STORAGE_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?")
_IMAGE_PROBLEMS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")


class InvalidSpec(ValueError):
    """The InferenceService (or its runtime) cannot be served as written; `reason` becomes the condition's."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Predictor:
    """What the Deployment needs, read and checked from an InferenceService."""

    name: str
    namespace: str
    model_format: str
    runtime: str | None
    storage_uri: str
    secret: str
    replicas: int
    resources: Mapping[str, Any] | None


def predictor_name(name: str) -> str:
    return f"{name}-predictor"


def url(name: str, namespace: str) -> str:
    """The in-cluster endpoint (there is no gateway yet)."""
    return f"http://{predictor_name(name)}.{namespace}.svc.cluster.local:{HTTP_PORT}"


def default_runtime(namespace: str, image: str = DEFAULT_IMAGE) -> dict[str, Any]:
    """The ONNX ServingRuntime the operator installs in each data science project."""
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {
            "name": DEFAULT_RUNTIME,
            "namespace": namespace,
            "labels": {"opendatahub.io/dashboard": "true", **MANAGED_BY},
            "annotations": {
                "openshift.io/display-name": "ONNX (odh-appliance model server, Open Inference Protocol)",
                "opendatahub.io/apiProtocol": "REST",
            },
        },
        "spec": {
            "supportedModelFormats": [{"name": "onnx", "version": "1", "autoSelect": True}],
            "protocolVersions": ["v2", "grpc-v2"],
            "multiModel": False,
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    "args": [
                        "--model_name={{.Name}}",
                        f"--model_dir={MODEL_DIR}",
                        "--host=0.0.0.0",
                        f"--http_port={HTTP_PORT}",
                        f"--grpc_port={GRPC_PORT}",
                    ],
                    "ports": [{"containerPort": HTTP_PORT, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
                }
            ],
        },
    }


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec("InvalidSpec", f"{where} must be a map, not {type(value).__name__}")
    return value


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSpec("InvalidSpec", f"{where} must be a non-negative integer, not {value!r}")
    return int(value)


def predictor(isvc: Mapping[str, Any]) -> Predictor:
    """Read `spec.predictor` (upstream shape); raise `InvalidSpec` with a clear message when it cannot be served."""
    meta = isvc["metadata"]
    pred = _map(_map(isvc.get("spec"), "spec").get("predictor"), "spec.predictor")
    model = _map(pred.get("model"), "spec.predictor.model")
    if not model:
        raise InvalidSpec("InvalidSpec", "spec.predictor.model is required (modelFormat, storageUri)")
    fmt = _map(model.get("modelFormat"), "spec.predictor.model.modelFormat").get("name")
    if not isinstance(fmt, str) or not fmt:
        raise InvalidSpec("InvalidSpec", "spec.predictor.model.modelFormat.name is required (e.g. onnx)")
    storage = _map(model.get("storage"), "spec.predictor.model.storage")
    uri = model.get("storageUri")
    path = storage.get("path")
    if uri is None and isinstance(path, str) and path.strip("/"):
        uri = path.strip("/")  # ODH: a path inside the data connection's AWS_S3_BUCKET
    elif not isinstance(uri, str) or not _STORAGE_URI.fullmatch(uri):
        raise InvalidSpec(
            "InvalidStorageUri",
            f"storageUri {uri!r} is not s3://BUCKET/PATH (bucket: 3-63 lower-case letters, digits, dots, hyphens); "
            "only S3 storage (MinIO) is supported",
        )
    secret = storage.get("key") or dataconnection.NAME
    if not isinstance(secret, str):
        raise InvalidSpec("InvalidSpec", "spec.predictor.model.storage.key must name a Secret")
    runtime = model.get("runtime")
    if runtime is not None and (not isinstance(runtime, str) or not runtime):
        raise InvalidSpec("InvalidSpec", "spec.predictor.model.runtime must name a ServingRuntime")
    low = _count(pred.get("minReplicas"), "spec.predictor.minReplicas")
    high = _count(pred.get("maxReplicas"), "spec.predictor.maxReplicas")
    if low is not None and high is not None and high and high < low:
        raise InvalidSpec("InvalidSpec", f"maxReplicas ({high}) is less than minReplicas ({low})")
    replicas = low if low is not None else 1
    resources = _map(model.get("resources"), "spec.predictor.model.resources") or None
    return Predictor(meta["name"], meta["namespace"], fmt.lower(), runtime, uri, secret, replicas, resources)


def _supports(runtime: Mapping[str, Any], fmt: str, *, auto: bool) -> bool:
    spec = runtime.get("spec") or {}
    if spec.get("disabled"):
        return False
    for entry in spec.get("supportedModelFormats") or []:
        if str(entry.get("name", "")).lower() == fmt and (not auto or entry.get("autoSelect")):
            return True
    return False


def select_runtime(pred: Predictor, runtimes: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The named runtime (it must support the format), else the first auto-selectable one for the format."""
    if pred.runtime is not None:
        for rt in runtimes:
            if rt["metadata"]["name"] == pred.runtime:
                if not _supports(rt, pred.model_format, auto=False):
                    raise InvalidSpec(
                        "RuntimeNotRecognized",
                        f"ServingRuntime {pred.runtime} does not support model format {pred.model_format!r} "
                        "(or is disabled)",
                    )
                return rt
        raise InvalidSpec("RuntimeNotRecognized", f"ServingRuntime {pred.runtime} does not exist in {pred.namespace}")
    for rt in sorted(runtimes, key=lambda r: str(r["metadata"]["name"])):
        if _supports(rt, pred.model_format, auto=True):
            return rt
    formats = [f for rt in runtimes for f in (rt.get("spec") or {}).get("supportedModelFormats") or []]
    known = sorted({str(f.get("name")) for f in formats})
    raise InvalidSpec(
        "NoSupportingRuntime",
        f"no ServingRuntime in {pred.namespace} supports model format {pred.model_format!r}; "
        f"supported here: {', '.join(known) or 'none'}",
    )


def owner_references(isvc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The controller owner reference of what the operator makes for an InferenceService (deleted with it)."""
    meta = isvc["metadata"]
    return [
        {
            "apiVersion": isvc.get("apiVersion", f"{GROUP}/v1beta1"),
            "kind": isvc.get("kind", "InferenceService"),
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def labels(name: str) -> dict[str, str]:
    return {ISVC_LABEL: name, "app": f"isvc.{predictor_name(name)}", "component": "predictor", **MANAGED_BY}


def selector(name: str) -> dict[str, str]:
    return {"app": f"isvc.{predictor_name(name)}"}


def objects(isvc: Mapping[str, Any], runtime: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Deployment and Service that serve `isvc` with `runtime` (raises `InvalidSpec`)."""
    pred = predictor(isvc)
    containers = (runtime.get("spec") or {}).get("containers") or []
    if not containers or not containers[0].get("image"):
        raise InvalidSpec("InvalidRuntime", f"ServingRuntime {runtime['metadata']['name']} has no container image")
    base = containers[0]
    image = str(base["image"])
    args = [str(a).replace("{{.Name}}", pred.name) for a in base.get("args") or []]
    name = predictor_name(pred.name)
    meta = {
        "name": name,
        "namespace": pred.namespace,
        "labels": labels(pred.name),
        "ownerReferences": owner_references(isvc),
    }
    annotations = {
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "serving.kserve.io/storage-uri": pred.storage_uri,
    }
    volume_mount = {"name": "kserve-provision-location", "mountPath": MODEL_DIR}
    ready = f"/v2/models/{pred.name}/ready"
    container = {
        "name": "kserve-container",
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # loaded into the node; nothing is pulled
        "args": args,
        "env": [*(base.get("env") or []), {"name": "MODEL_NAME", "value": pred.name}],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        "volumeMounts": [{**volume_mount, "readOnly": True}],
        "readinessProbe": {
            "httpGet": {"path": ready, "port": HTTP_PORT},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": HTTP_PORT},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "resources": dict(pred.resources or base.get("resources") or {}),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # An old pod keeps answering while the Service's endpoints drop it (a rollout drops no request).
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
    }
    initializer = {
        "name": "storage-initializer",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "appliance.serving.storage"],
        "args": [pred.storage_uri, MODEL_DIR],
        "envFrom": [{"secretRef": {"name": pred.secret}}],
        "volumeMounts": [volume_mount],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**meta, "annotations": annotations},
        "spec": {
            "replicas": pred.replicas,
            "selector": {"matchLabels": selector(pred.name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(pred.name), "annotations": annotations},
                "spec": {
                    "initContainers": [initializer],
                    "containers": [container],
                    "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}],
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": selector(pred.name),
            "ports": [
                {"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT, "protocol": "TCP"},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "protocol": "TCP"},
            ],
        },
    }
    return [deployment, service]


def pod_problem(pods: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) for a pod that cannot become ready by waiting: image absent, download or load failed."""
    for pod in pods:
        status = pod.get("status") or {}
        for kind, key in (("storage initializer", "initContainerStatuses"), ("model server", "containerStatuses")):
            for cs in status.get(key) or []:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in _IMAGE_PROBLEMS:
                    return "ImageNotPresent", (
                        f"the {kind} image {cs.get('image')} is not on the node ({waiting['reason']}); "
                        "run `appliance images build model-server` and `appliance up`"
                    )
                failed = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
                if failed and failed.get("exitCode", 0) != 0:
                    tail = " ".join(str(failed.get("message") or failed.get("reason") or "").split())[-400:]
                    reason = "StorageInitializerFailed" if kind == "storage initializer" else "ModelLoadFailed"
                    return reason, f"the {kind} failed (exit {failed.get('exitCode')}): {tail}"
    return None


def rollout(deployment: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether the Deployment's newest ReplicaSet is fully rolled out and every replica is ready."""
    if deployment is None:
        return False, "the predictor Deployment does not exist yet"
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    want = spec.get("replicas", 1)
    generation = (deployment.get("metadata") or {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return False, "the predictor Deployment's new spec is not observed yet"
    updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
    total, available = status.get("replicas", 0), status.get("availableReplicas", 0)
    if updated < want or total > updated:
        return False, f"rolling out: {updated}/{want} replicas updated, {total - updated} old"
    if ready < want or available < want:
        return False, f"{ready}/{want} replicas ready"
    return True, f"{ready}/{want} replicas ready"


def status(
    isvc: Mapping[str, Any],
    *,
    problem: tuple[str, str] | None,
    deployment: Mapping[str, Any] | None,
    external_url: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """The InferenceService `status`: url, PredictorReady/Ready conditions, modelStatus.

    `problem`: (reason, message) from `InvalidSpec` or `pod_problem`; it wins over the rollout's state.
    `external_url`: where a person reaches it (the gateway); `status.address.url` stays in-cluster.
    """
    meta = isvc["metadata"]
    previous = isvc.get("status") or {}
    if problem is not None:
        ready, reason, message = False, *problem
    else:
        ready, message = rollout(deployment)
        reason = "PredictorReady" if ready else "Progressing"
    spec_problem = problem is not None and reason in (
        "InvalidSpec",
        "InvalidStorageUri",
        "NoSupportingRuntime",
        "RuntimeNotRecognized",
        "InvalidRuntime",
        "DataConnectionNotFound",
    )
    if ready:
        states = {"activeModelState": "Loaded", "targetModelState": "Loaded"}
        transition = "UpToDate"
    elif problem is not None:
        states = {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"}
        transition = "InvalidSpec" if spec_problem else "BlockedByFailedLoad"
    else:
        states = {"activeModelState": "Pending", "targetModelState": "Loaded"}
        transition = "InProgress"
    model_status: dict[str, Any] = {"states": states, "transitionStatus": transition}
    if problem is not None:
        model_status["lastFailureInfo"] = {"reason": reason, "message": message}
    result: dict[str, Any] = {
        "observedGeneration": meta.get("generation", 0),
        "url": external_url or url(meta["name"], meta["namespace"]),
        "address": {"url": url(meta["name"], meta["namespace"])},
        "conditions": conditions.merge(
            [
                conditions.condition("PredictorReady", ready, reason, message),
                conditions.condition("Ready", ready, reason, message),
            ],
            previous.get("conditions"),
            at=at,
        ),
        "modelStatus": model_status,
        "deploymentMode": "RawDeployment",
    }
    return result


def health(image: str, node_images: Sequence[str], isvcs: Sequence[Mapping[str, Any]]) -> components.Health:
    """`KserveReady` for the DataScienceCluster: the controller runs (whoever calls this) and the
    model-server image that the default runtime uses is on the node; the message counts services."""
    if image not in node_images:
        return components.Health(
            False,
            "ImageNotPresent",
            f"the model-server image {image} is not on the node; run `appliance images build model-server` "
            "and `appliance up`",
        )
    ready = sum(conditions.is_true((i.get("status") or {}).get("conditions"), "Ready") for i in isvcs)
    return components.Health(
        True,
        "ReconcileCompleted",
        f"the InferenceService controller runs; {ready}/{len(isvcs)} InferenceServices ready",
    )

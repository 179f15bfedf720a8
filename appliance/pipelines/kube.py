"""The Kubernetes backend: each task attempt is a pod that runs the launcher; the engine stays in the server.

Called by `server` (the in-cluster pipeline server), which hands a `KubeBackend` to `engine.Engine`
exactly as the CLI hands `local.LocalBackend`. For one attempt it creates a pod, waits for it to end,
reads the launcher's result from the pod's log (`launcher.read_result`: the last stdout line), keeps
the log under the server's data directory (so `logs` works after the pod is gone), takes the exit
code from the container status, and deletes the pod. No driver pods: retries, caching, loops and
conditions stay in the engine.

The pod (`pod_manifest`, a pure function the unit tests check):
- the task JSON travels in the environment variable `ODH_PIPELINES_TASK` and the container runs
  `python -m appliance.pipelines env:ODH_PIPELINES_TASK`;
- image rule (`choose_image`): a task runs on its component's image when the node has it; anything
  else (the `python:3.x` of a lightweight component, which cannot be pulled on a disconnected site)
  runs on the pipeline-runner image, whose task Python carries kfp (`task-requirements.txt`), so
  kfp's `pip install` preamble is dropped, and a component needing other packages fails with the
  launcher's clear message. The node is asked by trying: a component image runs with
  `imagePullPolicy: Never`; `ErrImageNeverPull` (its Event: the pod status lags) marks it missing
  (remembered by the backend) and the attempt starts again at once on the runner image, as a pod of
  another name — no node-listing rights needed, nothing pulled.
  A component image that is kept gets the launcher from an init container (the runner image copies
  our task-side package into an emptyDir on PYTHONPATH); it needs `python3` and, for an S3 pipeline
  root, the `minio` package;
- KFP's local artifact paths (`/minio/…`, `/s3/…`, `/gcs/…`) and `/tmp` are emptyDirs, so the pod
  runs as any user; the object-store credentials come from the data connection Secret (`envFrom`);
- labels `pipelines.opendatahub.io/run` (a hash of the run id) and `app.kubernetes.io/managed-by:
  odh-pipeline-server` find every pod of a run (cleanup after a server restart), and an owner
  reference to the server's Deployment (when known) lets Kubernetes collect them with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.pipelines import backend, launcher

TASK_ENV = "ODH_PIPELINES_TASK"
MANAGED_BY = {"app.kubernetes.io/managed-by": "odh-pipeline-server"}
RUN_LABEL = "pipelines.opendatahub.io/run"
TASK_LABEL = "pipelines.opendatahub.io/task"
RUN_ANNOTATION = "pipelines.opendatahub.io/run-id"
TASK_ANNOTATION = "pipelines.opendatahub.io/task-id"
RUNNER_IMAGE = "localhost/odh-appliance/pipeline-runner:latest"
# In the pipeline-runner image: the task Python (kfp, minio) and a directory with only our package
# on it (our own site-packages would bring kubernetes 34, which kfp's pins refuse).
TASK_VENV = "/opt/kfp"
TASK_PYTHON = f"{TASK_VENV}/bin/python"
TASK_PATH = f"{TASK_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LAUNCHER_PATH = "/opt/pipelines-launcher"
LAUNCHER_COPY = "/odh-launcher"  # where an init container puts the launcher for a component image
OUTPUTS_DIR = "/tmp/kfp-outputs"
WORKDIR = "/tmp/kfp-work"
LOG_TAIL_LINES = 20
POLL_SECONDS = 0.25
START_GRACE = 300.0  # seconds a pod may stay Pending (scheduling, image) before the attempt fails
_IMAGE_PROBLEMS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerError")


def normalize_image(image: str) -> str:
    """The name containerd lists for `image`: `python:3.11` → `docker.io/library/python:3.11`."""
    name = image.strip()
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def choose_image(image: str, missing: Iterable[str], runner_image: str) -> str:
    """The image a task runs on: its own unless it is known to be missing on the node, else the runner's."""
    if image and normalize_image(image) not in {normalize_image(i) for i in missing}:
        return image
    return runner_image


def pod_name(run_id: str, task_id: str, attempt: int) -> str:
    """A DNS-1123 name, unique per attempt, readable where it fits: `<task>-<hash>-a<attempt>`."""
    digest = hashlib.sha256(f"{run_id}/{task_id}".encode()).hexdigest()[:10]
    readable = backend.slug(task_id).lower().replace(".", "-").replace("_", "-")[:40].strip("-") or "task"
    return f"{readable}-{digest}-a{attempt}"


def run_label(run_id: str) -> str:
    return hashlib.sha256(run_id.encode()).hexdigest()[:16]


def _resources(executor_raw: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """KFP's `container.resources` (cpuLimit, memoryLimit, resourceCpuRequest, …) as Kubernetes resources."""
    raw = executor_raw.get("container", {}).get("resources", {}) or {}
    out: dict[str, dict[str, str]] = {}
    for kind in ("Limit", "Request"):
        target = out.setdefault("limits" if kind == "Limit" else "requests", {})
        for resource in ("cpu", "memory"):
            value = raw.get(f"resource{resource.capitalize()}{kind}") or raw.get(f"{resource}{kind}")
            if value not in (None, "", 0):
                target[resource] = str(value) if resource == "cpu" or isinstance(value, str) else f"{value}G"
    accelerator = raw.get("accelerator") or {}
    if accelerator.get("resourceType") or accelerator.get("type"):
        count = str(accelerator.get("resourceCount") or accelerator.get("count") or 1)
        out["limits"][str(accelerator.get("resourceType") or accelerator.get("type"))] = count
    return {k: v for k, v in out.items() if v}


@dataclass
class KubeSettings:
    namespace: str
    pipeline_root: str
    runner_image: str = RUNNER_IMAGE
    credentials_secret: str = ""  # a data connection Secret (AWS_* keys) in `namespace`
    service_account: str = ""  # tasks' service account; "" = the namespace's default
    owner: dict[str, Any] | None = None  # an ownerReference (the server's Deployment)
    env: dict[str, str] = field(default_factory=dict)
    allow_pip: bool = False
    task_timeout: float = 3600.0
    log_dir: Path = Path("/tmp/pipelines-logs")


def task_spec(request: backend.TaskRequest, settings: KubeSettings) -> dict[str, Any]:
    """The launcher's task JSON for one attempt in a pod (no result file: the result goes to stdout)."""
    return backend.launcher_spec(
        request, mount_root="/", workdir=WORKDIR, allow_pip=settings.allow_pip, timeout=settings.task_timeout
    )


def pod_manifest(request: backend.TaskRequest, settings: KubeSettings, image: str) -> dict[str, Any]:
    """The pod of one task attempt (pure: the unit tests check it)."""
    on_runner = image == settings.runner_image
    env = [
        {"name": TASK_ENV, "value": json.dumps(task_spec(request, settings))},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PYTHONPATH", "value": LAUNCHER_PATH if on_runner else LAUNCHER_COPY},
        *({"name": k, "value": v} for k, v in sorted(settings.env.items())),
    ]
    if on_runner:  # the component's own `python3` (kfp's `sh -ec` script) must be the task Python too
        env += [{"name": "PATH", "value": TASK_PATH}, {"name": "VIRTUAL_ENV", "value": TASK_VENV}]
    scratch = [
        {"name": "scratch", "mountPath": path, "subPath": sub}
        for path, sub in (("/tmp", "tmp"), ("/minio", "minio"), ("/s3", "s3"), ("/gcs", "gcs"))
    ]
    python = TASK_PYTHON if on_runner else "python3"
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "IfNotPresent" if on_runner else "Never",  # the node's images only: tried, never pulled
        "command": [python, "-m", "appliance.pipelines", f"env:{TASK_ENV}"],
        "env": env,
        "volumeMounts": scratch,
    }
    if settings.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.credentials_secret}}]
    resources = _resources(request.executor.raw)
    if resources:
        container["resources"] = resources
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    init: list[dict[str, Any]] = []
    if not on_runner:  # the launcher comes from the runner image, as KFP copies its launcher
        volumes.append({"name": "launcher", "emptyDir": {}})
        container["volumeMounts"].append({"name": "launcher", "mountPath": LAUNCHER_COPY, "readOnly": True})
        init.append(
            {
                "name": "launcher",
                "image": settings.runner_image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["cp", "-rL", f"{LAUNCHER_PATH}/appliance", f"{LAUNCHER_COPY}/"],
                "volumeMounts": [{"name": "launcher", "mountPath": LAUNCHER_COPY}],
            }
        )
    metadata: dict[str, Any] = {
        "name": pod_name(request.run_id, request.task_id, request.attempt),
        "namespace": settings.namespace,
        "labels": {**MANAGED_BY, RUN_LABEL: run_label(request.run_id), TASK_LABEL: str(request.attempt)},
        "annotations": {RUN_ANNOTATION: request.run_id, TASK_ANNOTATION: request.task_id},
    }
    if settings.owner:
        metadata["ownerReferences"] = [settings.owner]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": int(settings.task_timeout) + 60,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": volumes,
    }
    if init:
        spec["initContainers"] = init
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@dataclass(frozen=True)
class PodEnd:
    """How a task pod ended, read from its status: exit code, or why it never ran."""

    exit_code: int
    reason: str = ""


def pod_end(pod: Mapping[str, Any]) -> PodEnd | None:
    """None while the pod is still pending or running; otherwise its exit code (pure)."""
    status = pod.get("status") or {}
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    for init in status.get("initContainerStatuses") or []:
        waiting = (init.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _IMAGE_PROBLEMS:
            return PodEnd(launcher.LAUNCHER_ERROR_EXIT_CODE, f"launcher image: {waiting.get('reason')}")
    main = statuses.get("main") or {}
    state = main.get("state") or {}
    if "terminated" in state:
        term = state["terminated"]
        return PodEnd(int(term.get("exitCode", 1)), str(term.get("reason") or ""))
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in _IMAGE_PROBLEMS:
        message = str(waiting.get("message") or "")[:300]
        return PodEnd(launcher.LAUNCHER_ERROR_EXIT_CODE, f"{waiting.get('reason')}: {message}".rstrip(": "))
    if status.get("phase") in ("Failed", "Succeeded"):  # e.g. activeDeadlineSeconds before the container ran
        return PodEnd(1 if status.get("phase") == "Failed" else 0, str(status.get("reason") or status.get("phase")))
    return None


def split_log(text: str, lines: int = LOG_TAIL_LINES) -> tuple[dict[str, Any] | None, str]:
    """The launcher's result and the log tail without the result line."""
    result = launcher.read_result(text)
    kept = [line for line in text.splitlines() if not line.startswith(launcher.RESULT_MARKER)]
    return result, "\n".join(kept[-lines:])


def api_client() -> Any:
    """In a pod: its service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
    from kubernetes import client, config  # noqa: PLC0415

    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG") or None)


class KubeBackend:
    """Runs each container task attempt as a pod in `settings.namespace`."""

    def __init__(self, settings: KubeSettings, api: Any = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        from kubernetes import client  # noqa: PLC0415

        self.settings = settings
        self.api = api or api_client()
        self.core = client.CoreV1Api(self.api)
        self._clock = clock
        self.missing: set[str] = set()  # component images the node does not have (learnt by trying)
        self._lock = threading.Lock()

    def outputs_dir(self, run_id: str, task_id: str, attempt: int) -> str:
        return OUTPUTS_DIR

    def log_file(self, run_id: str, task_id: str, attempt: int) -> Path:
        return self.settings.log_dir / backend.slug(run_id) / backend.slug(task_id) / f"attempt-{attempt}.log"

    def run(self, request: backend.TaskRequest) -> backend.TaskResult:
        return self._attempt(request)

    def _attempt(self, request: backend.TaskRequest, suffix: str = "") -> backend.TaskResult:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        with self._lock:
            image = choose_image(request.executor.image, self.missing, self.settings.runner_image)
        manifest = pod_manifest(request, self.settings, image)
        manifest["metadata"]["name"] += suffix
        name, namespace = manifest["metadata"]["name"], self.settings.namespace
        log_path = self.log_file(request.run_id, request.task_id, request.attempt)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._delete(name)  # a pod left by a server that died mid-attempt
        try:
            self.core.create_namespaced_pod(namespace, manifest)
        except ApiException as exc:
            return backend.TaskResult(
                exit_code=launcher.LAUNCHER_ERROR_EXIT_CODE,
                error=f"cannot create pod {namespace}/{name}: {exc.status} {exc.reason}",
                log_path=str(log_path),
            )
        try:
            end = self._wait(name, probing=image != self.settings.runner_image)
            if image != self.settings.runner_image and end.reason.startswith("ErrImageNeverPull"):
                with self._lock:  # not on the node: this and later tasks of that image use the runner image
                    self.missing.add(image)
                self._delete(name, wait=False)
                return self._attempt(request, suffix="-r")  # another name: no wait for this pod to go
            text = self._log(name) if end.reason != "deadline" else ""
            log_path.write_text(text)
            result, tail = split_log(text)
        finally:
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        error = str(result.get("error", "")) if result else ""
        if result is None and end.exit_code == 0:
            return backend.TaskResult(1, error="the launcher printed no result", log_path=str(log_path), log_tail=tail)
        if result is None and end.reason:
            error = f"pod {name}: {end.reason}"
        if end.exit_code == launcher.TIMEOUT_EXIT_CODE or end.reason == "DeadlineExceeded":
            error = error or f"the task ran past its timeout of {self.settings.task_timeout:g}s"
        return backend.TaskResult(
            exit_code=end.exit_code if result is None else int(result.get("exit_code", end.exit_code)),
            parameters=dict(result.get("parameters", {})) if result else {},
            artifacts=dict(result.get("artifacts", {})) if result else {},
            error=error,
            log_path=str(log_path),
            log_tail=tail,
        )

    def _read(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            pod = self.core.read_namespaced_pod(name, self.settings.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(self.api.sanitize_for_serialization(pod))

    def _wait(self, name: str, *, probing: bool = False) -> PodEnd:
        """Poll the pod until its main container ends (bounded by the task timeout and a start grace).

        `probing`: the pod runs a component image that may be missing; the kubelet says so in an
        Event at once, while the pod's status shows it only after its next sync (seen: 13 s)."""
        deadline = self._clock() + self.settings.task_timeout + START_GRACE
        while self._clock() < deadline:
            pod = self._read(name)
            if pod is None:
                return PodEnd(launcher.LAUNCHER_ERROR_EXIT_CODE, "the pod was deleted before it ended")
            end = pod_end(pod)
            if end is not None:
                return end
            if probing and self._never_pull_event(name):
                return PodEnd(launcher.LAUNCHER_ERROR_EXIT_CODE, "ErrImageNeverPull: the image is not on the node")
            time.sleep(POLL_SECONDS)
        return PodEnd(launcher.TIMEOUT_EXIT_CODE, "deadline")

    def _never_pull_event(self, name: str) -> bool:
        selector = f"involvedObject.kind=Pod,involvedObject.name={name},reason=ErrImageNeverPull"
        events = self.core.list_namespaced_event(self.settings.namespace, field_selector=selector).items
        return bool(events)

    def _delete(self, name: str, *, wait: bool = True) -> None:
        """Delete the pod if it exists; with `wait`, until it is gone (its name is reused by the next try)."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            self.core.delete_namespaced_pod(name, self.settings.namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        deadline = self._clock() + 60
        while wait and self._clock() < deadline and self._read(name) is not None:
            time.sleep(POLL_SECONDS)

    def _log(self, name: str) -> str:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            return str(self.core.read_namespaced_pod_log(name, self.settings.namespace, container="main"))
        except ApiException as exc:
            return f"(no log: {exc.status} {exc.reason})"

    def delete_run_pods(self, run_id: str) -> int:
        """Delete every pod of a run (after a server restart); returns how many there were."""
        selector = f"{RUN_LABEL}={run_label(run_id)}"
        pods = self.core.list_namespaced_pod(self.settings.namespace, label_selector=selector).items
        for pod in pods:
            self.core.delete_namespaced_pod(pod.metadata.name, self.settings.namespace, grace_period_seconds=0)
        return len(pods)

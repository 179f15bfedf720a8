"""Workbenches: a `kubeflow.org/v1` Notebook as desired Kubernetes objects and status (pure functions).

Called by `notebook_handlers` on every Notebook reconcile, and by the unit tests. The shapes follow
the upstream Kubeflow notebook-controller, so workshop YAML and tooling that read them work here:
- a StatefulSet named like the Notebook (replicas 1, or 0 while the `kubeflow-resource-stopped`
  annotation is present), pod labels `statefulset: <name>` and `notebook-name: <name>`, the first
  container keeps the user's image, resources (a `nvidia.com/gpu` limit passes through unchanged),
  env and mounts, and gets `NB_PREFIX=/notebook/<ns>/<name>` and port 8888 (`notebook-port`);
- a Service named like the Notebook, port 80 (`http-<name>`) → 8888;
- status `readyReplicas`, `containerState` and `conditions` (the pod's), as upstream.
Appliance additions: the workspace PVC `<name>` when the spec mounts no PVC (as the ODH dashboard
creates it), and token auth — JupyterLab reads `JUPYTER_TOKEN` from the Secret `<name>-token`,
generated once by the handler; a notebook never runs without auth (DESIGN.md §7).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from appliance.operator import conditions

STOP_ANNOTATION = "kubeflow-resource-stopped"
PORT = 8888
SERVICE_PORT = 80
HOME = "/opt/app-root/src"  # the workbench image's HOME and JupyterLab root
STORAGE_REQUEST = "10Gi"
TOKEN_KEY = "token"
# What a pod reports when its image cannot be had; on this appliance nothing is pulled from a registry,
# so each of these means "the image is not in the node" and never heals by waiting.
IMAGE_PROBLEMS = ("ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull", "InvalidImageName")
# Arguments that would switch JupyterLab's auth off (`--ServerApp.token=''`, as upstream examples and
# the ODH dashboard's NOTEBOOK_ARGS have, relying on a proxy this appliance does not run): dropped.
_NO_AUTH_ARG = re.compile(r"^--[\w.]*\.(token|password)=(''|\"\"|)$")


class InvalidSpec(ValueError):
    """The Notebook cannot be run as given; the message goes into a condition and a Warning Event."""


def prefix(namespace: str, name: str) -> str:
    """The base URL JupyterLab serves under (upstream `NB_PREFIX`)."""
    return f"/notebook/{namespace}/{name}"


def token_secret_name(name: str) -> str:
    return f"{name}-token"


def stopped(notebook: Mapping[str, Any]) -> bool:
    return STOP_ANNOTATION in ((notebook.get("metadata") or {}).get("annotations") or {})


def pod_spec(notebook: Mapping[str, Any]) -> dict[str, Any]:
    """`spec.template.spec`, validated: at least one container, the first with an image."""
    spec = ((notebook.get("spec") or {}).get("template") or {}).get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidSpec("spec.template.spec is missing: a Notebook needs a pod template with a container")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], Mapping):
        raise InvalidSpec("spec.template.spec.containers is empty: a Notebook needs a container with an image")
    if not isinstance(containers[0].get("image"), str) or not containers[0]["image"]:
        raise InvalidSpec("spec.template.spec.containers[0].image is missing")
    return dict(spec)


def labels(name: str) -> dict[str, str]:
    return {"statefulset": name, "notebook-name": name}


def token_secret(namespace: str, name: str, token: str | None = None) -> dict[str, Any]:
    """The Secret with the JupyterLab token; random (48 hex digits) unless given."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": token_secret_name(name), "namespace": namespace, "labels": {"notebook-name": name}},
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token or secrets.token_hex(24)},
    }


def mounts_pvc(spec: Mapping[str, Any]) -> bool:
    return any(isinstance(v, Mapping) and "persistentVolumeClaim" in v for v in spec.get("volumes") or [])


def pvc(namespace: str, name: str, storage: str = STORAGE_REQUEST) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": {"notebook-name": name}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
    }


def _container(namespace: str, name: str, given: Mapping[str, Any], workspace: bool) -> dict[str, Any]:
    container = dict(given)
    container.setdefault("name", name)
    nb_prefix = prefix(namespace, name)
    drop = {"NB_PREFIX", "JUPYTER_TOKEN"}
    container["env"] = [
        *(e for e in container.get("env") or [] if isinstance(e, Mapping) and e.get("name") not in drop),
        {"name": "NB_PREFIX", "value": nb_prefix},
        {
            "name": "JUPYTER_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": token_secret_name(name), "key": TOKEN_KEY}},
        },
    ]
    for key in ("command", "args"):
        if isinstance(container.get(key), list):
            container[key] = [a for a in container[key] if not (isinstance(a, str) and _NO_AUTH_ARG.match(a))]
    if not container.get("command") and not container.get("args"):
        # The workbench image's CMD, plus the base URL; the token comes from JUPYTER_TOKEN.
        container["args"] = [
            "jupyter", "lab", "--ip=0.0.0.0", f"--port={PORT}", "--no-browser",
            f"--ServerApp.root_dir={HOME}", f"--ServerApp.base_url={nb_prefix}",
            "--ServerApp.allow_origin=*", "--ServerApp.trust_xheaders=True",
        ]  # fmt: skip
    if not container.get("ports"):
        container["ports"] = [{"name": "notebook-port", "containerPort": PORT, "protocol": "TCP"}]
    container.setdefault("imagePullPolicy", "IfNotPresent")  # images are in the node; nothing is pulled
    mounts = list(container.get("volumeMounts") or [])
    if workspace and not any(isinstance(m, Mapping) and m.get("mountPath") == HOME for m in mounts):
        mounts.append({"name": name, "mountPath": HOME})
    if mounts:
        container["volumeMounts"] = mounts
    return container


def statefulset(notebook: Mapping[str, Any]) -> dict[str, Any]:
    """The StatefulSet that runs the Notebook's pod (raises InvalidSpec)."""
    meta = notebook["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = pod_spec(notebook)
    workspace = not mounts_pvc(spec)
    containers = list(spec["containers"])
    containers[0] = _container(namespace, name, containers[0], workspace)
    volumes = list(spec.get("volumes") or [])
    if workspace:
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": name}})
    template_meta = dict(((notebook.get("spec") or {}).get("template") or {}).get("metadata") or {})
    pod_labels = {**(template_meta.get("labels") or {}), **labels(name)}
    pod = {**spec, "containers": containers}
    if volumes:
        pod["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
        "spec": {
            "replicas": 0 if stopped(notebook) else 1,
            "serviceName": name,
            "selector": {"matchLabels": {"statefulset": name}},
            "template": {"metadata": {**template_meta, "labels": pod_labels}, "spec": pod},
        },
    }


def service(notebook: Mapping[str, Any]) -> dict[str, Any]:
    meta = notebook["metadata"]
    name = meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels(name)},
        "spec": {
            "type": "ClusterIP",
            "selector": {"statefulset": name},
            "ports": [{"name": f"http-{name}", "port": SERVICE_PORT, "targetPort": PORT, "protocol": "TCP"}],
        },
    }


def objects(notebook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Service, StatefulSet, and the workspace PVC when the spec mounts none (raises InvalidSpec)."""
    meta = notebook["metadata"]
    result = [service(notebook), statefulset(notebook)]
    if not mounts_pvc(pod_spec(notebook)):
        result.insert(0, pvc(meta["namespace"], meta["name"]))
    return result


def image_problem(pod: Mapping[str, Any] | None) -> str | None:
    """Why the pod's image cannot be had (ErrImageNeverPull, ImagePullBackOff, ...), or None."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PROBLEMS:
            detail = waiting.get("message") or ""
            return (
                f"image {status.get('image')!r} is not available ({waiting['reason']}): build or load it into the "
                f"node (`appliance images build` / `appliance bundle load`, then `appliance up`). {detail}".strip()
            )
    return None


def status(
    notebook: Mapping[str, Any],
    sts: Mapping[str, Any] | None,
    pod: Mapping[str, Any] | None,
    *,
    error: str | None = None,
) -> dict[str, Any]:
    """The Notebook's `status` as upstream: readyReplicas, containerState, the pod's conditions.

    `error` (a spec problem) or an image problem of the pod becomes a `Ready=False` condition with
    reason `InvalidSpec` / `ImageNotAvailable` in place of the pod's own Ready.
    """
    meta = notebook["metadata"]
    name = meta["name"]
    pod_status = (pod or {}).get("status") or {}
    state: dict[str, Any] = {}
    statuses = pod_status.get("containerStatuses") or []
    mine = next((s for s in statuses if s.get("name") == name), statuses[0] if statuses else None)
    if mine is not None:
        state = dict(mine.get("state") or {})
    conds: list[dict[str, Any]] = [dict(c) for c in pod_status.get("conditions") or []]
    problem = None
    if error is not None:
        problem = conditions.condition("Ready", False, "InvalidSpec", error)
    elif (why := image_problem(pod)) is not None:
        problem = conditions.condition("Ready", False, "ImageNotAvailable", why)
    if problem is not None:
        conds = [c for c in conds if c.get("type") != "Ready"] + [problem]
    return {
        "readyReplicas": int(((sts or {}).get("status") or {}).get("readyReplicas") or 0),
        "containerState": state,
        "conditions": conds,
        "url": prefix(meta["namespace"], name) + "/",
    }


def problem(status_: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of the appliance's problem condition in a status, if any."""
    found = conditions.find(status_.get("conditions"), "Ready")
    if found and found.get("reason") in ("InvalidSpec", "ImageNotAvailable"):
        return str(found["reason"]), str(found.get("message", ""))
    return None

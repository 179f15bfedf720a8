"""The Notebook controller's kopf handlers: thin glue from Notebook events and timers to `notebook` and
`culling` (the pure parts).

Imported by `__main__` (registering on import). Each reconcile is a full, idempotent pass: the token
Secret (created once, owned by the Notebook), the workspace PVC (created when missing, never owned:
the data outlives the Notebook, as with the ODH dashboard), Service and StatefulSet (server-side
applied, owned), then the status as upstream. Create/update/resume react at once (the stop
annotation is an update); a timer repeats the pass so deleted objects come back and the status
follows the pod. A bad spec or a missing image becomes a `Ready=False` condition and a Warning Event.
With `ENABLE_CULLING`, a second timer per Notebook asks JupyterLab's `/api/status` through the
Service with the token, and stops an idle notebook by setting `kubeflow-resource-stopped`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, cast

import kopf

from appliance import errors
from appliance.operator import components, crds, culling, handlers, notebook

NOTEBOOKS = (crds.KUBEFLOW_GROUP, "v1", "notebooks")
RECONCILE_INTERVAL = 10.0
CULL = culling.config(os.environ)
STATUS_TIMEOUT = 5.0

Logger = logging.Logger | logging.LoggerAdapter[Any]


@kopf.on.create(*NOTEBOOKS)
@kopf.on.update(*NOTEBOOKS)
@kopf.on.resume(*NOTEBOOKS)
def notebook_changed(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    run(body, logger)


@kopf.timer(*NOTEBOOKS, interval=RECONCILE_INTERVAL, initial_delay=RECONCILE_INTERVAL)
def notebook_tick(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    run(body, logger)


def run(body: kopf.Body, logger: Logger) -> None:
    try:
        reconcile(dict(body), logger)
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=handlers.RETRY_DELAY) from exc


def reconcile(nb: dict[str, Any], logger: Logger) -> None:
    api = handlers.client()
    meta = nb["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    previous = dict(nb.get("status") or {})
    try:
        objects = notebook.objects(nb)
    except notebook.InvalidSpec as exc:
        write_status(api, nb, previous, notebook.status(nb, None, None, error=str(exc)), logger)
        return
    if api.create_once(handlers.owned(notebook.token_secret(namespace, name), nb)):
        logger.info(f"generated the JupyterLab token in Secret {namespace}/{notebook.token_secret_name(name)}")
    for obj in objects:
        if obj["kind"] == "PersistentVolumeClaim":
            if api.read(api.core.read_namespaced_persistent_volume_claim, name, namespace) is None:
                api.apply([obj])
        else:
            api.apply([handlers.owned(obj, nb)])
    sts = api.read(api.apps.read_namespaced_stateful_set, name, namespace)
    pod = None if notebook.stopped(nb) else api.read(api.core.read_namespaced_pod, f"{name}-0", namespace)
    write_status(api, nb, previous, notebook.status(nb, sts, pod), logger)


def write_status(
    api: Any, nb: Mapping[str, Any], previous: Mapping[str, Any], new: dict[str, Any], logger: Logger
) -> None:
    """Patch the status when it differs; a new problem is a Warning Event, its end a Normal one."""
    meta = nb["metadata"]
    if new != {k: previous.get(k) for k in new}:
        api.call(
            api.custom.patch_namespaced_custom_object_status,
            crds.KUBEFLOW_GROUP, "v1", meta["namespace"], "notebooks", meta["name"], {"status": new},
        )  # fmt: skip
    before, after = notebook.problem(previous), notebook.problem(new)
    if after is not None and after != before:
        kopf.event(cast(kopf.Body, nb), type="Warning", reason=after[0], message=after[1])
        logger.warning(f"{after[0]}: {after[1]}")
    elif after is None and before is not None:
        kopf.event(cast(kopf.Body, nb), type="Normal", reason="Resolved", message=f"{before[0]} resolved")


def controller_health() -> components.Health:
    """WorkbenchesReady for the DataScienceCluster: this controller is registered (it is, when this
    module is loaded) and can list Notebooks across namespaces with the operator's rights."""
    api = handlers.client()
    try:
        listed = api.call(api.custom.list_cluster_custom_object, *NOTEBOOKS)
    except errors.ApplianceError as exc:
        return components.Health(False, "APIUnavailable", exc.message)
    except Exception as exc:
        return components.Health(False, "NotebookControllerInactive", f"cannot list Notebooks: {exc}")
    items = listed.get("items") or []
    running = sum(1 for i in items if ((i.get("status") or {}).get("readyReplicas") or 0) > 0)
    return components.Health(
        True, "ReconcileCompleted", f"the Notebook controller runs ({len(items)} notebooks, {running} running)"
    )


handlers.HEALTH["workbenches"] = controller_health


# --- culling ---------------------------------------------------------------------------------------


def jupyter_status(namespace: str, name: str, token: str) -> dict[str, Any] | None:
    """JupyterLab's `/api/status` through the Notebook's Service, or None when it does not answer."""
    url = (
        f"http://{name}.{namespace}.svc.cluster.local:{notebook.SERVICE_PORT}"
        f"{notebook.prefix(namespace, name)}/api/status"
    )
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=STATUS_TIMEOUT) as reply:
            data = json.loads(reply.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def cull(nb: Mapping[str, Any], logger: Logger, now: datetime.datetime | None = None) -> None:
    if notebook.stopped(nb):
        return
    api = handlers.client()
    meta = nb["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    secret = api.read_secret_data(namespace, notebook.token_secret_name(name)) or {}
    if not secret.get(notebook.TOKEN_KEY):
        return
    answer = jupyter_status(namespace, name, secret[notebook.TOKEN_KEY])
    if answer is None:
        return  # not up yet (or starting): nothing to judge
    moment = now or datetime.datetime.now(datetime.UTC)
    stop, why = culling.idle_decision(answer, moment, CULL)
    annotations: dict[str, str] = {}
    if isinstance(answer.get("last_activity"), str):
        annotations[culling.LAST_ACTIVITY_ANNOTATION] = answer["last_activity"]
    if stop:
        annotations[notebook.STOP_ANNOTATION] = culling.stop_annotation_value(moment)
    if annotations:
        api.call(
            api.custom.patch_namespaced_custom_object,
            crds.KUBEFLOW_GROUP, "v1", namespace, "notebooks", name, {"metadata": {"annotations": annotations}},
        )  # fmt: skip
    if stop:
        kopf.event(cast(kopf.Body, nb), type="Normal", reason="Culled", message=f"stopped: {why}")
        logger.info(f"culled: {why}")


if CULL.enabled:

    @kopf.timer(*NOTEBOOKS, interval=CULL.period_minutes * 60, initial_delay=CULL.period_minutes * 60)
    def notebook_cull(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        try:
            cull(dict(body), logger)
        except errors.ApplianceError as exc:
            raise kopf.TemporaryError(exc.message, delay=handlers.RETRY_DELAY) from exc

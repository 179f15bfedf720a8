"""The gateway's reconcile: list what is routed, render nginx's configuration, apply it.

Called by `handlers.reconcile_platform` on every DSCInitialization pass (so a deleted gateway object
comes back), and at once by the event handlers below when a Notebook or InferenceService appears or
goes, and by `inference_handlers` when it has made a token — so a new route exists within seconds,
not at the next tick. The desired state comes from `gateway` (pure); this module only reads and
applies. The objects are owned by the DSCInitialization, like MinIO.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import kopf

from appliance import errors, k8s
from appliance.operator import crds, gateway, handlers, inference, initialization, kube, pipelineserver

NOTEBOOKS = (crds.KUBEFLOW_GROUP, "v1", "notebooks")
_lock = threading.Lock()  # timers and event handlers run in kopf's threads; one apply at a time


def image() -> str:
    return os.environ.get(gateway.IMAGE_ENV, gateway.DEFAULT_IMAGE)


def desired_config(api: kube.Client, namespace: str) -> str:
    """The nginx.conf for what exists now."""
    notebooks = api.call(api.custom.list_cluster_custom_object, *NOTEBOOKS).get("items") or []
    isvcs = api.call(api.custom.list_cluster_custom_object, *inference.ISVC).get("items") or []
    secrets = api.call(api.core.list_secret_for_all_namespaces, label_selector=f"{gateway.TOKEN_LABEL}=true").items
    tokens: dict[tuple[str, str], str] = {}
    for secret in secrets:
        data = api.api_client.sanitize_for_serialization(secret).get("data") or {}
        owner = (secret.metadata.labels or {}).get(inference.ISVC_LABEL)
        if owner and data.get("token"):
            import base64  # noqa: PLC0415

            tokens[(secret.metadata.namespace, owner)] = base64.b64decode(data["token"]).decode()
    pipelines = api.read_secret_data(namespace, pipelineserver.TOKEN_SECRET) or {}
    return gateway.nginx_conf(gateway.routes(namespace, notebooks, isvcs, tokens, pipelines.get("token")))


def reconcile(api: kube.Client, dsci: Mapping[str, Any], namespace: str) -> tuple[bool, str]:
    """Apply the gateway for `dsci`; (ready, message) for its `GatewayReady` condition."""
    with _lock:
        conf = desired_config(api, namespace)
        api.apply(handlers.owned(obj, dsci) for obj in gateway.objects(namespace, conf, image()))
    ready, message = k8s.deployment_ready(api, namespace, gateway.NAME)
    where = os.environ.get(gateway.URL_ENV) or f"NodePort {gateway.HTTP_NODEPORT}"
    if ready:
        return True, f"the gateway answers on {where} ({message})"
    return False, f"the gateway is starting: {message}"


def reconcile_now(logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Re-render the gateway for the one DSCInitialization, if there is one and it is valid."""
    api = handlers.client()
    platforms = api.list_cluster_objects(*handlers.DSCI)
    if not platforms:
        return
    try:
        namespace = initialization.applications_namespace(platforms[0].get("spec"))
    except initialization.InvalidSpec:
        return
    if api.read(api.core.read_namespace, namespace) is None:
        return  # the DSCI pass creates the namespace (and then the gateway)
    try:
        reconcile(api, platforms[0], namespace)
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=handlers.RETRY_DELAY) from exc
    logger.debug(f"gateway routes refreshed in {namespace}")


@kopf.on.event(*NOTEBOOKS)
@kopf.on.event(*inference.ISVC)
def route_source_changed(type: str | None, logger: kopf.Logger, **_: Any) -> None:
    """A Notebook or InferenceService was added or deleted: refresh the routes now."""
    if type in ("ADDED", "DELETED"):
        reconcile_now(logger)


handlers.GATEWAY = reconcile

"""The kopf handlers for model serving: InferenceService (RawDeployment) and the default ServingRuntime.

Loaded by `__main__` next to `handlers`. Each reconcile is a full idempotent pass: make sure the
project has the default ONNX runtime, read the InferenceService, its runtimes, its data connection
and its pods, let the pure functions in `inference` compute the Deployment, Service and status,
apply, write the status. A spec that cannot be served becomes `Ready=False` with a reason and a
Warning Event; the operator keeps running. Everything created carries an owner reference to the
InferenceService, so deleting it lets the garbage collector remove the rest.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any, cast

import kopf

from appliance import errors
from appliance.operator import components, dataconnection, gateway, gateway_handlers, handlers, inference, kube

MODEL_SERVER_IMAGE_ENV = inference.MODEL_SERVER_IMAGE_ENV
RECONCILE_INTERVAL = 5.0


def image() -> str:
    return os.environ.get(MODEL_SERVER_IMAGE_ENV, inference.DEFAULT_IMAGE)


def ensure_runtime(api: kube.Client, namespace: str) -> None:
    """Create the default ServingRuntime once; never overwrite it (users may edit or disable it)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    group, version, plural = inference.RUNTIMES
    try:
        api.call(
            api.custom.create_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            inference.default_runtime(namespace, image()),
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


@kopf.on.event("namespaces", labels={dataconnection.PROJECT_LABEL: "true"})
def project_runtime(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A data science project gets the default ONNX ServingRuntime."""
    if type not in (None, "ADDED", "MODIFIED") or (body.get("status") or {}).get("phase") == "Terminating":
        return
    try:
        ensure_runtime(handlers.client(), body["metadata"]["name"])
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=handlers.RETRY_DELAY) from exc


@kopf.timer(*inference.ISVC, interval=RECONCILE_INTERVAL, initial_delay=0)
def reconcile_isvc(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    if body["metadata"].get("deletionTimestamp"):
        return
    try:
        reconcile(dict(body), logger)
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=handlers.RETRY_DELAY) from exc


def reconcile(isvc: dict[str, Any], logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    api = handlers.client()
    meta = isvc["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    ns = api.read(api.core.read_namespace, namespace) or {}
    if dataconnection.wants_connection((ns.get("metadata") or {}).get("labels")):
        ensure_runtime(api, namespace)
    problem: tuple[str, str] | None = None
    try:
        pred = inference.predictor(isvc)
        group, version, plural = inference.RUNTIMES
        runtimes = api.call(api.custom.list_namespaced_custom_object, group, version, namespace, plural)
        runtime = inference.select_runtime(pred, list(runtimes.get("items") or []))
        if api.read(api.core.read_namespaced_secret, pred.secret, namespace) is None:
            raise inference.InvalidSpec(
                "DataConnectionNotFound",
                f"the data connection Secret {namespace}/{pred.secret} does not exist; set "
                f"spec.predictor.model.storage.key to an existing one (label the namespace "
                f"{dataconnection.PROJECT_LABEL}=true to get {dataconnection.NAME})",
            )
        api.apply(inference.objects(isvc, runtime))
    except inference.InvalidSpec as exc:
        problem = (exc.reason, str(exc))  # an existing Deployment keeps serving the last good spec
    predictor = inference.predictor_name(name)
    deployment = api.read(api.apps.read_namespaced_deployment, predictor, namespace)
    if problem is None:
        selector = ",".join(f"{k}={v}" for k, v in inference.selector(name).items())
        pods = api.call(api.core.list_namespaced_pod, namespace, label_selector=selector).items
        problem = inference.pod_problem([api.api_client.sanitize_for_serialization(p) for p in pods])
    base = os.environ.get(gateway.URL_ENV)
    external = gateway.external_url(base, namespace, name) if base else None
    if gateway.auth_enabled(isvc) and ensure_token(api, isvc):
        logger.info(f"{namespace}/{name}: bearer token created in Secret {gateway.token_secret_name(name)}")
        gateway_handlers.reconcile_now(logger)  # route it now, not at the next platform pass
    new = inference.status(isvc, problem=problem, deployment=deployment, external_url=external)
    previous = isvc.get("status") or {}
    if new != {k: previous.get(k) for k in new}:
        group, version, plural = inference.ISVC
        api.call(
            api.custom.patch_namespaced_custom_object_status, group, version, namespace, plural, name, {"status": new}
        )
    for line in handlers.changed(previous, new):
        if not line.startswith("Ready="):
            continue  # PredictorReady says the same; one Event per change
        warning = "=False" in line and "(Progressing)" not in line
        kopf.event(
            cast(kopf.Body, isvc),
            type="Warning" if warning else "Normal",
            reason="InferenceServiceReady" if not warning else "InferenceServiceFailed",
            message=line,
        )
        (logger.warning if warning else logger.info)(f"{namespace}/{name}: {line}")


def ensure_token(api: kube.Client, isvc: dict[str, Any]) -> bool:
    """The InferenceService's bearer token Secret, created once with a random token; True when created now."""
    meta = isvc["metadata"]
    if api.read(api.core.read_namespaced_secret, gateway.token_secret_name(meta["name"]), meta["namespace"]):
        return False
    return api.create_once(gateway.token_secret(isvc, secrets.token_urlsafe(32)))


def serving_health() -> components.Health:
    """KserveReady for the DataScienceCluster: this controller is loaded, it can list InferenceServices
    cluster-wide, and the model-server image its default runtime uses is on the node."""
    api = handlers.client()
    try:
        isvcs = api.call(api.custom.list_cluster_custom_object, *inference.ISVC).get("items") or []
        nodes = api.call(api.core.list_node).items
    except errors.ApplianceError as exc:
        return components.Health(False, "APIUnavailable", exc.message)
    except Exception as exc:
        return components.Health(False, "InferenceServiceControllerInactive", f"cannot list: {exc}")
    names = [n for node in nodes for img in node.status.images or [] for n in img.names or []]
    return inference.health(image(), names, isvcs)


handlers.HEALTH["kserve"] = serving_health

"""The kopf handlers: thin glue from watch events and timers to the pure desired-state functions.

Loaded by `__main__` (which runs kopf). Every reconcile is a full, idempotent pass — read, compute,
server-side apply, write status — so an operator killed mid-reconcile converges after restart (the
timers start again for every existing object), and an owned object deleted by hand is recreated on
the next tick. Expected problems (API server unreachable, MinIO not answering yet) become
`kopf.TemporaryError` with a delay; spec problems become a status condition and an Event.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf

from appliance import errors
from appliance.operator import (
    components,
    conditions,
    crds,
    dataconnection,
    gateway,
    initialization,
    install,
    kube,
    minio,
)

RECONCILE_INTERVAL = 10.0  # seconds between full passes over each DSCI/DSC (recreates deleted objects)
RETRY_DELAY = 10.0
DSCI = (crds.DSCI_GROUP, "v1", "dscinitializations")
DSC = (crds.DSC_GROUP, "v1", "datascienceclusters")

_client: kube.Client | None = None
# Health probes of implemented components, registered by their controllers' modules on import.
HEALTH: dict[str, Callable[[], components.Health]] = {}
# The gateway's reconcile (api, dsci, namespace) → (ready, message), registered by `gateway_handlers`.
GATEWAY: Callable[[kube.Client, Mapping[str, Any], str], tuple[bool, str]] | None = None


def client() -> kube.Client:
    global _client  # noqa: PLW0603 - one API client per operator process, made on first use
    if _client is None:
        _client = kube.Client()
    return _client


def owned(obj: dict[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` with a controller owner reference to `owner` (a cluster-scoped custom resource)."""
    meta = owner["metadata"]
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": False,
    }
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [ref]}}


def changed(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Human lines for conditions whose status or reason changed (what becomes an Event)."""
    old = {c.get("type"): c for c in (previous or {}).get("conditions") or []}
    lines = []
    for cond in new["conditions"]:
        before = old.get(cond["type"])
        if before is None or (before.get("status"), before.get("reason")) != (cond["status"], cond["reason"]):
            lines.append(f"{cond['type']}={cond['status']} ({cond['reason']}): {cond['message']}")
    return lines


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The service account in the pod, else $KUBECONFIG (read when called, unlike the client library's
    auto-login, which fixes the kubeconfig path at import time)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Warnings become Events; kopf's per-tick "Timer succeeded" (INFO) must not. Good news is
    # posted explicitly with kopf.event (kopf.info obeys the level).
    settings.posting.level = logging.WARNING
    settings.persistence.finalizer = "odh-appliance.opendatahub.io/operator"
    settings.watching.server_timeout = 300
    settings.networking.error_backoffs = [1, 2, 5, 10]


# --- DSCInitialization: the applications namespace, MinIO, data connections ------------------------


@kopf.timer(*DSCI, interval=RECONCILE_INTERVAL, initial_delay=0)
def reconcile_dsci(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    try:
        reconcile_platform(dict(body), logger)
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=RETRY_DELAY) from exc


def reconcile_platform(dsci: dict[str, Any], logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    api = client()
    previous = dsci.get("status") or {}
    name = dsci["metadata"]["name"]
    try:
        namespace = initialization.applications_namespace(dsci.get("spec"))
    except initialization.InvalidSpec as exc:
        new = initialization.status(None, False, "", previous, error=str(exc))
        write_status(dsci, api, DSCI, name, previous, new, logger)
        return
    api.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"opendatahub.io/generated-namespace": "true"}},
            }
        ]
    )
    credentials = ensure_credentials(api, namespace, logger)
    image = os.environ.get(install.MINIO_IMAGE_ENV, minio.DEFAULT_IMAGE)
    url = os.environ.get(gateway.URL_ENV) or None
    api.apply(owned(obj, dsci) for obj in minio.objects(namespace, image, gateway_url=url))
    ready, message = minio.statefulset_ready(api.read(api.apps.read_namespaced_stateful_set, minio.NAME, namespace))
    if ready:
        ready, message = ensure_buckets(namespace, credentials, message)
    for ns in project_namespaces(api):
        api.apply([owned(dataconnection.secret(ns, credentials, minio.endpoint(namespace)), dsci)])
    routed = GATEWAY(api, dsci, namespace) if GATEWAY is not None else None
    new = initialization.status(namespace, ready, message, previous, gateway=routed)
    write_status(dsci, api, DSCI, name, previous, new, logger)


def ensure_credentials(
    api: kube.Client, namespace: str, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> dict[str, str]:
    """The MinIO root credentials: read them, or generate them once. Never owned by the DSCI, so
    deleting the DSCI does not lose the key to existing data."""
    data = api.read_secret_data(namespace, minio.SECRET)
    if data and data.get("MINIO_ROOT_USER") and data.get("MINIO_ROOT_PASSWORD"):
        return data
    if api.create_once(minio.credentials_secret(namespace, minio.generate_credentials())):
        logger.info(f"generated MinIO root credentials in Secret {namespace}/{minio.SECRET}")
    data = api.read_secret_data(namespace, minio.SECRET)
    if not data or not data.get("MINIO_ROOT_USER") or not data.get("MINIO_ROOT_PASSWORD"):
        raise kopf.TemporaryError(f"Secret {namespace}/{minio.SECRET} lacks the MinIO root keys", delay=RETRY_DELAY)
    return data


def ensure_buckets(namespace: str, credentials: Mapping[str, str], message: str) -> tuple[bool, str]:
    """Create the default buckets through the S3 API (idempotent); (ready, message)."""
    import urllib3  # noqa: PLC0415
    from minio import Minio  # noqa: PLC0415
    from minio.error import MinioException  # noqa: PLC0415

    host = minio.endpoint(namespace).removeprefix("http://")
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=10), retries=False)
    s3 = Minio(
        host,
        credentials["MINIO_ROOT_USER"],
        credentials["MINIO_ROOT_PASSWORD"],
        secure=False,
        region=minio.DEFAULT_REGION,
        http_client=http,
    )
    try:
        for bucket in minio.DEFAULT_BUCKETS:
            if not s3.bucket_exists(bucket):
                s3.make_bucket(bucket)
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        return False, f"MinIO runs, but the default buckets could not be created yet: {exc}"
    return True, f"{message}; buckets: {', '.join(minio.DEFAULT_BUCKETS)}"


def project_namespaces(api: kube.Client) -> list[str]:
    selector = f"{dataconnection.PROJECT_LABEL}=true"
    items = api.call(api.core.list_namespace, label_selector=selector).items
    return [ns.metadata.name for ns in items if ns.status.phase != "Terminating"]


@kopf.on.event("namespaces", labels={dataconnection.PROJECT_LABEL: "true"})
def project_namespace(body: kopf.Body, type: str | None, logger: kopf.Logger, **_: Any) -> None:
    """A data science project appeared (or changed): give it the data connection now, not at the next tick."""
    if type not in (None, "ADDED", "MODIFIED") or (body.get("status") or {}).get("phase") == "Terminating":
        return
    api = client()
    try:
        platforms = api.list_cluster_objects(*DSCI)
        if not platforms:
            return
        dsci = platforms[0]
        ns = initialization.applications_namespace(dsci.get("spec"))
        credentials = api.read_secret_data(ns, minio.SECRET)
        if not credentials:
            return  # the DSCI reconcile creates them and then the connection
        api.apply([owned(dataconnection.secret(body["metadata"]["name"], credentials, minio.endpoint(ns)), dsci)])
    except initialization.InvalidSpec:
        return
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=RETRY_DELAY) from exc


# --- DataScienceCluster: component conditions ------------------------------------------------------


@kopf.timer(*DSC, interval=RECONCILE_INTERVAL, initial_delay=0)
def reconcile_dsc(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    api = client()
    try:
        platforms = api.list_cluster_objects(*DSCI)
        if platforms:
            platform_status = platforms[0].get("status") or {}
            ready = conditions.is_true(platform_status.get("conditions"), "Ready")
            found = conditions.find(platform_status.get("conditions"), "Ready")
            why = str(found.get("message", "")) if found else "it has no status yet"
        else:
            ready, why = False, "no DSCInitialization exists; create one (appliance up does)"
        previous = dict(body.get("status") or {})
        health = {name: probe() for name, probe in HEALTH.items()}
        new = components.dsc_status(body.get("spec"), health, previous, platform_ready=ready, platform_message=why)
        write_status(body, api, DSC, body["metadata"]["name"], previous, new, logger)
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=RETRY_DELAY) from exc


def write_status(
    body: Mapping[str, Any],
    api: kube.Client,
    resource: tuple[str, str, str],
    name: str,
    previous: Mapping[str, Any],
    new: dict[str, Any],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Patch the status when it differs; each changed condition becomes an Event (Warning if False).
    Events are posted explicitly: the object logger's own posting did not reach the API from the
    sync handlers' threads (seen on kopf 1.45.2)."""
    lines = changed(previous, new)
    if new != {k: previous.get(k) for k in new}:
        api.patch_cluster_status(*resource, name, new)
    for line in lines:
        if "(Removed)" in line:
            continue  # a component turned off on purpose is not news
        if "=False" in line:
            kopf.event(cast(kopf.Body, body), type="Warning", reason="ConditionChanged", message=line)
            logger.warning(line)
        else:
            kopf.event(cast(kopf.Body, body), type="Normal", reason="ConditionChanged", message=line)
            logger.info(line)

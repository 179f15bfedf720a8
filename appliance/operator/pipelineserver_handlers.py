"""The pipeline server's reconcile: `datasciencepipelines: Managed` → the server in the applications namespace.

Imported by `__main__` (registering on import). A timer on the DataScienceCluster applies the objects
of `pipelineserver` (pure) every pass, owned by the DataScienceCluster, so a deleted object comes
back; the MinIO credentials are copied into the server's data connection Secret; the bearer token is
made once (never rotated under running clients). The applications namespace also gets the default
ONNX ServingRuntime, so a pipeline can serve the model it trained where its tasks run (task pods may
manage InferenceServices there: `pipelineserver.task_cluster_role`). When the component is Removed,
the Deployment is scaled to 0 and the PVC with the run history is kept (turning it on again finds
the history).
`DataSciencePipelinesReady` comes from `health`, registered in `handlers.HEALTH`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

import kopf

from appliance import errors
from appliance.operator import (
    components,
    gateway_handlers,
    handlers,
    inference_handlers,
    initialization,
    kube,
    minio,
    pipelineserver,
)

COMPONENT = "datasciencepipelines"


def image() -> str:
    return os.environ.get(pipelineserver.IMAGE_ENV, pipelineserver.DEFAULT_IMAGE)


def _namespace(api: kube.Client) -> str | None:
    platforms = api.list_cluster_objects(*handlers.DSCI)
    if not platforms:
        return None
    try:
        return initialization.applications_namespace(platforms[0].get("spec"))
    except initialization.InvalidSpec:
        return None


def managed(dsc: Mapping[str, Any]) -> bool:
    spec = (((dsc.get("spec") or {}).get("components") or {}).get(COMPONENT)) or {}
    return isinstance(spec, Mapping) and spec.get("managementState") == "Managed"


def ensure_token(api: kube.Client, namespace: str, dsc: Mapping[str, Any]) -> bool:
    """The server's bearer token Secret, created once; True when this call created it."""
    if api.read(api.core.read_namespaced_secret, pipelineserver.TOKEN_SECRET, namespace):
        return False
    secret = handlers.owned(pipelineserver.token_secret(namespace, secrets.token_urlsafe(32)), dsc)
    return api.create_once(secret)


@kopf.timer(*handlers.DSC, interval=handlers.RECONCILE_INTERVAL, initial_delay=0)
def reconcile_pipeline_server(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    api = handlers.client()
    dsc = dict(body)
    try:
        namespace = _namespace(api)
        if namespace is None or api.read(api.core.read_namespace, namespace) is None:
            return  # the DSCInitialization pass creates the namespace first
        if not managed(dsc):
            deployment = api.read(api.apps.read_namespaced_deployment, pipelineserver.NAME, namespace)
            if deployment is not None and (deployment.get("spec") or {}).get("replicas"):
                stopped = pipelineserver.objects(namespace, image(), replicas=0)[-1]
                api.apply([handlers.owned(stopped, dsc)])
                logger.info(f"pipeline server in {namespace} scaled to 0 (its run history PVC is kept)")
            return
        credentials = api.read_secret_data(namespace, minio.SECRET)
        if not credentials:
            raise kopf.TemporaryError("waiting for the MinIO credentials", delay=handlers.RETRY_DELAY)
        created = ensure_token(api, namespace, dsc)
        objects = [pipelineserver.s3_secret(namespace, credentials), *pipelineserver.objects(namespace, image())]
        api.apply(handlers.owned(obj, dsc) for obj in objects)
        # A pipeline deploys its model where its tasks run (examples/iris_onnx): the ONNX runtime a data
        # science project gets, made once and never overwritten (as there).
        inference_handlers.ensure_runtime(api, namespace)
        if created:
            logger.info(f"pipeline server token created in Secret {namespace}/{pipelineserver.TOKEN_SECRET}")
            gateway_handlers.reconcile_now(logger)  # route /ds-pipeline/ now, not at the next platform pass
    except errors.ApplianceError as exc:
        raise kopf.TemporaryError(exc.message, delay=handlers.RETRY_DELAY) from exc


def health() -> components.Health:
    """DataSciencePipelinesReady: the server's Deployment has its replica ready."""
    api = handlers.client()
    try:
        namespace = _namespace(api)
        if namespace is None:
            return components.Health(False, "Progressing", "no DSCInitialization yet")
        deployment = api.read(api.apps.read_namespaced_deployment, pipelineserver.NAME, namespace)
    except errors.ApplianceError as exc:
        return components.Health(False, "APIUnavailable", exc.message)
    ready, reason, message = pipelineserver.health(deployment, namespace)
    return components.Health(ready, reason, message)


handlers.HEALTH[COMPONENT] = health

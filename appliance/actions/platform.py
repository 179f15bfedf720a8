"""`appliance up`, platform part: CRDs → operator → DSCInitialization → DataScienceCluster, then wait
for the operator and MinIO, and report every component's condition.

Called by `actions.up.run` after the cluster part, and by `actions.status` / `api.credentials` to
read the platform's state. Each step applies (server-side apply is idempotent), so a second `up`
re-asserts the same objects in seconds. A component that is Managed but not implemented yet is
reported, never fatal; the operator or MinIO not becoming ready within a bound is.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from appliance import errors, k8s
from appliance.actions.context import Context
from appliance.images import catalog, engine
from appliance.operator import components, crds, inference, initialization, install, minio

CRD_TIMEOUT = 60.0
OPERATOR_TIMEOUT = 180.0
MINIO_TIMEOUT = 300.0
DSC_TIMEOUT = 120.0


def run(ctx: Context) -> None:
    install_crds(ctx)
    install_operator(ctx)
    apply_platform(ctx)
    wait_operator(ctx)
    wait_object_storage(ctx)
    report_components(ctx)


def image_ref(name: str) -> str:
    """The content-hash tag of a locally present platform image (so a rebuild rolls the pod)."""
    spec = catalog.get(name)
    info = engine.inspect(f"{spec.repository()}:latest")
    if info is None:
        raise errors.ApplianceError(
            f"the {name} image is not in the local Docker engine, so the platform cannot be installed",
            hint=f"build it (`appliance images build {name}`) or load a bundle (`appliance bundle load`), "
            "then run `appliance up` again",
        )
    hashed = sorted(t for t in info.tags if t.startswith(spec.repository() + ":") and not t.endswith(":latest"))
    return hashed[0] if hashed else f"{spec.repository()}:latest"


def install_crds(ctx: Context) -> None:
    cluster = ctx.cluster()
    with ctx.progress.step("install the platform CRDs") as step:
        cluster.apply(crds.all_crds())
        ext = _apiextensions(cluster)

        def established() -> tuple[bool, str]:
            pending = []
            for name in crds.crd_names():
                crd = cluster.call(ext.read_custom_resource_definition, name)
                conds = {c.type: c.status for c in (crd.status.conditions or [])}
                if conds.get("Established") != "True":
                    pending.append(name)
            return not pending, f"not established yet: {', '.join(pending)}"

        k8s.wait_for("the CRDs", established, timeout=CRD_TIMEOUT, on_wait=step.update,
                     hint="`kubectl get crd -o yaml` shows the API server's reason")  # fmt: skip
        step.update(f"{len(crds.crd_names())} CRDs established")


def install_operator(ctx: Context) -> None:
    with ctx.progress.step("install the operator") as step:
        operator_image, minio_image = image_ref("operator"), image_ref("minio")
        try:
            model_server_image = image_ref("model-server")
        except errors.ApplianceError:  # serving then reports the missing image in KserveReady
            model_server_image = inference.DEFAULT_IMAGE
        ctx.cluster().apply(install.operator_manifests(operator_image, minio_image, model_server_image))
        step.update(operator_image)


def apply_platform(ctx: Context) -> None:
    with ctx.progress.step("apply DSCInitialization and DataScienceCluster") as step:
        ctx.cluster().apply([install.dsci(), install.dsc(ctx.cfg.components)])
        managed = sorted(name for name, on in ctx.cfg.components.items() if on)
        step.update(f"{install.DSCI_NAME}, {install.DSC_NAME} (Managed: {', '.join(managed) or 'none'})")


def wait_operator(ctx: Context) -> None:
    cluster = ctx.cluster()
    with ctx.progress.step("wait for the operator") as step:
        k8s.wait_for(
            "the operator", lambda: k8s.deployment_ready(cluster, install.NAMESPACE, install.NAME),
            timeout=OPERATOR_TIMEOUT, on_wait=step.update,
            hint=f"`kubectl -n {install.NAMESPACE} describe pods` and `kubectl -n {install.NAMESPACE} logs "
            f"deploy/{install.NAME}` show why",
        )  # fmt: skip


def wait_object_storage(ctx: Context) -> None:
    cluster = ctx.cluster()
    with ctx.progress.step("wait for MinIO (object storage)") as step:

        def check() -> tuple[bool, str]:
            dsci = read_cluster_object(cluster, crds.DSCI_GROUP, "v1", "dscinitializations", install.DSCI_NAME)
            cond = _condition(dsci, "ObjectStorageReady")
            if cond is None:
                return False, "the operator has not reported on the DSCInitialization yet"
            if cond.get("reason") == "InvalidSpec":
                raise errors.ApplianceError(f"the DSCInitialization is invalid: {cond.get('message')}",
                                            hint=f"fix it: kubectl edit dsci {install.DSCI_NAME}")  # fmt: skip
            return cond.get("status") == "True", str(cond.get("message", ""))

        k8s.wait_for("MinIO", check, timeout=MINIO_TIMEOUT, on_wait=step.update,
                     hint=f"`kubectl -n {initialization.DEFAULT_NAMESPACE} describe statefulset {minio.NAME}` and "
                     f"`kubectl describe dsci {install.DSCI_NAME}` (its Events) show why")  # fmt: skip
        step.update("ready; credentials: `appliance credentials`")


def report_components(ctx: Context) -> None:
    """One step per Managed component, ending ✓ when Ready; NotImplemented ones are reported, not fatal."""
    cluster = ctx.cluster()
    with ctx.progress.step("wait for the DataScienceCluster status") as step:

        def check() -> tuple[bool, str]:
            dsc = read_cluster_object(cluster, crds.DSC_GROUP, "v1", "datascienceclusters", install.DSC_NAME)
            return _condition(dsc, "ComponentsReady") is not None, "the operator has not reported yet"

        k8s.wait_for("the DataScienceCluster status", check, timeout=DSC_TIMEOUT, on_wait=step.update,
                     hint=f"`kubectl -n {install.NAMESPACE} logs deploy/{install.NAME}` shows why")  # fmt: skip
        step.update(f"phase {platform_state(cluster).phase}")
    for item in platform_state(cluster).components:
        if item["state"] != "Managed":
            continue
        with ctx.progress.step(f"component {item['name']}") as comp:
            if item["status"] == "True":
                comp.update("Ready")
            else:
                comp.skip(f"{item['reason']}: {item['message']}")


@dataclass
class PlatformState:
    phase: str | None
    ready: bool
    components: list[dict[str, str]]  # name, state, condition, status, reason, message
    object_storage: dict[str, str] | None


def platform_state(cluster: k8s.Cluster) -> PlatformState:
    """What the operator reports: the DSC phase, each component's condition, MinIO's condition."""
    dsc = read_cluster_object(cluster, crds.DSC_GROUP, "v1", "datascienceclusters", install.DSC_NAME)
    dsci = read_cluster_object(cluster, crds.DSCI_GROUP, "v1", "dscinitializations", install.DSCI_NAME)
    status = (dsc or {}).get("status") or {}
    specs = ((dsc or {}).get("spec") or {}).get("components") or {}
    items = []
    for name in components.COMPONENTS:
        cond = _condition(dsc, components.condition_type(name)) or {}
        state = (specs.get(name) or {}).get("managementState", "Removed")
        items.append({"name": name, "state": str(state), "condition": components.condition_type(name),
                      "status": str(cond.get("status", "Unknown")), "reason": str(cond.get("reason", "")),
                      "message": str(cond.get("message", ""))})  # fmt: skip
    ready = _condition(dsc, "Ready")
    storage = _condition(dsci, "ObjectStorageReady")
    return PlatformState(
        phase=status.get("phase"),
        ready=bool(ready and ready.get("status") == "True"),
        components=items,
        object_storage={k: str(v) for k, v in storage.items()} if storage else None,
    )


def credentials(cluster: k8s.Cluster) -> dict[str, str]:
    """The MinIO root credentials and in-cluster endpoint, read from the Secret the operator made."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    dsci = read_cluster_object(cluster, crds.DSCI_GROUP, "v1", "dscinitializations", install.DSCI_NAME)
    namespace = ((dsci or {}).get("status") or {}).get("applicationsNamespace") or initialization.DEFAULT_NAMESPACE
    try:
        secret = cluster.call(cluster.core.read_namespaced_secret, minio.SECRET, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise errors.ApplianceError(
                f"no MinIO credentials yet (Secret {namespace}/{minio.SECRET} does not exist)",
                hint="run `appliance up` and wait for MinIO; `appliance status` shows the platform",
            ) from None
        raise
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    return {
        "access_key": data.get("MINIO_ROOT_USER", ""),
        "secret_key": data.get("MINIO_ROOT_PASSWORD", ""),
        "endpoint": minio.endpoint(namespace),
        "secret": f"{namespace}/{minio.SECRET}",
    }


def read_cluster_object(cluster: k8s.Cluster, group: str, version: str, plural: str, name: str) -> Any | None:
    from kubernetes import client  # noqa: PLC0415
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    api = client.CustomObjectsApi(cluster.api_client)
    try:
        return cluster.call(api.get_cluster_custom_object, group, version, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _condition(obj: Any | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _apiextensions(cluster: k8s.Cluster) -> Any:
    from kubernetes import client  # noqa: PLC0415

    return client.ApiextensionsV1Api(cluster.api_client)

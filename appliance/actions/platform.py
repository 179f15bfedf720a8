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
from appliance.operator import components, crds, gateway, inference, initialization, install, minio, pipelineserver

CRD_TIMEOUT = 60.0
OPERATOR_TIMEOUT = 180.0
MINIO_TIMEOUT = 300.0
DSC_TIMEOUT = 240.0


GATEWAY_TIMEOUT = 180.0
# Reasons a Managed component will keep until someone changes the spec: `up` reports them, never waits.
SETTLED = frozenset({"NotImplemented", "InvalidManagementState", "UnknownComponent"})


def run(ctx: Context) -> None:
    install_crds(ctx)
    install_operator(ctx)
    apply_platform(ctx)
    wait_operator(ctx)
    wait_object_storage(ctx)
    wait_gateway(ctx)
    report_components(ctx)


def gateway_url(ctx: Context) -> str | None:
    """How a person on this host reaches the gateway; None where the appliance does not map the port
    (an existing cluster: its NodePort is on the node's address)."""
    if ctx.provider.name != "kind":
        return None
    address = ctx.cfg.bind_address
    if address in ("0.0.0.0", "::", ""):
        address = "127.0.0.1"
    elif ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{ctx.cfg.ports.http}"


def image_ref(ctx: Context, name: str) -> str:
    """The content-hash tag of a platform image (so a rebuild rolls the pod): the one `up` loaded,
    else the one `:latest` names in the local engine now."""
    if name in ctx.images:
        return ctx.images[name]
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
        operator_image, minio_image = image_ref(ctx, "operator"), image_ref(ctx, "minio")
        try:
            model_server_image = image_ref(ctx, "model-server")
        except errors.ApplianceError:  # serving then reports the missing image in KserveReady
            model_server_image = inference.DEFAULT_IMAGE
        try:
            runner_image = image_ref(ctx, "pipeline-runner")
        except errors.ApplianceError:  # the pipeline server's pod then reports the missing image
            runner_image = pipelineserver.DEFAULT_IMAGE
        ctx.cluster().apply(
            install.operator_manifests(operator_image, minio_image, model_server_image,
                                       gateway_image=image_ref(ctx, "gateway"), gateway_url=gateway_url(ctx),
                                       pipeline_runner_image=runner_image)
        )  # fmt: skip
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


def wait_dsci_condition(ctx: Context, title: str, kind: str, timeout: float, hint: str, done: str = "ready") -> None:
    """Wait until the DSCInitialization's condition `kind` is True; a spec error fails at once."""
    cluster = ctx.cluster()
    with ctx.progress.step(f"wait for {title}") as step:

        def check() -> tuple[bool, str]:
            dsci = read_cluster_object(cluster, crds.DSCI_GROUP, "v1", "dscinitializations", install.DSCI_NAME)
            cond = _condition(dsci, kind)
            if cond is None:
                return False, "the operator has not reported on the DSCInitialization yet"
            if cond.get("reason") == "InvalidSpec":
                raise errors.ApplianceError(f"the DSCInitialization is invalid: {cond.get('message')}",
                                            hint=f"fix it: kubectl edit dsci {install.DSCI_NAME}")  # fmt: skip
            return cond.get("status") == "True", str(cond.get("message", ""))

        k8s.wait_for(title, check, timeout=timeout, on_wait=step.update, hint=hint)
        step.update(done)


def wait_object_storage(ctx: Context) -> None:
    ns = initialization.DEFAULT_NAMESPACE
    wait_dsci_condition(ctx, "MinIO (object storage)", "ObjectStorageReady", MINIO_TIMEOUT,
                        hint=f"`kubectl -n {ns} describe statefulset {minio.NAME}` and "
                        f"`kubectl describe dsci {install.DSCI_NAME}` (its Events) show why",
                        done="ready; credentials: `appliance credentials`")  # fmt: skip


def wait_gateway(ctx: Context) -> None:
    ns = initialization.DEFAULT_NAMESPACE
    wait_dsci_condition(ctx, "the gateway", "GatewayReady", GATEWAY_TIMEOUT,
                        hint=f"`kubectl -n {ns} describe deploy {gateway.NAME}` and "
                        f"`kubectl -n {ns} logs deploy/{gateway.NAME}` show why",
                        done=gateway_url(ctx) or f"NodePort {gateway.HTTP_NODEPORT} on the node")  # fmt: skip


def endpoints(ctx: Context, cluster: k8s.Cluster) -> list[dict[str, str]]:
    """What a person opens, through the gateway: name, URL, and how to authenticate."""
    base = gateway_url(ctx)
    if base is None:
        return []
    grpc = base.rsplit(":", 1)[0].removeprefix("http://") + f":{ctx.cfg.ports.grpc}"
    found = [
        {"name": "MinIO S3 API (path-style)", "url": base, "auth": "`appliance credentials`"},
        {"name": "MinIO console", "url": f"{base}{minio.CONSOLE_PATH}/", "auth": "`appliance credentials`"},
    ]
    from kubernetes import client  # noqa: PLC0415

    api = client.CustomObjectsApi(cluster.api_client)
    notebooks = cluster.call(api.list_cluster_custom_object, crds.KUBEFLOW_GROUP, "v1", "notebooks")
    for nb in notebooks.get("items") or []:
        meta = nb["metadata"]
        found.append({"name": f"workbench {meta['namespace']}/{meta['name']}",
                      "url": f"{base}/notebook/{meta['namespace']}/{meta['name']}/",
                      "auth": f"token in Secret {meta['namespace']}/{meta['name']}-token"})  # fmt: skip
    isvcs = cluster.call(api.list_cluster_custom_object, *inference.ISVC)
    for isvc in isvcs.get("items") or []:
        meta = isvc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        auth = (f"Bearer token in Secret {ns}/{gateway.token_secret_name(name)}" if gateway.auth_enabled(isvc)
                else "none (enable-auth: false)")  # fmt: skip
        found.append({"name": f"model {ns}/{name} (REST)", "url": gateway.external_url(base, ns, name), "auth": auth})
        found.append({"name": f"model {ns}/{name} (gRPC)", "url": f"{grpc} (authority {name}.{ns})", "auth": auth})
    return found


def report_components(ctx: Context) -> None:
    """One step per Managed component, ending ✓ when Ready; NotImplemented ones are reported, not fatal."""
    cluster = ctx.cluster()
    with ctx.progress.step("wait for the DataScienceCluster to be Ready") as step:

        def check() -> tuple[bool, str]:
            state = platform_state(cluster)
            if state.phase is None:
                return False, "the operator has not reported yet"
            # An image `up` did not load stays missing; one it just loaded appears in the node's
            # status within seconds (the kubelet reports images periodically).
            settled = SETTLED if "model-server" in ctx.images else SETTLED | {"ImageNotPresent"}
            blocked = [c for c in state.components if c["state"] == "Managed" and c["status"] != "True"]
            waiting = [f"{c['name']} ({c['reason']})" for c in blocked if c["reason"] not in settled]
            # Ready; or it never will be until someone changes the spec (reported below, not waited for).
            done = state.ready or (bool(blocked) and not waiting)
            return done, "waiting for " + ", ".join(waiting or ["the DataScienceCluster's next pass"])

        k8s.wait_for("the DataScienceCluster", check, timeout=DSC_TIMEOUT, on_wait=step.update,
                     hint="`appliance status` shows each component's condition; "
                     f"`kubectl -n {install.NAMESPACE} logs deploy/{install.NAME}` the operator's view")  # fmt: skip
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


def platform_secret(cluster: k8s.Cluster, name: str, missing: str, hint: str) -> tuple[str, dict[str, str]]:
    """(applications namespace, decoded data) of a Secret the operator made there; a missing one is an
    ApplianceError: "no {missing} (Secret ns/name does not exist)" with `hint`."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    dsci = read_cluster_object(cluster, crds.DSCI_GROUP, "v1", "dscinitializations", install.DSCI_NAME)
    namespace = ((dsci or {}).get("status") or {}).get("applicationsNamespace") or initialization.DEFAULT_NAMESPACE
    try:
        secret = cluster.call(cluster.core.read_namespaced_secret, name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise errors.ApplianceError(f"no {missing} (Secret {namespace}/{name} does not exist)", hint=hint) from None
        raise
    return namespace, {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def credentials(cluster: k8s.Cluster) -> dict[str, str]:
    """The MinIO root credentials and in-cluster endpoint, read from the Secret the operator made."""
    namespace, data = platform_secret(
        cluster, minio.SECRET, "MinIO credentials yet",
        hint="run `appliance up` and wait for MinIO; `appliance status` shows the platform",
    )  # fmt: skip
    return {
        "access_key": data.get("MINIO_ROOT_USER", ""),
        "secret_key": data.get("MINIO_ROOT_PASSWORD", ""),
        "endpoint": minio.endpoint(namespace),
        "secret": f"{namespace}/{minio.SECRET}",
    }


PIPELINES_PATH = gateway.PIPELINES_PATH.rstrip("/")  # the pipeline server through the gateway


def pipelines_token(cluster: k8s.Cluster) -> str:
    """The pipeline server's bearer token, from the Secret the operator made in the applications namespace."""
    _, data = platform_secret(
        cluster, pipelineserver.TOKEN_SECRET, "pipeline server token",
        hint="set datasciencepipelines to Managed (config `components`, then `appliance up`); "
        "`appliance status` shows DataSciencePipelinesReady",
    )  # fmt: skip
    return data.get("token", "")


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

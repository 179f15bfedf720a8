"""`appliance up`: from nothing (or from wherever an interrupted run stopped) to a healthy
single-node cluster with the bundle's images loaded, then the platform on it (`actions.platform`).
Every step checks before it acts, so a second `up` on a healthy cluster changes nothing and takes
seconds. With GPU on (`gpu: on`, or `auto` on a host that can, see `doctor.gpu`), the node is the GPU
variant and the device plugin is installed (docs/gpu.md); `gpu: on` on a host that cannot stops at the
first step, before anything is built or created.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from appliance import errors, k8s
from appliance.actions import platform
from appliance.actions.context import Context
from appliance.cluster import kindconfig, nvidia
from appliance.doctor import facts, gpu
from appliance.images import catalog, engine, nodeimage
from appliance.images import gpu as gpu_images

NODE_READY_TIMEOUT = 300.0
DNS_TIMEOUT = 240.0
DNS_PROBE_NAMESPACE = "kube-system"
GPU_TIMEOUT = 180.0


def run(ctx: Context, *, merge_kubeconfig: bool = False) -> None:
    with_gpu = preflight_gpu(ctx)
    ensure_node_image(ctx)
    if with_gpu:
        ensure_gpu_images(ctx)
    ensure_cluster(ctx, gpu=with_gpu)
    write_kubeconfig(ctx, merge=merge_kubeconfig)
    wait_node_ready(ctx)
    wait_dns(ctx)
    load_images(ctx, platform_image_refs(ctx) + ([gpu_images.device_plugin_tag()] if with_gpu else []))
    if with_gpu:
        setup_gpu(ctx)
    platform.run(ctx)  # CRDs → operator → DSCI → DSC, wait for MinIO, report components


def preflight_gpu(ctx: Context) -> bool:
    """Resolve `gpu: auto|on|off` against this host (doctor.gpu); `on` without a usable GPU raises
    `gpu.GpuUnavailable` here, before anything is built or created."""
    setting = ctx.cfg.gpu
    with ctx.progress.step("GPU") as step:
        if setting == "off":
            step.skip("off")
            return False
        if ctx.cfg.provider != "kind":
            step.skip(f"provider {ctx.cfg.provider}: the existing cluster's own GPU setup is used")
            return False
        observed = facts.gpu_facts()
        # Docker's runtimes matter only where there is a GPU; the engine's SDK is slow to load.
        present = observed.nvidia_smi is not None or bool(observed.device_nodes)
        engine_facts = facts.docker_facts() if present else facts.DockerFacts(False, "", "not asked: no GPU")
        support = gpu.assess(observed, engine_facts)
        if not gpu.resolve(setting, support):
            step.skip(f"auto, so off: {support.detail}")
            return False
        try:
            gpu_images.check_device_plugin_buildable(ctx.paths.cache_dir)
        except errors.ApplianceError as exc:
            if setting == "on":
                raise
            step.skip(f"auto, so off: {support.detail}, but {exc.message} ({exc.hint})")
            return False
        step.update(support.detail)
        return True


def ensure_gpu_images(ctx: Context) -> None:
    """The GPU node variant and the device plugin image. With the source tree at hand the node variant
    is checked against its recipe (a rebuilt CPU node image rebuilds it, in seconds); without it (a
    bundle install) present images are used as they are, as for the node image (`ensure_node_image`)."""
    version = ctx.cfg.kubernetes_version
    node, node_gpu, plugin = (
        nodeimage.node_tag(version),
        gpu_images.node_gpu_tag(version),
        gpu_images.device_plugin_tag(),
    )
    try:
        root: Path | None = ctx.source_root()
    except errors.ApplianceError:
        root = None
    if root is not None:
        gpu_images.ensure_node_gpu_image(version, node, root, ctx.paths.cache_dir, ctx.progress)
    for tag in ([] if root is not None else [node_gpu]) + [plugin]:
        if engine.inspect(tag) is not None:
            with ctx.progress.step(f"image {tag}") as step:
                step.skip("present")
        elif tag == plugin and root is not None:
            gpu_images.ensure_device_plugin_image(root, ctx.paths.cache_dir, ctx.progress)
        else:
            raise errors.ApplianceError(
                f"the GPU image {tag} is not in the local Docker engine, and there is no source tree to build it",
                hint="load a bundle built with the GPU images (`appliance images gpu` on the builder), "
                "or run from an odh-appliance checkout",
            )


def setup_gpu(ctx: Context) -> None:
    """RuntimeClass `nvidia` and the device plugin; then wait until the node offers nvidia.com/gpu."""
    cluster = ctx.cluster()
    with ctx.progress.step("GPU: RuntimeClass nvidia, NVIDIA device plugin") as step:
        items = cluster.call(cluster.core.list_node).items
        label = kindconfig.GPU_NODE_LABEL
        without = [n.metadata.name for n in items if (n.metadata.labels or {}).get(label) != "true"]
        if without and ctx.cfg.gpu == "auto":
            step.skip(
                f"auto, so off: cluster {ctx.cfg.cluster_name!r} was created without GPU (down, then up, adds it)"
            )
            return
        if without:
            raise gpu.GpuUnavailable(
                f"cluster {ctx.cfg.cluster_name!r} was created without GPU (node {without[0]})",
                hint="recreate it with GPU: `appliance down`, then `appliance up --gpu on`",
            )
        cluster.apply(nvidia.manifests(gpu_images.device_plugin_tag()))

        def check() -> tuple[bool, str]:
            nodes = cluster.call(cluster.core.list_node).items
            counts = [nvidia.allocatable_gpus(n.status.allocatable) for n in nodes]
            return all(counts), f"allocatable {nvidia.GPU_RESOURCE}: {counts}"

        step.update(f"waiting for the node to offer {nvidia.GPU_RESOURCE}")
        k8s.wait_for(
            f"{nvidia.GPU_RESOURCE} on the node", check, timeout=GPU_TIMEOUT, on_wait=step.update,
            hint=f"`kubectl -n {nvidia.NAMESPACE} logs ds/{nvidia.DAEMONSET}` says why "
            "(an NVML error means the node got no driver from the host's NVIDIA runtime)",
        )  # fmt: skip
        step.update(f"{nvidia.GPU_RESOURCE} offered")


def platform_image_refs(ctx: Context) -> list[str]:
    """Every tag of the platform images present in the local engine (built, or loaded from a bundle);
    each image's content-hash tag is remembered in `ctx.images` for the operator's manifests."""
    refs: list[str] = []
    for spec in catalog.CATALOG.values():
        info = engine.inspect(f"{spec.repository()}:latest")
        if info is None:
            continue
        tags = sorted(tag for tag in info.tags if tag.startswith(spec.repository() + ":"))
        refs.extend(tags)
        hashed = [tag for tag in tags if not tag.endswith(":latest")]
        if hashed:
            ctx.images[spec.name] = hashed[0]
    return refs


def ensure_node_image(ctx: Context) -> None:
    if ctx.cfg.provider != "kind":
        return
    tag = nodeimage.node_tag(ctx.cfg.kubernetes_version)
    if engine.inspect(tag) is not None:
        with ctx.progress.step(f"node image {tag}") as step:
            step.skip("present")
        return
    nodeimage.build_node_image(ctx.cfg.kubernetes_version, ctx.source_root(), ctx.paths.cache_dir, ctx.progress)


def ensure_cluster(ctx: Context, *, gpu: bool = False) -> None:
    state = ctx.provider.state()
    if state.exists and not state.complete:
        # An earlier `up` stopped inside cluster creation: start that part again from a clean slate.
        ctx.provider.delete(ctx.progress, keep_data=True)
        state = ctx.provider.state()
    if not state.exists:
        ctx.provider.create(ctx.progress, gpu=gpu)
    elif not state.running:
        ctx.provider.start(ctx.progress)
    else:
        with ctx.progress.step(f"cluster {ctx.cfg.cluster_name}") as step:
            step.skip("running")


def write_kubeconfig(ctx: Context, *, merge: bool) -> None:
    with ctx.progress.step("write kubeconfig") as step:
        path = ctx.provider.write_kubeconfig(ctx.kubeconfig)
        step.update(str(path))
        if merge:
            target = Path(os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config")
            merge_kubeconfig(path, target)
            step.update(f"{path}, merged into {target}")


def merge_kubeconfig(source: Path, target: Path) -> None:
    """Add (or replace) the clusters, users and contexts of `source` in `target`; keep the rest."""
    new = yaml.safe_load(source.read_text()) or {}
    old = yaml.safe_load(target.read_text()) if target.is_file() else None
    old = old or {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for section in ("clusters", "users", "contexts"):
        names = {item["name"] for item in new.get(section) or []}
        old[section] = [i for i in old.get(section) or [] if i["name"] not in names] + list(new.get(section) or [])
    old["current-context"] = new.get("current-context", old.get("current-context"))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".odh-partial")
    partial.write_text(yaml.safe_dump(old, sort_keys=False))
    partial.chmod(0o600)
    partial.rename(target)


def wait_node_ready(ctx: Context) -> None:
    cluster = ctx.cluster()

    def check() -> tuple[bool, str]:
        try:
            nodes = k8s.nodes(cluster)
        except errors.ApplianceError as exc:
            return False, exc.message
        if not nodes:
            return False, "no node registered yet"
        not_ready = [n.name for n in nodes if not n.ready]
        return not not_ready, f"not ready: {', '.join(not_ready)}" if not_ready else "ready"

    with ctx.progress.step("wait for the node to be Ready") as step:
        k8s.wait_for("the node", check, timeout=NODE_READY_TIMEOUT, on_wait=step.update,
                     hint="`docker exec <cluster>-control-plane journalctl -u kubelet` shows why")  # fmt: skip


def wait_dns(ctx: Context) -> None:
    """CoreDNS is Ready and answers a lookup from a pod (which also proves pod networking works)."""
    cluster = ctx.cluster()
    with ctx.progress.step("wait for CoreDNS to answer") as step:
        k8s.wait_for(
            "CoreDNS", lambda: k8s.deployment_ready(cluster, "kube-system", "coredns"), timeout=DNS_TIMEOUT,
            on_wait=step.update, hint="`kubectl -n kube-system describe pods -l k8s-app=kube-dns` shows why",
        )  # fmt: skip
        step.update("lookup of kubernetes.default from a pod")
        dns_probe(cluster, DNS_TIMEOUT)


def dns_probe(cluster: k8s.Cluster, timeout: float) -> None:
    """Run a pod that resolves kubernetes.default through the cluster DNS; wait for it to succeed."""
    name = f"odh-dns-probe-{int(time.time())}"
    image = nodeimage.helper_image()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": DNS_PROBE_NAMESPACE, "labels": {"app": "odh-dns-probe"}},
        "spec": {
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": [
                        "sh",
                        "-c",
                        "for i in $(seq 1 30); do "
                        "getent hosts kubernetes.default.svc.cluster.local && exit 0; sleep 2; done; exit 1",
                    ],
                }
            ],
        },
    }
    cluster.apply([pod])
    try:

        def check() -> tuple[bool, str]:
            phase = cluster.call(cluster.core.read_namespaced_pod, name, DNS_PROBE_NAMESPACE).status.phase
            if phase == "Failed":
                raise errors.ApplianceError(
                    "a pod could not resolve kubernetes.default through CoreDNS",
                    hint="check `kubectl -n kube-system logs -l k8s-app=kube-dns` and the kube-proxy pods",
                )
            return phase == "Succeeded", f"probe pod {phase}"

        k8s.wait_for("a DNS answer", check, timeout=timeout, hint="the probe pod never finished; describe it")
    finally:
        cluster.call(cluster.core.delete_namespaced_pod, name, DNS_PROBE_NAMESPACE, grace_period_seconds=0)


def load_images(ctx: Context, refs: Sequence[str]) -> None:
    """Load the images the cluster lacks (compared by the node's image list); skip the rest."""
    if not refs:
        with ctx.progress.step("load platform images") as step:
            step.skip("none built or loaded yet (appliance images build, or appliance bundle load)")
        return
    present = ctx.provider.images()
    missing = [ref for ref in refs if ref not in present and f"docker.io/{ref}" not in present]
    if not missing:
        with ctx.progress.step(f"load {len(refs)} images") as step:
            step.skip("all present in the node")
        return
    ctx.provider.load_images(missing, ctx.progress)

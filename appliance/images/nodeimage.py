"""The kind node image, assembled from package sources: no registry, no `kind build node-image`.

Called by `appliance.api.node_image` (`appliance images node`) and by the kind provider when the
node image is missing. DESIGN.md §4 explains why kind's own builder cannot be used here (it pulls
images). The steps, each cached:

1. Kubernetes, etcd, CoreDNS and local-path-provisioner built from Go module source (`gobuild`),
   and the pause binary compiled from Kubernetes' own `pause.c` with gcc.
2. Two root filesystems from Debian packages (debootstrap, `base.ensure`): the node's (systemd,
   containerd, runc, CNI plugins, iptables) and a slim one with iptables for kube-proxy, which also
   serves as the local-path helper image (it has a shell).
3. The images kubeadm expects, under the exact names `kubeadm config images list` prints
   (`registry.k8s.io/kube-apiserver:v1.34.1`, ...), plus the storage provisioner's.
4. The node image from `images/kind-node` (our entrypoint, systemd units, containerd config, CNI
   config, default StorageClass manifest) with kubelet/kubeadm/kubectl in /usr/bin.
5. Preload: containerd runs inside a container of that image, imports the images into namespace
   `k8s.io` (pinned, not unpacked; kind's nodes unpack on first use), and the container is committed
   as `localhost/odh-appliance/kind-node:v<version>`.

The final image carries a label with the hash of everything above, so a warm rebuild only checks it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from appliance import errors, progress
from appliance import exec as exec_mod
from appliance.images import base, build, engine, gobuild, kubernetes

NODE_REPOSITORY = f"{base.IMAGE_REPO}/kind-node"
RECIPE_LABEL = "io.opendatahub.appliance.node-recipe"
PRELOAD_TIMEOUT = 1800.0
LOCAL_PATH_PROVISIONER = gobuild.GoBinary(
    name="local-path-provisioner",
    package="github.com/rancher/local-path-provisioner",
    version="v0.0.30",
    ldflags="-s -w",
)

NODE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
    "iptables", "nftables", "conntrack", "iproute2", "ethtool", "util-linux", "mount", "kmod",
    "libseccomp2", "pigz", "bash", "ca-certificates", "curl", "jq", "procps", "socat",
)  # fmt: skip
SLIM_PACKAGES = ("iptables", "nftables", "conntrack", "ipset", "kmod", "ca-certificates")


@dataclass(frozen=True)
class RootfsRecipe(base.BaseRecipe):
    """A Debian root filesystem that is not the Python base: its own name, no Python CMD."""

    name: str = "rootfs"

    @property
    def tag(self) -> str:
        return f"{base.IMAGE_REPO}/{self.name}:{self.suite}-{self.recipe_hash()[:12]}"

    def import_changes(self) -> list[str]:
        return [f"LABEL {base.RECIPE_LABEL}={self.recipe_hash()}", 'CMD ["/bin/bash"]']


NODE_ROOTFS = RootfsRecipe(name="kind-node-rootfs", packages=NODE_PACKAGES, env=())
SLIM_ROOTFS = RootfsRecipe(name="slim-rootfs", packages=SLIM_PACKAGES, env=())


@dataclass(frozen=True)
class ComponentImage:
    """One image kubeadm (or the storage manifest) runs: a binary on a base, under a fixed name."""

    ref: str  # e.g. registry.k8s.io/kube-apiserver:v1.34.1
    binary: str  # the binary's name in /usr/local/bin
    base: str  # "scratch" or "slim"
    entrypoint: tuple[str, ...] = ()


def component_images(version: str) -> list[ComponentImage]:
    k8s = f"v{version}"
    images = [
        ComponentImage(f"registry.k8s.io/{name}:{k8s}", name, "scratch")
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    images += [
        ComponentImage(f"registry.k8s.io/kube-proxy:{k8s}", "kube-proxy", "slim"),
        ComponentImage(f"registry.k8s.io/etcd:{kubernetes.ETCD_VERSION}-0", "etcd", "scratch"),
        ComponentImage(
            f"registry.k8s.io/coredns/coredns:v{kubernetes.COREDNS_VERSION}", "coredns", "scratch", ("/coredns",)
        ),
        ComponentImage(f"registry.k8s.io/pause:{kubernetes.PAUSE_VERSION}", "pause", "scratch", ("/pause",)),
        ComponentImage(provisioner_image(), "local-path-provisioner", "slim"),
    ]
    return images


def provisioner_image() -> str:
    return f"{base.IMAGE_REPO}/local-path-provisioner:{LOCAL_PATH_PROVISIONER.version}"


def helper_image() -> str:
    """The local-path helper pod image: the slim rootfs (a shell, mkdir, rm) under a stable name."""
    return f"{base.IMAGE_REPO}/local-path-helper:{SLIM_ROOTFS.recipe_hash()[:12]}"


def node_tag(version: str) -> str:
    return f"{NODE_REPOSITORY}:v{version}"


def build_node_image(version: str, root: Path, cache_dir: Path, prog: progress.Progress) -> str:
    """Build (or find cached) the node image for Kubernetes `version`; returns its tag."""
    binaries = _build_binaries(version, cache_dir, prog)
    node_rootfs = base.ensure(NODE_ROOTFS, cache_dir, prog)
    slim = base.ensure(SLIM_ROOTFS, cache_dir, prog)
    engine.tag(slim.tag, helper_image())
    _check_kubeadm_images(binaries["kubeadm"], version)
    components = component_images(version)
    recipe = _recipe_hash(version, root, binaries, node_rootfs.image_id, slim.image_id)
    tag = node_tag(version)
    existing = engine.inspect(tag)
    if existing is not None and existing.labels.get(RECIPE_LABEL) == recipe:
        with prog.step(f"node image {tag}") as step:
            step.skip("up to date")
        return tag
    for component in components:
        _build_component(component, binaries, slim.tag, prog)
    with tempfile.TemporaryDirectory(prefix="odh-node-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(root / "images" / "kind-node", context)
        (context / "bin").mkdir()
        for name in ("kubelet", "kubeadm", "kubectl"):
            shutil.copy2(binaries[name], context / "bin" / name)
        unloaded = f"{NODE_REPOSITORY}-unloaded:v{version}"
        with prog.step("docker build kind node (systemd, containerd, kubelet)") as step:
            args = {
                "ROOTFS_IMAGE": node_rootfs.tag,
                "KUBERNETES_VERSION": version,
                "PROVISIONER_IMAGE": provisioner_image(),
                "HELPER_IMAGE": helper_image(),
            }
            argv = ["build", "--network", "none", "--tag", unloaded]
            for key, value in args.items():
                argv += ["--build-arg", f"{key}={value}"]
            engine.docker([*argv, str(context)], timeout=1800, on_line=lambda line: step.update(line[:160]))
        _preload(unloaded, tag, [c.ref for c in components] + [helper_image()], recipe, Path(tmp), prog)
    return tag


def _build_binaries(version: str, cache_dir: Path, prog: progress.Progress) -> dict[str, Path]:
    recipes = [*kubernetes.binaries(version), kubernetes.ETCD, kubernetes.COREDNS, LOCAL_PATH_PROVISIONER]
    built: dict[str, Path] = {}
    for recipe in recipes:
        with prog.step(f"{recipe.name} {recipe.version} from source") as step:
            if recipe.target(cache_dir).is_file():
                step.skip("cached")
            built[recipe.name] = gobuild.build(recipe, cache_dir, on_line=lambda line: step.update(line[:160]))
    with prog.step(f"pause {kubernetes.PAUSE_VERSION} from Kubernetes' pause.c") as step:
        built["pause"] = build_pause(version, cache_dir)
    return built


def build_pause(version: str, cache_dir: Path) -> Path:
    """Compile Kubernetes' pause.c statically, as its build/pause Makefile does; cached by source hash."""
    go = exec_mod.which("go")
    if go is None:
        raise errors.ApplianceError("building pause needs the Go toolchain (to fetch Kubernetes' source)",
                                    hint="install Go, or load a bundle that carries the node image")  # fmt: skip
    info = json.loads(
        exec_mod.run([go, "mod", "download", "-json", f"k8s.io/kubernetes@v{version}"], timeout=1800).stdout
    )
    source = Path(info["Dir"]) / "build" / "pause" / "linux" / "pause.c"
    flags = ["-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{kubernetes.PAUSE_VERSION}-odh"]
    key = hashlib.sha256(source.read_bytes() + " ".join(flags).encode()).hexdigest()[:12]
    target = cache_dir / "c" / f"pause-{key}" / "pause"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    exec_mod.run(["gcc", *flags, "-o", str(target) + ".partial", str(source)], timeout=300,
                 hint="install gcc and the static C library (apt-get install gcc libc6-dev)")  # fmt: skip
    Path(str(target) + ".partial").rename(target)
    return target


def _check_kubeadm_images(kubeadm: Path, version: str) -> None:
    listed = exec_mod.run([str(kubeadm), "config", "images", "list", "--kubernetes-version", f"v{version}"]).stdout
    wanted = set(listed.split())
    ours = {c.ref for c in component_images(version) if c.ref.startswith("registry.k8s.io/")}
    if wanted != ours:
        raise errors.ApplianceError(
            f"kubeadm v{version} expects images {sorted(wanted - ours)} that the node recipe does not build",
            hint="update ETCD_VERSION / COREDNS_VERSION / PAUSE_VERSION in appliance/images/kubernetes.py",
        )


def _recipe_hash(version: str, root: Path, binaries: dict[str, Path], *image_ids: str) -> str:
    parts = {
        "version": version,
        "context": build.content_hash(root / "images" / "kind-node", {}),
        "binaries": {name: build.file_sha256(path) for name, path in sorted(binaries.items())},
        "rootfs": list(image_ids),
        "components": [dataclasses.astuple(c) for c in component_images(version)],
        "format": 1,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _build_component(
    component: ComponentImage, binaries: dict[str, Path], slim_tag: str, prog: progress.Progress
) -> None:
    binary = binaries[component.binary]
    digest = build.file_sha256(binary)[:16]
    existing = engine.inspect(component.ref)
    if existing is not None and existing.labels.get(RECIPE_LABEL) == digest:
        return
    with prog.step(f"image {component.ref}"), tempfile.TemporaryDirectory(prefix="odh-component-") as tmp:
        shutil.copy2(binary, Path(tmp) / component.binary)
        base_ref = "scratch" if component.base == "scratch" else slim_tag
        entrypoint = list(component.entrypoint) or [f"/usr/local/bin/{component.binary}"]
        lines = [f"FROM {base_ref}"]
        if component.entrypoint:
            lines.append(f"COPY {component.binary} {component.entrypoint[0]}")
        lines += [
            f"COPY {component.binary} /usr/local/bin/{component.binary}",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"LABEL {RECIPE_LABEL}={digest}",
            f"ENTRYPOINT {json.dumps(entrypoint)}",
        ]
        (Path(tmp) / "Dockerfile").write_text("\n".join(lines) + "\n")
        engine.docker(["build", "--network", "none", "--tag", component.ref, tmp], timeout=600)


def _preload(unloaded: str, tag: str, refs: list[str], recipe: str, tmp: Path, prog: progress.Progress) -> None:
    archive = tmp / "images.tar"
    with prog.step(f"preload {len(refs)} images into the node's containerd") as step:
        step.update("docker save")
        engine.docker(["save", "-o", str(archive), *refs], timeout=PRELOAD_TIMEOUT)
        name = f"odh-node-preload-{recipe}"
        engine.docker(["rm", "-f", name], timeout=60)
        engine.docker(["run", "-d", "--name", name, "--privileged", "--entrypoint", "sleep",
                       "-v", f"{archive}:/tmp/images.tar:ro", unloaded, "infinity"])  # fmt: skip
        try:
            step.update("start containerd")
            engine.docker(["exec", name, "bash", "-c", "nohup containerd >/var/log/containerd-preload.log 2>&1 &"])
            engine.docker(
                ["exec", name, "bash", "-c",
                 "for i in $(seq 1 60); do ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; "
                 "cat /var/log/containerd-preload.log; exit 1"],
                timeout=90, hint="containerd did not start inside the node image",
            )  # fmt: skip
            step.update("ctr images import")
            engine.docker(
                ["exec", name, "ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--no-unpack",
                 "--digests", "/tmp/images.tar"],
                timeout=PRELOAD_TIMEOUT,
            )  # fmt: skip
            # Pinned images are never garbage-collected by the kubelet (ctr 1.6 cannot label on import).
            pin = " && ".join(
                f"ctr -n k8s.io images label {ref} io.cri-containerd.pinned=pinned >/dev/null" for ref in refs
            )
            engine.docker(["exec", name, "bash", "-c", pin], timeout=300)
            listed = engine.docker(["exec", name, "ctr", "--namespace=k8s.io", "images", "list", "-q"]).stdout.split()
            missing = sorted(set(refs) - set(listed))
            if missing:
                raise errors.ApplianceError(f"preloading left out {missing}", hint="rerun with -v to see ctr's output")
            # containerd's parent is `sleep` (PID 1), which never reaps: wait until it is gone or a zombie.
            stop = ("pkill -x containerd; for i in $(seq 1 30); do "
                    "ps -C containerd -o stat= | grep -qv Z || exit 0; sleep 1; done; exit 1")  # fmt: skip
            engine.docker(["exec", name, "bash", "-c", stop], timeout=60)
            step.update("docker commit")
            engine.docker(
                ["commit", "--change", 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]', "--change", "CMD []",
                 "--change", f"LABEL {RECIPE_LABEL}={recipe}", name, tag],
                timeout=PRELOAD_TIMEOUT,
            )  # fmt: skip
        finally:
            engine.docker(["rm", "-f", name], timeout=120)

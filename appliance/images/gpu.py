"""The GPU pieces, built from source: what a kind node needs to hand an NVIDIA GPU to pods.

Called by `appliance.api.images_gpu` (`appliance images gpu`), by `up` when GPU is on, and by the bundle
build for the definition's `gpu: true` entries. Two images, neither of which changes the CPU-only node:

- `kind-node-gpu:v<k8s>`: `FROM` our kind node image, plus the NVIDIA Container Toolkit binaries
  (`nvidia-container-runtime`, `nvidia-cdi-hook`, `nvidia-ctk`) built from the Go module proxy
  (github.com/NVIDIA/nvidia-container-toolkit, cgo: go-nvml dlopens the driver's libnvidia-ml.so.1 at
  run time, so nothing of the driver is needed to build) and their configuration
  (`images/kind-node-gpu/`). The runtime runs in `jit-cdi` mode (v1.20's default on NVML platforms): it
  generates the CDI edits for the requested GPUs itself, so libnvidia-container (`nvidia-container-cli`,
  C, only in NVIDIA's apt repository, not in Debian) is not needed. The legacy `nvidia-container-runtime-hook`
  exists only to call `nvidia-container-cli`, so it is not built.
- `nvidia-device-plugin:<version>`: the NVIDIA device plugin on our base image. k8s-device-plugin is not
  served by the Go module proxy (403) and this machine reaches no git host, so its source comes from a
  git repository on disk (a clone or a bare mirror; `source` or `<cache>/src/k8s-device-plugin`). The
  pinned commit is extracted with `git archive` (the commit hash is the integrity check) and built
  offline from its vendored modules (`go build -mod=vendor`, `GOPROXY=off`).

Binaries are cached under `<cache>/go/bin/` by recipe hash; images carry a label with the hash of their
inputs, so a warm call only inspects them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import errors, progress
from appliance import exec as exec_mod
from appliance.images import base, build, engine, gobuild

RECIPE_LABEL = "io.opendatahub.appliance.gpu-recipe"
GO_BUILD_TIMEOUT = gobuild.GO_BUILD_TIMEOUT
# go-nvml resolves NVML's symbols at run time (dlopen); NVIDIA's Makefiles link with these flags.
NVML_EXTLDFLAGS = "-Wl,--export-dynamic -Wl,--unresolved-symbols=ignore-in-object-files"

TOOLKIT_MODULE = "github.com/NVIDIA/nvidia-container-toolkit"
TOOLKIT_VERSION = "v1.20.1"


def _toolkit_binary(name: str) -> gobuild.GoBinary:
    return gobuild.GoBinary(
        name=name,
        package=f"{TOOLKIT_MODULE}/cmd/{name}",
        version=TOOLKIT_VERSION,
        ldflags=f"-s -w '-extldflags={NVML_EXTLDFLAGS}' -X {TOOLKIT_MODULE}/internal/info.version={TOOLKIT_VERSION}",
        env={"CGO_ENABLED": "1"},
    )


# What the node's containerd runs for the `nvidia` handler, the hooks the generated CDI edits name
# (/usr/bin/nvidia-cdi-hook: ldcache, symlinks), and the CLI for `cdi list` / checks on a GPU host.
TOOLKIT_BINARIES = tuple(_toolkit_binary(n) for n in ("nvidia-container-runtime", "nvidia-cdi-hook", "nvidia-ctk"))


@dataclass(frozen=True)
class VendoredGoBinary:
    """A Go main package built from a pinned commit of a git repository that vendors its modules."""

    name: str
    module: str
    version: str  # the release tag the commit carries
    commit: str  # 40 hex digits
    package: str  # relative to the repository root, e.g. ./cmd/nvidia-device-plugin
    ldflags: str = ""
    env: tuple[tuple[str, str], ...] = ()
    clone_url: str = ""

    def recipe_hash(self) -> str:
        recipe = {k: v for k, v in dataclasses.asdict(self).items() if k != "clone_url"}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]

    def target(self, cache_dir: Path) -> Path:
        return cache_dir / "go" / "bin" / f"{self.name}-{self.version}-{self.recipe_hash()}" / self.name


_PLUGIN_INFO = "github.com/NVIDIA/k8s-device-plugin/internal/info"
DEVICE_PLUGIN = VendoredGoBinary(
    name="nvidia-device-plugin",
    module="github.com/NVIDIA/k8s-device-plugin",
    version="v0.20.0",
    commit="1b826acc6af3079d8923bac395c3124b8861a9a6",
    package="./cmd/nvidia-device-plugin",
    ldflags=f"-s -w '-extldflags={NVML_EXTLDFLAGS}' -X {_PLUGIN_INFO}.version=v0.20.0 "
    f"-X {_PLUGIN_INFO}.gitCommit=1b826acc6af3079d8923bac395c3124b8861a9a6",
    env=(("CGO_ENABLED", "1"),),
    clone_url="https://github.com/NVIDIA/k8s-device-plugin",
)


def default_source(cache_dir: Path) -> Path:
    """Where the device plugin's git repository is looked for when no source is given."""
    return cache_dir / "src" / "k8s-device-plugin"


def device_plugin_tag() -> str:
    return f"{base.IMAGE_REPO}/nvidia-device-plugin:{DEVICE_PLUGIN.version}"


def node_gpu_tag(kubernetes_version: str) -> str:
    """The GPU variant of the node image: its own repository, so the CPU-only image is never retagged."""
    return f"{base.IMAGE_REPO}/kind-node-gpu:v{kubernetes_version}"


# --- binaries -------------------------------------------------------------------------------------


def build_toolkit(cache_dir: Path, prog: progress.Progress) -> dict[str, Path]:
    """The NVIDIA Container Toolkit binaries (cached by recipe hash)."""
    built: dict[str, Path] = {}
    for recipe in TOOLKIT_BINARIES:
        with prog.step(f"{recipe.name} {recipe.version} from source (cgo)") as step:
            if recipe.target(cache_dir).is_file():
                step.skip("cached")
            built[recipe.name] = gobuild.build(recipe, cache_dir, on_line=lambda line: step.update(line[:160]))
    return built


def build_vendored(
    binary: VendoredGoBinary,
    source: Path,
    cache_dir: Path,
    *,
    on_line: Callable[[str], None] | None = None,
    timeout: float = GO_BUILD_TIMEOUT,
) -> Path:
    """Build `binary` from the pinned commit of the git repository at `source`, offline; cached."""
    target = binary.target(cache_dir)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go, git = exec_mod.which("go"), exec_mod.which("git")
    if go is None or git is None:
        missing = "go" if go is None else "git"
        raise errors.ApplianceError(
            f"building {binary.name} from source needs `{missing}`, which is not on PATH",
            hint="install Go and git, or load a bundle that carries the GPU images",
        )
    _require_commit(git, binary, source)
    staging = target.parent.with_name(target.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tree = staging / "src"
    tree.mkdir(parents=True)
    archive = staging / "src.tar"
    # tests/ is a separate Go module with its own vendor tree that the build never reads (and mirrors
    # that drop their largest files lack parts of it).
    exec_mod.run([git, "-C", str(source), "archive", "--format=tar", "-o", str(archive), binary.commit,
                  "--", ".", ":(exclude)tests"], timeout=600)  # fmt: skip
    exec_mod.run(["tar", "-xf", str(archive), "-C", str(tree)], timeout=600)
    archive.unlink()
    env = {
        **dict(binary.env),
        "GOFLAGS": "-mod=vendor -buildvcs=false",
        "GOPROXY": "off",  # everything comes from vendor/: a build that reaches for the network fails
        "GOTOOLCHAIN": "local",
    }
    argv = [go, "build", "-trimpath", *([f"-ldflags={binary.ldflags}"] if binary.ldflags else [])]
    exec_mod.run(
        [*argv, "-o", str(staging / binary.name), binary.package], env=env, cwd=str(tree), timeout=timeout,
        on_line=on_line, hint=f"{binary.module} {binary.version} needs a Go toolchain at least as new as its go.mod",
    )  # fmt: skip
    shutil.rmtree(tree)
    shutil.rmtree(target.parent, ignore_errors=True)
    staging.rename(target.parent)
    return target


def _require_commit(git: str, binary: VendoredGoBinary, source: Path) -> None:
    fix = (
        f"clone it where a git host is reachable (git clone --branch {binary.version} {binary.clone_url}) and "
        f"copy it to {source}, or build from a copy elsewhere: appliance images gpu --device-plugin-source DIR"
    )
    if not source.exists():
        raise errors.ApplianceError(
            f"the {binary.name} source ({binary.module}, not on the Go module proxy) is not at {source}", hint=fix
        )
    probe = exec_mod.run([git, "-C", str(source), "cat-file", "-e", f"{binary.commit}^{{commit}}"], check=False)
    if not probe.ok:
        raise errors.ApplianceError(
            f"{source} is not a git repository holding {binary.module} {binary.version} (commit {binary.commit[:12]})",
            hint=fix,
        )


# --- images ---------------------------------------------------------------------------------------


def ensure_device_plugin_image(
    root: Path,
    cache_dir: Path,
    prog: progress.Progress,
    *,
    base_image: str = base.DEFAULT.tag,
    source: Path | None = None,
) -> str:
    """The device plugin image on our base image; returns its tag. A current image needs no source."""
    base_info = engine.require(base_image, hint="build it first: `appliance images base`")
    context_src = root / "images" / "nvidia-device-plugin"
    recipe = _hash({
        "binary": DEVICE_PLUGIN.recipe_hash(), "base": base_info.id,
        "context": build.content_hash(context_src, {}), "format": 1,
    })  # fmt: skip
    tag = device_plugin_tag()
    if _current(tag, recipe, prog):
        return tag
    with prog.step(f"{DEVICE_PLUGIN.name} {DEVICE_PLUGIN.version} from vendored source (cgo)") as step:
        if DEVICE_PLUGIN.target(cache_dir).is_file():
            step.skip("cached")
        binary = build_vendored(
            DEVICE_PLUGIN, source or default_source(cache_dir), cache_dir, on_line=lambda line: step.update(line[:160])
        )
    with tempfile.TemporaryDirectory(prefix="odh-device-plugin-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(context_src, context)
        (context / "bin").mkdir()
        shutil.copy2(binary, context / "bin" / binary.name)
        _docker_build(context, tag, recipe, {"BASE_IMAGE": base_image}, prog)
    return tag


def ensure_node_gpu_image(kubernetes_version: str, node_image: str, root: Path, cache_dir: Path,
                          prog: progress.Progress) -> str:  # fmt: skip
    """The GPU variant of `node_image` (which must exist): our node plus the toolkit; returns its tag."""
    node_info = engine.require(node_image, hint="build it first: `appliance images node`")
    context_src = root / "images" / "kind-node-gpu"
    recipe = _hash({
        "binaries": {b.name: b.recipe_hash() for b in TOOLKIT_BINARIES}, "node": node_info.id,
        "context": build.content_hash(context_src, {}), "format": 1,
    })  # fmt: skip
    tag = node_gpu_tag(kubernetes_version)
    if _current(tag, recipe, prog):
        return tag
    binaries = build_toolkit(cache_dir, prog)
    with tempfile.TemporaryDirectory(prefix="odh-node-gpu-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(context_src, context)
        (context / "bin").mkdir()
        for name, path in binaries.items():
            shutil.copy2(path, context / "bin" / name)
        _docker_build(context, tag, recipe, {"NODE_IMAGE": node_image}, prog)
    return tag


def check_device_plugin_buildable(cache_dir: Path, source: Path | None = None) -> None:
    """Fail now (a preflight) when the device plugin image is missing and cannot be built from source."""
    if engine.inspect(device_plugin_tag()) is not None or DEVICE_PLUGIN.target(cache_dir).is_file():
        return
    git = exec_mod.which("git")
    if git is None:
        raise errors.ApplianceError(
            f"the {DEVICE_PLUGIN.name} image is not built, and building it needs `git`, which is not on PATH",
            hint="install git, or load a bundle that carries the GPU images",
        )
    _require_commit(git, DEVICE_PLUGIN, source or default_source(cache_dir))


def image_is_current(tag: str) -> bool:
    """Whether `tag` exists and was built by this module (a bundle carries it only then)."""
    info = engine.inspect(tag)
    return info is not None and bool(info.labels.get(RECIPE_LABEL))


def _current(tag: str, recipe: str, prog: progress.Progress) -> bool:
    existing = engine.inspect(tag)
    if existing is not None and existing.labels.get(RECIPE_LABEL) == recipe:
        with prog.step(f"image {tag}") as step:
            step.skip("up to date")
        return True
    return False


def _docker_build(context: Path, tag: str, recipe: str, args: dict[str, str], prog: progress.Progress) -> None:
    with prog.step(f"docker build {tag}") as step:
        argv = ["build", "--network", "none", "--tag", tag, "--label", f"{RECIPE_LABEL}={recipe}"]
        for key, value in sorted(args.items()):
            argv += ["--build-arg", f"{key}={value}"]
        engine.docker([*argv, str(context)], timeout=1800, on_line=lambda line: step.update(line.strip()[:160]))


def _hash(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

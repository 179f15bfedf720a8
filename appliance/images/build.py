"""Build the platform images from `images/<name>/Dockerfile`, tagged by content hash and cached.

Called by `appliance.api.images_build` (`appliance images build`) and by `appliance.bundle.build`,
which builds (or finds cached) every image a bundle lists before it saves them.

Each build context is assembled in a fresh `<cache>/images/contexts/<name>-*` directory (removed after
the build): the image's directory plus the artifacts its `catalog.ImageSpec.inputs` name (our wheel,
Go binaries), plus `ca/ca-bundle.crt` (the CA bundle to trust while pip-installing; empty when none).
The content hash covers every context file except that CA bundle (it changes where packages come
from, not what the image holds), the base image ID and the build args. The tag is
`localhost/odh-appliance/<name>:<hash>`: when the engine already has it, nothing is built, so an
unchanged image "rebuilds" in well under a second.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import appliance
from appliance import errors, progress
from appliance import exec as exec_mod
from appliance.images import catalog, engine, gobuild, recipes

CONTENT_LABEL = "io.opendatahub.appliance.content-hash"
BUILD_TIMEOUT = 3600.0
CA_PATH = "ca/ca-bundle.crt"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The files of our own package that go into its wheel; their hash decides whether the wheel is rebuilt.
WHEEL_SOURCES = ("appliance", "tui", "pyproject.toml", "README.md")
KEEP_WHEELS = 5
CONTENT_TAG = r"[0-9a-f]{16}"  # the tags `images build` gives: the first 16 hex digits of the content hash
KEEP_OLD_TAGS = 3  # older content tags kept per image, besides the current one


@dataclass(frozen=True)
class BuildOptions:
    base_image: str
    ca_bundle: Path | None = None  # trusted while pip-installing (TLS-intercepting proxies)
    network: str | None = "host"  # `docker build --network`; None: the engine's default
    no_cache: bool = False  # rebuild even when an image with the content tag exists

    def build_args(self) -> dict[str, str]:
        return {"BASE_IMAGE": self.base_image}


@dataclass(frozen=True)
class BuiltImage:
    name: str
    tag: str
    image_id: str
    content_hash: str
    size: int
    action: str  # "cached" | "built"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tag": self.tag,
            "id": self.image_id,
            "content_hash": self.content_hash,
            "size": self.size,
            "action": self.action,
        }


def build_images(
    specs: list[catalog.ImageSpec],
    root: Path,
    cache_dir: Path,
    options: BuildOptions,
    prog: progress.Progress,
) -> list[BuiltImage]:
    """Build (or find cached) each image of `specs`, in order; stops at the first failure."""
    if options.ca_bundle is not None and not options.ca_bundle.is_file():
        raise errors.UsageError(
            f"CA bundle {options.ca_bundle} does not exist", hint="pass an existing PEM file, or --no-ca-bundle"
        )
    base = engine.require(
        options.base_image,
        hint="build it first: `appliance images base` (or pass --base-image IMAGE)",
    )
    return [_build_one(spec, root, cache_dir, options, base.id, prog) for spec in specs]


def _build_one(
    spec: catalog.ImageSpec,
    root: Path,
    cache_dir: Path,
    options: BuildOptions,
    base_id: str,
    prog: progress.Progress,
) -> BuiltImage:
    source = spec.context_dir(root)
    if not (source / "Dockerfile").is_file():
        raise errors.ApplianceError(
            f"{source}/Dockerfile is missing", hint="every image needs images/<name>/Dockerfile"
        )
    # A fresh directory per build, so that two builds at once (two terminals, CI beside a developer)
    # never assemble into the same place.
    (cache_dir / "images" / "contexts").mkdir(parents=True, exist_ok=True)
    context = Path(tempfile.mkdtemp(prefix=f"{spec.name}-", dir=cache_dir / "images" / "contexts"))
    try:
        return _hash_and_build(spec, source, context, root, cache_dir, options, base_id, prog)
    finally:
        shutil.rmtree(context, ignore_errors=True)


def _hash_and_build(
    spec: catalog.ImageSpec,
    source: Path,
    context: Path,
    root: Path,
    cache_dir: Path,
    options: BuildOptions,
    base_id: str,
    prog: progress.Progress,
) -> BuiltImage:
    with prog.step(f"prepare {spec.name} build context") as step:
        _assemble(spec, source, context, root, cache_dir, options, step)
        build_args = options.build_args()
        digest = content_hash(context, {**build_args, "base image id": base_id})
        tag = f"{spec.repository()}:{digest[:16]}"
        step.update(f"content hash {digest[:16]}")
    existing = engine.inspect(tag)
    if existing is not None and not options.no_cache:
        with prog.step(f"image {spec.name}") as step:
            engine.tag(tag, f"{spec.repository()}:latest")
            step.skip(f"up to date: {tag}")
        return BuiltImage(spec.name, tag, existing.id, digest, existing.size, "cached")
    with prog.step(f"docker build {spec.name}") as step:
        argv = ["build", "--tag", tag, "--tag", f"{spec.repository()}:latest", "--label", f"{CONTENT_LABEL}={digest}"]
        argv += ["--label", f"org.opencontainers.image.version={appliance.__version__}"]
        for key, value in sorted(build_args.items()):
            argv += ["--build-arg", f"{key}={value}"]
        if options.network:
            argv += ["--network", options.network]
        if options.no_cache:
            argv.append("--no-cache")
        argv.append(str(context))
        engine.docker(
            argv,
            timeout=BUILD_TIMEOUT,
            on_line=lambda line: step.update(line.strip()[:160]) if line.strip() else None,
            hint=f"the build of {spec.name} failed; rerun with -v to see its output "
            "(behind a TLS-intercepting proxy pass --ca-bundle; without DNS in builds pass --network host)",
        )
        info = engine.require(tag, hint="docker build reported success but the image is missing")
        # Every source change makes a new content tag; keep the few newest (switching between two
        # checkouts stays cached) and drop the rest, or the engine's disk fills up.
        old = engine.prune_tags(spec.repository(), CONTENT_TAG, keep=[digest[:16]], newest=KEEP_OLD_TAGS)
        pruned = f"; removed {len(old)} older image(s)" if old else ""
        step.update(f"{tag} ({info.size / 1e6:.0f} MB){pruned}")
    return BuiltImage(spec.name, tag, info.id, digest, info.size, "built")


def _assemble(
    spec: catalog.ImageSpec,
    source: Path,
    context: Path,
    root: Path,
    cache_dir: Path,
    options: BuildOptions,
    step: progress.Step,
) -> None:
    shutil.copytree(source, context, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    for item in spec.inputs:
        if item == "wheel":
            step.update("wheel of odh-appliance")
            wheel = ensure_wheel(root, cache_dir)
            (context / "wheels").mkdir(exist_ok=True)
            _link_or_copy(wheel, context / "wheels" / wheel.name)
        elif item.startswith("go:"):
            name = item.removeprefix("go:")
            step.update(f"go build {name} (cached after the first time)")
            binary = gobuild.build(recipes.get(name), cache_dir, on_line=lambda line: step.update(line[:160]))
            (context / "bin").mkdir(exist_ok=True)
            _link_or_copy(binary, context / "bin" / name)
        else:
            raise ValueError(f"unknown build input {item!r} of image {spec.name}")
    ca = context / CA_PATH
    ca.parent.mkdir(exist_ok=True)
    if options.ca_bundle is not None:
        shutil.copyfile(options.ca_bundle, ca)
    else:
        ca.write_bytes(b"")


def content_hash(context: Path, build_args: dict[str, str]) -> str:
    """sha256 over the context's files (path, executable bit, contents) and the build args."""
    digest = hashlib.sha256()
    for key, value in sorted(build_args.items()):
        digest.update(f"arg {key}={value}\n".encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        if relative == CA_PATH:
            continue
        executable = os.access(path, os.X_OK)
        digest.update(f"file {relative} {'x' if executable else '-'} {file_sha256(path)}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sources_hash(root: Path) -> str:
    """sha256 over the files that make up our wheel (see WHEEL_SOURCES)."""
    digest = hashlib.sha256()
    for name in WHEEL_SOURCES:
        top = root / name
        paths = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(f"{path.relative_to(root).as_posix()} {file_sha256(path)}\n".encode())
    return digest.hexdigest()


def ensure_wheel(root: Path, cache_dir: Path) -> Path:
    """A wheel of this project, rebuilt only when its sources change (wheels are not reproducible
    byte for byte, so the image hash must not depend on the wheel file itself)."""
    key = sources_hash(root)[:16]
    directory = cache_dir / "images" / "wheels" / key
    wheels = sorted(directory.glob("*.whl")) if directory.is_dir() else []
    if wheels:
        return wheels[0]
    directory.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=".partial", dir=directory.parent))
    # Build from a copy, so that setuptools' build/ and *.egg-info never land in the source tree.
    src = partial / "src"
    src.mkdir(parents=True)
    for name in WHEEL_SOURCES:
        path = root / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.is_file():
            shutil.copyfile(path, src / name)
    exec_mod.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(partial / "out"), str(src)],
        timeout=600,
        hint="building the odh-appliance wheel needs pip and PyPI (for setuptools)",
    )
    built = sorted((partial / "out").glob("*.whl"))
    if not built:
        raise errors.ApplianceError("pip wheel produced no wheel of odh-appliance", hint="rerun with -v")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / built[0].name
    built[0].rename(target)
    shutil.rmtree(partial, ignore_errors=True)
    _prune_wheels(directory.parent, keep=KEEP_WHEELS)
    return target


def _prune_wheels(wheels_dir: Path, keep: int) -> None:
    """Keep the `keep` newest wheels: every edit of the sources makes a new one."""
    done = [d for d in wheels_dir.iterdir() if d.is_dir() and not d.name.endswith(".partial")]
    for old in sorted(done, key=lambda d: d.stat().st_mtime, reverse=True)[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def default_ca_bundle() -> Path | None:
    """The host's CA bundle when it exists (builds then trust what the host trusts)."""
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)

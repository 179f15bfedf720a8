"""The Python runtime base image, made from Debian packages: debootstrap, then `docker import`.

Called by `appliance.api.images_base` (the `appliance images base` command) and, when no base image
exists yet, by `appliance.images.build`. No container registry is needed (DESIGN.md §4): debootstrap
fetches Debian packages into a root filesystem, which is packed as a tar and imported as an image.

Caching: the packed rootfs is kept under `<cache>/images/base/<recipe hash>/rootfs.tar`, and the image
carries the recipe hash as a label. An image whose label matches is reused at once; a removed image
is re-imported from the cached tar in seconds; only a changed recipe runs debootstrap again.
Where a registry is reachable, `--from python:3.11-slim` (any image with python3) is tagged as the base
instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from appliance import errors, progress
from appliance import exec as exec_mod
from appliance.images import engine

IMAGE_REPO = "localhost/odh-appliance"
RECIPE_LABEL = "io.opendatahub.appliance.base-recipe"
DEBOOTSTRAP_TIMEOUT = 3600.0

# Removed from the root filesystem before it is packed: caches and documentation nobody reads in a container.
PRUNE = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/log",
)


@dataclass(frozen=True)
class BaseRecipe:
    """What goes into the base image. Changing any field gives a new recipe hash and a rebuild."""

    suite: str = "bookworm"
    python: str = "3.11"  # the python3 of `suite`; only used in the tag
    variant: str = "minbase"
    packages: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates", "tini")
    mirror: str | None = None  # None: debootstrap's default Debian mirror
    env: tuple[tuple[str, str], ...] = field(
        default=(("LANG", "C.UTF-8"), ("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1"))
    )

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPO}/base:{self.suite}-py{self.python}"

    def recipe_hash(self) -> str:
        data = {
            "suite": self.suite,
            "variant": self.variant,
            "packages": sorted(self.packages),
            "mirror": self.mirror,
            "env": list(self.env),
            "prune": list(PRUNE),
            "format": 1,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def cache_dir(self, cache_root: Path) -> Path:
        return cache_root / "images" / "base" / f"{self.suite}-{self.recipe_hash()}"

    def debootstrap_argv(self, target: Path) -> list[str]:
        argv = [
            "debootstrap",
            f"--variant={self.variant}",
            f"--include={','.join(self.packages)}",
            "--components=main",
            self.suite,
            str(target),
        ]
        if self.mirror:
            argv.append(self.mirror)
        return argv

    def import_changes(self) -> list[str]:
        changes = [f"ENV {key}={value}" for key, value in self.env]
        changes += [f"LABEL {RECIPE_LABEL}={self.recipe_hash()}", 'CMD ["python3"]']
        return changes


DEFAULT = BaseRecipe()


@dataclass(frozen=True)
class BaseResult:
    tag: str
    image_id: str
    action: str  # "cached" | "imported" | "built" | "tagged"


def ensure(
    recipe: BaseRecipe,
    cache_root: Path,
    prog: progress.Progress,
    *,
    rebuild: bool = False,
) -> BaseResult:
    """The base image for `recipe`: reused when its label matches, else imported or built."""
    if not rebuild:
        info = engine.inspect(recipe.tag)
        if info is not None and info.labels.get(RECIPE_LABEL) == recipe.recipe_hash():
            with prog.step(f"base image {recipe.tag}") as step:
                step.skip(f"up to date ({_short(info.id)})")
            return BaseResult(recipe.tag, info.id, "cached")
    directory = recipe.cache_dir(cache_root)
    rootfs_tar = directory / "rootfs.tar"
    action = "imported"
    if rebuild or not rootfs_tar.is_file():
        _debootstrap(recipe, directory, prog)
        action = "built"
    with prog.step(f"docker import {recipe.tag}") as step:
        step.update(f"{rootfs_tar.stat().st_size / 1e6:.0f} MB root filesystem")
        argv = ["import"]
        for change in recipe.import_changes():
            argv += ["--change", change]
        engine.docker([*argv, str(rootfs_tar), recipe.tag], timeout=900)
        info = engine.require(recipe.tag, hint="docker import reported success but the image is missing")
    return BaseResult(recipe.tag, info.id, action)


def from_image(source: str, recipe: BaseRecipe, prog: progress.Progress, *, network: str | None = "host") -> BaseResult:
    """Use an existing image (pulled when missing, where a registry is reachable) as the base.

    It must run `python3`. Our images start under `/usr/bin/tini`; an image without it (python:3.11-slim)
    gets a thin layer that apt-installs it, so this path needs Debian's packages (or the image's own).
    """
    with prog.step(f"base image from {source}") as step:
        if engine.inspect(source) is None:
            step.update(f"docker pull {source}")
            engine.docker(
                ["pull", source],
                timeout=1800,
                hint="no registry reachable? build the base from Debian packages: `appliance images base`",
            )
        if not _runs(source, "python3", "--version"):
            raise errors.UsageError(
                f"{source} has no working python3, so it cannot be the base image",
                hint="pick an image with Python 3.11 (python:3.11-slim), or build one: `appliance images base`",
            )
        if _runs(source, "/usr/bin/tini", "--version"):
            engine.tag(source, recipe.tag)
            action = "tagged"
        else:
            step.update(f"{source} has no /usr/bin/tini: adding it with apt-get")
            argv = ["build", "--tag", recipe.tag, "--label", f"{RECIPE_LABEL}=from:{source}"]
            argv += ["--network", network] if network else []
            engine.docker(
                [*argv, "-"],
                input=TINI_LAYER.format(source=source),
                timeout=900,
                hint=f"adding tini needs apt-get in {source} and a reachable Debian mirror; or use an image with tini",
            )
            action = "built"
        info = engine.require(recipe.tag, hint="docker reported success but the base image is missing")
    return BaseResult(recipe.tag, info.id, action)


TINI_LAYER = """\
FROM {source}
USER 0
RUN apt-get update && apt-get install -y --no-install-recommends tini ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
"""


def _runs(image: str, program: str, *args: str) -> bool:
    result = exec_mod.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", program, image, *args],
        check=False,
        timeout=120,
        hint=engine.DOCKER_HINT,
    )
    return result.ok


def _debootstrap(recipe: BaseRecipe, directory: Path, prog: progress.Progress) -> None:
    if os.geteuid() != 0:
        raise errors.ApplianceError(
            "building the base image with debootstrap needs root",
            hint="run `sudo appliance images base`, or `appliance images base --from python:3.11-slim` "
            "where a registry is reachable",
        )
    if exec_mod.which("debootstrap", ["/usr/sbin", "/sbin"]) is None:
        raise errors.ApplianceError("debootstrap is not installed", hint="install it: apt-get install -y debootstrap")
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rootfs = partial / "rootfs"
    partial.mkdir(parents=True)
    with prog.step(f"debootstrap {recipe.suite} ({', '.join(recipe.packages)})") as step:
        debootstrap = exec_mod.which("debootstrap", ["/usr/sbin", "/sbin"]) or "debootstrap"
        argv = recipe.debootstrap_argv(rootfs)
        argv[0] = debootstrap
        exec_mod.run(
            argv,
            timeout=DEBOOTSTRAP_TIMEOUT,
            on_line=lambda line: step.update(line[:100]),
            hint="check that the Debian mirror is reachable (set a nearer one with --mirror)",
        )
    with prog.step("prune and pack the root filesystem") as step:
        for relative in PRUNE:
            target = rootfs / relative
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        # debootstrap leaves the host's name-resolution files behind; the engine provides its own.
        for relative in ("etc/resolv.conf", "etc/hostname"):
            (rootfs / relative).unlink(missing_ok=True)
        exec_mod.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial / "rootfs.tar"), "."],
            timeout=900,
        )
        shutil.rmtree(rootfs)
        (partial / "recipe.json").write_text(json.dumps({"hash": recipe.recipe_hash(), "tag": recipe.tag}) + "\n")
        step.update(f"{(partial / 'rootfs.tar').stat().st_size / 1e6:.0f} MB")
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]

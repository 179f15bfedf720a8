"""Build Go programs from their module source with `go install module@version`, cached.

DESIGN.md §4: no container registry is reachable, so MinIO, kind and friends are built from the Go
module proxy. A binary lands in `<cache>/go/bin/<name>-<version>-<recipe hash>/<name>`; a second call
with the same recipe returns that path at once. The Go build cache is shared, so a rebuild after a
small change is fast too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appliance import errors
from appliance import exec as exec_mod

GO_BUILD_TIMEOUT = 3600.0


@dataclass(frozen=True)
class GoBinary:
    """A pinned recipe: which package to `go install`, at which version, with which flags."""

    name: str  # the binary's file name, e.g. "minio"
    package: str  # the main package, e.g. "github.com/minio/minio"
    version: str  # a module version or pseudo-version, never "latest"
    ldflags: str = ""
    env: Mapping[str, str] = field(default_factory=dict)

    def recipe_hash(self) -> str:
        recipe = {"package": self.package, "version": self.version, "ldflags": self.ldflags, "env": dict(self.env)}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]

    def target(self, cache_dir: Path) -> Path:
        return cache_dir / "go" / "bin" / f"{self.name}-{self.version}-{self.recipe_hash()}" / self.name


def build(
    binary: GoBinary,
    cache_dir: Path,
    *,
    on_line: Callable[[str], None] | None = None,
    timeout: float = GO_BUILD_TIMEOUT,
) -> Path:
    """Return the path of the built binary, building it first when the cache lacks it."""
    if binary.version in ("", "latest"):
        raise errors.UsageError(
            f"{binary.name}: a pinned version is required, not {binary.version!r}",
            hint="pin a module version (go list -m -versions MODULE shows them)",
        )
    target = binary.target(cache_dir)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = exec_mod.which("go")
    if go is None:
        raise errors.ApplianceError(
            f"building {binary.name} from source needs the Go toolchain, and `go` is not on PATH",
            hint="install Go (https://go.dev/dl or your distribution's golang package), or load a bundle",
        )
    staging = target.parent.with_name(target.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    argv: list[str] = [go, "install", "-trimpath"]
    if binary.ldflags:
        argv.append(f"-ldflags={binary.ldflags}")
    argv.append(f"{binary.package}@{binary.version}")
    env = {"GOBIN": str(staging), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", **binary.env}
    exec_mod.run(
        argv,
        env=env,
        timeout=timeout,
        on_line=on_line,
        hint=f"check that the Go module proxy is reachable and {binary.package}@{binary.version} exists",
    )
    built = staging / binary.name
    if not built.is_file():
        raise errors.ApplianceError(
            f"go install {binary.package}@{binary.version} produced no {binary.name!r} binary",
            hint="check the package path: it must be a main package whose directory is named like the binary",
        )
    shutil.rmtree(target.parent, ignore_errors=True)
    staging.rename(target.parent)
    return target


def build_all(binaries: Sequence[GoBinary], cache_dir: Path) -> dict[str, Path]:
    return {b.name: build(b, cache_dir) for b in binaries}

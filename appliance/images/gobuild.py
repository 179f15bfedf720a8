"""Build Go programs from their module source, cached.

DESIGN.md §4: no container registry is reachable, so MinIO, kind and friends are built from the Go
module proxy with `go install package@version`. Modules that carry replace directives
(`k8s.io/kubernetes` points its staging modules at `./staging/...`) cannot be `go install`ed; for
those a recipe names `staging_version`, and the build writes a wrapper module that requires the
module and replaces each staging module with its published version, then runs `go build` in it.

A binary lands in `<cache>/go/bin/<name>-<version>-<recipe hash>/<name>`; a second call with the
same recipe returns that path at once. The Go build cache is shared, so rebuilds are fast too.
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
    module: str = ""  # the module holding `package`; needed only with `staging_version`
    # Build in a wrapper module that pins every module the upstream go.mod replaces with a local path
    # (Kubernetes' staging modules, etcd's api/client/pkg) to this published version.
    staging_version: str = ""

    def recipe_hash(self) -> str:
        recipe = {"package": self.package, "version": self.version, "ldflags": self.ldflags, "env": dict(self.env)}
        if self.staging_version:
            recipe |= {"module": self.module, "staging_version": self.staging_version}
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
    flags = ["-trimpath", *([f"-ldflags={binary.ldflags}"] if binary.ldflags else [])]
    env = {"CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", **binary.env}
    hint = f"check that the Go module proxy is reachable and {binary.package}@{binary.version} exists"
    if binary.staging_version:
        workdir = wrapper_module(go, binary, cache_dir)
        argv = [go, "build", *flags, "-o", str(staging / binary.name), binary.package]
        exec_mod.run(argv, env={**env, "GOFLAGS": "-buildvcs=false -mod=mod"}, cwd=str(workdir),
                     timeout=timeout, on_line=on_line, hint=hint)  # fmt: skip
    else:
        argv = [go, "install", *flags, f"{binary.package}@{binary.version}"]
        exec_mod.run(argv, env={**env, "GOBIN": str(staging)}, timeout=timeout, on_line=on_line, hint=hint)
    built = staging / binary.name
    if not built.is_file():
        raise errors.ApplianceError(
            f"go install {binary.package}@{binary.version} produced no {binary.name!r} binary",
            hint="check the package path: it must be a main package whose directory is named like the binary",
        )
    shutil.rmtree(target.parent, ignore_errors=True)
    staging.rename(target.parent)
    return target


def wrapper_module(go: str, binary: GoBinary, cache_dir: Path) -> Path:
    """Write (once) a module that requires `binary.module` and pins its staging modules.

    The staging list is read from the module's own go.mod (`k8s.io/api => ./staging/src/k8s.io/api`),
    so a version bump needs no hand-kept list.
    """
    key = hashlib.sha256(f"{binary.module}@{binary.version}+{binary.staging_version}".encode()).hexdigest()[:12]
    workdir = cache_dir / "go" / "wrappers" / f"{binary.module.replace('/', '_')}-{binary.version}-{key}"
    gomod = workdir / "go.mod"
    if gomod.is_file():
        return workdir
    info = json.loads(
        exec_mod.run(
            [go, "mod", "download", "-json", f"{binary.module}@{binary.version}"],
            timeout=GO_BUILD_TIMEOUT,
            hint=f"check that the Go module proxy is reachable and {binary.module}@{binary.version} exists",
        ).stdout
    )
    staging = staging_modules(Path(info["GoMod"]).read_text())
    if not staging:
        raise errors.ApplianceError(
            f"{binary.module}@{binary.version} replaces no required module with a local path",
            hint="drop staging_version from its recipe and build it with go install",
        )
    text = wrapper_gomod(binary.module, binary.version, binary.staging_version, staging)
    workdir.mkdir(parents=True, exist_ok=True)
    partial = workdir / "go.mod.partial"
    partial.write_text(text)
    partial.rename(gomod)
    return workdir


def staging_modules(gomod: str) -> list[str]:
    """Required modules that a go.mod replaces with a local path (k8s: `./staging/...`, etcd: `../api`).

    Replacements of modules that are not required (etcd's `=> ./FORBIDDEN_DEPENDENCY` guards) are left out.
    """
    required: set[str] = set()
    local: set[str] = set()
    block = ""
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.endswith("("):
            block = line[:-1].strip()
            continue
        if line == ")":
            block = ""
            continue
        parts = line.split()
        if parts and parts[0] in ("require", "replace"):
            kind, parts = parts[0], parts[1:]
        else:
            kind = block
        if kind == "require" and len(parts) >= 2:
            required.add(parts[0])
        elif kind == "replace" and "=>" in parts:
            target = parts[parts.index("=>") + 1 :]
            if target and target[0].startswith(("./", "../")):
                local.add(parts[0])
    return sorted(local & required)


def wrapper_gomod(module: str, version: str, staging_version: str, staging: list[str]) -> str:
    lines = [
        "module odh-appliance.local/gobuild",
        "",
        "go 1.24.0",
        "",
        f"require {module} {version}",
        "",
        *(f"replace {name} => {name} {staging_version}" for name in sorted(staging)),
        "",
    ]
    return "\n".join(lines)


def build_all(binaries: Sequence[GoBinary], cache_dir: Path) -> dict[str, Path]:
    return {b.name: build(b, cache_dir) for b in binaries}

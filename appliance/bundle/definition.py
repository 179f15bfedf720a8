"""The bundle definition (`bundles/<name>.yaml`) and the resolved record a bundle carries (`bundle.yaml`).

Called by `appliance.bundle.build` (which reads a definition and writes the resolved record) and by
`verify`/`inspect`/`load` (which read the record back). A definition says *what* goes in: versions,
the images (built from `images/<name>`, optionally also known by an upstream reference that manifests
may use), the binaries (built from Go module source), the manifests. The resolved record says what
went in exactly: image IDs and sizes, binary digests, the archive layout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

from appliance import errors

FORMAT: Literal["odh-appliance-bundle/v1"] = "odh-appliance-bundle/v1"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+.][0-9A-Za-z.+-]+)?$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be lowercase letters, digits and '-'")
    return value


def _number_as_text(value: object) -> object:
    """YAML reads `version: 1.34` as a number; keep it as text so the version check can name it."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _check_version(value: str) -> str:
    if not _VERSION.match(value):
        raise ValueError("must look like 1.2.3 or v1.2.3")
    return value


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class ImageEntry(_Model):
    """One image: built from `images/<build>` (default: the entry's name).

    `gpu: true` marks an image only GPU hosts need (`appliance images gpu`, docs/gpu.md): the bundle
    carries it when it is already built on this machine and skips it otherwise, so CPU-only builders
    never wait for it.
    """

    name: str
    build: str | None = None
    upstream: str | None = None  # e.g. quay.io/minio/minio:RELEASE...; the built image is tagged with it too
    gpu: bool = False

    _name = pydantic.field_validator("name")(_check_name)

    @property
    def recipe(self) -> str:
        return self.build or self.name


class BinaryEntry(_Model):
    """One binary, built from its Go module source by the recipe of the same name."""

    name: str
    version: str
    source: Literal["go"] = "go"

    _name = pydantic.field_validator("name")(_check_name)


class Definition(_Model):
    """`bundles/<name>.yaml`: what a bundle holds."""

    name: str
    version: str
    kubernetes: str
    kind: str
    images: list[ImageEntry] = pydantic.Field(default_factory=list)
    binaries: list[BinaryEntry] = pydantic.Field(default_factory=list)
    manifests: list[str] = pydantic.Field(default_factory=list)  # files or directories, relative to the definition

    _name = pydantic.field_validator("name")(_check_name)
    _numbers = pydantic.field_validator("version", "kubernetes", "kind", mode="before")(_number_as_text)
    _versions = pydantic.field_validator("version", "kubernetes", "kind")(_check_version)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Definition:
        for label, names in (("image", [i.name for i in self.images]), ("binary", [b.name for b in self.binaries])):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{label} {duplicates[0]!r} is listed twice")
        kind = next((b for b in self.binaries if b.name == "kind"), None)
        if kind is not None and kind.version != self.kind:
            raise ValueError(f"binary kind is {kind.version} but kind: says {self.kind}")
        return self


def load_definition(path: Path) -> Definition:
    """Parse and validate a definition file; bad input is a one-line `UsageError`."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise errors.UsageError(
            f"bundle definition {path} does not exist", hint="for example: bundles/default.yaml"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.UsageError(f"cannot read bundle definition {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise errors.UsageError(f"bundle definition {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise errors.UsageError(f"bundle definition {path} must be a mapping", hint="see bundles/default.yaml")
    try:
        return Definition.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, f"bundle definition {path}") from None


def validation_error(exc: pydantic.ValidationError, what: str) -> errors.UsageError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    reason = str(first["msg"]).removeprefix("Value error, ")
    return errors.UsageError(f"{what}: {where}: {reason}", hint="see bundles/default.yaml for a valid definition")


# --- the resolved record (bundle.yaml inside an archive) ------------------------------------------


class ResolvedImage(_Model):
    name: str
    tag: str
    upstream: str | None = None
    id: str  # the image ID (config digest): `docker load` restores exactly this
    content_hash: str
    size: int  # bytes, as the engine reports the unpacked image
    archive: str  # the archive member holding it


class ResolvedFile(_Model):
    path: str
    size: int
    sha256: str


class ResolvedBinary(_Model):
    name: str
    version: str
    source: str  # e.g. "go install sigs.k8s.io/kind@v0.30.0"
    path: str
    size: int
    sha256: str


class Resolved(_Model):
    """`bundle.yaml`: the exact contents of one bundle archive."""

    format: Literal["odh-appliance-bundle/v1"] = FORMAT
    name: str
    version: str
    kubernetes: str
    kind: str  # the kind version, as in the definition
    created: str
    builder: str
    signed: bool = False
    images: list[ResolvedImage]
    binaries: list[ResolvedBinary]
    manifests: list[ResolvedFile]
    archives: list[ResolvedFile]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, origin: str) -> Resolved:
        try:
            data: Any = yaml.safe_load(text)
            return cls.model_validate(data)
        except (yaml.YAMLError, pydantic.ValidationError) as exc:
            raise errors.ApplianceError(
                f"{origin}: bundle.yaml is not a valid bundle record ({type(exc).__name__})",
                hint="the bundle was made by an incompatible odh-appliance, or it is damaged",
            ) from None

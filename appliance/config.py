"""The appliance configuration: one pydantic model, read from a YAML file, the environment and flags.

Precedence, lowest to highest: built-in defaults < YAML file < `ODH_APPLIANCE_*` environment
variables < command-line flags (`--set key=value` and the dedicated flags of each command). Every
value remembers where it came from, so a bad one is reported with its source.

Environment names: `ODH_APPLIANCE_<FIELD>`, with `__` between nested fields, for example
`ODH_APPLIANCE_PORTS__HTTP=9080` or `ODH_APPLIANCE_COMPONENTS__RAY=true`. The file is
`$XDG_CONFIG_HOME/odh-appliance/config.yaml` unless `--config` or `ODH_APPLIANCE_CONFIG` names another.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs
import pydantic
import yaml

from appliance import errors

APP_NAME = "odh-appliance"
ENV_PREFIX = "ODH_APPLIANCE_"
CONFIG_FILE_ENV = "ODH_APPLIANCE_CONFIG"

# The DataScienceCluster components (upstream names) and whether the appliance turns them on by default:
# the ones it implements. Turning on one it does not implement yet is allowed, and the DataScienceCluster
# then says so in that component's condition (and is not Ready).
DEFAULT_COMPONENTS: dict[str, bool] = {
    "dashboard": False,  # the ODH dashboard is not bundled; the gateway and `appliance tui` stand in
    "workbenches": True,
    "kserve": True,
    "datasciencepipelines": True,  # the pipeline server (docs/pipelines.md)
    "modelregistry": False,
    "ray": False,
    "kueue": False,
    "trustyai": False,
    "feastoperator": False,
    "trainingoperator": False,
    "codeflare": False,
}

DEFAULT_REGISTRIES = ["registry-1.docker.io", "quay.io", "registry.k8s.io", "ghcr.io"]

_K8S_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


class Ports(pydantic.BaseModel):
    """Host ports the appliance binds (on `bind_address`)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    http: int = pydantic.Field(8080, ge=1, le=65535, description="gateway: notebooks, model REST, MinIO")
    grpc: int = pydantic.Field(8081, ge=1, le=65535, description="gateway: model gRPC")
    api_server: int = pydantic.Field(0, ge=0, le=65535, description="Kubernetes API; 0 picks a free port")

    def bound(self) -> dict[str, int]:
        """The ports that are fixed (non-zero), by name."""
        return {name: port for name, port in self.model_dump().items() if port}


class Config(pydantic.BaseModel):
    """Everything a user can set. Defaults are safe: loopback only, optional components off."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=True)

    cluster_name: str = "odh"
    provider: Literal["kind", "kubeconfig", "openshift"] = "kind"
    kubeconfig: Path | None = None
    kubernetes_version: str = "1.34.1"
    gpu: Literal["auto", "on", "off"] = "auto"
    bind_address: str = "127.0.0.1"
    ports: Ports = pydantic.Field(default_factory=Ports)
    components: dict[str, bool] = pydantic.Field(default_factory=lambda: dict(DEFAULT_COMPONENTS))
    bundle: Path | None = None
    registries: list[str] = pydantic.Field(default_factory=lambda: list(DEFAULT_REGISTRIES))

    @pydantic.field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError("must be lowercase letters, digits and '-', at most 32 characters")
        return value

    @pydantic.field_validator("gpu", mode="before")
    @classmethod
    def _gpu(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on`/`off` as a boolean; take it as the user meant it.
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @pydantic.field_validator("kubernetes_version")
    @classmethod
    def _k8s_version(cls, value: str) -> str:
        match = _K8S_VERSION.match(value.strip())
        if not match:
            raise ValueError("must look like 1.34.1")
        return ".".join(match.groups())

    @pydantic.field_validator("components", mode="before")
    @classmethod
    def _components(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        unknown = sorted(set(value) - set(DEFAULT_COMPONENTS))
        if unknown:
            raise ValueError(f"unknown component {unknown[0]!r}; known: {', '.join(DEFAULT_COMPONENTS)}")
        return {**DEFAULT_COMPONENTS, **value}

    @pydantic.field_validator("registries", mode="before")
    @classmethod
    def _registries(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@dataclass(frozen=True)
class Paths:
    """XDG directories of the appliance (honours XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME)."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @classmethod
    def from_environment(cls) -> Paths:
        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
        )

    @property
    def default_config_file(self) -> Path:
        return self.config_dir / "config.yaml"

    @property
    def bin_dir(self) -> Path:
        """Binaries the appliance installs itself (kind from a bundle, for example)."""
        return self.data_dir / "bin"


@dataclass(frozen=True)
class Loaded:
    """The effective configuration, where each value came from, and the file that was read."""

    config: Config
    sources: dict[str, str]
    paths: Paths
    file: Path | None
    files_considered: list[Path] = field(default_factory=list)


def load(
    *,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """Build the effective configuration from file < environment < flags.

    `overrides` are `key.path=value` strings (`--set`); `flags` are dotted keys from dedicated
    options (`{"cluster_name": "demo"}`); flags with value None are ignored.
    """
    environ = os.environ if environ is None else environ
    paths = Paths.from_environment()
    explicit = config_file or environ.get(CONFIG_FILE_ENV)
    file = Path(explicit) if explicit else paths.default_config_file
    layers: list[tuple[str, dict[str, Any]]] = []
    read_file: Path | None = None
    if file.exists():
        layers.append((f"file {file}", _read_yaml(file)))
        read_file = file
    elif explicit:
        raise errors.ConfigError(
            f"config file {file} does not exist",
            hint="check the path given with --config or ODH_APPLIANCE_CONFIG",
        )
    env_values = {key: value for key, value in environ.items() if key.startswith(ENV_PREFIX) and key != CONFIG_FILE_ENV}
    for key, raw in sorted(env_values.items()):
        dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
        layers.append((f"environment {key}", _nest(dotted, _scalar(raw))))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise errors.UsageError(f"--set {item!r} is not key=value", hint="for example: --set ports.http=9080")
        layers.append((f"flag --set {key.strip()}", _nest(key.strip(), _scalar(raw))))
    for key, value in (flags or {}).items():
        if value is not None:
            layers.append((f"flag {key}", _nest(key, value)))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, data in layers:
        _merge(merged, data)
        for dotted in _leaves(data):
            sources[dotted] = source
    try:
        config = Config.model_validate(merged)
    except pydantic.ValidationError as exc:
        raise _config_error(exc, sources) from None
    return Loaded(config, sources, paths, read_file, [file])


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.ConfigError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise errors.ConfigError(
            f"config file {path} is not valid YAML{where}", hint="fix the file or move it aside"
        ) from None
    if not isinstance(data, dict):
        raise errors.ConfigError(
            f"config file {path} must hold a mapping of settings", hint="for example: cluster_name: demo"
        )
    return data


def _scalar(raw: str) -> Any:
    """Parse an environment or flag value as a YAML scalar (true, 8080, [a, b]); fall back to text."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    node = result
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return result


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _leaves(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(_leaves(value, dotted + "."))
        else:
            out.append(dotted)
    return out


def _config_error(exc: pydantic.ValidationError, sources: Mapping[str, str]) -> errors.ConfigError:
    first = exc.errors()[0]
    dotted = ".".join(str(part) for part in first["loc"])
    source = sources.get(dotted) or next(
        (src for key, src in sources.items() if key.startswith(dotted + ".") or dotted.startswith(key + ".")),
        None,
    )
    if first["type"] == "extra_forbidden":
        parent = dotted.rpartition(".")[0]
        model: type[pydantic.BaseModel] = Ports if parent == "ports" else Config
        message = f"unknown setting {dotted!r}"
        hint = f"known settings{' under ' + parent if parent else ''}: {', '.join(model.model_fields)}"
    else:
        reason = str(first["msg"]).removeprefix("Value error, ")
        message = f"invalid setting {dotted}: {reason}"
        hint = "see `appliance config show` for the current values"
    if source:
        message += f" (from {source})"
    return errors.ConfigError(message, hint=hint)


def as_yaml(config: Config) -> str:
    """The configuration as the YAML a user would write in config.yaml."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)

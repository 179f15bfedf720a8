"""The one facade that the CLI and the TUI call. Nothing above this module touches Docker,
Kubernetes or the host directly; everything below it is reached through these functions.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import appliance
from appliance import config, errors
from appliance.doctor import checks, facts

# Re-exported for front ends, which may not import the lower layers themselves.
ApplianceError = errors.ApplianceError
CheckResult = checks.CheckResult
Loaded = config.Loaded


def load_config(
    *,
    config_file: str | None = None,
    overrides: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
) -> config.Loaded:
    """The effective configuration: defaults < file < environment < flags."""
    return config.load(config_file=config_file, overrides=overrides, flags=flags)


def config_as_yaml(loaded: config.Loaded) -> str:
    return config.as_yaml(loaded.config)


def config_as_dict(loaded: config.Loaded) -> dict[str, Any]:
    return {
        "config": loaded.config.model_dump(mode="json"),
        "sources": loaded.sources,
        "file": str(loaded.file) if loaded.file else None,
        "paths": {
            "config_file": str(loaded.files_considered[0]) if loaded.files_considered else None,
            "config_dir": str(loaded.paths.config_dir),
            "data_dir": str(loaded.paths.data_dir),
            "cache_dir": str(loaded.paths.cache_dir),
        },
    }


@dataclass(frozen=True)
class DoctorReport:
    results: list[checks.CheckResult]

    @property
    def failed(self) -> list[checks.CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("pass", "warn", "fail")}

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.counts(), "checks": [r.as_dict() for r in self.results]}

    def raise_for_failures(self) -> None:
        if self.failed:
            names = ", ".join(r.name for r in self.failed)
            raise errors.CheckFailed(
                f"{len(self.failed)} of {len(self.results)} checks failed: {names}",
                hint="each failed check above has a hint; fix them and run `appliance doctor` again",
            )


def doctor(loaded: config.Loaded) -> DoctorReport:
    """Run every preflight check against the real host."""
    observed = facts.gather(loaded.config, loaded.paths)
    return DoctorReport(checks.evaluate(observed))


def version_info() -> dict[str, str]:
    return {
        "odh-appliance": appliance.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "executable": sys.executable,
    }

"""Idle workbench culling as pure functions: the configuration and the stop decision.

Called by `notebook_handlers` (a kopf timer per Notebook every `IDLENESS_CHECK_PERIOD` minutes asks
JupyterLab's `/api/status` through the Service with the notebook's token) and by the unit tests.
Configuration keys and defaults are upstream Kubeflow's notebook-controller ones, read from the
operator's environment (install.py feeds them from the ConfigMap `notebook-controller-culler-config`):
`ENABLE_CULLING` (false), `CULL_IDLE_TIME` (1440 minutes), `IDLENESS_CHECK_PERIOD` (1 minute).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LAST_ACTIVITY_ANNOTATION = "notebooks.kubeflow.org/last-activity"  # as upstream's culler writes it


@dataclass(frozen=True)
class Config:
    enabled: bool = False
    idle_minutes: float = 1440.0
    period_minutes: float = 1.0


def config(env: Mapping[str, str]) -> Config:
    """The culling configuration from environment variables; bad numbers fall back to the defaults."""

    def minutes(key: str, default: float) -> float:
        try:
            value = float(env.get(key, default))
        except ValueError:
            return default
        return value if value > 0 else default

    enabled = env.get("ENABLE_CULLING", "false").strip().lower() in ("true", "1", "yes")
    return Config(enabled, minutes("CULL_IDLE_TIME", 1440.0), minutes("IDLENESS_CHECK_PERIOD", 1.0))


def parse_time(value: Any) -> datetime.datetime | None:
    """A Jupyter timestamp (ISO 8601, `Z` or offset) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def idle_decision(api_status: Mapping[str, Any], now: datetime.datetime, cfg: Config) -> tuple[bool, str]:
    """(stop?, why) from JupyterLab's `/api/status` JSON (`last_activity`, `kernels`, ...).

    Idle means no activity for longer than `CULL_IDLE_TIME`; an answer without a readable
    `last_activity` never culls (better a running notebook than lost work).
    """
    if not cfg.enabled:
        return False, "culling is disabled (ENABLE_CULLING)"
    last = parse_time(api_status.get("last_activity"))
    if last is None:
        return False, f"no readable last_activity in the status: {api_status.get('last_activity')!r}"
    idle = (now - last).total_seconds() / 60
    if idle >= cfg.idle_minutes:
        return True, f"idle for {idle:.1f} min (last activity {last.isoformat()}), CULL_IDLE_TIME={cfg.idle_minutes:g}"
    return False, f"active {idle:.1f} min ago, CULL_IDLE_TIME={cfg.idle_minutes:g}"


def stop_annotation_value(now: datetime.datetime) -> str:
    """The value upstream's culler writes into `kubeflow-resource-stopped`: the time, RFC 3339."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

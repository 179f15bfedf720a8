"""Kubernetes-style status conditions, built as plain dicts by the pure status functions.

Called by `components` (DataScienceCluster) and `platform` (DSCInitialization). A condition keeps its
`lastTransitionTime` while its status does not change, so a reconcile that finds nothing new writes
the same status again (no churn, no endless watch events).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

Condition = dict[str, str]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, ready: bool, reason: str, message: str) -> Condition:
    return {"type": kind, "status": "True" if ready else "False", "reason": reason, "message": message}


def merge(
    new: Iterable[Condition], previous: Iterable[Mapping[str, Any]] | None, *, at: str | None = None
) -> list[Condition]:
    """`new` conditions with `lastTransitionTime` carried over from `previous` where the status is unchanged."""
    old = {str(c.get("type")): c for c in previous or ()}
    stamp = at or now()
    merged = []
    for cond in new:
        before = old.get(cond["type"])
        unchanged = before is not None and before.get("status") == cond["status"] and before.get("lastTransitionTime")
        merged.append(
            {**cond, "lastTransitionTime": str(before["lastTransitionTime"]) if unchanged and before else stamp}
        )
    return merged


def find(conditions: Iterable[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or () if c.get("type") == kind), None)


def is_true(conditions: Iterable[Mapping[str, Any]] | None, kind: str) -> bool:
    cond = find(conditions, kind)
    return cond is not None and cond.get("status") == "True"

"""DSCInitialization as pure functions: which namespace a spec asks for, and the resulting status.

Called by `handlers` on every DSCInitialization reconcile. The DSCInitialization owns the platform's
shared parts: the applications namespace (`spec.applicationsNamespace`, default `opendatahub`) and
the object storage (MinIO) in it. Conditions: `Ready` (upstream), and `ObjectStorageReady`, an
appliance addition that says whether MinIO answers, and `GatewayReady`, whether the gateway
(`gateway`) runs its latest configuration. A bad spec yields `Ready=False` with reason
`InvalidSpec` — never an exception that would make kopf retry forever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from appliance.operator import conditions

DEFAULT_NAMESPACE = "opendatahub"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class InvalidSpec(ValueError):
    """The spec cannot be acted on; the message goes into the Ready condition and an Event."""


def applications_namespace(spec: Mapping[str, Any] | None) -> str:
    value = (spec or {}).get("applicationsNamespace") or DEFAULT_NAMESPACE
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise InvalidSpec(f"spec.applicationsNamespace {value!r} is not a valid namespace name (a DNS label)")
    return value


def status(
    namespace: str | None,
    storage_ready: bool,
    storage_message: str,
    previous: Mapping[str, Any] | None = None,
    *,
    gateway: tuple[bool, str] | None = None,
    error: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """The full `status` of a DSCInitialization; `error` is a spec problem that blocks everything.

    `gateway`: (ready, message) of the platform gateway, when the operator runs one."""
    if error is not None:
        conds = [
            conditions.condition("Ready", False, "InvalidSpec", error),
            conditions.condition("ObjectStorageReady", False, "InvalidSpec", error),
        ]
        phase = "Error"
    else:
        ready, why = storage_ready, storage_message
        parts = [
            conditions.condition(
                "ObjectStorageReady", storage_ready, "MinIOReady" if storage_ready else "MinIONotReady", storage_message
            )
        ]
        if gateway is not None:
            reason = "GatewayReady" if gateway[0] else "GatewayNotReady"
            parts.append(conditions.condition("GatewayReady", gateway[0], reason, gateway[1]))
            if ready and not gateway[0]:
                ready, why = False, gateway[1]
        conds = [
            conditions.condition(
                "Ready",
                ready,
                "ReconcileCompleted" if ready else "Progressing",
                "the platform is initialized" if ready else why,
            ),
            *parts,
        ]
        phase = "Ready" if ready else "Progressing"
    result: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions.merge(conds, (previous or {}).get("conditions"), at=at),
    }
    if namespace is not None:
        result["applicationsNamespace"] = namespace
    return result

"""DataScienceCluster status as a pure function: `spec.components` + what is running → `status`.

Called by `handlers` on every DataScienceCluster reconcile, and by the unit tests. Upstream naming:
one `<Component>Ready` condition per known component (`WorkbenchesReady`, `KserveReady`, ...), plus
`ComponentsReady` and `Ready`; `phase` is `Ready` or `Not Ready`.

A component set `Managed` that this appliance does not implement yet gets `<Component>Ready=False`
with reason `NotImplemented` and keeps the cluster honestly not Ready — it is never silently ignored.
`Removed` components get `False`/`Removed` like upstream, and do not hold back `Ready`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import appliance
from appliance.operator import conditions

# Upstream component keys (opendatahub-operator v2, datasciencecluster.opendatahub.io/v1) and the
# prefix of their condition type.
COMPONENTS: dict[str, str] = {
    "codeflare": "CodeFlare",
    "dashboard": "Dashboard",
    "datasciencepipelines": "DataSciencePipelines",
    "feastoperator": "FeastOperator",
    "kserve": "Kserve",
    "kueue": "Kueue",
    "llamastackoperator": "LlamaStackOperator",
    "modelmeshserving": "ModelMeshServing",
    "modelregistry": "ModelRegistry",
    "ray": "Ray",
    "trainingoperator": "TrainingOperator",
    "trustyai": "TrustyAI",
    "workbenches": "Workbenches",
}
MANAGEMENT_STATES = ("Managed", "Removed", "Unmanaged")
# Components this appliance implements, filled in as each lands (workbenches, kserve, ...). For a
# component in here, `Health` from the handler decides its condition.
IMPLEMENTED: frozenset[str] = frozenset({"workbenches", "kserve", "datasciencepipelines"})


@dataclass(frozen=True)
class Health:
    """What the handler observed for one implemented component."""

    ready: bool
    reason: str
    message: str


def condition_type(component: str) -> str:
    return f"{COMPONENTS.get(component, component)}Ready"


def component_condition(
    name: str, spec: Any, health: Health | None, implemented: frozenset[str] = IMPLEMENTED
) -> tuple[conditions.Condition, str | None]:
    """The `<Component>Ready` condition of one component and its management state (None when invalid)."""
    kind = condition_type(name)
    if name not in COMPONENTS:
        return conditions.condition(
            kind,
            False,
            "UnknownComponent",
            f"{name!r} is not a DataScienceCluster component; known: {', '.join(COMPONENTS)}",
        ), None
    state = spec.get("managementState", "Removed") if isinstance(spec, Mapping) else None
    if state not in MANAGEMENT_STATES:
        return conditions.condition(
            kind,
            False,
            "InvalidManagementState",
            f"managementState must be one of {', '.join(MANAGEMENT_STATES)}, not {state!r}",
        ), None
    if state == "Removed":
        return conditions.condition(kind, False, "Removed", "Component ManagementState is set to Removed"), state
    if state == "Unmanaged":
        return conditions.condition(kind, False, "Unmanaged", "Component ManagementState is set to Unmanaged"), state
    if name not in implemented:
        return conditions.condition(
            kind,
            False,
            "NotImplemented",
            f"{name} is Managed, but odh-appliance does not implement it yet; "
            "set it to Removed, or wait for a release that does",
        ), state
    if health is None:
        return conditions.condition(kind, False, "Progressing", f"{name} is being deployed"), state
    return conditions.condition(kind, health.ready, health.reason, health.message), state


def dsc_status(
    spec: Mapping[str, Any] | None,
    health: Mapping[str, Health],
    previous: Mapping[str, Any] | None = None,
    *,
    platform_ready: bool = True,
    platform_message: str = "",
    implemented: frozenset[str] = IMPLEMENTED,
    at: str | None = None,
) -> dict[str, Any]:
    """The full `status` of a DataScienceCluster.

    `health`: observed health of implemented components; `platform_ready`: whether the
    DSCInitialization (namespace, object storage) is Ready — without it nothing can be Ready.
    """
    raw = (spec or {}).get("components")
    specs: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    names = [*COMPONENTS, *sorted(n for n in specs if n not in COMPONENTS)]
    component_conditions = []
    states: dict[str, str] = {}
    blocking: list[str] = []
    for name in names:
        cond, state = component_condition(name, specs.get(name, {}), health.get(name), implemented)
        component_conditions.append(cond)
        if state is not None:
            states[name] = state
        if cond["reason"] in ("Removed", "Unmanaged") or (cond["reason"] == "UnknownComponent" and name not in specs):
            continue
        if cond["status"] != "True":
            blocking.append(f"{name} ({cond['reason']})")
    if raw is not None and not isinstance(raw, Mapping):
        blocking.append("spec.components (not a map)")
    components_ready = not blocking
    summary = "all Managed components are ready" if components_ready else "not ready: " + ", ".join(blocking)
    ready = components_ready and platform_ready
    ready_message = summary if platform_ready else f"DSCInitialization is not ready: {platform_message}"
    top = [
        conditions.condition("Ready", ready, "ReconcileCompleted" if ready else "NotReady", ready_message),
        conditions.condition("ComponentsReady", components_ready, "Ready" if components_ready else "NotReady", summary),
    ]
    return {
        "phase": "Ready" if ready else "Not Ready",
        "conditions": conditions.merge([*top, *component_conditions], (previous or {}).get("conditions"), at=at),
        "components": {name: {"managementState": state} for name, state in states.items()},
        "installedComponents": {name: state == "Managed" and name in implemented for name, state in states.items()},
        "release": {"name": "odh-appliance", "version": appliance.__version__},
    }

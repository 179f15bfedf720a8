"""DataScienceCluster status: conditions per component, NotImplemented honesty, bad specs."""

from __future__ import annotations

from typing import Any

from appliance.operator import components, conditions

AT = "2026-01-01T00:00:00Z"


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found = conditions.find(status["conditions"], kind)
    assert found is not None, f"no {kind} condition in {status['conditions']}"
    return dict(found)


def spec(**states: str) -> dict[str, Any]:
    return {"components": {name: {"managementState": state} for name, state in states.items()}}


def test_every_upstream_component_has_a_condition_named_like_upstream() -> None:
    status = components.dsc_status(spec(), {}, at=AT)
    types = {c["type"] for c in status["conditions"]}
    for expected in ("Ready", "ComponentsReady", "WorkbenchesReady", "KserveReady", "DashboardReady",
                     "DataSciencePipelinesReady", "RayReady", "KueueReady", "TrustyAIReady", "ModelRegistryReady",
                     "FeastOperatorReady", "TrainingOperatorReady", "CodeFlareReady"):  # fmt: skip
        assert expected in types


def test_managed_but_unimplemented_component_says_so_and_blocks_ready() -> None:
    status = components.dsc_status(spec(dashboard="Managed", ray="Removed"), {}, at=AT)
    dashboard = cond(status, "DashboardReady")
    assert (dashboard["status"], dashboard["reason"]) == ("False", "NotImplemented")
    assert "does not implement" in dashboard["message"]
    assert cond(status, "ComponentsReady")["status"] == "False"
    assert "dashboard (NotImplemented)" in cond(status, "ComponentsReady")["message"]
    assert cond(status, "Ready")["status"] == "False"
    assert status["phase"] == "Not Ready"
    assert status["installedComponents"]["dashboard"] is False


def test_workbenches_are_implemented_and_wait_for_the_controller_health() -> None:
    status = components.dsc_status(spec(workbenches="Managed"), {}, at=AT)
    assert cond(status, "WorkbenchesReady")["reason"] == "Progressing"
    health = {"workbenches": components.Health(True, "ReconcileCompleted", "the Notebook controller runs")}
    ready = components.dsc_status(spec(workbenches="Managed"), health, at=AT)
    assert cond(ready, "WorkbenchesReady")["status"] == "True"
    assert ready["installedComponents"]["workbenches"] is True


def test_all_removed_is_ready_and_removed_conditions_match_upstream() -> None:
    status = components.dsc_status(spec(workbenches="Removed", kserve="Removed"), {}, at=AT)
    assert status["phase"] == "Ready"
    assert cond(status, "Ready")["status"] == "True"
    kserve = cond(status, "KserveReady")
    assert (kserve["status"], kserve["reason"]) == ("False", "Removed")
    assert status["components"]["kserve"] == {"managementState": "Removed"}


def test_implemented_component_follows_observed_health() -> None:
    implemented = frozenset({"workbenches"})
    health = {"workbenches": components.Health(True, "DeploymentsAvailable", "ok")}
    status = components.dsc_status(spec(workbenches="Managed"), health, implemented=implemented, at=AT)
    assert cond(status, "WorkbenchesReady")["status"] == "True"
    assert status["phase"] == "Ready"
    assert status["installedComponents"]["workbenches"] is True
    pending = components.dsc_status(spec(workbenches="Managed"), {}, implemented=implemented, at=AT)
    assert cond(pending, "WorkbenchesReady")["reason"] == "Progressing"
    assert pending["phase"] == "Not Ready"


def test_platform_not_ready_holds_back_ready_but_not_components_ready() -> None:
    status = components.dsc_status(spec(), {}, platform_ready=False, platform_message="MinIO is starting", at=AT)
    assert cond(status, "ComponentsReady")["status"] == "True"
    ready = cond(status, "Ready")
    assert ready["status"] == "False"
    assert "MinIO is starting" in ready["message"]


def test_invalid_management_state_and_unknown_component_are_conditions_not_crashes() -> None:
    raw = {"components": {"workbenches": {"managementState": "Sometimes"}, "telepathy": {"managementState": "Managed"},
                          "kserve": "not-a-map"}}  # fmt: skip
    status = components.dsc_status(raw, {}, at=AT)
    assert cond(status, "WorkbenchesReady")["reason"] == "InvalidManagementState"
    assert cond(status, "telepathyReady")["reason"] == "UnknownComponent"
    assert cond(status, "KserveReady")["reason"] == "InvalidManagementState"
    assert status["phase"] == "Not Ready"
    weird = components.dsc_status({"components": ["workbenches"]}, {}, at=AT)
    assert weird["phase"] == "Not Ready"
    assert "spec.components" in cond(weird, "ComponentsReady")["message"]


def test_missing_spec_means_everything_removed() -> None:
    status = components.dsc_status(None, {}, at=AT)
    assert status["phase"] == "Ready"
    assert all(v == {"managementState": "Removed"} for v in status["components"].values())


def test_transition_time_is_kept_while_status_is_unchanged() -> None:
    first = components.dsc_status(spec(workbenches="Managed"), {}, at=AT)
    again = components.dsc_status(spec(workbenches="Managed"), {}, first, at="2030-01-01T00:00:00Z")
    assert cond(again, "WorkbenchesReady")["lastTransitionTime"] == AT
    flipped = components.dsc_status(spec(workbenches="Removed"), {}, first, at="2030-01-01T00:00:00Z")
    assert cond(flipped, "Ready")["lastTransitionTime"] == "2030-01-01T00:00:00Z"
    assert again == components.dsc_status(spec(workbenches="Managed"), {}, again, at="2031-01-01T00:00:00Z")

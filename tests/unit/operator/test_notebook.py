"""Workbenches: Notebook → StatefulSet/Service/PVC shapes as upstream, status, bad specs, culling."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from appliance.operator import culling, notebook

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def nb(**spec_extra: Any) -> dict[str, Any]:
    """A Notebook as a workshop would `kubectl apply` it (upstream shape)."""
    container: dict[str, Any] = {
        "name": "wb",
        "image": "localhost/odh-appliance/workbench:latest",
        "resources": {"limits": {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": "1"}},
        "env": [{"name": "FOO", "value": "bar"}, {"name": "NB_PREFIX", "value": "/wrong"}],
    }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "Notebook",
        "metadata": {"name": "wb", "namespace": "proj", "uid": "u1", "annotations": {}},
        "spec": {"template": {"spec": {"containers": [container], **spec_extra}}},
    }


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_statefulset_runs_the_notebook_as_upstream() -> None:
    sts = notebook.statefulset(nb())
    assert sts["metadata"]["name"] == "wb" and sts["metadata"]["namespace"] == "proj"
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["selector"]["matchLabels"] == {"statefulset": "wb"}
    pod = sts["spec"]["template"]
    assert pod["metadata"]["labels"] == {"statefulset": "wb", "notebook-name": "wb"}
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "localhost/odh-appliance/workbench:latest"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"  # GPUs pass through unchanged
    values = env(container)
    assert values["NB_PREFIX"] == "/notebook/proj/wb"  # the user's wrong value is replaced, once
    assert [e["name"] for e in container["env"]].count("NB_PREFIX") == 1
    assert values["FOO"] == "bar"
    assert values["JUPYTER_TOKEN"] == {"secretKeyRef": {"name": "wb-token", "key": "token"}}
    assert "--ServerApp.base_url=/notebook/proj/wb" in container["args"]
    assert not any("token=" in a or "NotebookApp.token" in a for a in container["args"])  # never no-auth
    assert container["ports"] == [{"name": "notebook-port", "containerPort": 8888, "protocol": "TCP"}]
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_stop_annotation_scales_to_zero() -> None:
    obj = nb()
    obj["metadata"]["annotations"][notebook.STOP_ANNOTATION] = "2026-01-01T00:00:00Z"
    assert notebook.statefulset(obj)["spec"]["replicas"] == 0


def test_service_port_80_to_8888_named_as_upstream() -> None:
    svc = notebook.service(nb())
    assert svc["metadata"]["name"] == "wb"
    assert svc["spec"]["selector"] == {"statefulset": "wb"}
    assert svc["spec"]["ports"] == [{"name": "http-wb", "port": 80, "targetPort": 8888, "protocol": "TCP"}]


def test_own_pvc_named_like_the_notebook_when_none_is_mounted() -> None:
    objs = notebook.objects(nb())
    assert [o["kind"] for o in objs] == ["PersistentVolumeClaim", "Service", "StatefulSet"]
    assert objs[0]["metadata"]["name"] == "wb"
    pod = objs[2]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "wb", "persistentVolumeClaim": {"claimName": "wb"}}]
    assert {"name": "wb", "mountPath": notebook.HOME} in pod["containers"][0]["volumeMounts"]


def test_given_pvc_volume_is_used_and_none_created() -> None:
    obj = nb(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "my-data"}}])
    obj["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    objs = notebook.objects(obj)
    assert [o["kind"] for o in objs] == ["Service", "StatefulSet"]
    pod = objs[1]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "my-data"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]


def test_users_command_is_kept() -> None:
    obj = nb()
    obj["spec"]["template"]["spec"]["containers"][0]["command"] = ["start-notebook.sh"]
    (container,) = notebook.statefulset(obj)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["start-notebook.sh"] and "args" not in container
    assert env(container)["NB_PREFIX"] == "/notebook/proj/wb"


def test_args_that_switch_auth_off_are_dropped() -> None:
    obj = nb()
    given = ["jupyter", "lab", "--ServerApp.token=''", '--NotebookApp.password=""', "--LabApp.token=", "--port=8888"]
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = given
    (container,) = notebook.statefulset(obj)["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["jupyter", "lab", "--port=8888"]
    assert env(container)["JUPYTER_TOKEN"] == {"secretKeyRef": {"name": "wb-token", "key": "token"}}
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = ["--ServerApp.token=chosen"]
    (kept,) = notebook.statefulset(obj)["spec"]["template"]["spec"]["containers"]
    assert kept["args"] == ["--ServerApp.token=chosen"]  # a real token the user picked is theirs


def test_data_connection_env_from_passes_through() -> None:
    obj = nb()
    obj["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "aws-connection-minio"}}]
    (container,) = notebook.statefulset(obj)["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "aws-connection-minio"}}]


@pytest.mark.parametrize(
    "spec",
    [{}, {"template": {}}, {"template": {"spec": {"containers": []}}}, {"template": {"spec": {"containers": [{}]}}}],
)
def test_bad_specs_raise_invalid_spec(spec: dict[str, Any]) -> None:
    obj = {"metadata": {"name": "wb", "namespace": "proj"}, "spec": spec}
    with pytest.raises(notebook.InvalidSpec):
        notebook.objects(obj)
    status = notebook.status(obj, None, None, error="no containers")
    assert notebook.problem(status) == ("InvalidSpec", "no containers")


def test_token_secret_is_random_and_named() -> None:
    a, b = notebook.token_secret("proj", "wb"), notebook.token_secret("proj", "wb")
    assert a["metadata"]["name"] == "wb-token"
    assert len(a["stringData"]["token"]) == 48
    assert a["stringData"]["token"] != b["stringData"]["token"]


def running_pod(waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "no such image"}} if waiting else {"running": {"startedAt": "t"}}
    return {
        "status": {
            "conditions": [{"type": "Ready", "status": "False" if waiting else "True"},
                           {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "wb", "image": "localhost/x:1", "state": state}],
        }
    }  # fmt: skip


def test_status_as_upstream() -> None:
    status = notebook.status(nb(), {"status": {"readyReplicas": 1}}, running_pod())
    assert status["readyReplicas"] == 1
    assert status["containerState"] == {"running": {"startedAt": "t"}}
    assert {c["type"] for c in status["conditions"]} == {"Ready", "PodScheduled"}
    assert status["url"] == "/notebook/proj/wb/"
    assert notebook.problem(status) is None


def test_stopped_notebook_status_is_empty() -> None:
    status = notebook.status(nb(), {"status": {}}, None)
    assert (status["readyReplicas"], status["containerState"], status["conditions"]) == (0, {}, [])


@pytest.mark.parametrize("reason", ["ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull"])
def test_missing_image_is_a_ready_condition(reason: str) -> None:
    status = notebook.status(nb(), {"status": {}}, running_pod(reason))
    found = notebook.problem(status)
    assert found is not None and found[0] == "ImageNotAvailable"
    assert reason in found[1] and "localhost/x:1" in found[1]
    assert [c["type"] for c in status["conditions"]].count("Ready") == 1


# --- culling ---------------------------------------------------------------------------------------


def test_culling_config_upstream_defaults_and_keys() -> None:
    assert culling.config({}) == culling.Config(False, 1440.0, 1.0)
    cfg = culling.config({"ENABLE_CULLING": "true", "CULL_IDLE_TIME": "1", "IDLENESS_CHECK_PERIOD": "2"})
    assert cfg == culling.Config(True, 1.0, 2.0)
    assert culling.config({"CULL_IDLE_TIME": "soon", "IDLENESS_CHECK_PERIOD": "-1"}) == culling.Config()


ON = culling.Config(True, 10.0, 1.0)


def test_idle_longer_than_cull_time_stops() -> None:
    stop, why = culling.idle_decision({"last_activity": "2026-01-01T11:45:00.123456Z"}, NOW, ON)
    assert stop and "idle for 15.0 min" in why


def test_recent_activity_keeps_running() -> None:
    assert not culling.idle_decision({"last_activity": "2026-01-01T11:55:00+00:00"}, NOW, ON)[0]


def test_disabled_or_unreadable_never_culls() -> None:
    old = {"last_activity": "2025-01-01T00:00:00Z"}
    assert not culling.idle_decision(old, NOW, culling.Config(False, 10.0, 1.0))[0]
    assert not culling.idle_decision({}, NOW, ON)[0]
    assert not culling.idle_decision({"last_activity": "yesterday"}, NOW, ON)[0]


def test_stop_annotation_value_is_rfc3339() -> None:
    assert culling.stop_annotation_value(NOW) == "2026-01-01T12:00:00Z"

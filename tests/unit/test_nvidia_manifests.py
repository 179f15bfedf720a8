"""The RuntimeClass and the NVIDIA device plugin DaemonSet `up` applies with GPU on (pure functions).

Every field is checked against the Kubernetes API's own schema (the generated client models), so a
misspelt field fails here rather than being dropped by the API server on a GPU host.
"""

from __future__ import annotations

from typing import Any

import kubernetes.client
import pytest

from appliance.cluster import kindconfig, nvidia

IMAGE = "localhost/odh-appliance/nvidia-device-plugin:v0.20.0"


def schema_errors(value: Any, model: str, where: str = "") -> list[str]:
    """Fields of `value` that the API model `model` (e.g. "V1DaemonSet") does not have, recursively."""
    if model.startswith("list["):
        inner = model[5:-1]
        return [e for i, item in enumerate(value) for e in schema_errors(item, inner, f"{where}[{i}]")]
    if model.startswith("dict("):
        inner = model[5:-1].split(", ", 1)[1]
        return [e for k, item in value.items() for e in schema_errors(item, inner, f"{where}.{k}")]
    cls = getattr(kubernetes.client, model, None)
    if cls is None:  # str, int, bool, object
        return []
    json_to_attr = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    found = []
    for key, item in value.items():
        if key not in json_to_attr:
            found.append(f"{where}.{key}")
        else:
            found += schema_errors(item, cls.openapi_types[json_to_attr[key]], f"{where}.{key}")
    return found


def test_schema_check_catches_a_typo() -> None:
    assert schema_errors({"metadata": {"name": "x"}, "handlr": "nvidia"}, "V1RuntimeClass") == [".handlr"]


def test_runtime_class() -> None:
    runtime_class = nvidia.runtime_class()
    assert schema_errors(runtime_class, "V1RuntimeClass") == []
    assert (runtime_class["apiVersion"], runtime_class["metadata"]["name"], runtime_class["handler"]) == (
        "node.k8s.io/v1",
        "nvidia",
        "nvidia",
    )


def test_the_runtime_class_handler_is_the_containerd_runtime_the_kind_patch_adds() -> None:
    assert f"containerd.runtimes.{nvidia.runtime_class()['handler']}]" in kindconfig.CONTAINERD_NVIDIA_PATCH


@pytest.fixture
def daemonset() -> dict[str, Any]:
    return nvidia.device_plugin_daemonset(IMAGE)


def test_daemonset_is_valid_and_in_kube_system(daemonset: dict[str, Any]) -> None:
    assert schema_errors(daemonset, "V1DaemonSet") == []
    assert daemonset["metadata"]["namespace"] == "kube-system"
    spec = daemonset["spec"]
    assert (
        spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"] == {"name": "nvidia-device-plugin-ds"}
    )


def test_daemonset_keeps_upstreams_static_manifest_shape(daemonset: dict[str, Any]) -> None:
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "system-node-critical"
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    (container,) = pod["containers"]
    assert container["volumeMounts"] == [
        {"name": "kubelet-device-plugins-dir", "mountPath": "/var/lib/kubelet/device-plugins"}
    ]
    assert pod["volumes"] == [
        {
            "name": "kubelet-device-plugins-dir",
            "hostPath": {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"},
        }
    ]


def test_daemonset_runs_our_image_on_the_gpu_node_with_volume_mounts(daemonset: dict[str, Any]) -> None:
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (IMAGE, "Never")  # loaded into the node, never pulled
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["FAIL_ON_INIT_ERROR"] == "true"
    assert env["DEVICE_LIST_STRATEGY"] == "volume-mounts"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    # volume-mounts needs the plugin to count as privileged for the node's runtime (upstream's chart does this)
    assert container["securityContext"] == {"capabilities": {"add": ["SYS_ADMIN"]}}
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["nodeSelector"] == {kindconfig.GPU_NODE_LABEL: "true"}


def test_manifests_order_and_allocatable() -> None:
    kinds = [doc["kind"] for doc in nvidia.manifests(IMAGE)]
    assert kinds == ["RuntimeClass", "DaemonSet"]
    assert nvidia.allocatable_gpus({"cpu": "4", "nvidia.com/gpu": "2"}) == 2
    assert nvidia.allocatable_gpus({"cpu": "4"}) == 0
    assert nvidia.allocatable_gpus(None) == 0
    assert nvidia.allocatable_gpus({"nvidia.com/gpu": "lots"}) == 0

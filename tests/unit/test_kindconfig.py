"""The rendered kind configuration and kubeconfig merging (pure functions)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from appliance import config
from appliance.actions import up
from appliance.cluster import kindconfig

ROOT = Path(__file__).resolve().parents[2]


def render(gpu: bool = False, **overrides: object) -> dict[str, object]:
    cfg = config.Config.model_validate(overrides)
    return kindconfig.render(
        cfg, node_image="localhost/odh-appliance/kind-node:v1.34.1", volumes_dir=Path("/v"), gpu=gpu
    )


def test_loopback_api_and_gateway_ports() -> None:
    rendered = render(ports={"http": 9080, "grpc": 9081})
    assert rendered["name"] == "odh"
    networking = rendered["networking"]
    assert networking["apiServerAddress"] == "127.0.0.1"  # type: ignore[index]
    assert networking["disableDefaultCNI"] is True  # type: ignore[index]
    assert "apiServerPort" not in networking  # type: ignore[operator]
    (node,) = rendered["nodes"]  # type: ignore[misc]
    assert node["image"] == "localhost/odh-appliance/kind-node:v1.34.1"
    assert node["extraPortMappings"] == [
        {"containerPort": 30080, "hostPort": 9080, "listenAddress": "127.0.0.1", "protocol": "TCP"},
        {"containerPort": 30081, "hostPort": 9081, "listenAddress": "127.0.0.1", "protocol": "TCP"},
    ]
    assert {"hostPath": "/v", "containerPath": "/var/local-path-provisioner"} in node["extraMounts"]


def test_fixed_api_port_and_bind_address() -> None:
    rendered = render(bind_address="0.0.0.0", ports={"api_server": 6443})
    assert rendered["networking"]["apiServerPort"] == 6443  # type: ignore[index]
    assert rendered["nodes"][0]["extraPortMappings"][0]["listenAddress"] == "0.0.0.0"  # type: ignore[index]


def test_cgroup_v1_kubelet_patch() -> None:
    (patch,) = render()["kubeadmConfigPatches"]  # type: ignore[misc]
    assert yaml.safe_load(patch) == {"kind": "KubeletConfiguration", "failCgroupV1": False}


def test_gpu_adds_volume_mount_device_selection() -> None:
    mounts = render(gpu=True)["nodes"][0]["extraMounts"]  # type: ignore[index]
    assert {"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/all"} in mounts
    assert not any("nvidia" in m["containerPath"] for m in render()["nodes"][0]["extraMounts"])  # type: ignore[index]


def test_gpu_labels_the_node_and_patches_containerd_only_with_gpu() -> None:
    with_gpu, without = render(gpu=True), render()
    assert with_gpu["nodes"][0]["labels"] == {"odh-appliance/gpu": "true"}  # type: ignore[index]
    assert without["nodes"][0]["labels"] == {"odh-appliance/gpu": "false"}  # type: ignore[index]
    assert "containerdConfigPatches" not in without
    assert with_gpu["containerdConfigPatches"] == [kindconfig.CONTAINERD_NVIDIA_PATCH]
    assert with_gpu["kubeadmConfigPatches"] == without["kubeadmConfigPatches"]


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 merge, which kind applies to the TOML of containerdConfigPatches (pkg/internal/patch)."""
    merged = dict(target)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_containerd_patch_adds_the_nvidia_runtime_to_our_node_config() -> None:
    node_config = tomllib.loads((ROOT / "images/kind-node/files/etc/containerd/config.toml").read_text())
    merged = merge_patch(node_config, tomllib.loads(kindconfig.CONTAINERD_NVIDIA_PATCH))
    cri = merged["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["containerd"]["default_runtime_name"] == "nvidia"
    nvidia = cri["containerd"]["runtimes"]["nvidia"]
    assert nvidia == {
        "runtime_type": "io.containerd.runc.v2",
        "options": {"BinaryName": "/usr/bin/nvidia-container-runtime", "SystemdCgroup": True},
    }
    # What the CPU-only node has stays: runc, the snapshotter, the preloaded pause image, the CNI paths.
    assert (
        cri["containerd"]["runtimes"]["runc"]
        == node_config["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]
    )
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["sandbox_image"].startswith("registry.k8s.io/pause:")
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    assert merged["version"] == 2


def test_the_gpu_node_image_ships_what_the_patch_names() -> None:
    dockerfile = (ROOT / "images/kind-node-gpu/Dockerfile").read_text()
    assert "bin/nvidia-container-runtime" in dockerfile and "/usr/bin/" in dockerfile
    runtime = tomllib.loads((ROOT / "images/kind-node-gpu/files/etc/nvidia-container-runtime/config.toml").read_text())
    assert runtime["accept-nvidia-visible-devices-as-volume-mounts"] is True
    assert runtime["accept-nvidia-visible-devices-envvar-when-unprivileged"] is False
    assert runtime["nvidia-container-runtime"]["runtimes"] == ["runc"]


def test_yaml_is_what_kind_reads() -> None:
    cfg = config.Config(cluster_name="demo")
    text = kindconfig.render_yaml(cfg, node_image="img", volumes_dir=Path("/v"), gpu=False)
    data = yaml.safe_load(text)
    assert data["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert data["name"] == "demo"


def kubeconfig(name: str, server: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {"token": "t"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def test_merge_kubeconfig_replaces_own_entries_and_keeps_others(tmp_path: Path) -> None:
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    existing = kubeconfig("work", "https://work:6443")
    existing["clusters"].append({"name": "kind-odh", "cluster": {"server": "https://old"}})  # type: ignore[attr-defined]
    target.write_text(yaml.safe_dump(existing))
    source = tmp_path / "odh"
    source.write_text(yaml.safe_dump(kubeconfig("kind-odh", "https://127.0.0.1:4321")))

    up.merge_kubeconfig(source, target)
    merged = yaml.safe_load(target.read_text())
    servers = {c["name"]: c["cluster"]["server"] for c in merged["clusters"]}
    assert servers == {"work": "https://work:6443", "kind-odh": "https://127.0.0.1:4321"}
    assert [c["name"] for c in merged["contexts"]] == ["work", "kind-odh"]
    assert merged["current-context"] == "kind-odh"
    assert target.stat().st_mode & 0o777 == 0o600

    up.merge_kubeconfig(source, target)  # idempotent
    assert yaml.safe_load(target.read_text()) == merged


def test_merge_into_missing_file(tmp_path: Path) -> None:
    source = tmp_path / "odh"
    source.write_text(yaml.safe_dump(kubeconfig("kind-odh", "https://127.0.0.1:1")))
    target = tmp_path / "new" / "config"
    up.merge_kubeconfig(source, target)
    assert yaml.safe_load(target.read_text())["current-context"] == "kind-odh"

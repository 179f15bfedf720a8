"""Render the kind cluster configuration from the appliance configuration (a pure function).

What it encodes, and why:
- the API server listens on 127.0.0.1 (or `bind_address`) only;
- `disableDefaultCNI`: kind's kindnet image cannot be pulled here; the node image carries a ptp +
  host-local CNI configuration for its single node instead;
- port mappings from the host's `ports.http` / `ports.grpc` to the NodePorts of the platform
  gateway (the operator issue puts nginx behind them);
- the local-path volume directory is a host directory, so `appliance down --keep-data` keeps PVC data;
- a kubelet patch that keeps cgroup v1 hosts working (`failCgroupV1: false`);
- with a GPU (docs/gpu.md): NVIDIA's volume-mount device selection (`/dev/null` at
  `/var/run/nvidia-container-devices/all`), which the host's NVIDIA Container Toolkit turns into the
  node's GPU devices and driver libraries; and a containerd patch that adds the `nvidia` runtime (the
  NVIDIA Container Runtime of the GPU node image, `appliance.images.gpu`) and makes it the default, so
  every pod the device plugin gives a GPU gets it whether or not it names the `nvidia` RuntimeClass.
  kind merges the patch into the node's /etc/containerd/config.toml and restarts containerd before
  kubeadm runs; the CPU-only node image is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from appliance import config

GATEWAY_HTTP_NODEPORT = 30080
GATEWAY_GRPC_NODEPORT = 30081
POD_SUBNET = "10.244.0.0/16"
SERVICE_SUBNET = "10.96.0.0/16"
VOLUMES_IN_NODE = "/var/local-path-provisioner"

KUBELET_PATCH = """kind: KubeletConfiguration
failCgroupV1: false
"""

NVIDIA_DEVICES_ALL = "/var/run/nvidia-container-devices/all"
NVIDIA_RUNTIME_BINARY = "/usr/bin/nvidia-container-runtime"
GPU_NODE_LABEL = "odh-appliance/gpu"

# containerd 1.6 (config version 2), merged by kind into the node's config.
CONTAINERD_NVIDIA_PATCH = f"""[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "nvidia"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
  BinaryName = "{NVIDIA_RUNTIME_BINARY}"
  SystemdCgroup = true
"""


def render(cfg: config.Config, *, node_image: str, volumes_dir: Path, gpu: bool) -> dict[str, Any]:
    """The kind `Cluster` object for `cfg` (see module docstring)."""
    address = cfg.bind_address
    port_mappings = [
        {"containerPort": node_port, "hostPort": host_port, "listenAddress": address, "protocol": "TCP"}
        for node_port, host_port in ((GATEWAY_HTTP_NODEPORT, cfg.ports.http), (GATEWAY_GRPC_NODEPORT, cfg.ports.grpc))
    ]
    mounts: list[dict[str, Any]] = [{"hostPath": str(volumes_dir), "containerPath": VOLUMES_IN_NODE}]
    if gpu:
        mounts.append({"hostPath": "/dev/null", "containerPath": NVIDIA_DEVICES_ALL})
    networking: dict[str, Any] = {
        "apiServerAddress": address,
        "disableDefaultCNI": True,
        "podSubnet": POD_SUBNET,
        "serviceSubnet": SERVICE_SUBNET,
        "kubeProxyMode": "iptables",
    }
    if cfg.ports.api_server:
        networking["apiServerPort"] = cfg.ports.api_server
    rendered: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": cfg.cluster_name,
        "networking": networking,
        "nodes": [
            {
                "role": "control-plane",
                "image": node_image,
                "extraPortMappings": port_mappings,
                "extraMounts": mounts,
                "labels": {GPU_NODE_LABEL: "true" if gpu else "false"},
            }
        ],
        "kubeadmConfigPatches": [KUBELET_PATCH],
    }
    if gpu:
        rendered["containerdConfigPatches"] = [CONTAINERD_NVIDIA_PATCH]
    return rendered


def render_yaml(cfg: config.Config, *, node_image: str, volumes_dir: Path, gpu: bool) -> str:
    return yaml.safe_dump(render(cfg, node_image=node_image, volumes_dir=volumes_dir, gpu=gpu), sort_keys=False)

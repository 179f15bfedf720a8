"""Render the kind cluster configuration from the appliance configuration (a pure function).

What it encodes, and why:
- the API server listens on 127.0.0.1 (or `bind_address`) only;
- `disableDefaultCNI`: kind's kindnet image cannot be pulled here; the node image carries a ptp +
  host-local CNI configuration for its single node instead;
- port mappings from the host's `ports.http` / `ports.grpc` to the NodePorts of the platform
  gateway (the operator issue puts nginx behind them);
- the local-path volume directory is a host directory, so `appliance down --keep-data` keeps PVC data;
- a kubelet patch that keeps cgroup v1 hosts working (`failCgroupV1: false`);
- with a GPU: NVIDIA's volume-mount device selection (`/dev/null` at
  `/var/run/nvidia-container-devices/all`), which the nvidia runtime in the node turns into devices.
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


def render(cfg: config.Config, *, node_image: str, volumes_dir: Path, gpu: bool) -> dict[str, Any]:
    """The kind `Cluster` object for `cfg` (see module docstring)."""
    address = cfg.bind_address
    port_mappings = [
        {"containerPort": node_port, "hostPort": host_port, "listenAddress": address, "protocol": "TCP"}
        for node_port, host_port in ((GATEWAY_HTTP_NODEPORT, cfg.ports.http), (GATEWAY_GRPC_NODEPORT, cfg.ports.grpc))
    ]
    mounts: list[dict[str, Any]] = [{"hostPath": str(volumes_dir), "containerPath": VOLUMES_IN_NODE}]
    if gpu:
        mounts.append({"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/all"})
    networking: dict[str, Any] = {
        "apiServerAddress": address,
        "disableDefaultCNI": True,
        "podSubnet": POD_SUBNET,
        "serviceSubnet": SERVICE_SUBNET,
        "kubeProxyMode": "iptables",
    }
    if cfg.ports.api_server:
        networking["apiServerPort"] = cfg.ports.api_server
    return {
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
                "labels": {"odh-appliance/gpu": "true" if gpu else "false"},
            }
        ],
        "kubeadmConfigPatches": [KUBELET_PATCH],
    }


def render_yaml(cfg: config.Config, *, node_image: str, volumes_dir: Path, gpu: bool) -> str:
    return yaml.safe_dump(render(cfg, node_image=node_image, volumes_dir=volumes_dir, gpu=gpu), sort_keys=False)

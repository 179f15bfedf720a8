"""The Kubernetes objects that make a node's NVIDIA GPU schedulable (pure functions; `up` applies them).

Called by `appliance.actions.up.setup_gpu` after the node is Ready, when GPU is on (docs/gpu.md):
- RuntimeClass `nvidia` (handler `nvidia`): the containerd runtime that the kind config patch adds
  (`kindconfig.CONTAINERD_NVIDIA_PATCH`). That patch also makes it the default, so the class is for
  workloads (and charts) that name it explicitly, and for the device plugin itself.
- the NVIDIA device plugin DaemonSet, in the shape of upstream's static manifest
  (`deployments/static/nvidia-device-plugin.yml` of k8s-device-plugin v0.20.0): tolerates the
  `nvidia.com/gpu` taint, runs as `system-node-critical`, mounts the kubelet's device-plugins directory.
  What differs, and why:
  * the image is ours (`appliance.images.gpu`, loaded into the node; never pulled);
  * `DEVICE_LIST_STRATEGY=volume-mounts`: the plugin hands each pod its GPUs as `/dev/null` mounts under
    /var/run/nvidia-container-devices, which the node's runtime honours even for unprivileged pods,
    while an image's NVIDIA_VISIBLE_DEVICES is ignored (no pod gets GPUs it was not allocated);
  * CAP_SYS_ADMIN instead of "drop ALL", as upstream's Helm chart does with volume-mounts: the node's
    runtime treats the plugin as privileged, so its own NVIDIA_VISIBLE_DEVICES=all is honoured and it
    gets NVML;
  * `FAIL_ON_INIT_ERROR=true`: a node without a usable GPU shows a crashing pod with NVML's error rather
    than a plugin that silently advertises nothing;
  * a nodeSelector on our GPU node label, and `runtimeClassName: nvidia`.
"""

from __future__ import annotations

from typing import Any

from appliance.cluster import kindconfig

NAMESPACE = "kube-system"
RUNTIME_CLASS = "nvidia"
DAEMONSET = "nvidia-device-plugin-daemonset"
APP_LABEL = {"name": "nvidia-device-plugin-ds"}
DEVICE_PLUGINS_DIR = "/var/lib/kubelet/device-plugins"
GPU_RESOURCE = "nvidia.com/gpu"


def runtime_class() -> dict[str, Any]:
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS, "labels": {"app.kubernetes.io/managed-by": "odh-appliance"}},
        "handler": RUNTIME_CLASS,
    }


def device_plugin_daemonset(image: str) -> dict[str, Any]:
    """The device plugin DaemonSet running `image` (see the module docstring for each choice)."""
    env = {
        "FAIL_ON_INIT_ERROR": "true",
        "DEVICE_LIST_STRATEGY": "volume-mounts",
        "DEVICE_ID_STRATEGY": "uuid",
        "MIG_STRATEGY": "none",
        "PASS_DEVICE_SPECS": "false",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    container = {
        "name": "nvidia-device-plugin-ctr",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["nvidia-device-plugin"],
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
        "volumeMounts": [{"name": "kubelet-device-plugins-dir", "mountPath": DEVICE_PLUGINS_DIR}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": DAEMONSET,
            "namespace": NAMESPACE,
            "labels": {**APP_LABEL, "app.kubernetes.io/managed-by": "odh-appliance"},
        },
        "spec": {
            "selector": {"matchLabels": dict(APP_LABEL)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(APP_LABEL)},
                "spec": {
                    "nodeSelector": {kindconfig.GPU_NODE_LABEL: "true"},
                    "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
                    "priorityClassName": "system-node-critical",
                    "runtimeClassName": RUNTIME_CLASS,
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "kubelet-device-plugins-dir",
                            "hostPath": {"path": DEVICE_PLUGINS_DIR, "type": "Directory"},
                        }
                    ],
                },
            },
        },
    }


def manifests(image: str) -> list[dict[str, Any]]:
    """Everything `up` applies for a GPU, in order."""
    return [runtime_class(), device_plugin_daemonset(image)]


def allocatable_gpus(allocatable: dict[str, str] | None) -> int:
    """How many GPUs a node's `status.allocatable` offers (0 when the device plugin has not registered)."""
    try:
        return int((allocatable or {}).get(GPU_RESOURCE, "0"))
    except ValueError:
        return 0

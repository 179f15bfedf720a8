"""GPU in the real cluster — runs only on a host that can give kind a GPU (docs/gpu.md).

On such a host the session's `appliance up` (gpu: auto) creates the GPU node and the device plugin.
These tests check that the node offers `nvidia.com/gpu`, that the device plugin registered with the
kubelet, and that a pod asking for one GPU sees its device nodes and `nvidia-smi` lists it. Elsewhere
they skip, saying what the host lacks (the same verdict `appliance doctor` gives).
"""

from __future__ import annotations

import kubernetes.client
import pytest

from appliance import config, errors, k8s
from appliance.cluster import nvidia
from appliance.doctor import facts, gpu
from appliance.images import gpu as gpu_images
from tests.e2e.conftest import finish_pod

pytestmark = pytest.mark.e2e
NAMESPACE = "default"


@pytest.fixture(scope="session")
def gpu_host() -> None:
    """Skips on a host without a usable GPU. Every test names it *before* `cluster`: same scope, so it
    runs first and no cluster is created (or deleted) for tests that skip."""
    support = gpu.assess(facts.gpu_facts(), facts.docker_facts())
    if not support.usable:
        pytest.skip(f"this host cannot give the cluster a GPU: {support.detail} (docs/gpu.md)")
    try:
        gpu_images.check_device_plugin_buildable(config.Paths.from_environment().cache_dir)
    except errors.ApplianceError as exc:  # `up` (gpu: auto) would leave GPU off: say why rather than fail later
        pytest.fail(f"a GPU host, but {exc.message}; {exc.hint}")


def test_the_node_offers_a_gpu_and_the_plugin_registered(gpu_host: None, cluster: k8s.Cluster) -> None:
    nodes = cluster.core.list_node().items
    assert [nvidia.allocatable_gpus(n.status.allocatable) > 0 for n in nodes] == [True] * len(nodes)
    assert kubernetes.client.NodeV1Api(cluster.api_client).read_runtime_class(nvidia.RUNTIME_CLASS).handler == "nvidia"
    pods = cluster.core.list_namespaced_pod(nvidia.NAMESPACE, label_selector="name=nvidia-device-plugin-ds").items
    assert len(pods) == 1
    log = str(cluster.core.read_namespaced_pod_log(pods[0].metadata.name, nvidia.NAMESPACE))
    assert "Registered device plugin for 'nvidia.com/gpu' with Kubelet" in log


def test_a_pod_gets_the_gpu_it_asks_for(gpu_host: None, cluster: k8s.Cluster) -> None:
    image = gpu_images.device_plugin_tag()  # a local image with a shell; jit-cdi injects nvidia-smi
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "e2e-gpu", "namespace": NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "gpu",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "ls /dev/nvidia*; nvidia-smi -L"],
                    "resources": {"limits": {nvidia.GPU_RESOURCE: "1"}},
                }
            ],
        },
    }
    cluster.apply([pod])
    log = finish_pod(cluster, "e2e-gpu", NAMESPACE, timeout=300)
    assert "/dev/nvidiactl" in log
    assert "GPU 0:" in log


def test_a_pod_without_a_request_gets_no_gpu(gpu_host: None, cluster: k8s.Cluster) -> None:
    image = gpu_images.device_plugin_tag()  # its NVIDIA_VISIBLE_DEVICES=all must be ignored: not privileged
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "e2e-no-gpu", "namespace": NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "cpu",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "ls /dev/nvidia* 2>/dev/null | wc -l"],
                }
            ],
        },
    }
    cluster.apply([pod])
    assert finish_pod(cluster, "e2e-no-gpu", NAMESPACE, timeout=300).strip() == "0"

"""The cluster issue's acceptance, on a real kind cluster built with no registry: `appliance up`,
a bundled image served through a Service, a PVC whose data survives a pod restart, an idempotent
second `up`, and `appliance down` removing everything.

Named `test_y_*` so it runs after every module that uses the session's cluster (it ends with `down`);
`test_z_tui_tmux.py` makes a cluster of its own.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from appliance import k8s
from tests.e2e.conftest import CLUSTER, Appliance, finish_pod

pytestmark = pytest.mark.e2e

NAMESPACE = "default"
WEB_IMAGE = "localhost/odh-appliance/model-server:latest"  # a bundled image with python3
SERVE_HELLO = (
    "mkdir -p /tmp/site && echo hello-from-odh > /tmp/site/index.html && exec python3 -m http.server 8000 -d /tmp/site"
)
HELPER_IMAGE_PREFIX = "localhost/odh-appliance/local-path-helper"


def pod(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", script],
                            **spec.pop("container", {})}],
            **spec,
        },
    }  # fmt: skip


def wait_pod_done(cluster: k8s.Cluster, name: str, timeout: float = 180) -> str:
    return finish_pod(cluster, name, NAMESPACE, timeout)


def helper_image(cluster: k8s.Cluster) -> str:
    for node in cluster.core.list_node().items:
        for image in node.status.images or []:
            for image_name in image.names or []:
                if image_name.startswith(HELPER_IMAGE_PREFIX):
                    return str(image_name)
    pytest.fail("the node image carries no local-path helper image")


def test_up_reports_ready_node(cluster: k8s.Cluster) -> None:
    (node,) = k8s.nodes(cluster)
    assert node.ready
    assert node.kubelet_version == "v1.34.1"
    assert cluster.server_version() == "v1.34.1"


def test_bundled_image_answers_through_a_service(cluster: k8s.Cluster) -> None:
    labels = {"app": "e2e-web"}
    cluster.apply(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "e2e-web", "namespace": NAMESPACE},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": WEB_IMAGE,
                                    "imagePullPolicy": "Never",
                                    "command": [
                                        "sh",
                                        "-c",
                                        "mkdir -p /tmp/site && echo hello-from-odh > "
                                        "/tmp/site/index.html && exec python3 -m http.server 8000 -d /tmp/site",
                                    ],
                                    "ports": [{"containerPort": 8000}],
                                    "readinessProbe": {"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 2},
                                }
                            ]
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "e2e-web", "namespace": NAMESPACE},
                "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8000}]},
            },
        ]
    )
    k8s.wait_for(
        "the e2e-web Deployment", lambda: k8s.deployment_ready(cluster, NAMESPACE, "e2e-web"), timeout=240, hint=""
    )
    url = "http://e2e-web.default.svc.cluster.local/"
    client = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=10).read().decode())"
    cluster.apply([pod("e2e-client", WEB_IMAGE, f'python3 -c "{client}"')])
    assert "hello-from-odh" in wait_pod_done(cluster, "e2e-client")


def test_pvc_data_survives_a_pod_restart(cluster: k8s.Cluster, appliance: Appliance) -> None:
    image = helper_image(cluster)
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "e2e-data", "namespace": NAMESPACE},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
            }
        ]
    )
    volume = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "e2e-data"}}]}
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    token = f"written-{time.time_ns()}"
    cluster.apply([pod("e2e-writer", image, f"echo {token} > /data/token", container=mount, **volume)])
    wait_pod_done(cluster, "e2e-writer")  # and deletes it: the reader below is the restarted pod
    claim = cluster.core.read_namespaced_persistent_volume_claim("e2e-data", NAMESPACE)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "standard"

    cluster.apply([pod("e2e-reader", image, "cat /data/token", container=mount, **volume)])
    assert wait_pod_done(cluster, "e2e-reader").strip() == token
    # The volume lives in the host directory that `down --keep-data` keeps.
    stored = list((appliance.cluster_dir / "volumes").rglob("token"))
    assert [p.read_text().strip() for p in stored] == [token]


def node_container_id() -> str:
    result = subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", f"{CLUSTER}-control-plane"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return result.stdout.strip()


def test_second_up_changes_nothing(cluster: k8s.Cluster, appliance: Appliance) -> None:
    before = node_container_id()
    result = appliance.run("up")
    assert result.returncode == 0, result.stderr
    assert f"cluster {CLUSTER}" in result.stderr and "running" in result.stderr
    assert node_container_id() == before
    status = json.loads(appliance.run("status", "--json").stdout)
    assert status["running"] is True
    assert status["nodes"][0]["ready"] is True
    assert status["server_version"] == "v1.34.1"


def cluster_containers() -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={CLUSTER}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()  # fmt: skip


def test_down_keep_data_then_down_removes_everything(cluster: k8s.Cluster, appliance: Appliance) -> None:
    volumes = appliance.cluster_dir / "volumes"
    kept = {p: p.read_text() for p in volumes.rglob("token")}
    assert kept, "the PVC test left no data to keep"

    result = appliance.run("down", "--keep-data")
    assert result.returncode == 0, result.stderr
    assert cluster_containers() == []
    assert {p: p.read_text() for p in volumes.rglob("token")} == kept
    assert not appliance.kubeconfig.exists()
    assert json.loads(appliance.run("status", "--json").stdout)["running"] is False

    result = appliance.run("down")
    assert result.returncode == 0, result.stderr
    assert not appliance.cluster_dir.exists()

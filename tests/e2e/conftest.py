"""e2e fixtures: a real kind cluster made by `appliance up` from the offline chain.

The node image must be built already (`appliance images node`, cached) — `make e2e` does that. The
cluster gets its own name and free host ports, and its own data directory; the build cache is the
user's, so nothing is rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance import api, k8s

CLUSTER = os.environ.get("ODH_E2E_CLUSTER", "odh-e2e")  # parallel runs need distinct names
UP_TIMEOUT = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first e2e test also pays for `appliance up` (the session fixture): about 3 minutes on a quiet
    machine, much more when the two cores are shared. Give every e2e test UP_TIMEOUT, not the default
    300 s; each wait inside the tests has its own, shorter bound."""
    for item in items:
        if "tests/e2e/" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UP_TIMEOUT + 300))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Appliance:
    env: dict[str, str]
    data_home: Path

    def run(self, *args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['ODH_APPLIANCE_PORTS__HTTP']}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.env['ODH_APPLIANCE_PORTS__GRPC']}"

    @property
    def cluster_dir(self) -> Path:
        return self.data_home / "odh-appliance" / "clusters" / CLUSTER

    @property
    def kubeconfig(self) -> Path:
        return self.cluster_dir / "kubeconfig"


@pytest.fixture(scope="session")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    data_home = tmp_path_factory.mktemp("data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODH_APPLIANCE_")}
    env |= {
        "XDG_DATA_HOME": str(data_home),
        "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("config")),
        "ODH_APPLIANCE_CLUSTER_NAME": CLUSTER,
        "ODH_APPLIANCE_PORTS__HTTP": str(free_port()),
        "ODH_APPLIANCE_PORTS__GRPC": str(free_port()),
        "COLUMNS": "200",
    }
    yield Appliance(env, data_home)
    # Whatever happened, leave no cluster behind.
    subprocess.run([sys.executable, "-m", "appliance", "down"], env=env, capture_output=True, timeout=600, check=False)


@pytest.fixture(scope="session")
def cluster(appliance: Appliance) -> k8s.Cluster:
    # The workload image of the tests, and the platform's images (`up` installs the operator and
    # MinIO); cached, so this takes seconds unless the sources changed.
    built = appliance.run(
        "images", "build", "model-server", "operator", "minio", "workbench", "gateway", "pipeline-runner"
    )
    assert built.returncode == 0, f"appliance images build failed:\n{built.stdout}\n{built.stderr}"
    result = appliance.run("-v", "up")
    assert result.returncode == 0, f"appliance up failed:\n{result.stdout}\n{result.stderr}"
    return k8s.Cluster(appliance.kubeconfig)


@pytest.fixture(scope="module")
def loaded(appliance: Appliance, cluster: k8s.Cluster) -> Iterator[api.Loaded]:
    """The configuration the appliance fixture's commands see (its XDG dirs, cluster name, ports)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("ODH_APPLIANCE_")]:
            patch.delenv(key)
        for key, value in appliance.env.items():
            if key.startswith(("ODH_APPLIANCE_", "XDG_")):
                patch.setenv(key, value)
        yield api.load_config()


def finish_pod(cluster: k8s.Cluster, name: str, namespace: str, timeout: float = 180) -> str:
    """Wait for a run-once pod to finish, delete it and return its log; fail with the log unless it succeeded."""
    phase = ""

    def done() -> tuple[bool, str]:
        nonlocal phase
        phase = cluster.core.read_namespaced_pod(name, namespace).status.phase
        return phase in ("Succeeded", "Failed"), phase

    k8s.wait_for(f"pod {name}", done, timeout=timeout, hint="")
    log = str(cluster.core.read_namespaced_pod_log(name, namespace))
    cluster.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    assert phase == "Succeeded", f"pod {name} {phase}: {log}"
    return log


@contextlib.contextmanager
def port_forward(cluster: k8s.Cluster, namespace: str, pod: str, port: int) -> Iterator[int]:
    """`kubectl port-forward` done with the Kubernetes client: a port on 127.0.0.1 (yielded) whose
    connections reach `port` of the pod through the API server, each over its own websocket. For
    clients that run on this host but must talk to a pod directly (no gateway in between)."""
    from kubernetes.stream import portforward  # noqa: PLC0415

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def relay(conn: socket.socket) -> None:
        forward = portforward(cluster.core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
        remote = forward.socket(port)
        remote.setblocking(True)
        ends = {conn: remote, remote: conn}
        try:
            while not stop.is_set():
                readable, _, _ = select.select(list(ends), [], [], 0.5)
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    ends[end].sendall(data)
        except OSError:
            return
        finally:
            conn.close()
            forward.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=relay, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()

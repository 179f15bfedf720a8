"""`appliance doctor` on this real host, compared with what independent system tools report."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunCli

pytestmark = pytest.mark.integration


def docker_server_version() -> str:
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is missing: start the engine with ../shared/tools/docker-engine start")
    proc = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"no Docker engine answers ({proc.stderr.strip()}); start it with ../shared/tools/docker-engine")
    return proc.stdout.strip()


def test_doctor_reports_this_host(run_cli: RunCli) -> None:
    expected_docker = docker_server_version()
    result = run_cli("doctor", "--json")
    assert "Traceback" not in result.stderr
    report = result.json()
    checks = {c["name"]: c for c in report["checks"]}

    assert checks["docker"]["status"] == "pass"
    assert checks["docker"]["data"]["server_version"] == expected_docker

    fs_type = subprocess.run(
        ["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True, check=True
    ).stdout.strip()
    expected_cgroup = 2 if fs_type == "cgroup2fs" else 1
    assert checks["cgroups"]["data"]["version"] == expected_cgroup
    if expected_cgroup == 1:
        assert checks["cgroups"]["status"] == "warn"
        assert checks["cgroups"]["hint"]

    cap_bnd = next(
        int(line.split()[1], 16)
        for line in Path("/proc/1/status").read_text().splitlines()
        if line.startswith("CapBnd")
    )
    sys_resource_missing = not (cap_bnd >> 24) & 1
    caps = checks["capabilities"]
    assert ("CAP_SYS_RESOURCE" in caps["data"]["missing"]) == sys_resource_missing
    if sys_resource_missing:
        assert caps["status"] == "warn"
        assert "CAP_SYS_RESOURCE" in caps["detail"]
        assert "wrapper" in caps["hint"]

    nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    assert checks["cpu"]["data"]["cpus"] == nproc
    total_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    assert checks["memory"]["data"]["total"] == total_kib * 1024
    assert checks["disk"]["data"]["free"] > 0

    if shutil.which("nvidia-smi") is None and not list(Path("/dev").glob("nvidia*")):
        assert checks["gpu"]["status"] == "pass"
        assert "no NVIDIA GPU" in checks["gpu"]["detail"]

    assert checks["registry"]["data"]  # probed only the loopback address the fixture gave it
    assert all(not v["reachable"] for v in checks["registry"]["data"].values())

    expected_rc = 1 if report["summary"]["fail"] else 0
    assert result.returncode == expected_rc


def test_doctor_table_for_people(run_cli: RunCli) -> None:
    docker_server_version()
    result = run_cli("doctor")
    assert "odh-appliance doctor" in result.stdout
    for name in ("python", "docker", "cgroups", "capabilities", "cpu", "memory", "disk", "inotify", "ports", "gpu"):
        assert name in result.stdout
    assert "passed" in result.stdout and "warnings" in result.stdout
    assert "Traceback" not in result.stderr


def test_dead_docker_socket_fails_with_hint_and_no_traceback(run_cli: RunCli, tmp_path: Path) -> None:
    dead = f"unix://{tmp_path}/dead.sock"
    result = run_cli("doctor", env={"DOCKER_HOST": dead})
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    error_line = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert "checks failed:" in error_line and "docker" in error_line
    assert "hint:" in result.stderr

    as_json = run_cli("doctor", "--json", env={"DOCKER_HOST": dead})
    assert as_json.returncode != 0
    docker = {c["name"]: c for c in as_json.json()["checks"]}["docker"]
    assert docker["status"] == "fail"
    assert dead in docker["detail"]
    assert "DOCKER_HOST" in docker["hint"]
    assert "Traceback" not in as_json.stderr


def test_busy_port_fails(run_cli: RunCli) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_cli("--set", f"ports.grpc={port}", "doctor", "--json")
    ports = {c["name"]: c for c in result.json()["checks"]}["ports"]
    assert ports["status"] == "fail"
    assert str(port) in ports["detail"]
    assert result.returncode == 1


class RegistryHandler(http.server.BaseHTTPRequestHandler):
    """Answers like a registry's /v2/ endpoint does to an anonymous client."""

    def do_GET(self) -> None:
        self.send_response(401 if self.path == "/v2/" else 404)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_registry() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RegistryHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_reachable_registry_is_reported(run_cli: RunCli, local_registry: str) -> None:
    result = run_cli("doctor", "--json", env={"ODH_APPLIANCE_REGISTRIES": local_registry})
    registry = {c["name"]: c for c in result.json()["checks"]}["registry"]
    assert registry["status"] == "pass"
    assert registry["data"][local_registry]["reachable"] is True
    assert local_registry in registry["detail"]


def test_kind_on_path_is_found_and_versioned(run_cli: RunCli, tmp_path: Path, cli_env: dict[str, str]) -> None:
    bin_dir = Path(cli_env["XDG_DATA_HOME"]) / "odh-appliance" / "bin"
    bin_dir.mkdir(parents=True)
    kind = bin_dir / "kind"
    kind.write_text("#!/bin/sh\necho 'kind v0.0.0-test go1.0 linux/amd64'\n")
    kind.chmod(0o755)
    result = run_cli("doctor", "--json")
    check = {c["name"]: c for c in result.json()["checks"]}["kind"]
    assert check["status"] == "pass"
    assert check["data"]["path"] == str(kind)
    assert check["detail"].startswith("kind v0.0.0-test")

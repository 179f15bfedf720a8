"""Doctor checks as pure functions of observed facts: thresholds, statuses and hints."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from appliance.doctor import checks, facts

GiB = checks.GiB
FULL_CAPS = (1 << 41) - 1


def make_facts(**changes: Any) -> facts.Facts:
    base = facts.Facts(
        python_version=(3, 11, 7),
        platform="Linux 6.1 x86_64",
        docker=facts.DockerFacts(True, "unix:///var/run/docker.sock", server_version="27.0", api_version="1.46"),
        cgroup_version=2,
        cap_bounding=FULL_CAPS,
        cap_last=40,
        cpus=8,
        mem_total=32 * GiB,
        mem_available=24 * GiB,
        disk_path="/home",
        disk_free=200 * GiB,
        inotify_watches=524288,
        inotify_instances=512,
        ports=(facts.PortFacts("http", 8080, True), facts.PortFacts("grpc", 8081, True)),
        kind=facts.BinaryFacts("kind", "/usr/local/bin/kind", version="kind v0.30.0 go1.24 linux/amd64"),
        gpu=facts.GpuFacts(None),
        registries=(facts.RegistryFacts("quay.io", False, "Name or service not known"),),
    )
    return dataclasses.replace(base, **changes)


def by_name(f: facts.Facts) -> dict[str, checks.CheckResult]:
    return {r.name: r for r in checks.evaluate(f)}


def test_healthy_host_passes_everything() -> None:
    results = checks.evaluate(make_facts())
    assert {r.status for r in results} == {"pass"}
    assert [r.name for r in results] == [
        "python", "docker", "cgroups", "capabilities", "cpu", "memory",
        "disk", "inotify", "ports", "kind", "gpu", "registry",
    ]  # fmt: skip


def test_every_warning_and_failure_has_a_hint() -> None:
    bad = make_facts(
        python_version=(3, 9, 1),
        docker=facts.DockerFacts(False, "unix:///dead.sock", error="connection refused"),
        cgroup_version=None,
        cap_bounding=FULL_CAPS & ~(1 << 24),
        cpus=1,
        mem_available=1 * GiB,
        disk_free=2 * GiB,
        inotify_watches=8192,
        inotify_instances=128,
        ports=(facts.PortFacts("http", 8080, False, "Address already in use"),),
        kind=facts.BinaryFacts("kind", None),
        gpu=facts.GpuFacts("/usr/bin/nvidia-smi", smi_error="driver not loaded"),
    )
    results = checks.evaluate(bad)
    for result in results:
        if result.status != "pass":
            assert result.hint, f"{result.name} has no hint"
    statuses = {r.name: r.status for r in results}
    assert statuses == {
        "python": "fail", "docker": "fail", "cgroups": "fail", "capabilities": "warn", "cpu": "fail",
        "memory": "fail", "disk": "fail", "inotify": "warn", "ports": "fail", "kind": "warn", "gpu": "warn",
        "registry": "pass",
    }  # fmt: skip


def test_docker_unreachable_names_host_and_error() -> None:
    result = by_name(make_facts(docker=facts.DockerFacts(False, "unix:///x.sock", error="refused")))["docker"]
    assert result.status == "fail"
    assert "unix:///x.sock" in result.detail and "refused" in result.detail
    assert "DOCKER_HOST" in result.hint


def test_cgroup_v1_warns_with_kubernetes_limit() -> None:
    result = by_name(make_facts(cgroup_version=1))["cgroups"]
    assert result.status == "warn"
    assert "1.34" in result.detail


def test_missing_sys_resource_is_named_with_remedy() -> None:
    f = make_facts(cap_bounding=FULL_CAPS & ~(1 << 24))
    result = by_name(f)["capabilities"]
    assert result.status == "warn"
    assert result.data["missing"] == ["CAP_SYS_RESOURCE"]
    assert "--privileged" in result.detail
    assert "wrapper" in result.hint


def test_capabilities_beyond_cap_last_are_ignored() -> None:
    # A kernel that knows only capabilities 0..37 cannot be missing PERFMON (38) and later.
    assert checks.missing_capabilities((1 << 38) - 1, 37) == []


@pytest.mark.parametrize(
    ("cpus", "status"), [(1, "fail"), (2, "warn"), (3, "warn"), (4, "pass")]
)  # fmt: skip
def test_cpu_thresholds(cpus: int, status: str) -> None:
    assert by_name(make_facts(cpus=cpus))["cpu"].status == status


@pytest.mark.parametrize(("gib", "status"), [(3, "fail"), (6, "warn"), (9, "pass")])
def test_memory_thresholds(gib: int, status: str) -> None:
    assert by_name(make_facts(mem_available=gib * GiB))["memory"].status == status


@pytest.mark.parametrize(("gib", "status"), [(10, "fail"), (20, "warn"), (50, "pass")])
def test_disk_thresholds(gib: int, status: str) -> None:
    assert by_name(make_facts(disk_free=gib * GiB))["disk"].status == status


def test_inotify_hint_names_only_the_low_limit() -> None:
    result = by_name(make_facts(inotify_instances=128))["inotify"]
    assert result.status == "warn"
    assert "max_user_instances=512" in result.hint
    assert "max_user_watches" not in result.hint


def test_busy_port_fails_and_says_how_to_move() -> None:
    f = make_facts(ports=(facts.PortFacts("http", 8080, True), facts.PortFacts("grpc", 8081, False, "in use")))
    result = by_name(f)["ports"]
    assert result.status == "fail"
    assert "8081" in result.detail
    assert "--set ports.grpc=" in result.hint


def test_kind_that_does_not_run_fails() -> None:
    result = by_name(make_facts(kind=facts.BinaryFacts("kind", "/bin/kind", error="exec format error")))["kind"]
    assert result.status == "fail"


H100 = facts.GpuFacts(
    "/bin/nvidia-smi",
    gpus=("NVIDIA H100, 550.54, 81559 MiB",),
    device_nodes=("/dev/nvidia0", "/dev/nvidiactl"),
    toolkit_config="/etc/nvidia-container-runtime/config.toml",
    volume_mounts=True,
)


@pytest.mark.parametrize(
    ("gpu", "runtimes", "default", "status", "text"),
    [
        (facts.GpuFacts(None), (), "runc", "pass", "no NVIDIA GPU"),
        (facts.GpuFacts(None, device_nodes=("/dev/nvidia0",)), (), "runc", "warn", "nvidia-smi is not installed"),
        (H100, ("runc",), "runc", "warn", "no 'nvidia'"),
        (H100, ("nvidia", "runc"), "runc", "warn", "default runtime is runc"),
        (H100, ("nvidia", "runc"), "nvidia", "pass", "H100"),
    ],
)
def test_gpu(gpu: facts.GpuFacts, runtimes: tuple[str, ...], default: str, status: str, text: str) -> None:
    docker = facts.DockerFacts(True, "unix:///s", runtimes=runtimes, default_runtime=default)
    result = by_name(make_facts(gpu=gpu, docker=docker))["gpu"]
    assert result.status == status
    assert text in result.detail
    assert result.status == "pass" or result.hint


def test_registry_reachable_or_offline() -> None:
    online = make_facts(registries=(facts.RegistryFacts("quay.io", True, "answers"),))
    assert "reachable: quay.io" in by_name(online)["registry"].detail
    assert "offline" in by_name(make_facts())["registry"].detail


def test_cgroup_version_from_mountinfo(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.write_text("35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n")
    v1 = tmp_path / "v1"
    v1.write_text(
        "30 24 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
    )
    none = tmp_path / "none"
    none.write_text("22 1 0:20 / /proc rw - proc proc rw\n")
    assert facts.cgroup_version(str(v2)) == 2
    assert facts.cgroup_version(str(v1)) == 1
    assert facts.cgroup_version(str(none)) is None
    assert facts.cgroup_version(str(tmp_path / "missing")) is None


def test_capabilities_from_status(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    bounding, _ = facts.capabilities(str(status))
    assert checks.missing_capabilities(bounding, 40) == ["CAP_SYS_RESOURCE"]


def test_memory_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000 kB\nMemFree:  1000 kB\nMemAvailable:   8000 kB\n")
    assert facts.memory(str(meminfo)) == (16000 * 1024, 8000 * 1024)

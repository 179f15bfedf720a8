"""Raw observations of this host for the doctor. Each gatherer reads the real system and never raises
for an expected condition (an engine that does not answer, a missing file): it records what it saw.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import platform
import re
import shutil
import socket
import ssl
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import config as config_mod
from appliance import errors
from appliance import exec as exec_mod
from appliance.images import gpu as gpu_images

PROBE_TIMEOUT = 4.0


@dataclass(frozen=True)
class DockerFacts:
    reachable: bool
    host: str
    error: str = ""
    server_version: str = ""
    api_version: str = ""
    cgroup_version: str = ""
    default_runtime: str = ""
    runtimes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortFacts:
    name: str
    port: int
    free: bool
    error: str = ""


@dataclass(frozen=True)
class BinaryFacts:
    name: str
    path: str | None
    version: str = ""
    error: str = ""


@dataclass(frozen=True)
class GpuFacts:
    nvidia_smi: str | None
    gpus: tuple[str, ...] = ()
    smi_error: str = ""
    device_nodes: tuple[str, ...] = ()
    # The host's NVIDIA Container Toolkit configuration (None: not found) and whether it accepts device
    # requests as volume mounts (`accept-nvidia-visible-devices-as-volume-mounts`; see doctor.gpu).
    toolkit_config: str | None = None
    volume_mounts: bool | None = None
    toolkit_error: str = ""
    # Why the GPU images could not be had (device plugin neither built nor buildable), with a hint;
    # empty when they can, or when there is no GPU to ask about.
    images_problem: str = ""
    images_hint: str = ""


@dataclass(frozen=True)
class RegistryFacts:
    registry: str
    reachable: bool
    detail: str


@dataclass(frozen=True)
class Facts:
    python_version: tuple[int, int, int]
    platform: str
    docker: DockerFacts
    cgroup_version: int | None
    cap_bounding: int
    cap_last: int
    cpus: int
    mem_total: int
    mem_available: int
    disk_path: str
    disk_free: int
    inotify_watches: int | None
    inotify_instances: int | None
    ports: tuple[PortFacts, ...]
    kind: BinaryFacts
    gpu: GpuFacts
    registries: tuple[RegistryFacts, ...] = field(default=())
    gpu_setting: str = "auto"  # the configured `gpu` (auto|on|off): the gpu check says what `up` will do


def gather(cfg: config_mod.Config, paths: config_mod.Paths) -> Facts:
    """Observe everything the checks need; slow probes (network, engine) run in parallel."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        docker_f = pool.submit(docker_facts)
        kind_f = pool.submit(binary_facts, "kind", ["version"], [str(paths.bin_dir)])
        gpu_f = pool.submit(gpu_facts)
        registry_fs = [pool.submit(registry_facts, r) for r in cfg.registries]
        mem_total, mem_available = memory()
        watches, instances = inotify_limits()
        disk_path, disk_free = disk(paths.data_dir)
        bnd, last = capabilities()
        return Facts(
            python_version=(sys.version_info.major, sys.version_info.minor, sys.version_info.micro),
            platform=f"{platform.system()} {platform.release()} {platform.machine()}",
            docker=docker_f.result(),
            cgroup_version=cgroup_version(),
            cap_bounding=bnd,
            cap_last=last,
            cpus=len(os.sched_getaffinity(0)),
            mem_total=mem_total,
            mem_available=mem_available,
            disk_path=disk_path,
            disk_free=disk_free,
            inotify_watches=watches,
            inotify_instances=instances,
            ports=tuple(port_facts(name, cfg.bind_address, port) for name, port in cfg.ports.bound().items()),
            kind=kind_f.result(),
            gpu=with_gpu_images(gpu_f.result(), paths.cache_dir),
            registries=tuple(f.result() for f in registry_fs),
            gpu_setting=cfg.gpu,
        )


def docker_facts() -> DockerFacts:
    """Ask the engine named by DOCKER_HOST (or the default socket) for its version and info."""
    import docker  # noqa: PLC0415 - the SDK is slow to import; only the doctor needs it here
    import docker.errors  # noqa: PLC0415
    import requests.exceptions  # noqa: PLC0415

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(PROBE_TIMEOUT))
        try:
            version: dict[str, Any] = client.version()
            info: dict[str, Any] = client.info()
        finally:
            client.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        return DockerFacts(reachable=False, host=host, error=_first_line(exc))
    return DockerFacts(
        reachable=True,
        host=host,
        server_version=str(version.get("Version", "")),
        api_version=str(version.get("ApiVersion", "")),
        cgroup_version=str(info.get("CgroupVersion", "")),
        default_runtime=str(info.get("DefaultRuntime", "")),
        runtimes=tuple(sorted(info.get("Runtimes") or {})),
    )


def cgroup_version(mountinfo: str = "/proc/self/mountinfo") -> int | None:
    """2 when /sys/fs/cgroup is a cgroup2 mount, 1 when it holds v1 hierarchies, None if unknown."""
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    fs_types = {}
    for line in lines:
        before, _, after = line.partition(" - ")
        fields = before.split()
        if len(fields) >= 5 and after:
            fs_types[fields[4]] = after.split()[0]
    root = fs_types.get("/sys/fs/cgroup")
    if root == "cgroup2":
        return 2
    if root is not None or any(t == "cgroup" for t in fs_types.values()):
        return 1
    return None


def capabilities(status: str = "/proc/self/status") -> tuple[int, int]:
    """The capability bounding set of this process and the highest capability the kernel knows."""
    bnd = 0
    with contextlib.suppress(OSError):
        for line in Path(status).read_text().splitlines():
            if line.startswith("CapBnd:"):
                bnd = int(line.split()[1], 16)
    last = 40
    with contextlib.suppress(OSError, ValueError):
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return bnd, last


def memory(meminfo: str = "/proc/meminfo") -> tuple[int, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(meminfo).read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                values[key] = int(parts[0]) * 1024
    return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))


def disk(path: Path) -> tuple[str, int]:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return str(probe), shutil.disk_usage(probe).free


def inotify_limits() -> tuple[int | None, int | None]:
    def read(name: str) -> int | None:
        try:
            return int(Path(f"/proc/sys/fs/inotify/{name}").read_text())
        except (OSError, ValueError):
            return None

    return read("max_user_watches"), read("max_user_instances")


def port_facts(name: str, address: str, port: int) -> PortFacts:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            return PortFacts(name, port, free=False, error=exc.strerror or str(exc))
    return PortFacts(name, port, free=True)


def binary_facts(name: str, version_args: Sequence[str], extra_dirs: Sequence[str] = ()) -> BinaryFacts:
    path = exec_mod.which(name, extra_dirs)
    if path is None:
        return BinaryFacts(name, None)
    try:
        result = exec_mod.run([path, *version_args], timeout=PROBE_TIMEOUT * 2, check=False)
    except exec_mod.ExecError as exc:
        return BinaryFacts(name, path, error=exc.message)
    text = (result.stdout + result.stderr).strip()
    if not result.ok:
        return BinaryFacts(name, path, error=_first_line(text) or f"exit code {result.returncode}")
    return BinaryFacts(name, path, version=_first_line(text))


def gpu_facts(dev: str = "/dev", toolkit_config: str = "/etc/nvidia-container-runtime/config.toml") -> GpuFacts:
    nodes = tuple(sorted(str(p) for p in Path(dev).glob("nvidia*")))
    toolkit = nvidia_toolkit_config(toolkit_config)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return GpuFacts(None, device_nodes=nodes, **toolkit)
    try:
        result = exec_mod.run(
            [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            timeout=PROBE_TIMEOUT * 3,
            check=False,
        )
    except exec_mod.ExecError as exc:
        return GpuFacts(smi, smi_error=exc.message, device_nodes=nodes, **toolkit)
    if not result.ok:
        return GpuFacts(smi, smi_error=_first_line(result.stdout + result.stderr), device_nodes=nodes, **toolkit)
    gpus = tuple(line.strip() for line in result.stdout.splitlines() if line.strip())
    return GpuFacts(smi, gpus=gpus, device_nodes=nodes, **toolkit)


def with_gpu_images(gpu: GpuFacts, cache_dir: Path) -> GpuFacts:
    """Where there is a GPU, whether the GPU images can be had (built, or buildable from source)."""
    if gpu.nvidia_smi is None and not gpu.device_nodes:
        return gpu
    try:
        gpu_images.check_device_plugin_buildable(cache_dir)
    except errors.ApplianceError as exc:
        return dataclasses.replace(gpu, images_problem=exc.message, images_hint=exc.hint or "")
    return gpu


def nvidia_toolkit_config(path: str) -> dict[str, Any]:
    """What the host's NVIDIA Container Toolkit config says about volume-mount device requests."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {"toolkit_config": path, "toolkit_error": f"cannot read it: {_first_line(exc)}"}
    value = data.get("accept-nvidia-visible-devices-as-volume-mounts")
    return {"toolkit_config": path, "volume_mounts": value if isinstance(value, bool) else None}


def registry_facts(registry: str) -> RegistryFacts:
    """Whether a container registry answers its v2 API (200 or 401 both mean: a registry is there)."""
    base = registry if re.match(r"^https?://", registry) else f"https://{registry}"
    url = base.rstrip("/") + "/v2/"
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "odh-appliance-doctor"})
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT, context=ssl.create_default_context()):
            return RegistryFacts(registry, True, "answers the registry API")
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return RegistryFacts(registry, True, "answers the registry API (login required for pushes)")
        return RegistryFacts(registry, False, f"HTTP {exc.code} from {url}: not a registry API")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return RegistryFacts(registry, False, _first_line(reason))


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""

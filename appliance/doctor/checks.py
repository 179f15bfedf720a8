"""Doctor checks: pure functions from observed `Facts` to pass/warn/fail results with hints.

Thresholds say what the platform needs: a kind node with the control plane, MinIO, the operator, a
workbench and a model server fits in about 3 GiB; images and volumes need disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from appliance.doctor import facts as facts_mod
from appliance.doctor import gpu as gpu_mod

Status = Literal["pass", "warn", "fail"]

GiB = 1024**3
MIN_PYTHON = (3, 11)
MIN_CPUS, RECOMMENDED_CPUS = 2, 4
MIN_MEMORY, RECOMMENDED_MEMORY = 4 * GiB, 8 * GiB
MIN_DISK, RECOMMENDED_DISK = 15 * GiB, 40 * GiB
# kind's known-issues page: many nodes/pods exhaust inotify instances and watches.
MIN_INOTIFY_WATCHES, MIN_INOTIFY_INSTANCES = 524288, 512

CAPABILITY_NAMES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    hint: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


def check_python(f: facts_mod.Facts) -> CheckResult:
    version = ".".join(map(str, f.python_version))
    if f.python_version[:2] >= MIN_PYTHON:
        return CheckResult("python", "pass", f"Python {version}", data={"version": version})
    return CheckResult(
        "python",
        "fail",
        f"Python {version} is older than {'.'.join(map(str, MIN_PYTHON))}",
        "install Python 3.11 or newer and reinstall odh-appliance with it",
        {"version": version},
    )


def check_docker(f: facts_mod.Facts) -> CheckResult:
    d = f.docker
    data = asdict(d)
    if not d.reachable:
        return CheckResult(
            "docker",
            "fail",
            f"the Docker engine at {d.host} does not answer: {d.error}",
            "start the engine (systemctl start docker, or dockerd &) or point DOCKER_HOST at a running one",
            data,
        )
    return CheckResult("docker", "pass", f"Docker engine {d.server_version} (API {d.api_version})", data=data)


def check_cgroups(f: facts_mod.Facts) -> CheckResult:
    data = {"version": f.cgroup_version}
    if f.cgroup_version == 2:
        return CheckResult("cgroups", "pass", "cgroup v2", data=data)
    if f.cgroup_version == 1:
        return CheckResult(
            "cgroups",
            "warn",
            "cgroup v1: supported up to Kubernetes 1.34 (the kubelet runs with failCgroupV1: false)",
            "nothing to do now; for newer Kubernetes boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2)",
            data,
        )
    return CheckResult(
        "cgroups",
        "fail",
        "no cgroup filesystem mounted at /sys/fs/cgroup",
        "mount cgroups (cgroup2 at /sys/fs/cgroup); containers cannot run without them",
        data,
    )


def missing_capabilities(bounding: int, last: int) -> list[str]:
    names = CAPABILITY_NAMES[: last + 1]
    return ["CAP_" + name for bit, name in enumerate(names) if not (bounding >> bit) & 1]


def check_capabilities(f: facts_mod.Facts) -> CheckResult:
    missing = missing_capabilities(f.cap_bounding, f.cap_last)
    data: dict[str, Any] = {"missing": missing, "docker_default_runtime": f.docker.default_runtime}
    if not missing:
        return CheckResult("capabilities", "pass", "full capability bounding set", data=data)
    wrapped = f.docker.reachable and f.docker.default_runtime not in ("", "runc", "io.containerd.runc.v2")
    detail = (
        f"the capability bounding set lacks {', '.join(missing)}: `docker run --privileged` (kind's nodes) "
        "fails with 'unable to apply caps: operation not permitted'"
    )
    if wrapped:
        detail += f"; Docker's default runtime is {f.docker.default_runtime!r}, a wrapper that may drop them"
    return CheckResult(
        "capabilities",
        "warn",
        detail,
        "register a runc wrapper that drops the missing capabilities from each container's OCI spec as "
        "dockerd's default runtime, or run on a host (VM) whose bounding set is complete",
        data,
    )


def check_cpus(f: facts_mod.Facts) -> CheckResult:
    data = {"cpus": f.cpus, "minimum": MIN_CPUS, "recommended": RECOMMENDED_CPUS}
    if f.cpus < MIN_CPUS:
        return CheckResult(
            "cpu", "fail", f"{f.cpus} CPU, the platform needs {MIN_CPUS}", "give the machine more CPUs", data
        )
    if f.cpus < RECOMMENDED_CPUS:
        return CheckResult(
            "cpu",
            "warn",
            f"{f.cpus} CPUs: enough, {RECOMMENDED_CPUS} make builds and installs faster",
            "expect first image builds to take a while; later runs use the cache",
            data,
        )
    return CheckResult("cpu", "pass", f"{f.cpus} CPUs", data=data)


def check_memory(f: facts_mod.Facts) -> CheckResult:
    data = {"total": f.mem_total, "available": f.mem_available, "minimum": MIN_MEMORY}
    detail = f"{_gib(f.mem_available)} available of {_gib(f.mem_total)}"
    if f.mem_available < MIN_MEMORY:
        return CheckResult(
            "memory",
            "fail",
            f"{detail}; the platform needs {_gib(MIN_MEMORY)}",
            "close other programs or give the machine more memory",
            data,
        )
    if f.mem_available < RECOMMENDED_MEMORY:
        return CheckResult(
            "memory",
            "warn",
            f"{detail}; {_gib(RECOMMENDED_MEMORY)} leave room for notebooks and models",
            "disable optional components you do not need (appliance config show)",
            data,
        )
    return CheckResult("memory", "pass", detail, data=data)


def check_disk(f: facts_mod.Facts) -> CheckResult:
    data = {"path": f.disk_path, "free": f.disk_free, "minimum": MIN_DISK}
    detail = f"{_gib(f.disk_free)} free at {f.disk_path}"
    if f.disk_free < MIN_DISK:
        return CheckResult(
            "disk",
            "fail",
            f"{detail}; images and volumes need {_gib(MIN_DISK)}",
            "free disk space, or set XDG_DATA_HOME to a larger filesystem",
            data,
        )
    if f.disk_free < RECOMMENDED_DISK:
        return CheckResult(
            "disk",
            "warn",
            f"{detail}; {_gib(RECOMMENDED_DISK)} recommended for builds and models",
            "free disk space before building images from source",
            data,
        )
    return CheckResult("disk", "pass", detail, data=data)


def check_inotify(f: facts_mod.Facts) -> CheckResult:
    data = {"max_user_watches": f.inotify_watches, "max_user_instances": f.inotify_instances}
    if f.inotify_watches is None or f.inotify_instances is None:
        return CheckResult(
            "inotify", "warn", "cannot read /proc/sys/fs/inotify limits", "check that /proc is mounted", data
        )
    low = []
    if f.inotify_watches < MIN_INOTIFY_WATCHES:
        low.append(f"fs.inotify.max_user_watches={MIN_INOTIFY_WATCHES}")
    if f.inotify_instances < MIN_INOTIFY_INSTANCES:
        low.append(f"fs.inotify.max_user_instances={MIN_INOTIFY_INSTANCES}")
    detail = f"max_user_watches={f.inotify_watches}, max_user_instances={f.inotify_instances}"
    if low:
        return CheckResult(
            "inotify",
            "warn",
            f"{detail}: too low for kind (pods fail with 'too many open files')",
            f"raise them: sysctl -w {' '.join(low)} (persist in /etc/sysctl.d/)",
            data,
        )
    return CheckResult("inotify", "pass", detail, data=data)


def check_ports(f: facts_mod.Facts) -> CheckResult:
    data = {p.name: {"port": p.port, "free": p.free, "error": p.error} for p in f.ports}
    busy = [p for p in f.ports if not p.free]
    listed = ", ".join(f"{p.name} {p.port}" for p in f.ports) or "none fixed"
    if busy:
        names = ", ".join(f"{p.port} ({p.name}: {p.error})" for p in busy)
        first = busy[0]
        return CheckResult(
            "ports",
            "fail",
            f"in use: {names}",
            f"stop what listens there, or pick another port: --set ports.{first.name}=<port>",
            data,
        )
    return CheckResult("ports", "pass", f"free: {listed}", data=data)


def check_kind(f: facts_mod.Facts) -> CheckResult:
    k = f.kind
    data = asdict(k)
    if k.path is None:
        return CheckResult(
            "kind",
            "warn",
            "kind is not installed",
            "install it: go install sigs.k8s.io/kind@latest, then put $(go env GOPATH)/bin on PATH",
            data,
        )
    if k.error:
        return CheckResult(
            "kind", "fail", f"{k.path} does not run: {k.error}", "reinstall kind or remove it from PATH", data
        )
    return CheckResult("kind", "pass", f"{k.version} ({k.path})", data=data)


def check_gpu(f: facts_mod.Facts) -> CheckResult:
    """What `gpu: auto|on|off` will do on this host, and why (`doctor.gpu` decides, as `up` does)."""
    support = gpu_mod.assess(f.gpu, f.docker)
    data = {**asdict(f.gpu), "setting": f.gpu_setting, "usable": support.usable,
            "docker_default_runtime": f.docker.default_runtime, "docker_runtimes": list(f.docker.runtimes)}  # fmt: skip
    if f.gpu_setting == "off":
        return CheckResult("gpu", "pass", f"gpu: off; this host: {support.detail}", data=data)
    if support.usable and f.gpu.images_problem:
        status: Status = "fail" if f.gpu_setting == "on" else "warn"
        outcome = "`up` will stop at preflight" if f.gpu_setting == "on" else "gpu auto stays off"
        return CheckResult("gpu", status, f"{support.detail}, but {f.gpu.images_problem}: {outcome}",
                           f.gpu.images_hint, data)  # fmt: skip
    if support.usable:
        return CheckResult("gpu", "pass", f"{support.detail}: gpu {f.gpu_setting} puts it in the cluster", data=data)
    if f.gpu_setting == "on":
        return CheckResult("gpu", "fail", f"gpu: on, but {support.detail}: `up` will stop at preflight",
                           f"{support.hint}; or set gpu to auto/off", data)  # fmt: skip
    if not support.present:
        return CheckResult("gpu", "pass", f"{support.detail}: GPU features stay off", data=data)
    return CheckResult("gpu", "warn", f"{support.detail}: gpu auto stays off", support.hint, data)


def check_registries(f: facts_mod.Facts) -> CheckResult:
    data = {r.registry: {"reachable": r.reachable, "detail": r.detail} for r in f.registries}
    reachable = [r.registry for r in f.registries if r.reachable]
    if reachable:
        return CheckResult("registry", "pass", f"reachable: {', '.join(reachable)}: images may be pulled", data=data)
    return CheckResult(
        "registry",
        "pass",
        "no container registry reachable: offline mode, images come from a bundle or are built from source",
        data=data,
    )


ALL_CHECKS: tuple[Callable[[facts_mod.Facts], CheckResult], ...] = (
    check_python,
    check_docker,
    check_cgroups,
    check_capabilities,
    check_cpus,
    check_memory,
    check_disk,
    check_inotify,
    check_ports,
    check_kind,
    check_gpu,
    check_registries,
)


def evaluate(f: facts_mod.Facts) -> list[CheckResult]:
    return [check(f) for check in ALL_CHECKS]

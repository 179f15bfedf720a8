"""Whether this host can give a kind node an NVIDIA GPU, and what `gpu: auto|on|off` resolves to.

Pure functions of observed facts (`facts.GpuFacts`, `facts.DockerFacts`), called by the doctor's `gpu`
check and by `up`'s preflight (`appliance.actions.up.preflight_gpu`), so both say the same thing.

A kind node is a Docker container; it sees GPUs only when the host's NVIDIA Container Toolkit injects
them when that container starts. kind cannot pick a Docker runtime per container, so (as NVIDIA's nvkind
requires) the host needs:
1. the driver: `/dev/nvidiactl` and `/dev/nvidia<N>`, and `nvidia-smi` listing at least one GPU;
2. Docker's *default* runtime `nvidia` (`nvidia-ctk runtime configure --runtime=docker --set-as-default`);
3. the toolkit accepting device requests as volume mounts (`accept-nvidia-visible-devices-as-volume-mounts
   = true` in /etc/nvidia-container-runtime/config.toml): the node mounts `/dev/null` at
   `/var/run/nvidia-container-devices/all`, which is how an unprivileged request for "all GPUs" reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance import errors
from appliance.doctor import facts as facts_mod

_GPU_NODE = re.compile(r"^/dev/nvidia\d+$")
CONTROL_NODE = "/dev/nvidiactl"
HOST_TOOLKIT_CONFIG = "/etc/nvidia-container-runtime/config.toml"
CONFIGURE_DOCKER = (
    "sudo nvidia-ctk runtime configure --runtime=docker --set-as-default && sudo systemctl restart docker"
)


class GpuUnavailable(errors.CheckFailed):
    """`gpu: on` was asked for, and this host cannot give the node a GPU."""


@dataclass(frozen=True)
class Support:
    """The verdict on this host: `usable`, or the first thing missing (`reason`, with a `hint`)."""

    usable: bool
    present: bool  # any sign of an NVIDIA GPU at all (device nodes or nvidia-smi)
    detail: str
    hint: str = ""


def assess(gpu: facts_mod.GpuFacts, docker: facts_mod.DockerFacts) -> Support:
    """Check the three requirements of the module docstring, in order; the first one missing decides."""
    if gpu.nvidia_smi is None and not gpu.device_nodes:
        return Support(
            False, False, "no NVIDIA GPU (no /dev/nvidia*, no nvidia-smi)",
            "use a host with an NVIDIA GPU and its driver",
        )  # fmt: skip
    if gpu.nvidia_smi is None:
        return _missing(
            f"{', '.join(gpu.device_nodes)} exist but nvidia-smi is not installed",
            "install the NVIDIA driver utilities (nvidia-smi) and check that it lists the GPU",
        )
    if gpu.smi_error or not gpu.gpus:
        return _missing(
            f"nvidia-smi lists no usable GPU: {gpu.smi_error or 'no devices'}",
            "check the NVIDIA driver: `nvidia-smi` must list the GPU",
        )
    gpus = "; ".join(gpu.gpus)
    if CONTROL_NODE not in gpu.device_nodes or not any(_GPU_NODE.match(n) for n in gpu.device_nodes):
        missing = CONTROL_NODE if CONTROL_NODE not in gpu.device_nodes else "/dev/nvidia<N>"
        return _missing(
            f"{gpus}, but {missing} is missing",
            "load the driver's kernel modules (nvidia-modprobe, or run nvidia-smi once as root)",
        )
    if not docker.reachable:
        return _missing(f"{gpus}, but the Docker engine does not answer: {docker.error}", "start the Docker engine")
    if "nvidia" not in docker.runtimes:
        return _missing(
            f"{gpus}, but Docker has no 'nvidia' runtime",
            f"install NVIDIA's nvidia-container-toolkit on the host, then: {CONFIGURE_DOCKER}",
        )
    if docker.default_runtime != "nvidia":
        return _missing(
            f"{gpus}, but Docker's default runtime is {docker.default_runtime or 'unknown'}, not nvidia "
            "(kind starts its node with the default runtime)",
            CONFIGURE_DOCKER,
        )
    if gpu.volume_mounts is not True:
        why = gpu.toolkit_error or "accept-nvidia-visible-devices-as-volume-mounts is not true"
        return _missing(
            f"{gpus}, but the host's NVIDIA Container Toolkit ignores volume-mount device requests "
            f"({why} in {gpu.toolkit_config or HOST_TOOLKIT_CONFIG})",
            "sudo nvidia-ctk config --set accept-nvidia-visible-devices-as-volume-mounts=true --in-place "
            "&& sudo systemctl restart docker",
        )
    return Support(True, True, f"{gpus}; Docker's default runtime is nvidia and accepts volume-mount device requests")


def _missing(detail: str, hint: str) -> Support:
    return Support(False, True, detail, hint)


def resolve(setting: str, support: Support) -> bool:
    """`auto`: on exactly when the host is usable; `off`: off; `on`: on, or GpuUnavailable saying why not."""
    if setting == "off":
        return False
    if setting == "auto":
        return support.usable
    if not support.usable:
        raise GpuUnavailable(
            f"gpu is on, but this host cannot give the cluster a GPU: {support.detail}",
            hint=f"{support.hint}; or run with --gpu off (`appliance doctor` shows the GPU check)",
        )
    return True

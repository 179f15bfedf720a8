"""GPU, everything short of the hardware (docs/gpu.md), on the real Docker engine of a host without GPU.

- `appliance up --gpu on` stops at its first step with one clear line and a hint, and creates nothing:
  no node container, no cluster directory, no build.
- The NVIDIA device plugin builds offline from the vendored source of its pinned commit (`GOPROXY=off`),
  and its image, run with the DaemonSet's own environment, gets as far as NVML: it exits with
  `ERROR_LIBRARY_NOT_FOUND`, the hardware boundary.
- The GPU node image: containerd inside it runs containers through the NVIDIA Container Runtime. A pod
  without a GPU request runs; an unprivileged NVIDIA_VISIBLE_DEVICES=all is ignored; a volume-mount
  request (what the device plugin hands a pod) and a privileged env request both reach NVML and fail
  there, as they must on a host without a driver.

Expensive artifacts (Go binaries, images) use the real user cache; the first run on a machine builds
them (about a minute on 2 cores with a warm Go build cache), later runs take seconds.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from appliance import progress
from appliance.bundle import build as bundle_build
from appliance.bundle import verify as bundle_verify
from appliance.cluster import kindconfig, nvidia
from appliance.images import base, engine, gpu, nodeimage
from appliance.images import build as image_build
from tests.integration.conftest import RunCli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

REAL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or platformdirs.user_cache_dir()) / "odh-appliance"
ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = "1.34.1"
NVML_MISSING = "ERROR_LIBRARY_NOT_FOUND"


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def requires_no_gpu() -> None:
    if Path("/dev/nvidiactl").exists():
        pytest.skip("this host has an NVIDIA GPU: the no-GPU boundary cannot be checked here (docs/gpu.md)")


def test_up_gpu_on_without_a_gpu_fails_at_preflight_and_creates_nothing(
    run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    requires_no_gpu()
    name = f"gpu-preflight-{secrets.token_hex(3)}"
    started = time.monotonic()
    result = run_cli("--set", f"cluster_name={name}", "up", "--gpu", "on")
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: gpu is on, but this host cannot give the cluster a GPU: no NVIDIA GPU (no /dev/nvidia*, no nvidia-smi)"
    ]
    assert "hint: use a host with an NVIDIA GPU and its driver; or run with --gpu off" in result.stderr
    assert "cluster" not in result.stdout  # never reached "cluster ... is up"
    # Nothing was created: no node container, no cluster files, nothing built.
    listed = docker("ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--format", "{{.Names}}")
    assert listed.returncode == 0 and listed.stdout.strip() == ""
    assert docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}").stdout.strip() == ""
    data, cache = Path(cli_env["XDG_DATA_HOME"]), Path(cli_env["XDG_CACHE_HOME"])
    assert not (data / "odh-appliance" / "clusters" / name).exists()
    assert not (cache / "odh-appliance" / "go").exists()
    assert elapsed < 60, f"preflight took {elapsed:.0f}s"


def test_doctor_says_gpu_on_will_fail(run_cli: RunCli) -> None:
    requires_no_gpu()
    result = run_cli("--set", "gpu=on", "doctor", "--json")
    check = {c["name"]: c for c in result.json()["checks"]}["gpu"]
    assert check["status"] == "fail"
    assert "`up` will stop at preflight" in check["detail"]
    assert check["hint"]
    auto = {c["name"]: c for c in run_cli("doctor", "--json").json()["checks"]}["gpu"]
    assert (auto["status"], auto["data"]["usable"]) == ("pass", False)


def device_plugin_source() -> Path:
    source = Path(os.environ.get("ODH_APPLIANCE_TEST_DEVICE_PLUGIN_SOURCE") or gpu.default_source(REAL_CACHE))
    probe = subprocess.run(
        ["git", "-C", str(source), "cat-file", "-e", f"{gpu.DEVICE_PLUGIN.commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(
            f"no git repository of k8s-device-plugin {gpu.DEVICE_PLUGIN.version} at {source} "
            "(not on the Go module proxy; clone it there, or set ODH_APPLIANCE_TEST_DEVICE_PLUGIN_SOURCE)"
        )
    return source


def run_device_plugin(image: str, entrypoint: list[str], mounts: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run the device plugin with the DaemonSet's environment; a kubelet socket dir of its own."""
    sockets = tmp_path / "device-plugins"
    sockets.mkdir(exist_ok=True)
    (container,) = nvidia.device_plugin_daemonset(image)["spec"]["template"]["spec"]["containers"]
    env = [f"--env={item['name']}={item['value']}" for item in container["env"]]
    argv = ["run", "--rm", "--network", "none", *env, "-v", f"{sockets}:{nvidia.DEVICE_PLUGINS_DIR}", *mounts]
    result = docker(*argv, *entrypoint, timeout=120)
    return result.returncode, result.stdout + result.stderr


def test_device_plugin_builds_offline_and_stops_at_nvml(tmp_path: Path) -> None:
    source = device_plugin_source()
    # A fresh binary cache: this really runs `go build -mod=vendor` with GOPROXY=off (the Go build cache
    # is shared, so it takes seconds once the packages were compiled before).
    binary = gpu.build_vendored(gpu.DEVICE_PLUGIN, source, tmp_path / "cache")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30)
    assert gpu.DEVICE_PLUGIN.version in version.stdout and gpu.DEVICE_PLUGIN.commit in version.stdout

    if engine.inspect(base.DEFAULT.tag) is None:
        pytest.skip(f"the base image {base.DEFAULT.tag} is not built (appliance images base); the binary was checked")
    image = gpu.ensure_device_plugin_image(ROOT, REAL_CACHE, progress.Progress(), source=source)
    assert image == gpu.device_plugin_tag()
    code, output = run_device_plugin(image, [image], [], tmp_path)
    assert code == 1, output  # FAIL_ON_INIT_ERROR=true: a node without NVML shows a failing pod
    assert f"nvml init failed: {NVML_MISSING}" in output
    assert "Starting FS watcher for /var/lib/kubelet/device-plugins" in output  # the mount the DaemonSet gives it


@pytest.fixture(scope="module")
def gpu_node() -> Iterator[str]:
    """A privileged container of the GPU node image with containerd running in it (no kubelet, no kind)."""
    node_image = nodeimage.node_tag(KUBERNETES)
    if engine.inspect(node_image) is None:
        pytest.skip(f"{node_image} is not built (appliance images node, ~20 min cold); not building it here")
    tag = gpu.ensure_node_gpu_image(KUBERNETES, node_image, ROOT, REAL_CACHE, progress.Progress())
    name = f"odh-gpu-node-test-{secrets.token_hex(3)}"
    started = docker("run", "-d", "--name", name, "--privileged", "--cgroupns=private", "-v", "/var/lib/containerd",
                     "--entrypoint", "sleep", tag, "infinity")  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        docker("exec", name, "bash", "-c", "nohup containerd >/var/log/containerd-test.log 2>&1 &")
        ready = docker("exec", name, "bash", "-c",
                       "for i in $(seq 1 60); do ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; "
                       "cat /var/log/containerd-test.log; exit 1", timeout=90)  # fmt: skip
        assert ready.returncode == 0, ready.stdout
        yield name
    finally:
        docker("rm", "-f", "--volumes", name)


def test_entrypoint_unmasks_the_driver_state_as_nvkind_does(gpu_node: str) -> None:
    """What the host's toolkit leaves in a GPU node, simulated: a driver directory under /proc/driver
    with the real params, masked by an empty tmpfs. The wrapper must unmask it, pin ModifyDeviceFiles
    to 0, and hand over to the node's entrypoint."""
    name = f"odh-gpu-entry-test-{secrets.token_hex(3)}"
    tag = gpu.node_gpu_tag(KUBERNETES)
    started = docker("run", "-d", "--name", name, "--privileged", "--entrypoint", "sleep", tag, "infinity")
    assert started.returncode == 0, started.stderr
    try:
        script = (
            "set -e; mount -t tmpfs driver-sim /proc/driver; mkdir -p /proc/driver/nvidia/gpus; "
            "printf 'ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\n' >/proc/driver/nvidia/params; "
            'mount -t tmpfs host-toolkit-mask /proc/driver/nvidia; test -z "$(ls /proc/driver/nvidia)"; '
            "/usr/local/bin/entrypoint-gpu sh -c 'echo handed over; cat /proc/driver/nvidia/params'"
        )
        result = docker("exec", name, "bash", "-c", script)
    finally:
        docker("rm", "-f", name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["handed over", "ResmanDebugLevel: 4294967295", "ModifyDeviceFiles: 0"]
    assert "unmasked /proc/driver/nvidia" in result.stderr


def ctr_run(node: str, *options: str, command: str = "echo ran") -> subprocess.CompletedProcess[str]:
    """`ctr run` the helper image through the nvidia runtime, as the node's containerd does for a pod."""
    return docker("exec", node, "ctr", "--namespace=k8s.io", "run", "--rm", "--runc-binary",
                  kindconfig.NVIDIA_RUNTIME_BINARY, *options, nodeimage.helper_image(),
                  f"t-{secrets.token_hex(3)}", "sh", "-c", command, timeout=120)  # fmt: skip


def test_gpu_node_has_the_toolkit_and_its_config(gpu_node: str) -> None:
    shown = docker("exec", gpu_node, "nvidia-ctk", "--quiet", "config")
    assert shown.returncode == 0, shown.stderr
    assert "accept-nvidia-visible-devices-as-volume-mounts = true" in shown.stdout
    assert "accept-nvidia-visible-devices-envvar-when-unprivileged = false" in shown.stdout
    versions = docker("exec", gpu_node, "bash", "-c", "nvidia-container-runtime --version; nvidia-cdi-hook --version")
    assert gpu.TOOLKIT_VERSION in versions.stdout
    entry = docker("exec", gpu_node, "/usr/local/bin/entrypoint-gpu", "echo", "handed over")
    assert entry.returncode == 0 and "handed over" in entry.stdout
    assert "no /proc/driver/nvidia" in entry.stderr


def test_a_pod_without_gpu_runs_through_the_nvidia_runtime(gpu_node: str) -> None:
    ran = ctr_run(gpu_node)
    assert (ran.returncode, ran.stdout.strip()) == (0, "ran"), ran.stderr
    # An image's NVIDIA_VISIBLE_DEVICES is ignored for unprivileged containers: no GPU without allocation.
    ignored = ctr_run(gpu_node, "--env", "NVIDIA_VISIBLE_DEVICES=all")
    assert (ignored.returncode, ignored.stdout.strip()) == (0, "ran"), ignored.stderr


@pytest.mark.parametrize(
    "request_options",
    [
        # what the device plugin (DEVICE_LIST_STRATEGY=volume-mounts) hands a pod that asks for a GPU
        ("--mount", f"type=bind,src=/dev/null,dst={kindconfig.NVIDIA_DEVICES_ALL},options=rbind:ro"),
        # what the device plugin itself asks for (it counts as privileged)
        ("--privileged", "--env", "NVIDIA_VISIBLE_DEVICES=all"),
    ],
    ids=["volume-mount", "privileged-env"],
)
def test_a_gpu_request_reaches_nvml(gpu_node: str, request_options: tuple[str, ...]) -> None:
    refused = ctr_run(gpu_node, *request_options)
    assert refused.returncode != 0
    assert f"failed to initialize NVML: {NVML_MISSING}" in refused.stderr, refused.stderr


def test_a_bundle_carries_the_built_device_plugin_image(tmp_path: Path) -> None:
    """A `gpu: true` entry that is built here goes into the bundle (docker save), with its image ID."""
    tag = gpu.device_plugin_tag()
    info = engine.inspect(tag)
    if info is None or not gpu.image_is_current(tag):
        pytest.skip(f"{tag} is not built here (test_device_plugin_builds_offline_and_stops_at_nvml builds it)")
    definition_file = tmp_path / "gpu.yaml"
    definition_file.write_text(
        "name: gpu-test\nversion: 0.0.1\nkubernetes: 1.34.1\nkind: v0.30.0\n"
        "images:\n  - name: nvidia-device-plugin\n    gpu: true\n"
    )
    options = image_build.BuildOptions(base_image=base.DEFAULT.tag)
    output = tmp_path / "gpu.odhbundle"
    result = bundle_build.build(
        definition_file, output, ROOT, tmp_path / "cache", options, progress.Progress(), compress=False
    )
    assert [(i.name, i.tag, i.id) for i in result.record.images] == [("nvidia-device-plugin", tag, info.id)]
    verified = bundle_verify.verify(output, progress.Progress())  # raises on any mismatch
    assert [i.id for i in verified.record.images] == [info.id]

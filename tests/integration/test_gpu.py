"""GPU, everything short of the hardware (docs/gpu.md), on the real Docker engine of a host without GPU.

- `appliance up --gpu on` stops at its first step with one clear line and a hint, and creates nothing:
  no node container, no cluster directory, no build.
- The NVIDIA device plugin builds offline from the vendored source of its pinned commit (`GOPROXY=off`),
  and its image, run with the DaemonSet's own environment, gets as far as NVML: it exits with
  `ERROR_LIBRARY_NOT_FOUND`, the hardware boundary. A bundle carries the built image.
- The GPU node: started as kind starts a node, with the containerd patch of our rendered kind config
  merged by kind's own code (kindcheck), pods run through its CRI socket as the kubelet would
  (cricheck). A pod without a GPU request runs through the default `nvidia` runtime; an unprivileged
  NVIDIA_VISIBLE_DEVICES=all is ignored; the `nvidia` handler exists; a volume-mount request (what the
  device plugin hands a pod) and a privileged env request reach NVML and fail there, as they must on a
  host without a driver.

Expensive artifacts (Go binaries, images) use the real user cache; the first run on a machine builds
them (about a minute on 2 cores with a warm Go build cache), later runs take about 35 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from appliance import config, progress
from appliance.bundle import build as bundle_build
from appliance.bundle import verify as bundle_verify
from appliance.cluster import kindconfig, nvidia
from appliance.images import base, engine, gpu, nodeimage, recipes
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


def go_tool(name: str, module: str, version: str, package_dir: str) -> Path:
    """Build `tests/integration/<name>/main.go` as a package of a copy of `module` (so it may import that
    module's internal packages); cached by source and module version."""
    source = Path(__file__).with_name(name) / "main.go"
    key = hashlib.sha256(source.read_bytes() + f"{module}@{version}/{package_dir}".encode()).hexdigest()[:12]
    target = REAL_CACHE / "go" / "bin" / f"{name}-{key}" / name
    if target.is_file():
        return target
    info = json.loads(run(["go", "mod", "download", "-json", f"{module}@{version}"]).stdout)
    with tempfile.TemporaryDirectory(prefix=f"odh-{name}-") as tmp:
        copy = Path(tmp) / "module"
        shutil.copytree(info["Dir"], copy, copy_function=shutil.copyfile)
        for directory in (copy, *(p for p in copy.rglob("*") if p.is_dir())):
            directory.chmod(0o755)  # the module cache is read-only
        (copy / package_dir).mkdir(parents=True)
        shutil.copyfile(source, copy / package_dir / "main.go")
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
        run(["go", "build", "-o", str(Path(tmp) / name), f"./{package_dir}"], cwd=copy, env=env)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(Path(tmp) / name, target)
    return target


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, **kwargs)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def gpu_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A container of the GPU node image started as kind starts a node (systemd boots, containerd runs),
    with what kind's create flow does to it when GPU is on: the containerd patch of *our rendered kind
    config*, merged by kind's own code (kindcheck) into the node's live config, and containerd restarted.
    No kubelet, no cluster: pods are run through the CRI socket by cricheck, as the kubelet would."""
    node_image = nodeimage.node_tag(KUBERNETES)
    if engine.inspect(node_image) is None:
        pytest.skip(f"{node_image} is not built (appliance images node, ~20 min cold); not building it here")
    tag = gpu.ensure_node_gpu_image(KUBERNETES, node_image, ROOT, REAL_CACHE, progress.Progress())
    kindcheck = go_tool("kindcheck", "sigs.k8s.io/kind", recipes.KIND.version, "pkg/odhkindcheck")
    cricheck = go_tool("cricheck", "k8s.io/cri-api", f"v0.{KUBERNETES.split('.', 1)[1]}", "cmd/cricheck")
    work = tmp_path_factory.mktemp("gpu-node")
    kind_config = work / "kind-config.yaml"
    kind_config.write_text(
        kindconfig.render_yaml(config.Config(), node_image=tag, volumes_dir=work / "volumes", gpu=True)
    )
    name = f"odh-gpu-node-test-{secrets.token_hex(3)}"
    # The flags kind's docker provider starts a node with (pkg/cluster/internal/providers/docker/provision.go).
    flags = ["--hostname", name, "--tty", "--init=false", "--cgroupns=private", "--privileged"]
    flags += ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"]
    flags += ["--tmpfs", "/tmp", "--tmpfs", "/run", "--volume", "/var", "--volume", "/lib/modules:/lib/modules:ro"]
    started = docker("run", "-d", "--name", name, *flags, "-e", "container=docker", tag)
    assert started.returncode == 0, started.stderr
    try:
        wait_for_systemd = (
            "for i in $(seq 1 60); do systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded' "
            "&& exit 0; sleep 1; done; exit 1"
        )
        booted = docker("exec", name, "bash", "-c", wait_for_systemd, timeout=90)
        assert booted.returncode == 0, docker("logs", name).stdout
        docker("exec", name, "systemctl", "mask", "--now", "kubelet")  # no cluster: keep it from crash-looping
        live = work / "config.toml"
        live.write_text(docker("exec", name, "cat", "/etc/containerd/config.toml").stdout)
        checked = json.loads(run([str(kindcheck), str(kind_config), str(live)]).stdout)
        assert checked["image"] == tag and checked["labels"] == {kindconfig.GPU_NODE_LABEL: "true"}
        patched = work / "patched.toml"
        patched.write_text(checked["patchedContainerd"])
        assert docker("cp", str(patched), f"{name}:/etc/containerd/config.toml").returncode == 0
        assert docker("cp", str(cricheck), f"{name}:/usr/local/bin/cricheck").returncode == 0
        restarted = docker("exec", name, "bash", "-c",
                           "systemctl restart containerd; for i in $(seq 1 60); do "
                           "ctr plugins ls 2>/dev/null | grep -q 'cri .* ok' && exit 0; sleep 1; done; "
                           "journalctl -u containerd --no-pager | tail -20; exit 1", timeout=90)  # fmt: skip
        assert restarted.returncode == 0, restarted.stdout
        yield name
    finally:
        docker("rm", "-f", "--volumes", name)


def test_gpu_node_has_the_toolkit_and_its_config(gpu_node: str) -> None:
    shown = docker("exec", gpu_node, "nvidia-ctk", "--quiet", "config")
    assert shown.returncode == 0, shown.stderr
    assert "accept-nvidia-visible-devices-as-volume-mounts = true" in shown.stdout
    assert "accept-nvidia-visible-devices-envvar-when-unprivileged = false" in shown.stdout
    versions = docker("exec", gpu_node, "bash", "-c", "nvidia-container-runtime --version; nvidia-cdi-hook --version")
    assert gpu.TOOLKIT_VERSION in versions.stdout
    boot = docker("logs", gpu_node)
    assert "odh-node-gpu: no /proc/driver/nvidia" in boot.stdout + boot.stderr  # the wrapper ran, then handed over
    assert "odh-node: starting systemd" in boot.stdout + boot.stderr


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


def pod(node: str, *options: str, command: str = "echo ran") -> dict[str, Any]:
    """Run a pod through the node's CRI socket (cricheck), as the kubelet would; what happened, as JSON."""
    result = docker("exec", node, "cricheck", "-image", nodeimage.helper_image(), *options, command, timeout=180)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_a_pod_without_gpu_runs_through_the_default_nvidia_runtime(gpu_node: str) -> None:
    ran = pod(gpu_node, command="echo ran; ls /dev/nvidia* 2>/dev/null | wc -l")
    assert (ran["stage"], ran["exitCode"], ran["log"]) == ("exited", 0, "ran\n0"), ran
    # An image's NVIDIA_VISIBLE_DEVICES is ignored for unprivileged pods: no GPU without allocation.
    ignored = pod(gpu_node, "-env", "NVIDIA_VISIBLE_DEVICES=all")
    assert (ignored["stage"], ignored["log"]) == ("exited", "ran"), ignored


def test_the_runtime_class_handler_is_configured(gpu_node: str) -> None:
    handler = nvidia.runtime_class()["handler"]
    ran = pod(gpu_node, "-handler", handler)
    assert (ran["stage"], ran["log"]) == ("exited", "ran"), ran
    unknown = pod(gpu_node, "-handler", "no-such-handler")
    assert unknown["stage"] == "sandbox" and 'no runtime for "no-such-handler"' in unknown["error"]


@pytest.mark.parametrize(
    "request_options",
    [
        ("-nvidia-all",),  # what the device plugin (volume-mounts) hands a pod that asks for a GPU
        ("-privileged", "-env", "NVIDIA_VISIBLE_DEVICES=all"),  # what the device plugin itself asks for
        ("-handler", "nvidia", "-nvidia-all"),  # a pod that names the RuntimeClass
    ],
    ids=["volume-mount", "privileged-env", "runtime-class"],
)
def test_a_gpu_request_reaches_nvml(gpu_node: str, request_options: tuple[str, ...]) -> None:
    refused = pod(gpu_node, *request_options)
    assert refused["stage"] == "start", refused  # the sandbox ran; the GPU container could not be created
    assert f"failed to initialize NVML: {NVML_MISSING}" in refused["error"]


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

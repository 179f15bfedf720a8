"""GPU detection and preflight (doctor.gpu, fed made-up facts), the doctor's gpu check for each
setting, reading the host's NVIDIA Container Toolkit config, and `up`'s preflight step."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from appliance import config, errors, progress
from appliance.actions import up
from appliance.actions.context import Context
from appliance.cluster import kind
from appliance.cluster import provider as provider_mod
from appliance.doctor import checks, facts, gpu

NODES = ("/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidiactl")
A100 = facts.GpuFacts(
    "/usr/bin/nvidia-smi",
    gpus=("NVIDIA A100-SXM4-40GB, 550.90.07, 40960 MiB",),
    device_nodes=NODES,
    toolkit_config="/etc/nvidia-container-runtime/config.toml",
    volume_mounts=True,
)
DOCKER = facts.DockerFacts(True, "unix:///var/run/docker.sock", default_runtime="nvidia", runtimes=("nvidia", "runc"))


def docker(**changes: Any) -> facts.DockerFacts:
    return dataclasses.replace(DOCKER, **changes)


def test_a_complete_setup_is_usable() -> None:
    support = gpu.assess(A100, DOCKER)
    assert support.usable and support.present
    assert "A100" in support.detail and "default runtime is nvidia" in support.detail


@pytest.mark.parametrize(
    ("gpu_facts", "docker_facts", "present", "detail", "hint"),
    [
        (facts.GpuFacts(None), DOCKER, False, "no NVIDIA GPU", "NVIDIA GPU"),
        (facts.GpuFacts(None, device_nodes=NODES), DOCKER, True, "nvidia-smi is not installed", "nvidia-smi"),
        (dataclasses.replace(A100, gpus=(), smi_error="NVIDIA-SMI has failed"), DOCKER, True,
         "NVIDIA-SMI has failed", "driver"),
        (dataclasses.replace(A100, gpus=()), DOCKER, True, "no devices", "driver"),
        (dataclasses.replace(A100, device_nodes=("/dev/nvidia0",)), DOCKER, True, "/dev/nvidiactl is missing",
         "kernel modules"),
        (dataclasses.replace(A100, device_nodes=("/dev/nvidiactl",)), DOCKER, True, "/dev/nvidia<N> is missing",
         "kernel modules"),
        (A100, docker(reachable=False, error="connection refused"), True, "connection refused", "Docker"),
        (A100, docker(runtimes=("runc",), default_runtime="runc"), True, "no 'nvidia' runtime",
         "nvidia-ctk runtime configure --runtime=docker --set-as-default"),
        (A100, docker(default_runtime="runc"), True, "default runtime is runc, not nvidia", "--set-as-default"),
        (dataclasses.replace(A100, volume_mounts=False), DOCKER, True,
         "accept-nvidia-visible-devices-as-volume-mounts is not true",
         "nvidia-ctk config --set accept-nvidia-visible-devices-as-volume-mounts=true"),
        (dataclasses.replace(A100, toolkit_config=None, volume_mounts=None), DOCKER, True,
         "in /etc/nvidia-container-runtime/config.toml", "accept-nvidia-visible-devices-as-volume-mounts"),
        (dataclasses.replace(A100, volume_mounts=None, toolkit_error="cannot read it: bad"), DOCKER, True,
         "cannot read it: bad", "--in-place"),
    ],
)  # fmt: skip
def test_the_first_missing_requirement_decides(
    gpu_facts: facts.GpuFacts, docker_facts: facts.DockerFacts, present: bool, detail: str, hint: str
) -> None:
    support = gpu.assess(gpu_facts, docker_facts)
    assert not support.usable
    assert support.present is present
    assert detail in support.detail
    assert hint in support.hint


def test_resolve_each_setting() -> None:
    usable, absent = gpu.assess(A100, DOCKER), gpu.assess(facts.GpuFacts(None), DOCKER)
    assert gpu.resolve("auto", usable) is True
    assert gpu.resolve("auto", absent) is False
    assert gpu.resolve("off", usable) is False
    assert gpu.resolve("on", usable) is True
    with pytest.raises(gpu.GpuUnavailable) as raised:
        gpu.resolve("on", absent)
    error = raised.value
    assert isinstance(error, errors.ApplianceError)
    assert (
        error.message
        == "gpu is on, but this host cannot give the cluster a GPU: no NVIDIA GPU (no /dev/nvidia*, no nvidia-smi)"
    )
    assert "\n" not in error.message
    assert error.hint is not None and "--gpu off" in error.hint and "appliance doctor" in error.hint


def make_facts(gpu_facts: facts.GpuFacts, docker_facts: facts.DockerFacts, setting: str) -> facts.Facts:
    return facts.Facts(
        python_version=(3, 11, 2), platform="Linux", docker=docker_facts, cgroup_version=2, cap_bounding=0,
        cap_last=40, cpus=4, mem_total=0, mem_available=0, disk_path="/", disk_free=0, inotify_watches=None,
        inotify_instances=None, ports=(), kind=facts.BinaryFacts("kind", None), gpu=gpu_facts, gpu_setting=setting,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("gpu_facts", "docker_facts", "setting", "status", "text"),
    [
        (facts.GpuFacts(None), DOCKER, "auto", "pass", "GPU features stay off"),
        (facts.GpuFacts(None), DOCKER, "on", "fail", "`up` will stop at preflight"),
        (facts.GpuFacts(None), DOCKER, "off", "pass", "gpu: off"),
        (A100, docker(default_runtime="runc"), "auto", "warn", "gpu auto stays off"),
        (A100, docker(default_runtime="runc"), "on", "fail", "default runtime is runc"),
        (A100, DOCKER, "auto", "pass", "gpu auto puts it in the cluster"),
        (A100, DOCKER, "on", "pass", "gpu on puts it in the cluster"),
        (A100, DOCKER, "off", "pass", "gpu: off"),
    ],
)
def test_doctor_says_what_up_will_do(
    gpu_facts: facts.GpuFacts, docker_facts: facts.DockerFacts, setting: str, status: str, text: str
) -> None:
    result = checks.check_gpu(make_facts(gpu_facts, docker_facts, setting))
    assert (result.status, text in result.detail) == (status, True), result.detail
    assert result.status == "pass" or result.hint
    assert result.data["setting"] == setting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accept-nvidia-visible-devices-as-volume-mounts = true\n", {"volume_mounts": True}),
        ("accept-nvidia-visible-devices-as-volume-mounts = false\n", {"volume_mounts": False}),
        ('[nvidia-container-runtime]\nmode = "auto"\n', {"volume_mounts": None}),
        ("this is = = not toml", {"toolkit_error": "cannot read it"}),
    ],
)
def test_host_toolkit_config(tmp_path: Path, text: str, expected: dict[str, Any]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    read = facts.nvidia_toolkit_config(str(path))
    assert read["toolkit_config"] == str(path)
    for key, value in expected.items():
        assert value in read[key] if isinstance(value, str) else read[key] is value
    assert facts.nvidia_toolkit_config(str(tmp_path / "missing.toml")) == {}


def test_gpu_facts_from_a_dev_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no nvidia-smi
    for name in ("nvidia0", "nvidiactl", "null"):
        (tmp_path / name).touch()
    observed = facts.gpu_facts(str(tmp_path), toolkit_config=str(tmp_path / "none.toml"))
    assert observed == facts.GpuFacts(None, device_nodes=(f"{tmp_path}/nvidia0", f"{tmp_path}/nvidiactl"))


class NoProvider:
    """Fails the test if `up` touches the provider: the GPU preflight must come before anything."""

    name = "kind"

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"preflight touched the provider ({attribute})")


def context(setting: str, recorder: progress.Recorder, provider: str = "kind") -> Context:
    cfg = config.Config(gpu=setting, provider=provider)  # type: ignore[arg-type]
    paths = config.Paths(Path("/nonexistent/c"), Path("/nonexistent/d"), Path("/nonexistent/cache"))
    return Context(cfg, paths, NoProvider(), progress.Progress(recorder), lambda: Path("/nonexistent"))  # type: ignore[arg-type]


def observe(monkeypatch: pytest.MonkeyPatch, gpu_facts: facts.GpuFacts, docker_facts: facts.DockerFacts) -> None:
    monkeypatch.setattr(facts, "gpu_facts", lambda: gpu_facts)
    monkeypatch.setattr(facts, "docker_facts", lambda: docker_facts)


def test_up_with_gpu_on_stops_at_the_first_step_on_a_host_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    observe(monkeypatch, facts.GpuFacts(None), DOCKER)
    recorder = progress.Recorder()
    with pytest.raises(gpu.GpuUnavailable, match="no NVIDIA GPU"):
        up.run(context("on", recorder))
    assert recorder.final_states() == {"GPU": "failed"}


def test_preflight_auto_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    observe(monkeypatch, facts.GpuFacts(None), DOCKER)
    recorder = progress.Recorder()
    assert up.preflight_gpu(context("auto", recorder)) is False
    assert up.preflight_gpu(context("off", recorder)) is False
    assert up.preflight_gpu(context("on", recorder, provider="kubeconfig")) is False  # that cluster's own setup
    skipped = [e.message for e in recorder.events if e.kind == "end"]
    assert any((m or "").startswith("auto, so off: no NVIDIA GPU") for m in skipped)


def test_preflight_on_needs_the_device_plugin_source(monkeypatch: pytest.MonkeyPatch) -> None:
    observe(monkeypatch, A100, DOCKER)
    monkeypatch.setattr(up.gpu_images.engine, "inspect", lambda ref: None)
    with pytest.raises(errors.ApplianceError, match="not on the Go module proxy") as raised:
        up.preflight_gpu(context("on", progress.Recorder()))
    assert raised.value.hint is not None and "git clone --branch v0.20.0" in raised.value.hint


def test_preflight_auto_stays_off_when_the_device_plugin_cannot_be_built(monkeypatch: pytest.MonkeyPatch) -> None:
    observe(monkeypatch, A100, DOCKER)
    monkeypatch.setattr(up.gpu_images.engine, "inspect", lambda ref: None)
    recorder = progress.Recorder()
    assert up.preflight_gpu(context("auto", recorder)) is False
    (end,) = [e for e in recorder.events if e.kind == "end"]
    assert end.message is not None and "auto, so off:" in end.message and "not on the Go module proxy" in end.message


def test_preflight_on_with_a_usable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    observe(monkeypatch, A100, DOCKER)
    monkeypatch.setattr(up.gpu_images, "check_device_plugin_buildable", lambda cache_dir: None)
    assert up.preflight_gpu(context("on", progress.Recorder())) is True
    assert up.preflight_gpu(context("auto", progress.Recorder())) is True


class RecordingProvider:
    name = "kind"

    def __init__(self) -> None:
        self.created: list[bool] = []
        self.loaded: list[str] = []

    def state(self) -> Any:
        return provider_mod.ClusterState(False, False)

    def create(self, prog: progress.Progress, *, gpu: bool = False) -> None:
        self.created.append(gpu)

    def images(self) -> set[str]:
        return set()

    def load_images(self, refs: list[str], prog: progress.Progress) -> None:
        self.loaded.extend(refs)


@pytest.mark.parametrize("with_gpu", [True, False])
def test_up_wires_gpu_through_create_load_and_setup(monkeypatch: pytest.MonkeyPatch, with_gpu: bool) -> None:
    calls: list[str] = []
    monkeypatch.setattr(up, "preflight_gpu", lambda ctx: with_gpu)
    for step in ("ensure_node_image", "ensure_gpu_images", "wait_node_ready", "wait_dns", "setup_gpu"):
        monkeypatch.setattr(up, step, lambda ctx, _name=step: calls.append(_name))
    monkeypatch.setattr(up, "write_kubeconfig", lambda ctx, merge: calls.append("write_kubeconfig"))
    monkeypatch.setattr(up, "platform_image_refs", lambda ctx: ["localhost/odh-appliance/minio:abc"])
    monkeypatch.setattr(up.platform, "run", lambda ctx: calls.append("platform"))
    provider = RecordingProvider()
    ctx = context("auto", progress.Recorder())
    ctx.provider = provider  # type: ignore[assignment]
    up.run(ctx)
    assert provider.created == [with_gpu]
    gpu_steps = ["ensure_gpu_images", "setup_gpu"]
    expected = ["ensure_node_image", "ensure_gpu_images", "write_kubeconfig", "wait_node_ready", "wait_dns"]
    expected += ["setup_gpu", "platform"]
    assert calls == (expected if with_gpu else [c for c in expected if c not in gpu_steps])
    plugin = "localhost/odh-appliance/nvidia-device-plugin:v0.20.0"
    assert provider.loaded == ["localhost/odh-appliance/minio:abc"] + ([plugin] if with_gpu else [])


def test_the_kind_provider_picks_the_gpu_node_image() -> None:
    paths = config.Paths(Path("/nonexistent/c"), Path("/nonexistent/d"), Path("/nonexistent/cache"))
    provider = kind.KindProvider(config.Config(), paths)
    assert provider.node_image() == "localhost/odh-appliance/kind-node:v1.34.1"
    assert provider.node_image(gpu=True) == "localhost/odh-appliance/kind-node-gpu:v1.34.1"


@pytest.mark.parametrize(
    ("source_tree", "present", "built", "error"),
    [
        (True, set(), ["node-gpu", "plugin"], None),
        (True, {"plugin"}, ["node-gpu"], None),
        (False, {"node-gpu", "plugin"}, [], None),
        (False, {"node-gpu"}, [], "nvidia-device-plugin:v0.20.0 is not in the local Docker engine"),
    ],
)
def test_ensure_gpu_images(
    monkeypatch: pytest.MonkeyPatch, source_tree: bool, present: set[str], built: list[str], error: str | None
) -> None:
    tags = {"node-gpu": up.gpu_images.node_gpu_tag("1.34.1"), "plugin": up.gpu_images.device_plugin_tag()}
    calls: list[str] = []
    monkeypatch.setattr(up.engine, "inspect", lambda ref: object() if ref in {tags[p] for p in present} else None)
    monkeypatch.setattr(up.gpu_images, "ensure_node_gpu_image", lambda *a: calls.append("node-gpu"))
    monkeypatch.setattr(up.gpu_images, "ensure_device_plugin_image", lambda *a: calls.append("plugin"))
    ctx = context("on", progress.Recorder())

    def no_source() -> Path:
        raise errors.ApplianceError("no source tree")

    ctx.source_root = (lambda: Path("/src")) if source_tree else no_source
    if error:
        with pytest.raises(errors.ApplianceError, match=error):
            up.ensure_gpu_images(ctx)
    else:
        up.ensure_gpu_images(ctx)
    assert calls == built


@pytest.mark.parametrize(
    ("setting", "status", "text"),
    [
        ("auto", "warn", "gpu auto stays off"),
        ("on", "fail", "`up` will stop at preflight"),
        ("off", "pass", "gpu: off"),
    ],
)
def test_doctor_names_missing_gpu_images_on_a_usable_host(setting: str, status: str, text: str) -> None:
    missing = dataclasses.replace(A100, images_problem="the plugin source is not at /x", images_hint="clone it")
    result = checks.check_gpu(make_facts(missing, DOCKER, setting))
    assert (result.status, text in result.detail) == (status, True), result.detail
    if status != "pass":
        assert "the plugin source is not at /x" in result.detail and result.hint == "clone it"


def test_gpu_images_are_asked_about_only_where_there_is_a_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up.gpu_images.engine, "inspect", lambda ref: None)
    none = facts.GpuFacts(None)
    assert facts.with_gpu_images(none, tmp_path) is none
    observed = facts.with_gpu_images(A100, tmp_path)
    assert "not on the Go module proxy" in observed.images_problem
    assert "git clone --branch v0.20.0" in observed.images_hint

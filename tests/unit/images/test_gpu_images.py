"""The GPU build recipes (pinned, cgo) and how bundles treat `gpu: true` entries (no processes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from appliance import errors, progress
from appliance.bundle import build as bundle_build
from appliance.bundle import definition
from appliance.images import engine, gpu


def test_toolkit_binaries_are_pinned_cgo_builds() -> None:
    assert [b.name for b in gpu.TOOLKIT_BINARIES] == ["nvidia-container-runtime", "nvidia-cdi-hook", "nvidia-ctk"]
    for binary in gpu.TOOLKIT_BINARIES:
        assert binary.package == f"github.com/NVIDIA/nvidia-container-toolkit/cmd/{binary.name}"
        assert binary.version == gpu.TOOLKIT_VERSION != "latest"
        assert binary.env == {"CGO_ENABLED": "1"}  # go-nvml is cgo (dlopen of libnvidia-ml.so.1)
        assert "--unresolved-symbols=ignore-in-object-files" in binary.ldflags
        assert f"internal/info.version={gpu.TOOLKIT_VERSION}" in binary.ldflags


def test_device_plugin_recipe_is_a_pinned_commit() -> None:
    plugin = gpu.DEVICE_PLUGIN
    assert len(plugin.commit) == 40 and plugin.version == "v0.20.0"
    assert f"gitCommit={plugin.commit}" in plugin.ldflags
    cache = Path("/cache")
    assert plugin.target(cache).parent.parent == cache / "go" / "bin"
    moved = dataclasses.replace(plugin, commit="0" * 40)
    assert moved.recipe_hash() != plugin.recipe_hash()
    assert dataclasses.replace(plugin, clone_url="file:///elsewhere").recipe_hash() == plugin.recipe_hash()


def test_tags_never_touch_the_cpu_node_repository() -> None:
    assert gpu.node_gpu_tag("1.34.1") == "localhost/odh-appliance/kind-node-gpu:v1.34.1"
    assert gpu.device_plugin_tag() == "localhost/odh-appliance/nvidia-device-plugin:v0.20.0"


def test_a_missing_source_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "inspect", lambda ref: None)
    with pytest.raises(errors.ApplianceError) as raised:
        gpu.check_device_plugin_buildable(tmp_path, tmp_path / "nowhere")
    assert "not on the Go module proxy" in raised.value.message
    assert raised.value.hint is not None
    assert "git clone --branch v0.20.0 https://github.com/NVIDIA/k8s-device-plugin" in raised.value.hint


def spec(*images: dict[str, Any]) -> definition.Definition:
    return definition.Definition.model_validate(
        {"name": "t", "version": "1.0.0", "kubernetes": "1.34.1", "kind": "v0.30.0", "images": list(images)}
    )


def test_bundle_gpu_entries_are_included_only_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built_here = engine.ImageInfo(
        id="sha256:abc", tags=(gpu.device_plugin_tag(),), size=10, labels={gpu.RECIPE_LABEL: "r1"},
        repo_digests=(), created="",
    )  # fmt: skip
    monkeypatch.setattr(engine, "inspect", lambda ref: built_here if ref == gpu.device_plugin_tag() else None)
    definition_ = spec({"name": "kind-node-gpu", "gpu": True}, {"name": "nvidia-device-plugin", "gpu": True})
    tags = bundle_build._gpu_tags(definition_)
    assert tags == {"kind-node-gpu": gpu.node_gpu_tag("1.34.1"), "nvidia-device-plugin": gpu.device_plugin_tag()}
    recorder = progress.Recorder()
    built = bundle_build._gpu_built(tags, progress.Progress(recorder))
    assert [(b.name, b.tag, b.content_hash) for b in built] == [("nvidia-device-plugin", gpu.device_plugin_tag(), "r1")]
    resolved = bundle_build._resolved_images(definition_, built)
    assert [r.name for r in resolved] == ["nvidia-device-plugin"]
    ends = [e.message or "" for e in recorder.events if e.kind == "end"]
    assert any("left out" in m for m in ends) and any("included" in m for m in ends)


def test_an_unknown_gpu_recipe_is_bad_input() -> None:
    with pytest.raises(errors.UsageError, match="no GPU image"):
        bundle_build._gpu_tags(spec({"name": "minio", "gpu": True}))

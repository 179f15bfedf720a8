"""`appliance status` shows a node's GPUs (allocatable nvidia.com/gpu) only on clusters that have any."""

from __future__ import annotations

from typing import Any

import pytest

from appliance import api
from appliance.cli import main as cli_main

NODE = {
    "name": "odh-control-plane", "ready": True, "kubelet_version": "v1.34.1", "container_runtime": "containerd://1.6",
    "images": 12, "allocatable_cpu": "4", "allocatable_memory": "8Gi", "allocatable_gpu": "",
}  # fmt: skip


def status_output(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], node: dict[str, Any]) -> str:
    result = api.ClusterStatus("odh", "kind", "running", True, kubeconfig="/k", server_version="v1.34.1", nodes=[node])
    monkeypatch.setattr(api, "status", lambda loaded: result)
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as info:
        cli_main.main(["status"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_status_has_a_gpu_column_only_with_gpus(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without = status_output(monkeypatch, capsys, NODE)
    assert "gpu" not in without
    with_gpu = status_output(monkeypatch, capsys, {**NODE, "allocatable_gpu": "2"})
    header = next(line for line in with_gpu.splitlines() if "kubelet" in line)
    assert [cell.strip() for cell in header.strip(" ┃│").split("┃")][-2:] == ["memory", "gpu"], with_gpu
    row = next(line for line in with_gpu.splitlines() if "odh-control-plane" in line)
    assert [cell.strip() for cell in row.strip(" │").split("│")][-2:] == ["8Gi", "2"], with_gpu

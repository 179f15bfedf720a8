"""The `appliance` CLI as a user runs it: help, version, config show, and error handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import appliance
from tests.integration.conftest import RunCli

pytestmark = pytest.mark.integration


def test_console_script_is_installed(cli_env: dict[str, str]) -> None:
    script = Path(sys.executable).parent / "appliance"
    assert script.exists(), "the `appliance` console script is not installed in this environment"
    proc = subprocess.run(
        [str(script), "version"], env=cli_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"odh-appliance {appliance.__version__}")


def test_help_documents_every_subcommand(run_cli: RunCli) -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for name in ("doctor", "version", "config"):
        assert name in result.stdout
    sub = run_cli("config", "--help")
    assert "show" in sub.stdout


def test_version_json(run_cli: RunCli) -> None:
    result = run_cli("version", "--json")
    assert result.json()["odh-appliance"] == appliance.__version__


def test_config_show_layers(run_cli: RunCli, cli_env: dict[str, str]) -> None:
    config_dir = Path(cli_env["XDG_CONFIG_HOME"]) / "odh-appliance"
    config_dir.mkdir(parents=True)
    (config_dir / "config.yaml").write_text("cluster_name: from-file\ngpu: on\nports:\n  http: 7000\n")
    result = run_cli(
        "--set", "ports.http=7002", "config", "show", env={"ODH_APPLIANCE_CLUSTER_NAME": "from-env"}
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = yaml.safe_load(result.stdout)
    assert body["cluster_name"] == "from-env"
    assert body["gpu"] == "on"
    assert body["ports"]["http"] == 7002
    assert f"# config file: {config_dir / 'config.yaml'}" in result.stdout

    as_json = run_cli("config", "show", "--json").json()
    assert as_json["sources"]["cluster_name"].startswith("file ")
    assert as_json["paths"]["cache_dir"] == os.path.join(cli_env["XDG_CACHE_HOME"], "odh-appliance")

    sources = run_cli("config", "show", "--sources", env={"ODH_APPLIANCE_GPU": "off"})
    assert "environment ODH_APPLIANCE_GPU" in sources.stdout


def test_bad_config_is_one_clear_error(run_cli: RunCli) -> None:
    result = run_cli("config", "show", env={"ODH_APPLIANCE_PORTS__HTTP": "eighty"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: invalid setting ports.http")
    assert "ODH_APPLIANCE_PORTS__HTTP" in lines[0]
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in result.stderr


def test_missing_config_file_flag(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "absent.yaml"), "config", "show")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr

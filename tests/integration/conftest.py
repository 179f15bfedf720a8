"""Integration fixtures: run the real `appliance` CLI in a subprocess with isolated XDG directories.

Doctor probes container registries; tests point it only at servers on 127.0.0.1 (a closed port by
default), never at the internet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CLI_TIMEOUT = 120


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODH_APPLIANCE_")}
    for name in ("CONFIG", "DATA", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(tmp_path / name.lower())
    env["ODH_APPLIANCE_REGISTRIES"] = f"http://127.0.0.1:{closed_port()}"
    env["COLUMNS"] = "200"
    return env


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> RunCli:
    def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            env={**cli_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run

"""Model-server fixtures: a model repository built with onnx.helper and the real server in a subprocess.

The server runs as `python -m appliance.serving` (the image's entry point) on 127.0.0.1 with free
ports; each fixture waits, bounded, until /v2/health/ready answers 200 and stops the process with
SIGINT afterwards. Running it out of process also keeps our generated `inference.*` protobuf
messages out of the test process, where tritonclient registers its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import onnx_models
from tests.conftest import free_port, wait_http_ok

START_TIMEOUT = 60.0
DATATYPES = list(onnx_models.ONNX_TYPES)


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log: Path

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://{self.http}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = START_TIMEOUT) -> None:
    wait_http_ok(f"{url}/v2/health/ready", proc, log, timeout, "the model server")


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


def start_server(model_dir: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> RunningServer:
    http_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "appliance.serving",
        "--model-dir",
        str(model_dir),
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        *args,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = RunningServer(proc, http_port, grpc_port, log)
    try:
        wait_ready(server.url, proc, log)
    except BaseException:
        stop(proc)
        raise
    return server


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model per directory: four (4-in/3-out), id_<type> per datatype, versioned (1 and 2), image."""
    root = tmp_path_factory.mktemp("models")
    onnx_models.four_in_three_out(root / "four" / "model.onnx")
    for datatype in DATATYPES:
        onnx_models.identity(datatype, root / f"id_{datatype.lower()}" / "model.onnx")
    onnx_models.identity("FP32", root / "versioned" / "1" / "model.onnx")
    onnx_models.four_in_three_out(root / "versioned" / "2" / "model.onnx")
    onnx_models.image(root / "image" / "model.onnx")
    return root


@pytest.fixture(scope="session")
def server(model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    running = start_server(model_repo, log, "--body-timeout", "1", "--max-body-mb", "8")
    try:
        yield running
    finally:
        code = stop(running.proc)
        output = running.output()
        assert code == 0, output
        assert "Traceback" not in output, output

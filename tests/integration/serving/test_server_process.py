"""The server as users run it: `appliance serve` (prints endpoints, Ctrl-C stops it cleanly), startup
errors with hints, several worker processes, and `/metrics`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from tests import onnx_models
from tests.conftest import free_port
from tests.integration.conftest import RunCli
from tests.integration.serving.conftest import RunningServer, start_server, stop

pytestmark = pytest.mark.integration


def _appliance(*args: str) -> list[str]:
    return [sys.executable, "-m", "appliance", *args]


def _infer_four(address: str) -> np.ndarray:
    client = thttp.InferenceServerClient(address)
    try:
        inputs = []
        for name in "abcd":
            tensor = thttp.InferInput(name, [1, 4], "FP32")
            tensor.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
            inputs.append(tensor)
        return client.infer("four", inputs).as_numpy("sum")
    finally:
        client.close()


def test_appliance_serve_prints_endpoints_serves_and_stops_on_ctrl_c(tmp_path: Path, cli_env: dict[str, str]) -> None:
    model = onnx_models.four_in_three_out(tmp_path / "four.onnx")
    http_port, grpc_port = free_port(), free_port()
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            _appliance("serve", str(model), "--http-port", str(http_port), "--grpc-port", str(grpc_port)),
            stdout=stdout,
            stderr=stderr,
            env=cli_env,
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in out.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        printed = out.read_text()
        assert f"http://127.0.0.1:{http_port}/v2/models/four/infer" in printed, printed + err.read_text()
        assert f"127.0.0.1:{grpc_port}" in printed
        np.testing.assert_array_equal(_infer_four(f"127.0.0.1:{http_port}"), np.full((1, 4), 2.0, np.float32))
        client = tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        assert client.is_model_ready("four")
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code in (0, 130), err.read_text()
    assert "Traceback" not in err.read_text() + out.read_text()
    assert "stopped" in out.read_text()


@pytest.mark.parametrize(
    ("make", "message", "hint"),
    [
        (lambda p: p / "missing.onnx", "no such file or directory", "pass a .onnx file"),
        (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "not an .onnx file", "ONNX model"),
        (lambda p: (p / "bad.onnx").write_bytes(b"garbage") and p / "bad.onnx", "not a loadable ONNX model", "export"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no ONNX model found", "model.onnx"),
    ],
    ids=["missing", "not-onnx-name", "not-onnx-content", "empty-dir"],
)
def test_appliance_serve_bad_model_is_one_error_with_a_hint(
    tmp_path: Path, run_cli: RunCli, make: Callable[[Path], Path], message: str, hint: str
) -> None:
    path = make(tmp_path)
    result = run_cli("serve", str(path), "--http-port", str(free_port()), "--grpc-port", str(free_port()))
    assert result.returncode != 0
    assert f"error: {path}: {message}" in result.stderr.replace("\n", " ") or message in result.stderr
    assert "hint:" in result.stderr and hint in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("which", ["--http-port", "--grpc-port"])
def test_appliance_serve_busy_port(tmp_path: Path, run_cli: RunCli, which: str) -> None:
    model = onnx_models.four_in_three_out(tmp_path / "four.onnx")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        ports = {"--http-port": str(free_port()), "--grpc-port": str(free_port())}
        ports[which] = str(busy.getsockname()[1])
        result = run_cli("serve", str(model), *[x for kv in ports.items() for x in kv])
    assert result.returncode == 1
    assert "Address already in use" in result.stderr or "in use" in result.stderr
    assert f"hint: the port is probably in use; pick another with {which}" in result.stderr
    assert "Traceback" not in result.stderr


def test_appliance_help_does_not_import_onnxruntime() -> None:
    code = (
        "import sys, appliance.cli.main; print(sorted(m for m in ('onnxruntime', 'grpc', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_errors_and_latency_per_model(server: RunningServer) -> None:
    def scrape() -> str:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            return response.read().decode()

    before = scrape()
    for _ in range(3):
        _infer_four(server.http)
    bad = json.dumps({"inputs": [{"name": "a", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()
    request = urllib.request.Request(f"{server.url}/v2/models/four/infer", data=bad, method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 400
    after = scrape()
    ok = dict(model="four", protocol="rest", endpoint="infer", code="200")
    assert (
        _metric(after, "model_server_requests_total", **ok) - _metric(before, "model_server_requests_total", **ok) == 3
    )
    err = dict(model="four", protocol="rest", code="400", error="InvalidInput")
    assert _metric(after, "model_server_errors_total", **err) - _metric(before, "model_server_errors_total", **err) == 1
    hist = dict(model="four", protocol="rest")
    assert _metric(after, "model_server_inference_duration_seconds_count", **hist) >= 3
    assert _metric(after, "model_server_model_ready", model="four") == 1
    assert re.search(
        r'model_server_inference_duration_seconds_bucket\{le="0\.001",model="four",protocol="rest"\}', after
    )


def test_two_worker_processes_serve_and_aggregate_metrics(tmp_path: Path) -> None:
    onnx_models.four_in_three_out(tmp_path / "models" / "four" / "model.onnx")
    running = start_server(tmp_path / "models", tmp_path / "log.txt", "--workers", "2")
    try:
        for _ in range(20):  # new connections, spread over both workers by SO_REUSEPORT
            _infer_four(running.http)
        with urllib.request.urlopen(f"{running.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert _metric(text, "model_server_requests_total", model="four", endpoint="infer", code="200") == 20
        client = tgrpc.InferenceServerClient(running.grpc)
        assert client.is_server_ready()
        client.close()
    finally:
        code = stop(running.proc)
    assert code == 0, running.output()
    assert "Traceback" not in running.output()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}, "error: cannot reach the S3 endpoint"),
        ({"AWS_ACCESS_KEY_ID": "x"}, "error: AWS_ACCESS_KEY_ID is set but its partner is not"),
    ],
    ids=["unreachable", "half-credentials"],
)
def test_storage_uri_failures_are_one_error_with_a_hint(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    env = {**clean, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", **extra}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.serving",
            "--model-dir",
            str(tmp_path / "m"),
            "--storage-uri",
            "s3://models/m",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr

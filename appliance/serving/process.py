"""A model server in a child process, for front ends that want to try a model without a cluster.

Called by `appliance.api.serve_background` (the TUI's models screen: "serve a local .onnx" or "serve
a model from MinIO"). It runs the model-server image's entry point, `python -m appliance.serving`,
on 127.0.0.1 with a free port (REST only), waits — bounded — until `/v2/health/ready` answers, and
stops it with SIGINT (then SIGKILL) when asked. A model from MinIO is fetched by the server's own
storage initializer (`--storage-uri`), with the credentials in its environment only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from appliance.serving import errors

START_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    """A running model server; `stop()` ends it (also safe to call twice)."""

    url: str
    model: str
    source: str
    proc: subprocess.Popen[bytes] = field(repr=False)
    log: Path = field(repr=False)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return int(self.proc.returncode)


def start(
    *,
    name: str,
    model_path: Path | None = None,
    storage_uri: str | None = None,
    s3_env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> LocalServer:
    """Start a server for a local model file/directory, or for `s3://bucket/path` (with `s3_env`)."""
    if (model_path is None) == (storage_uri is None):
        raise errors.StartupError("give either a local model or a storage URI")
    workdir = Path(tempfile.mkdtemp(prefix="odh-model-"))
    if model_path is not None:
        model_path = model_path.expanduser()
        if not model_path.exists():
            raise errors.StartupError(f"{model_path} does not exist", hint="give the path of a .onnx file")
    port = _free_port()
    command = [sys.executable, "-m", "appliance.serving", "--http-port", str(port), "--no-grpc"]
    command += ["--model-name", name, "--model-dir", str(model_path or workdir / "model")]
    if storage_uri is not None:
        command += ["--storage-uri", storage_uri]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "MODEL_", "STORAGE_URI"))}
    env.update(s3_env or {})
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = LocalServer(f"http://127.0.0.1:{port}", name, storage_uri or str(model_path), proc, log)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LocalServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            lines = [line for line in server.output().splitlines() if line.strip()]
            last = next((line for line in reversed(lines) if line.startswith("error:")), lines[-1] if lines else "")
            raise errors.StartupError(
                f"the model server for {server.source} stopped: {last or f'exit code {server.proc.returncode}'}",
                hint=f"its log: {server.log}",
            )
        try:
            with urllib.request.urlopen(f"{server.url}/v2/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise errors.StartupError(
        f"the model server for {server.source} was not ready within {timeout:.0f}s", hint=f"its log: {server.log}"
    )

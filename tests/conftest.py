"""Fixtures shared by every test tier.

`minio_server`: a real MinIO server (built from Go source by `appliance.images.gobuild`, cached
under the user's cache directory, so the first run builds it and later runs start it at once) on
127.0.0.1 with a random port, random root credentials and a temporary data directory.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance import config
from appliance.images import gobuild, recipes

MINIO_START_TIMEOUT = 60.0


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float, what: str) -> None:
    """Poll `url` until it answers 200; fail with the process's log if it exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url} within {timeout}s:\n{log.read_text(errors='replace')}")


@dataclass(frozen=True)
class MinioServer:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def minio_binary() -> Path:
    return gobuild.build(recipes.MINIO, config.Paths.from_environment().cache_dir)


@pytest.fixture(scope="session")
def minio_server(minio_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    data_dir = tmp_path_factory.mktemp("minio-data")
    port, console_port = free_port(), free_port()
    server = MinioServer(f"127.0.0.1:{port}", "test-" + secrets.token_hex(6), secrets.token_urlsafe(24), data_dir)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MINIO_", "AWS_"))},
        "MINIO_ROOT_USER": server.access_key,
        "MINIO_ROOT_PASSWORD": server.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    log = (tmp_path_factory.mktemp("minio-log") / "minio.log").open("wb")
    proc = subprocess.Popen(
        [
            str(minio_binary),
            "server",
            "--quiet",
            "--address",
            server.endpoint,
            "--console-address",
            f"127.0.0.1:{console_port}",
            str(data_dir),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http_ok(f"{server.url}/minio/health/live", proc, Path(log.name), MINIO_START_TIMEOUT, "minio")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()

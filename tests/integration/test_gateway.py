"""The gateway's generated nginx configuration, run in the real gateway image against real servers.

The same `gateway.nginx_conf` the operator writes into the cluster, with one difference: upstream
addresses point at servers on this host (a model-server process, a MinIO server with its console,
and a plain HTTP server standing in for a workbench's Service) instead of cluster DNS names. The
container runs the image's own entrypoint as UID 1001 on the host network, on free ports. Clients are
third-party: the minio SDK for S3, tritonclient for OIP REST and gRPC.
"""

from __future__ import annotations

import http.server
import io
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from minio import Minio
from tritonclient.utils import InferenceServerException

from appliance import api
from appliance.operator import gateway
from tests import onnx_models
from tests.conftest import free_port
from tests.integration.serving.conftest import RunningServer, start_server, stop

IMAGE = gateway.DEFAULT_IMAGE
START_TIMEOUT = 60.0
TOKEN = secrets.token_urlsafe(24)


@dataclass
class Backends:
    model: RunningServer
    minio_api: int
    minio_console: int
    access_key: str
    secret_key: str
    notebook: int  # a plain HTTP server that echoes the path it was asked for


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"path={self.path} host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def backends(minio_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    root = tmp_path_factory.mktemp("gateway")
    onnx_models.four_in_three_out(root / "models" / "four" / "model.onnx")
    model = start_server(root / "models", root / "server.log")
    api_port, console_port = free_port(), free_port()
    access, secret = "gw-" + secrets.token_hex(6), secrets.token_urlsafe(24)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MINIO_", "AWS_"))},
           "MINIO_ROOT_USER": access, "MINIO_ROOT_PASSWORD": secret, "MINIO_UPDATE": "off"}  # fmt: skip
    log = (root / "minio.log").open("wb")
    address = ["--address", f"127.0.0.1:{api_port}", "--console-address", f"127.0.0.1:{console_port}"]
    minio_proc = subprocess.Popen(
        [str(minio_binary), "server", "--quiet", *address, str(root / "data")], env=env, stdout=log, stderr=log
    )
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=echo.serve_forever, daemon=True)
    thread.start()
    try:
        yield Backends(model, api_port, console_port, access, secret, echo.server_address[1])
    finally:
        echo.shutdown()
        minio_proc.terminate()
        minio_proc.wait(timeout=15)
        log.close()
        stop(model.proc)


@dataclass
class Gateway:
    http_port: int
    grpc_port: int
    container: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def logs(self) -> str:
        return subprocess.run(["docker", "logs", self.container], capture_output=True, text=True, check=False).stderr


@pytest.fixture(scope="module")
def gw(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    build = subprocess.run(
        [sys.executable, "-m", "appliance.cli.main", "images", "build", "gateway"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    ports = {"notebook": {80: backends.notebook},
             "model": {8080: backends.model.http_port, 8081: backends.model.grpc_port},
             "minio": {9000: backends.minio_api, 9001: backends.minio_console}}  # fmt: skip

    dead = free_port()  # nothing listens here: the Service of a stopped workbench

    def address(kind: str, namespace: str, name: str, port: int) -> str:
        return f"127.0.0.1:{dead if name == 'gone' else ports[kind][port]}"

    routes = gateway.routes(
        "opendatahub",
        [{"metadata": {"namespace": "proj", "name": "wb"}}, {"metadata": {"namespace": "proj", "name": "gone"}}],
        [{"metadata": {"namespace": "proj", "name": "four"}},
         {"metadata": {"namespace": "proj", "name": "open", "annotations": {gateway.AUTH_ANNOTATION: "false"}}}],
        {("proj", "four"): TOKEN},
    )  # fmt: skip
    http_port, grpc_port = free_port(), free_port()
    conf = gateway.nginx_conf(routes, http_port=http_port, grpc_port=grpc_port, address=address)
    path = tmp_path_factory.mktemp("gateway-conf") / "nginx.conf"
    path.write_text(conf)
    path.chmod(0o644)
    name = f"odh-gateway-test-{secrets.token_hex(4)}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--network", "host", "--user", "1001:0",
         "-v", f"{path}:{gateway.CONFIG_DIR}/{gateway.CONFIG_KEY}:ro", IMAGE],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    running = Gateway(http_port, grpc_port, name)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{running.url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the gateway did not answer /healthz:\n{running.logs()}")
            time.sleep(0.2)
        yield running
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False, timeout=60)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def four_inputs(client: type[httpclient.InferInput] | type[grpcclient.InferInput]) -> list[object]:
    inputs = []
    for name in ("a", "b", "c", "d"):
        item = client(name, [2, 4], "FP32")
        item.set_data_from_numpy(np.full((2, 4), 1.5, dtype=np.float32))
        inputs.append(item)
    return inputs


def test_s3_api_through_the_gateway_root(gw: Gateway, backends: Backends) -> None:
    s3 = Minio(f"127.0.0.1:{gw.http_port}", backends.access_key, backends.secret_key, secure=False)
    s3.make_bucket("through-gateway")
    payload = secrets.token_bytes(300_000)
    s3.put_object("through-gateway", "dir/blob.bin", io.BytesIO(payload), len(payload))
    assert s3.get_object("through-gateway", "dir/blob.bin").read() == payload
    assert [o.object_name for o in s3.list_objects("through-gateway", recursive=True)] == ["dir/blob.bin"]


def test_minio_console_under_minio_ui(gw: Gateway) -> None:
    status, body = get(f"{gw.url}/minio/ui/")
    assert status == 200 and "MinIO Console" in body


def test_notebook_path_is_passed_unchanged(gw: Gateway) -> None:
    status, body = get(f"{gw.url}/notebook/proj/wb/lab?x=1")
    assert status == 200
    assert body == f"path=/notebook/proj/wb/lab?x=1 host=127.0.0.1:{gw.http_port}"


def test_stopped_notebook_says_so(gw: Gateway) -> None:
    status, body = get(f"{gw.url}/notebook/proj/gone/lab")
    assert status == 503 and "not running" in body


def test_model_rest_needs_the_token(gw: Gateway) -> None:
    status, body = get(f"{gw.url}/serving/proj/four/v2/health/ready")
    assert status == 401 and "bearer token" in body
    status, _ = get(f"{gw.url}/serving/proj/four/v2/health/ready", {"Authorization": "Bearer wrong"})
    assert status == 401
    status, _ = get(f"{gw.url}/serving/proj/four/v2/health/ready", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200


def test_oip_rest_client_infers_through_the_gateway(gw: Gateway) -> None:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{gw.http_port}/serving/proj/four")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.is_model_ready("four", headers=headers)
    result = client.infer("four", four_inputs(httpclient.InferInput), headers=headers)
    expected = onnx_models.four_in_three_out_reference(*[np.full((2, 4), 1.5, dtype=np.float32)] * 4)
    for name, value in expected.items():
        np.testing.assert_allclose(result.as_numpy(name), value, rtol=1e-6)


def test_model_metrics_through_the_gateway(gw: Gateway) -> None:
    """What the models screen does for a deployed model: /metrics under the model's path, with its
    token, turned into request rate and latency between two scrapes."""
    base = f"{gw.url}/serving/proj/four"
    with pytest.raises(api.ApplianceError, match="401"):
        api.model_metrics(base, 0.0)
    before = api.model_metrics(base, 0.0, token=TOKEN)
    meta = api.model_metadata(base, "four", token=TOKEN)
    tensors = [api.model_parse_input(spec, "1, 2, 3, 4") for spec in meta.inputs]
    for _ in range(3):
        api.model_infer(base, "four", tensors, token=TOKEN)
    after = api.model_metrics(base, 2.0, token=TOKEN)
    rates = {r.model: r for r in api.model_rates(before, after)}
    assert rates["four"].requests_per_s >= 1.5  # 3 inferences (and the metadata) in 2 s of scrape time
    assert rates["four"].mean_latency_ms is not None


def test_auth_off_by_annotation(gw: Gateway) -> None:
    status, _ = get(f"{gw.url}/serving/proj/open/v2/health/live")
    assert status == 200


def test_oip_grpc_client_routed_by_authority(gw: Gateway) -> None:
    client = grpcclient.InferenceServerClient(
        url=f"127.0.0.1:{gw.grpc_port}", channel_args=[("grpc.default_authority", "four.proj")]
    )
    headers = {"authorization": f"Bearer {TOKEN}"}
    assert client.is_model_ready("four", headers=headers)
    result = client.infer("four", four_inputs(grpcclient.InferInput), headers=headers)
    assert result.as_numpy("sum").shape == (2, 4)
    with pytest.raises(InferenceServerException) as err:
        client.is_model_ready("four")
    assert "UNAUTHENTICATED" in str(err.value.status()) and "bearer token" in str(err.value)


def test_grpc_unknown_authority_is_not_found_with_a_hint(gw: Gateway) -> None:
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{gw.grpc_port}")
    with pytest.raises(InferenceServerException) as err:
        client.is_server_live()
    assert "NOT_FOUND" in str(err.value.status()) and "<name>.<namespace>" in str(err.value)

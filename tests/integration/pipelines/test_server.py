"""The pipeline server as a real process (`python -m appliance.pipelines.server --backend local`) on
127.0.0.1, with a real MinIO as pipeline root: upload, versions, runs with parameters, per-task
state, logs, artifacts, the token, bad input, and a restart with a run in flight."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import minio
import pytest

from appliance.pipelines import server
from tests.conftest import MinioServer, free_port, wait_http_ok
from tests.integration.conftest import RunCli
from tests.integration.pipelines.conftest import BUCKET, read_object

RUN_TIMEOUT = 120.0


@dataclass
class Server:
    url: str
    token: str
    start: Callable[[], None]
    kill: Callable[[], None]
    stop: Callable[[], None]

    def call(self, method: str, path: str, body: bytes | None = None, *, token: str | None = None) -> Any:
        status, data = self.raw(method, path, body, token=token)
        assert status < 300, f"{method} {path}: {status} {data!r}"
        return json.loads(data)

    def raw(self, method: str, path: str, body: bytes | None = None, *, token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token if token is None else token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.call("GET", f"/apis/v1/runs/{run_id}")
            if run["state"] != "running":
                return dict(run)
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} still running after {timeout}s")


@pytest.fixture
def pipeline_server(task_python: str, s3_env: MinioServer, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    token = secrets.token_urlsafe(16)
    env = {**os.environ, server.TOKEN_ENV: token}
    log = tmp_path / "server.log"
    argv = [
        sys.executable, "-m", "appliance.pipelines.server", "--backend", "local", "--port", str(port),
        "--data-dir", str(tmp_path / "data"), "--pipeline-root", f"s3://{BUCKET}/server", "--python", task_python,
    ]  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", proc, log, 60, "the pipeline server")

    def kill() -> None:  # the process group: the server, its fork server and the tasks
        proc = procs[-1]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop() -> None:  # as Kubernetes stops a pod
        proc = procs[-1]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    start()
    yield Server(f"http://127.0.0.1:{port}", token, start, kill, stop)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _upload(srv: Server, compiled: dict[str, Path], name: str, as_name: str | None = None) -> dict[str, Any]:
    return dict(srv.call("POST", f"/apis/v1/pipelines?name={as_name or name}", compiled[name].read_bytes()))


def test_upload_versions_run_and_artifacts(pipeline_server: Server, compiled: dict[str, Path], s3: minio.Minio) -> None:
    srv = pipeline_server
    uploaded = _upload(srv, compiled, "trivial")
    assert uploaded["version"] == "v1" and uploaded["parameters"] == {"x": "NUMBER_INTEGER"}
    second = srv.call("POST", "/apis/v1/pipelines/trivial/versions?version=v2", compiled["trivial"].read_bytes())
    assert second["version"] == "v2"
    described = srv.call("GET", "/apis/v1/pipelines/trivial")
    assert [v["version"] for v in described["versions"]] == ["v1", "v2"]
    assert described["version"] == "v2"  # the parameters of the newest version (a run form's fields)
    assert described["parameters"] == [
        {"name": "x", "type": "NUMBER_INTEGER", "default": 1.0, "has_default": True, "optional": True}
    ]
    assert srv.call("GET", "/apis/v1/pipelines/trivial?version=v1")["version"] == "v1"
    assert srv.raw("GET", "/apis/v1/pipelines/trivial?version=v9")[0] == 404
    assert srv.call("GET", "/apis/v1/pipelines")["pipelines"][0]["versions"] == 2

    created = srv.call("POST", "/apis/v1/runs", json.dumps({"pipeline": "trivial", "parameters": {"x": 5}}).encode())
    assert created["version"] == "v2" and created["state"] in ("running", "succeeded")
    run = srv.wait_run(created["run_id"])
    assert run["state"] == "succeeded", run["error"]
    assert run["outputs"] == {"Output": 8}
    assert [(t["task_id"], t["state"], t["exit_code"]) for t in run["tasks"]] == [
        ("add", "succeeded", 0), ("add-2", "succeeded", 0), ("add-3", "succeeded", 0)
    ]  # fmt: skip
    listed = srv.call("GET", "/apis/v1/runs")["runs"]
    assert listed[0]["run_id"] == run["run_id"] and listed[0]["tasks"] == {"succeeded": 3}

    _upload(srv, compiled, "features")
    body = json.dumps({"pipeline": "features", "version": "v1", "parameters": {"count": 4}}).encode()
    features = srv.wait_run(srv.call("POST", "/apis/v1/runs", body)["run_id"])
    assert features["state"] == "succeeded", features["error"]
    artifacts = srv.call("GET", f"/apis/v1/runs/{features['run_id']}/artifacts")["artifacts"]
    model = next(a for a in artifacts if a["task_id"] == "exit-handler-1/total" and a["name"] == "model")
    assert model["uri"].startswith(f"s3://{BUCKET}/server/features/")
    path = f"/apis/v1/runs/{features['run_id']}/artifacts/download?task=exit-handler-1/total&name=model"
    status, data = srv.raw("GET", path)
    assert status == 200 and data == read_object(s3, model["uri"]).encode() == b"model of 0,1,2,3"


def test_a_failing_task_shows_exit_code_and_log_and_retries_are_honoured(
    pipeline_server: Server, compiled: dict[str, Path], s3: minio.Minio, tmp_path: Path
) -> None:
    srv = pipeline_server
    _upload(srv, compiled, "failing")
    body = {"pipeline": "failing", "parameters": {"marker_dir": str(tmp_path), "code": 7}}
    run = srv.wait_run(srv.call("POST", "/apis/v1/runs", json.dumps(body).encode())["run_id"])
    assert run["state"] == "failed" and "exit code 7" in run["error"]
    boom = next(t for t in run["tasks"] if t["task_id"] == "exit-handler-1/boom")
    assert boom["exit_code"] == 7 and "the disk is full (simulated)" in boom["log_tail"]
    status, log = srv.raw("GET", f"/apis/v1/runs/{run['run_id']}/log?task=exit-handler-1/boom")
    assert status == 200 and b"the disk is full (simulated)" in log

    _upload(srv, compiled, "retries")
    counter = tmp_path / "counter"
    counter.mkdir()
    body = {"pipeline": "retries", "parameters": {"counter_dir": str(counter), "fail_times": 2}}
    run = srv.wait_run(srv.call("POST", "/apis/v1/runs", json.dumps(body).encode())["run_id"])
    assert run["state"] == "succeeded", run["error"]
    (flaky,) = run["tasks"]
    assert flaky["attempts"] == 3 and flaky["outputs"]["parameters"]["Output"] == 3


def test_bad_requests_are_refused_clearly(pipeline_server: Server, compiled: dict[str, Path]) -> None:
    srv = pipeline_server
    status, body = srv.raw("GET", "/apis/v1/runs", token="wrong")
    assert status == 401 and b"bearer token" in body
    status, body = srv.raw("POST", "/apis/v1/pipelines?name=bad", b"pipelineInfo: {name: x}\n")
    assert status == 400, body
    _upload(srv, compiled, "trivial")
    status, body = srv.raw("POST", "/apis/v1/pipelines?name=trivial", compiled["trivial"].read_bytes())
    assert status == 409 and b"exists" in body
    unknown = json.dumps({"pipeline": "trivial", "parameters": {"y": 1}}).encode()
    status, body = srv.raw("POST", "/apis/v1/runs", unknown)
    assert status == 400 and b"no parameter 'y'" in body
    status, body = srv.raw("POST", "/apis/v1/runs", json.dumps({"pipeline": "nope"}).encode())
    assert status == 404
    status, body = srv.raw("GET", "/apis/v1/runs/nope")
    assert status == 404 and b"no run" in body


def test_a_run_in_flight_when_the_server_dies_is_failed_with_the_reason_on_restart(
    pipeline_server: Server, compiled: dict[str, Path], s3: minio.Minio
) -> None:
    srv = pipeline_server
    _upload(srv, compiled, "slow")
    _upload(srv, compiled, "trivial")
    done = srv.wait_run(srv.call("POST", "/apis/v1/runs", json.dumps({"pipeline": "trivial"}).encode())["run_id"])
    run_id = srv.call("POST", "/apis/v1/runs", json.dumps({"pipeline": "slow", "parameters": {"seconds": 5}}).encode())[
        "run_id"
    ]
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:  # until the task is running
        tasks = srv.call("GET", f"/apis/v1/runs/{run_id}")["tasks"]
        if tasks and tasks[0]["state"] == "running":
            break
        time.sleep(0.05)
    srv.kill()
    srv.start()
    run = srv.call("GET", f"/apis/v1/runs/{run_id}")
    assert run["state"] == "failed" and run["error"] == server.RESTART_REASON
    (sleep,) = run["tasks"]
    assert (sleep["task_id"], sleep["state"], sleep["error"]) == ("sleep", "failed", server.RESTART_REASON)
    # History survives the restart; finished runs are untouched.
    assert srv.call("GET", f"/apis/v1/runs/{done['run_id']}")["state"] == "succeeded"
    assert {r["run_id"] for r in srv.call("GET", "/apis/v1/runs")["runs"]} == {run_id, done["run_id"]}
    # SIGTERM (a pod deleted, a Deployment scaled to 0): the server fails its own runs before it exits.
    stopped = srv.call("POST", "/apis/v1/runs", json.dumps({"pipeline": "slow", "parameters": {"seconds": 5}}).encode())
    srv.stop()
    srv.start()
    run = srv.call("GET", f"/apis/v1/runs/{stopped['run_id']}")
    assert run["state"] == "failed" and run["error"] == server.STOP_REASON


def test_cli_upload_run_list_get_logs_against_the_server(
    pipeline_server: Server, compiled: dict[str, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    srv = pipeline_server
    env = {"ODH_PIPELINES_URL": srv.url, "ODH_PIPELINES_TOKEN": srv.token}
    uploaded = run_cli("pipelines", "upload", str(compiled["trivial"]), env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    assert "uploaded trivial version v1; parameters: x (NUMBER_INTEGER)" in uploaded.stdout
    ran = run_cli("pipelines", "run", "trivial", "-p", "x=5", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "✓ add-3 succeeded" in ran.stderr and "output Output = 8" in ran.stdout
    assert "trivial: succeeded in" in ran.stdout
    # A file is uploaded as a new version and run at once; a failure exits 1 with exit code and log tail.
    failed = run_cli(
        "pipelines", "run", str(compiled["failing"]), "-p", f"marker_dir={tmp_path}", "-p", "code=9", env=env
    )  # fmt: skip
    assert failed.returncode == 1
    assert "uploaded failing version v" in failed.stderr
    assert "error: task exit-handler-1/boom failed: exit code 9" in failed.stderr
    assert "about to fail: the disk is full (simulated)" in failed.stderr
    listed = run_cli("pipelines", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    runs = listed.json()
    assert [r["pipeline"] for r in runs] == ["failing", "trivial"]
    got = run_cli("pipelines", "get", runs[1]["run_id"], env=env)
    assert got.returncode == 0 and "✓ succeeded" in got.stdout
    log = run_cli("pipelines", "logs", runs[0]["run_id"], "exit-handler-1/boom", env=env)
    assert log.returncode == 0 and "the disk is full (simulated)" in log.stdout
    wrong = run_cli("pipelines", "list", env={**env, "ODH_PIPELINES_TOKEN": "nope"})
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr and "Traceback" not in wrong.stderr
    missing = run_cli("pipelines", "get", "no-such-run", env=env)
    assert missing.returncode == 1 and "no run 'no-such-run'" in missing.stderr

"""The pipeline server: a REST API over the engine, the run history and the catalog, with one task backend.

`python -m appliance.pipelines.server` runs in the cluster (the operator deploys it from the
pipeline-runner image, `--backend kube`: each task a pod, `kube.KubeBackend`) and on this machine
(`--backend local`, the integration tests). `appliance.api`'s pipelines section is its client.

Why the standard library's ThreadingHTTPServer and not the ASGI stack of `appliance.serving`: every
request is a small JSON read of SQLite or a short upload, runs execute in their own threads anyway
(the engine is thread-based), and the server must start in the same image as the launcher without
more moving parts. Under `/apis/v1` (the gateway maps `/ds-pipeline/` here, with the same token):

    GET  /healthz                                   ok
    POST /apis/v1/pipelines?name=N[&version=V]      upload IR YAML/JSON (body) as a new pipeline
    POST /apis/v1/pipelines/N/versions?version=V    upload a new version of N
    GET  /apis/v1/pipelines[/N[?version=V]]         list pipelines / one pipeline's versions and the
                                                    input parameters of V (default: the newest)
    POST /apis/v1/runs                              {"pipeline", "version"?, "parameters"?, "enable_cache"?} → the run
    GET  /apis/v1/runs[?limit=]                     runs, newest first
    GET  /apis/v1/runs/ID                           the run with its tasks (state, attempts, exit code, log tail)
    GET  /apis/v1/runs/ID/log?task=T                the task's whole log (of its last attempt)
    GET  /apis/v1/runs/ID/artifacts                 the run's output artifacts (task, name, uri, metadata)
    GET  /apis/v1/runs/ID/artifacts/download?task=T&name=A   the artifact's bytes (single-object artifacts)

A request needs `Authorization: Bearer <token>` when the server has a token (`$ODH_PIPELINES_TOKEN`).
The logic lives in `service` (no HTTP). On start, runs that a previous process left `running` are
marked failed with the reason (and their task pods deleted); on SIGTERM, this process's own runs
are: the history never silently keeps a run that nothing executes.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import signal
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from appliance import errors
from appliance.pipelines import service, store

TOKEN_ENV = "ODH_PIPELINES_TOKEN"
DEFAULT_PORT = 8888
MAX_BODY = 16 * 1024 * 1024
RESTART_REASON = service.RESTART_REASON
STOP_REASON = service.STOP_REASON


class Handler(BaseHTTPRequestHandler):
    service: service.PipelineService
    token: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # one line per request on stderr, probes aside
        if not self.path.startswith("/healthz"):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: Any) -> None:
        self._send(status, json.dumps(value, default=str).encode() + b"\n")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise service.ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]
        try:
            if parts == ["healthz"]:
                return self._send(HTTPStatus.OK, b"ok\n", "text/plain")
            given = self.headers.get("Authorization", "")
            if self.token and not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                why = "a bearer token is required (`appliance pipelines` sends it)"
                raise service.ApiError(HTTPStatus.UNAUTHORIZED, why)
            if parts[:2] != ["apis", "v1"]:
                raise service.ApiError(HTTPStatus.NOT_FOUND, f"no route {url.path}; the API is under /apis/v1")
            self._route(method, parts[2:], query)
        except service.ApiError as exc:
            self._json(exc.status, {"error": str(exc)})
        except Exception as exc:  # a bug: the client gets a 500 with the cause, the server log the traceback
            import traceback  # noqa: PLC0415

            traceback.print_exc()
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"server error: {type(exc).__name__}: {exc}"})
        return None

    def _route(self, method: str, parts: list[str], query: dict[str, str]) -> None:
        svc = self.service
        match method, parts:
            case "GET", ["pipelines"]:
                self._json(HTTPStatus.OK, {"pipelines": svc.catalog.pipelines()})
            case "GET", ["pipelines", name]:
                self._json(HTTPStatus.OK, svc.pipeline(name, query.get("version") or None))
            case "POST", ["pipelines"]:
                name = query.get("name", "")
                if not name:
                    raise service.ApiError(HTTPStatus.BAD_REQUEST, "upload needs ?name=")
                text = self._body().decode(errors="replace")
                self._json(HTTPStatus.CREATED, svc.upload(name, query.get("version", "v1"), text, new_pipeline=True))
            case "POST", ["pipelines", name, "versions"]:
                version = query.get("version", "")
                if not version:
                    raise service.ApiError(HTTPStatus.BAD_REQUEST, "a new version needs ?version=")
                text = self._body().decode(errors="replace")
                self._json(HTTPStatus.CREATED, svc.upload(name, version, text, new_pipeline=False))
            case "GET", ["runs"]:
                self._json(HTTPStatus.OK, {"runs": svc.list_runs(int(query.get("limit", "50")))})
            case "POST", ["runs"]:
                try:
                    body = json.loads(self._body() or b"{}")
                except ValueError as exc:
                    raise service.ApiError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}") from exc
                if not isinstance(body, dict):
                    raise service.ApiError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
                self._json(HTTPStatus.CREATED, svc.create_run(body))
            case "GET", ["runs", run_id]:
                self._json(HTTPStatus.OK, svc.run(run_id))
            case "GET", ["runs", run_id, "log"]:
                log = svc.task_log(run_id, query.get("task", ""))
                self._send(HTTPStatus.OK, log.encode(), "text/plain; charset=utf-8")
            case "GET", ["runs", run_id, "artifacts"]:
                self._json(HTTPStatus.OK, {"artifacts": svc.artifacts(run_id)})
            case "GET", ["runs", run_id, "artifacts", "download"]:
                data = svc.artifact_bytes(run_id, query.get("task", ""), query.get("name", ""))
                self._send(HTTPStatus.OK, data, "application/octet-stream")
            case _:
                raise service.ApiError(HTTPStatus.NOT_FOUND, f"no route {method} /apis/v1/{'/'.join(parts)}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")


def make_server(svc: service.PipelineService, host: str, port: int, token: str) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"service": svc, "token": token})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _backend(args: argparse.Namespace, data_dir: Path, pipeline_root: str) -> Any:
    if args.backend == "kube":
        from appliance.pipelines import kube  # noqa: PLC0415

        owner = json.loads(args.owner) if args.owner else None
        settings = kube.KubeSettings(
            namespace=args.namespace,
            pipeline_root=pipeline_root,
            runner_image=args.runner_image,
            credentials_secret=args.credentials_secret,
            service_account=args.task_service_account,
            owner=owner,
            task_timeout=args.task_timeout,
            log_dir=data_dir / "logs",
        )
        return kube.KubeBackend(settings)
    from appliance.pipelines import local  # noqa: PLC0415

    local_settings = local.LocalSettings(
        python=local.find_task_python(args.python),
        workdir=data_dir / "work",
        pipeline_root=pipeline_root,
        task_timeout=args.task_timeout,
    )
    return local.LocalBackend(local_settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.pipelines.server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, required=True, help="runs.db and task logs (a PVC in the cluster)")
    parser.add_argument("--pipeline-root", required=True, help="s3://bucket/prefix (AWS_* in the environment) or a dir")
    parser.add_argument("--backend", choices=("kube", "local"), default="kube")
    parser.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", "default"), help="where task pods run")
    parser.add_argument("--runner-image", default="localhost/odh-appliance/pipeline-runner:latest")
    parser.add_argument("--credentials-secret", default="", help="Secret with AWS_* keys for task pods")
    parser.add_argument("--task-service-account", default="")
    parser.add_argument("--owner", default="", help="ownerReference JSON for task pods")
    parser.add_argument("--python", default=None, help="local backend: the task Python")
    parser.add_argument("--task-timeout", type=float, default=3600.0)
    parser.add_argument("--max-parallel", type=int, default=4)
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    artifact_store = store.Store(args.pipeline_root)
    try:
        artifact_store.ensure_bucket()
        task_backend = _backend(args, args.data_dir, artifact_store.root)
        if hasattr(task_backend, "start"):
            task_backend.start()
            task_backend.wait_ready()
    except errors.ApplianceError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1
    svc = service.PipelineService(
        service.ServerSettings(args.data_dir, artifact_store.root, max_parallel=args.max_parallel), task_backend
    )
    for run_id in svc.recover():
        print(f"run {run_id}: marked failed ({RESTART_REASON})", file=sys.stderr, flush=True)
    server = make_server(svc, args.host, args.port, token)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"pipeline server on http://{args.host}:{server.server_address[1]} ({args.backend} backend)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        for run_id in svc.recover(STOP_REASON, only_ours=True):
            print(f"run {run_id}: marked failed ({STOP_REASON})", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):
            if hasattr(task_backend, "close"):
                task_backend.close()
        svc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
    GET  /apis/v1/pipelines[/N]                     list pipelines / one pipeline's versions
    POST /apis/v1/runs                              {"pipeline", "version"?, "parameters"?, "enable_cache"?} → the run
    GET  /apis/v1/runs[?limit=]                     runs, newest first
    GET  /apis/v1/runs/ID                           the run with its tasks (state, attempts, exit code, log tail)
    GET  /apis/v1/runs/ID/log?task=T                the task's whole log (of its last attempt)
    GET  /apis/v1/runs/ID/artifacts                 the run's output artifacts (task, name, uri, metadata)
    GET  /apis/v1/runs/ID/artifacts/download?task=T&name=A   the artifact's bytes (single-object artifacts)

A request needs `Authorization: Bearer <token>` when the server has a token (`$ODH_PIPELINES_TOKEN`).
On start, runs that a previous process left `running` are marked failed with the reason (and their
task pods deleted): the history never silently keeps a run that nothing executes.
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
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from appliance import errors, progress
from appliance.pipelines import backend, catalog, engine, ir, runs, store
from appliance.pipelines import errors as pipeline_errors

TOKEN_ENV = "ODH_PIPELINES_TOKEN"
DEFAULT_PORT = 8888
MAX_BODY = 16 * 1024 * 1024
RESTART_REASON = "the pipeline server restarted while this run was in progress; its running tasks were stopped"


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServerSettings:
    data_dir: Path
    pipeline_root: str
    max_parallel: int = 4
    env: Mapping[str, str] | None = None  # object-store credentials (AWS_*), default os.environ


def _task_json(task: runs.TaskRecord) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "name": task.name,
        "kind": task.kind,
        "state": task.state,
        "attempts": task.attempts,
        "exit_code": task.exit_code,
        "started": task.started,
        "finished": task.finished,
        "seconds": task.seconds,
        "error": task.error,
        "log_tail": task.log_tail,
        "outputs": task.outputs,
    }


class PipelineService:
    """What the REST API does, without HTTP (the handler below only parses and answers)."""

    def __init__(self, settings: ServerSettings, task_backend: backend.Backend) -> None:
        self.settings = settings
        self.backend = task_backend
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.records = runs.RunStore(settings.data_dir / "runs.db")
        self.catalog = catalog.Catalog(settings.data_dir / "runs.db")
        self.store = store.Store(settings.pipeline_root, settings.env)
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.catalog.close()
        self.records.close()

    # --- restart -----------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Mark runs left `running` by a previous process as failed (with the reason); returns their ids."""
        cleanup: Callable[[str], int] | None = getattr(self.backend, "delete_run_pods", None)
        recovered = []
        for run in self.records.runs(limit=1_000_000):
            if run.state != "running":
                continue
            now = time.time()
            for task in self.records.tasks(run.id):
                if task.state in ("running", "pending"):
                    task.state, task.finished, task.error = "failed", now, RESTART_REASON
                    self.records.save_task(task, RESTART_REASON)
            if cleanup is not None:
                cleanup(run.id)
            self.records.finish_run(run.id, "failed", RESTART_REASON, run.outputs)
            recovered.append(run.id)
        return recovered

    # --- pipelines ---------------------------------------------------------------------------------

    def upload(self, name: str, version: str, text: str, *, new_pipeline: bool) -> dict[str, Any]:
        try:
            pipeline = ir.loads(text, source=f"upload of {name}")
        except pipeline_errors.InvalidPipeline as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from exc
        try:
            added = self.catalog.add_version(name, version, text, new_pipeline=new_pipeline)
        except catalog.Conflict as exc:
            raise ApiError(HTTPStatus.CONFLICT, str(exc)) from exc
        except KeyError as exc:
            raise ApiError(HTTPStatus.NOT_FOUND, str(exc.args[0])) from exc
        except ValueError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, str(exc)) from exc
        params = {n: p.type for n, p in pipeline.root.input_parameters.items()}
        return {"name": name, "version": added.version, "created": added.created, "parameters": params}

    def pipeline(self, name: str) -> dict[str, Any]:
        versions = self.catalog.versions(name)
        if not versions:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no pipeline {name!r}")
        return {"name": name, "versions": [{"version": v.version, "created": v.created} for v in versions]}

    # --- runs --------------------------------------------------------------------------------------

    def create_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("pipeline") or "")
        if not name:
            raise ApiError(HTTPStatus.BAD_REQUEST, "a run needs 'pipeline' (the name of an uploaded pipeline)")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise ApiError(HTTPStatus.BAD_REQUEST, "'parameters' must be an object")
        try:
            version, text = self.catalog.ir(name, str(body["version"]) if body.get("version") else None)
        except KeyError as exc:
            raise ApiError(HTTPStatus.NOT_FOUND, str(exc.args[0])) from exc
        pipeline = ir.loads(text, source=f"{name} {version}")
        options = engine.Options(
            pipeline_root=self.store.root,
            enable_cache=bool(body.get("enable_cache", True)),
            max_parallel=self.settings.max_parallel,
        )
        run_engine = engine.Engine(pipeline, self.backend, self.records, progress.Progress(), options)
        try:
            typed = run_engine.resolve_parameters(dict(parameters))
        except pipeline_errors.InvalidParameter as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, exc.message) from exc
        run_id = f"{backend.slug(pipeline.name)}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}".lower()
        self.catalog.record_run(run_id, name, version)
        thread = threading.Thread(target=self._execute, args=(run_engine, typed, run_id), name=run_id, daemon=True)
        with self._lock:
            self._threads[run_id] = thread
        thread.start()
        deadline = time.monotonic() + 10  # the engine records the run first thing; wait for it (bounded)
        while self.records.run(run_id) is None and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.run(run_id)

    def _execute(self, run_engine: engine.Engine, parameters: dict[str, Any], run_id: str) -> None:
        try:
            run_engine.run(parameters, run_id=run_id)
        except Exception as exc:  # a bug in the engine: the run ends failed with it, the server goes on
            why = f"engine error: {type(exc).__name__}: {exc}"
            if self.records.run(run_id) is None:
                record = runs.RunRecord(run_id, run_engine.pipeline.name, "failed", parameters, self.store.root, 0.0)
                record.created = time.time()
                self.records.create_run(record)
            self.records.finish_run(run_id, "failed", why)
        finally:
            with self._lock:
                self._threads.pop(run_id, None)

    def wait(self, run_id: str, timeout: float) -> None:
        """Until the run's thread ends (tests; a clean shutdown)."""
        with self._lock:
            thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)

    def run(self, run_id: str) -> dict[str, Any]:
        record = self.records.run(run_id)
        if record is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no run {run_id!r}")
        pipeline, version = self.catalog.run_version(run_id) or (record.pipeline, "")
        return {
            "run_id": record.id,
            "pipeline": pipeline,
            "pipeline_name": record.pipeline,
            "version": version,
            "state": record.state,
            "parameters": record.parameters,
            "pipeline_root": record.pipeline_root,
            "created": record.created,
            "finished": record.finished,
            "error": record.error,
            "outputs": record.outputs,
            "tasks": [_task_json(t) for t in self.records.tasks(run_id)],
        }

    def list_runs(self, limit: int) -> list[dict[str, Any]]:
        out = []
        for record in self.records.runs(limit=limit):
            tasks = self.records.tasks(record.id)
            counts: dict[str, int] = {}
            for task in tasks:
                if task.kind in ("container", "importer"):
                    counts[task.state] = counts.get(task.state, 0) + 1
            pipeline, version = self.catalog.run_version(record.id) or (record.pipeline, "")
            out.append(
                {"run_id": record.id, "pipeline": pipeline, "version": version, "state": record.state,
                 "created": record.created, "finished": record.finished, "error": record.error, "tasks": counts}
            )  # fmt: skip
        return out

    def _task(self, run_id: str, task_id: str) -> runs.TaskRecord:
        self.run(run_id)
        for task in self.records.tasks(run_id):
            if task.task_id == task_id:
                return task
        raise ApiError(HTTPStatus.NOT_FOUND, f"run {run_id} has no task {task_id!r}")

    def task_log(self, run_id: str, task_id: str) -> str:
        task = self._task(run_id, task_id)
        if not task.log_path:
            return task.log_tail
        path = Path(task.log_path).resolve()
        if not path.is_relative_to(self.settings.data_dir.resolve()) or not path.is_file():
            return task.log_tail  # a log outside the server's data (or gone): what the record kept
        return path.read_text(errors="replace")

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        self.run(run_id)
        listed = []
        for task in self.records.tasks(run_id):
            if task.kind not in ("container", "importer") or task.state not in ("succeeded", "cached"):
                continue
            for name, items in (task.outputs.get("artifacts") or {}).items():
                for item in items:
                    listed.append(
                        {"task_id": task.task_id, "name": name, "uri": item.get("uri", ""),
                         "type": item.get("type", {}), "metadata": item.get("metadata", {})}
                    )  # fmt: skip
        return listed

    def artifact_bytes(self, run_id: str, task_id: str, name: str) -> bytes:
        uris = [a["uri"] for a in self.artifacts(run_id) if a["task_id"] == task_id and a["name"] == name]
        if not uris:
            raise ApiError(HTTPStatus.NOT_FOUND, f"run {run_id} task {task_id!r} has no output artifact {name!r}")
        uri = str(uris[0])
        if not store.is_remote(uri):
            path = Path(uri)
            if not path.is_file():
                raise ApiError(HTTPStatus.NOT_FOUND, f"{uri} is not a single file (a directory artifact?)")
            return path.read_bytes()
        bucket, key = store.split_uri(uri)
        try:
            response = self.store.client().get_object(bucket, key)
        except Exception as exc:
            raise ApiError(HTTPStatus.NOT_FOUND, f"cannot read {uri}: {type(exc).__name__}: {exc}") from exc
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()


class Handler(BaseHTTPRequestHandler):
    service: PipelineService
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
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {MAX_BODY} bytes")
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
                raise ApiError(HTTPStatus.UNAUTHORIZED, "a bearer token is required (`appliance pipelines` sends it)")
            if parts[:2] != ["apis", "v1"]:
                raise ApiError(HTTPStatus.NOT_FOUND, f"no route {url.path}; the API is under /apis/v1")
            self._route(method, parts[2:], query)
        except ApiError as exc:
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
                self._json(HTTPStatus.OK, svc.pipeline(name))
            case "POST", ["pipelines"]:
                name = query.get("name", "")
                if not name:
                    raise ApiError(HTTPStatus.BAD_REQUEST, "upload needs ?name=")
                text = self._body().decode(errors="replace")
                self._json(HTTPStatus.CREATED, svc.upload(name, query.get("version", "v1"), text, new_pipeline=True))
            case "POST", ["pipelines", name, "versions"]:
                version = query.get("version", "")
                if not version:
                    raise ApiError(HTTPStatus.BAD_REQUEST, "a new version needs ?version=")
                text = self._body().decode(errors="replace")
                self._json(HTTPStatus.CREATED, svc.upload(name, version, text, new_pipeline=False))
            case "GET", ["runs"]:
                self._json(HTTPStatus.OK, {"runs": svc.list_runs(int(query.get("limit", "50")))})
            case "POST", ["runs"]:
                try:
                    body = json.loads(self._body() or b"{}")
                except ValueError as exc:
                    raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}") from exc
                if not isinstance(body, dict):
                    raise ApiError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
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
                raise ApiError(HTTPStatus.NOT_FOUND, f"no route {method} /apis/v1/{'/'.join(parts)}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")


def make_server(service: PipelineService, host: str, port: int, token: str) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"service": service, "token": token})
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
    service = PipelineService(
        ServerSettings(args.data_dir, artifact_store.root, max_parallel=args.max_parallel), task_backend
    )
    for run_id in service.recover():
        print(f"run {run_id}: marked failed ({RESTART_REASON})", file=sys.stderr, flush=True)
    server = make_server(service, args.host, args.port, token)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"pipeline server on http://{args.host}:{server.server_address[1]} ({args.backend} backend)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        with contextlib.suppress(Exception):
            if hasattr(task_backend, "close"):
                task_backend.close()
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

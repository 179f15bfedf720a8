"""What the pipeline server does, without HTTP: the catalog, runs in background threads, logs, artifacts.

Called by `server` (the REST handler parses a request, calls `PipelineService`, and maps `ApiError`
to its status). The engine runs each run in a thread of this process over the task backend the
server was started with; `recover` fails runs that no process executes any more (after a restart,
and on SIGTERM), so the history never silently keeps a run `running`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from appliance import progress
from appliance.pipelines import backend, catalog, engine, ir, runs, store
from appliance.pipelines import errors as pipeline_errors

RESTART_REASON = "the pipeline server restarted while this run was in progress; its running tasks were stopped"
STOP_REASON = "the pipeline server was stopped while this run was in progress; its running tasks were stopped"


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


class _Records(runs.RunStore):
    """The run store the engines write to; `frozen` (set on SIGTERM) drops their writes, so that a run
    failed with the stop reason is not overwritten by its engine thread seeing its tasks die."""

    frozen = False

    def create_run(self, run: runs.RunRecord) -> None:
        if not self.frozen:
            super().create_run(run)

    def finish_run(self, run_id: str, state: str, error: str = "", outputs: dict[str, Any] | None = None) -> None:
        if not self.frozen:
            super().finish_run(run_id, state, error, outputs)

    def save_task(self, task: runs.TaskRecord, message: str = "") -> None:
        if not self.frozen:
            super().save_task(task, message)

    def cache_put(self, key: str, outputs: dict[str, Any], run_id: str, task_id: str) -> None:
        if not self.frozen:
            super().cache_put(key, outputs, run_id, task_id)


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
        self.records = _Records(settings.data_dir / "runs.db")
        self.catalog = catalog.Catalog(settings.data_dir / "runs.db")
        self.store = store.Store(settings.pipeline_root, settings.env)
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.catalog.close()
        self.records.close()

    # --- restart -----------------------------------------------------------------------------------

    def recover(self, reason: str = RESTART_REASON, *, only_ours: bool = False) -> list[str]:
        """Mark runs left `running` as failed with `reason` and delete their task pods; returns their ids.

        On start: those of a previous process. On SIGTERM (`only_ours`): this process's, so that a
        server scaled to 0 leaves no run `running` and no task pod behind."""
        cleanup: Callable[[str], int] | None = getattr(self.backend, "delete_run_pods", None)
        with self._lock:
            ours = set(self._threads)
        if only_ours:
            self.records.frozen = True  # the engine threads' last writes must not undo these
        recovered = []
        for run in self.records.runs(limit=1_000_000):
            if run.state != "running" or (only_ours and run.id not in ours):
                continue
            now = time.time()
            for task in self.records.tasks(run.id):
                if task.state in ("running", "pending"):
                    task.state, task.finished, task.error = "failed", now, reason
                    runs.RunStore.save_task(self.records, task, reason)
            if cleanup is not None:
                cleanup(run.id)
            runs.RunStore.finish_run(self.records, run.id, "failed", reason, run.outputs)
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

    def pipeline(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The pipeline's versions, and the input parameters (type, default, optional) of `version`
        (default: the newest), so that a client can build a run form without the IR."""
        versions = self.catalog.versions(name)
        if not versions:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no pipeline {name!r}")
        try:
            chosen, text = self.catalog.ir(name, version)
        except KeyError as exc:
            raise ApiError(HTTPStatus.NOT_FOUND, str(exc.args[0])) from exc
        root = ir.loads(text, source=f"{name} {chosen}").root
        parameters = [
            {"name": n, "type": p.type, "default": p.default, "has_default": p.has_default, "optional": p.optional}
            for n, p in root.input_parameters.items()
        ]
        return {
            "name": name,
            "versions": [{"version": v.version, "created": v.created} for v in versions],
            "version": chosen,
            "parameters": parameters,
        }

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

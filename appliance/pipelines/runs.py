"""Run history: runs, their tasks, state-change events and the cache, in one SQLite file.

Written by `engine` as a run progresses and read by `appliance.api` (the CLI's summary; later the
pipeline server's REST API, which keeps this file on a PVC). One connection per store, guarded by a
lock, so the engine's task threads can record concurrently. Standard library only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, parameters TEXT NOT NULL,
    pipeline_root TEXT NOT NULL, created REAL NOT NULL, finished REAL, error TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, started REAL, finished REAL,
    log_path TEXT NOT NULL DEFAULT '', log_tail TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '{}', cache_key TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL, at REAL NOT NULL, task_id TEXT NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, outputs TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL, created REAL NOT NULL
);
"""

TERMINAL = ("succeeded", "failed", "skipped", "cached")


@dataclass
class TaskRecord:
    run_id: str
    task_id: str
    name: str
    kind: str  # container | importer | dag | loop
    state: str  # pending | running | succeeded | failed | skipped | cached
    attempts: int = 0
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    log_path: str = ""
    log_tail: str = ""
    error: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    cache_key: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.started is None or self.finished is None else self.finished - self.started


@dataclass
class RunRecord:
    id: str
    pipeline: str
    state: str  # running | succeeded | failed
    parameters: dict[str, Any]
    pipeline_root: str
    created: float
    finished: float | None = None
    error: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


class RunStore:
    """The SQLite file behind run history and the cache (`:memory:` for a throwaway run)."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def create_run(self, run: RunRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run.id, run.pipeline, run.state, json.dumps(run.parameters), run.pipeline_root, run.created,
                    run.finished, run.error, json.dumps(run.outputs),
                ),
            )  # fmt: skip

    def finish_run(self, run_id: str, state: str, error: str = "", outputs: dict[str, Any] | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state=?, finished=?, error=?, outputs=? WHERE id=?",
                (state, time.time(), error, json.dumps(outputs or {}), run_id),
            )

    def save_task(self, task: TaskRecord, message: str = "") -> None:
        """Insert or update a task, and append an event when its state changed."""
        with self._tx() as db:
            row = db.execute(
                "SELECT state FROM tasks WHERE run_id=? AND task_id=?", (task.run_id, task.task_id)
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    task.run_id, task.task_id, task.name, task.kind, task.state, task.attempts, task.exit_code,
                    task.started, task.finished, task.log_path, task.log_tail, task.error,
                    json.dumps(task.outputs, default=str), task.cache_key,
                ),
            )  # fmt: skip
            if row is None or row[0] != task.state or message:
                db.execute(
                    "INSERT INTO events VALUES (?,?,?,?,?)",
                    (task.run_id, time.time(), task.task_id, task.state, message),
                )

    def run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            return None
        return RunRecord(
            id=row[0], pipeline=row[1], state=row[2], parameters=json.loads(row[3]), pipeline_root=row[4],
            created=row[5], finished=row[6], error=row[7], outputs=json.loads(row[8]),
        )  # fmt: skip

    def runs(self, limit: int = 50) -> list[RunRecord]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM runs ORDER BY created DESC LIMIT ?", (limit,))]
        return [r for r in (self.run(i) for i in ids) if r is not None]

    def tasks(self, run_id: str) -> list[TaskRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM tasks WHERE run_id=? ORDER BY COALESCE(started, 1e18), task_id", (run_id,)
            ).fetchall()
        return [
            TaskRecord(
                run_id=r[0],
                task_id=r[1],
                name=r[2],
                kind=r[3],
                state=r[4],
                attempts=r[5],
                exit_code=r[6],
                started=r[7],
                finished=r[8],
                log_path=r[9],
                log_tail=r[10],
                error=r[11],
                outputs=json.loads(r[12]),
                cache_key=r[13],
            )
            for r in rows
        ]

    def events(self, run_id: str) -> list[tuple[float, str, str, str]]:
        with self._lock:
            return [
                (float(r[0]), str(r[1]), str(r[2]), str(r[3]))
                for r in self._db.execute(
                    "SELECT at, task_id, state, message FROM events WHERE run_id=? ORDER BY rowid", (run_id,)
                )
            ]

    def cache_get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT outputs FROM cache WHERE key=?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def cache_put(self, key: str, outputs: dict[str, Any], run_id: str, task_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache VALUES (?,?,?,?,?)",
                (key, json.dumps(outputs, default=str), run_id, task_id, time.time()),
            )

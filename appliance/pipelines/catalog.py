"""The pipeline server's catalog: uploaded pipelines, their versions (the IR text), and which version each run used.

Called by `server`. Lives in the same SQLite file as the run history (`runs.RunStore`), in its own
tables, so one PVC holds everything the server must not lose. Standard library only.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines (
    name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_versions (
    pipeline TEXT NOT NULL, version TEXT NOT NULL, ir TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (pipeline, version)
);
CREATE TABLE IF NOT EXISTS run_versions (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, version TEXT NOT NULL
);
"""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Conflict(ValueError):
    """The pipeline or version exists already."""


@dataclass(frozen=True)
class Version:
    pipeline: str
    version: str
    created: float


class Catalog:
    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_version(self, pipeline: str, version: str, ir_text: str, *, new_pipeline: bool) -> Version:
        """Store a version; `new_pipeline`: the pipeline must not exist yet (upload), else it must (new version)."""
        for what, value in (("pipeline name", pipeline), ("version", version)):
            if not NAME.match(value):
                raise ValueError(f"{what} {value!r}: letters, digits, '.', '_', '-', at most 128 characters")
        now = time.time()
        with self._lock, self._db:
            exists = self._db.execute("SELECT 1 FROM pipelines WHERE name=?", (pipeline,)).fetchone() is not None
            if new_pipeline and exists:
                raise Conflict(f"pipeline {pipeline!r} exists; upload a new version of it instead")
            if not new_pipeline and not exists:
                raise KeyError(f"no pipeline {pipeline!r}")
            if not exists:
                self._db.execute("INSERT INTO pipelines VALUES (?,?,?)", (pipeline, "", now))
            try:
                self._db.execute("INSERT INTO pipeline_versions VALUES (?,?,?,?)", (pipeline, version, ir_text, now))
            except sqlite3.IntegrityError:
                raise Conflict(f"pipeline {pipeline!r} has a version {version!r} already") from None
        return Version(pipeline, version, now)

    def pipelines(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT p.name, p.created, COUNT(v.version), MAX(v.created) FROM pipelines p "
                "LEFT JOIN pipeline_versions v ON v.pipeline = p.name GROUP BY p.name ORDER BY p.name"
            ).fetchall()
        return [{"name": r[0], "created": r[1], "versions": r[2], "updated": r[3]} for r in rows]

    def versions(self, pipeline: str) -> list[Version]:
        with self._lock:
            rows = self._db.execute(
                "SELECT pipeline, version, created FROM pipeline_versions WHERE pipeline=? ORDER BY created, rowid",
                (pipeline,),
            ).fetchall()
        return [Version(*r) for r in rows]

    def ir(self, pipeline: str, version: str | None = None) -> tuple[str, str]:
        """(version, IR text): the given version, or the newest."""
        with self._lock:
            if version:
                row = self._db.execute(
                    "SELECT version, ir FROM pipeline_versions WHERE pipeline=? AND version=?", (pipeline, version)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT version, ir FROM pipeline_versions WHERE pipeline=? ORDER BY created DESC, rowid DESC",
                    (pipeline,),
                ).fetchone()
        if row is None:
            raise KeyError(f"no pipeline {pipeline!r}" + (f" version {version!r}" if version else ""))
        return str(row[0]), str(row[1])

    def record_run(self, run_id: str, pipeline: str, version: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO run_versions VALUES (?,?,?)", (run_id, pipeline, version))

    def run_version(self, run_id: str) -> tuple[str, str] | None:
        with self._lock:
            row = self._db.execute("SELECT pipeline, version FROM run_versions WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

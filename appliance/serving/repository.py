"""The model repository: which models live under a path, their versions, loading and unloading.

`dataplane` asks it for a ready model by name and version; `server` loads everything at startup in a
background thread, so the server answers `ready: false` while models load. Layouts understood, as
KServe's storage initializer leaves them in `/mnt/models`:

    model.onnx                    one model, named by --name or the file's stem
    a.onnx b.onnx                 one model per file, named by stem
    1/model.onnx 2/model.onnx     one versioned model (the highest version is served)
    m1/1/model.onnx m2/model.onnx one model per directory (a Triton-style repository)
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.serving import errors, model

DEFAULT_VERSION = "1"


class State(enum.Enum):
    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"
    UNAVAILABLE = "UNAVAILABLE"  # found on disk, not loaded (or unloaded)


@dataclass
class Entry:
    name: str
    versions: dict[str, Path]  # version -> .onnx file
    state: State = State.UNAVAILABLE
    model: model.OnnxModel | None = None
    reason: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def served_version(self) -> str:
        return max(self.versions, key=lambda v: (int(v) if v.isdigit() else -1, v))


def _pick_onnx(directory: Path) -> Path | None:
    preferred = directory / "model.onnx"
    if preferred.is_file():
        return preferred
    found = sorted(p for p in directory.glob("*.onnx") if p.is_file())
    return found[0] if len(found) == 1 else None


def _versions(directory: Path) -> dict[str, Path]:
    versions = {}
    for sub in sorted(directory.iterdir()):
        if sub.is_dir() and sub.name.isdigit():
            picked = _pick_onnx(sub)
            if picked is not None:
                versions[sub.name] = picked
    return versions


def discover(root: Path, name: str | None = None) -> dict[str, dict[str, Path]]:
    """Map model name -> {version: path} for a .onnx file or a directory in one of the layouts above."""
    if not root.exists():
        raise errors.StartupError(f"{root}: no such file or directory", hint="pass a .onnx file or a model directory")
    if root.is_file():
        if root.suffix != ".onnx":
            raise errors.StartupError(
                f"{root}: not an .onnx file", hint="pass an ONNX model (*.onnx) or a directory holding one"
            )
        return {name or root.stem: {DEFAULT_VERSION: root}}
    top = sorted(p for p in root.glob("*.onnx") if p.is_file())
    if len(top) == 1:
        return {name or top[0].stem: {DEFAULT_VERSION: top[0]}}
    if len(top) > 1:
        if name:
            raise errors.StartupError(
                f"{root} holds {len(top)} models, so --name cannot name them all", hint="drop --name"
            )
        return {p.stem: {DEFAULT_VERSION: p} for p in top}
    versions = _versions(root)
    if versions:
        return {name or root.name: versions}
    found: dict[str, dict[str, Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sub_versions = _versions(sub)
        single = _pick_onnx(sub)
        if sub_versions:
            found[sub.name] = sub_versions
        elif single is not None:
            found[sub.name] = {DEFAULT_VERSION: single}
    if not found:
        raise errors.StartupError(
            f"{root}: no ONNX model found",
            hint="put model.onnx in the directory, or 1/model.onnx for a versioned model",
        )
    if name and len(found) == 1:
        return {name: next(iter(found.values()))}
    if name:
        raise errors.StartupError(
            f"{root} holds {len(found)} models, so --name cannot name them all", hint="drop --name"
        )
    return found


class Repository:
    """The models under one path and their states. Thread-safe: loads run in worker threads."""

    def __init__(self, root: Path, name: str | None = None, *, intra_op_threads: int | None = None) -> None:
        self.root = root
        self.intra_op_threads = intra_op_threads
        self.entries = {n: Entry(n, v) for n, v in discover(root, name).items()}
        self.on_change: Callable[[Entry], None] | None = None

    def names(self) -> list[str]:
        return list(self.entries)

    def entry(self, name: str) -> Entry:
        found = self.entries.get(name)
        if found is None:
            raise errors.ModelNotFound(f"model '{name}' is not in this server's repository")
        return found

    def load(self, name: str) -> model.OnnxModel:
        """Load (or reload) a model; blocks, so transports call it from a thread."""
        entry = self.entry(name)
        with entry.lock:
            entry.state, entry.reason = State.LOADING, ""
            self._changed(entry)
            version = entry.served_version
            try:
                loaded = model.OnnxModel.load(
                    name, version, entry.versions[version], intra_op_threads=self.intra_op_threads
                )
            except errors.ServingError as exc:
                entry.state, entry.reason, entry.model = State.FAILED, exc.message, None
                self._changed(entry)
                raise
            entry.model, entry.state = loaded, State.READY
            self._changed(entry)
            return loaded

    def load_all(self) -> None:
        for name in self.entries:
            self.load(name)

    def unload(self, name: str) -> None:
        entry = self.entry(name)
        with entry.lock:
            entry.model, entry.state, entry.reason = None, State.UNAVAILABLE, "unloaded"
            self._changed(entry)

    def _changed(self, entry: Entry) -> None:
        if self.on_change is not None:
            self.on_change(entry)

    def get(self, name: str, version: str | None = None) -> model.OnnxModel:
        """The ready model, or ModelNotFound / ModelNotReady saying why not."""
        entry = self.entry(name)
        if version and version not in entry.versions:
            raise errors.ModelNotFound(
                f"model '{name}' has no version '{version}'; versions: {', '.join(entry.versions)}"
            )
        loaded = entry.model
        if loaded is None or entry.state is not State.READY:
            detail = f": {entry.reason}" if entry.reason else ""
            raise errors.ModelNotReady(f"model '{name}' is not ready ({entry.state.value.lower()}{detail})")
        if version and version != loaded.version:
            raise errors.ModelNotFound(f"model '{name}' version '{version}' is not served; it serves {loaded.version}")
        return loaded

    def is_ready(self, name: str, version: str | None = None) -> bool:
        try:
            self.get(name, version)
        except errors.ModelNotReady:
            return False
        return True

    def all_ready(self) -> bool:
        return bool(self.entries) and all(e.state is State.READY for e in self.entries.values())

    def index(self) -> list[dict[str, Any]]:
        rows = []
        for e in self.entries.values():
            row: dict[str, Any] = {"name": e.name, "version": e.served_version, "state": e.state.value}
            if e.reason:
                row["reason"] = e.reason
            rows.append(row)
        return rows

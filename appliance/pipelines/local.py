"""The local backend: each container task is a process on this machine, started by the launcher.

Called by `appliance.api.pipelines_run_local`, which hands a `LocalBackend` to `engine.Engine`.
What `kfp.local.SubprocessRunner` does, with the engine's full feature set, and faster: tasks run in
a "task Python" that has kfp (the SDK's pins clash with ours, so it is usually another virtualenv —
`make pipelines-runtime` creates `.venv-kfp`; the pipeline-runner image carries it), and by default
through a fork server (`forkserver`) that has imported kfp once, so a task starts in milliseconds.
`fork_server=False` runs `python -m appliance.pipelines` (the launcher) per task instead — exactly what a
Kubernetes pod will run.

Each task attempt gets a directory under the work directory: its task file, its log, its output
files and (for object-store roots) the local mount root where KFP's `/minio/...` paths live.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import appliance
from appliance.pipelines import backend, errors, store

LOG_TAIL_LINES = 20
START_TIMEOUT = 60.0
PYTHON_ENV = "ODH_PIPELINES_PYTHON"
RUNTIME_HINT = (
    "tasks need a Python with kfp 2.x: `make pipelines-runtime` creates .venv-kfp (then pass --python "
    ".venv-kfp/bin/python, or set ODH_PIPELINES_PYTHON)"
)


def _has_kfp(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('kfp') is None)"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_task_python(explicit: str | None = None) -> str:
    """The Python that runs tasks: --python, $ODH_PIPELINES_PYTHON, ours if it has kfp, or .venv-kfp."""
    chosen = explicit or os.environ.get(PYTHON_ENV)
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise errors.RuntimeUnavailable(
                f"the task Python {chosen} does not exist or is not executable", hint=RUNTIME_HINT
            )
        return found if os.sep in chosen else chosen
    if importlib.util.find_spec("kfp") is not None:
        return sys.executable
    candidate = Path(appliance.__file__).resolve().parent.parent / ".venv-kfp" / "bin" / "python"
    if candidate.exists():  # whether it has kfp: the fork server's first import (or start()) tells
        return str(candidate)
    raise errors.RuntimeUnavailable("no Python with kfp found to run the tasks", hint=RUNTIME_HINT)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class LocalSettings:
    python: str
    workdir: Path
    pipeline_root: str
    env: dict[str, str] = field(default_factory=dict)  # extra environment for tasks (object-store credentials)
    fork_server: bool = True
    allow_pip: bool = False
    task_timeout: float = 3600.0


class LocalBackend:
    """Runs container tasks as local processes; use as a context manager (starts/stops the fork server)."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.settings.python = os.path.abspath(settings.python)  # tasks run in other directories
        self.workdir = settings.workdir.resolve()
        self._server: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._running: set[int] = set()  # process groups of running tasks, stopped by close()
        self._running_lock = threading.Lock()
        self._socket_dir = ""
        self._server_log = self.workdir / f"forkserver-{os.getpid()}.log"  # one per run: errors quote it
        package = Path(appliance.__file__).resolve().parent
        # One directory per installed copy of our package (checkouts may share a data directory).
        self._package = package
        self._pythonpath = self.workdir / f".pythonpath-{hashlib.sha256(str(package).encode()).hexdigest()[:12]}"

    def __enter__(self) -> LocalBackend:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _task_env(self) -> dict[str, str]:
        bindir = str(Path(self.settings.python).parent)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(self.settings.env)
        env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/bin:/bin")])
        env["PYTHONPATH"] = str(self._pythonpath)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> None:
        """Expose our package to the task Python (only it, not our site-packages) and start the fork server."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._pythonpath.mkdir(parents=True, exist_ok=True)
        link = self._pythonpath / "appliance"
        if not link.exists():
            with contextlib.suppress(FileExistsError):  # another run made it at the same moment
                link.symlink_to(self._package, target_is_directory=True)
        if not self.settings.fork_server:
            if not _has_kfp(self.settings.python):
                raise errors.RuntimeUnavailable(f"{self.settings.python} cannot import kfp", hint=RUNTIME_HINT)
            return
        self._socket_dir = tempfile.mkdtemp(prefix="odh-pipelines-")
        sock = os.path.join(self._socket_dir, "fork.sock")
        log = self._server_log.open("wb")
        self._server = subprocess.Popen(
            [
                self.settings.python,
                "-m",
                "appliance.pipelines.forkserver",
                sock,
                *(["--with-minio"] if store.is_remote(self.settings.pipeline_root) else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self._task_env(),
            cwd=self.workdir,
        )
        log.close()

    def wait_ready(self) -> None:
        """Block until the fork server has imported kfp (started by `start`, so that the caller can
        do other set-up meanwhile); raise RuntimeUnavailable with its log when it does not come up."""
        if self._server is None or self._ready:
            return
        assert self._server.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._server.stdout], [], [], 0.5)
            if ready:
                line = self._server.stdout.readline()
                if line.strip() == b"ready":
                    self._ready = True
                    return
            if self._server.poll() is not None:
                break
        detail = log_tail(self._server_log, 3) or "no output"
        self.close()
        raise errors.RuntimeUnavailable(
            f"the task fork server of {self.settings.python} did not start: {detail}", hint=RUNTIME_HINT
        )

    def _track(self, pid: int, running: bool) -> None:
        with self._running_lock:
            (self._running.add if running else self._running.discard)(pid)

    def close(self) -> None:
        """Stop the fork server and every task still running (Ctrl-C, an error in the engine)."""
        with self._running_lock:
            running, self._running = set(self._running), set()
        for pid in running:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        if self._server is not None:
            with contextlib.suppress(OSError):
                if self._server.stdin is not None:
                    self._server.stdin.close()
            try:
                self._server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait(timeout=5)
            if self._server.stdout is not None:
                self._server.stdout.close()
            self._server = None
            self._ready = False
            with contextlib.suppress(OSError):
                if self._server_log.stat().st_size == 0:  # keep it only when it says something
                    self._server_log.unlink()
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)  # the socket, if the server got that far
            self._socket_dir = ""

    def _attempt_dir(self, run_id: str, task_id: str, attempt: int) -> Path:
        return self.workdir / run_id / backend.slug(task_id) / f"attempt-{attempt}"

    def outputs_dir(self, run_id: str, task_id: str, attempt: int) -> str:
        return str(self._attempt_dir(run_id, task_id, attempt) / "outputs")

    def run(self, request: backend.TaskRequest) -> backend.TaskResult:
        directory = self._attempt_dir(request.run_id, request.task_id, request.attempt)
        directory.mkdir(parents=True, exist_ok=True)
        remote = store.is_remote(request.pipeline_root)
        spec = backend.launcher_spec(
            request,
            mount_root=str(self.workdir / request.run_id / "mnt") if remote else "/",
            workdir=str(directory / "work"),
            allow_pip=self.settings.allow_pip,
            timeout=self.settings.task_timeout,
        )
        spec |= {"result_file": str(directory / "result.json"), "log_file": str(directory / "task.log")}
        task_file = directory / "task.json"
        task_file.write_text(json.dumps(spec))
        log = directory / "task.log"
        code = self._run_forked(task_file) if self._server is not None else self._run_subprocess(task_file, log)
        result_file = directory / "result.json"
        result: dict[str, object] = {}
        if result_file.exists():
            result = json.loads(result_file.read_text())
        error = str(result.get("error", "")) if result else ""
        if not result and code == 0:
            code, error = 1, "the launcher wrote no result"
        return backend.TaskResult(
            exit_code=code,
            parameters=dict(result.get("parameters", {})) if result else {},  # type: ignore[call-overload]
            artifacts=dict(result.get("artifacts", {})) if result else {},  # type: ignore[call-overload]
            error=error,
            log_path=str(log),
            log_tail=log_tail(log),
        )

    def _run_forked(self, task_file: Path) -> int:
        deadline = time.monotonic() + self.settings.task_timeout + 30
        pid = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(os.path.join(self._socket_dir, "fork.sock"))
            conn.sendall(f"{task_file}\n".encode())
            buffer = b""
            while time.monotonic() < deadline:
                conn.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                buffer += chunk
                for line in buffer.decode().splitlines():
                    if line.startswith("pid ") and not pid:
                        pid = int(line.split()[1])
                        self._track(pid, True)
                    elif line.startswith("exit "):
                        self._track(pid, False)
                        return int(line.split()[1])
            if pid:
                self._track(pid, False)
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
        return 124 if time.monotonic() >= deadline else 1

    def _run_subprocess(self, task_file: Path, log: Path) -> int:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [self.settings.python, "-m", "appliance.pipelines", str(task_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._task_env(),
                cwd=self.workdir,
                start_new_session=True,
            )
            self._track(proc.pid, True)
            try:
                return proc.wait(timeout=self.settings.task_timeout + 30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                return 124
            finally:
                self._track(proc.pid, False)

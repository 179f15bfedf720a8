"""A pre-warmed task starter: imports kfp once, then forks one child per task.

Started by `local.LocalBackend` as `python -m appliance.pipelines.forkserver SOCKET` in the task
Python (the one with kfp). Starting a fresh interpreter and importing kfp costs about half a second
per task; a fork of a process that has already done both costs a few milliseconds. Each child
redirects its stdout/stderr to the task's log file, runs `launcher.run_task(in_process=True)`,
writes the result file and reports its exit code on the connection.

Protocol (one Unix-socket connection per task): the client sends the task file's path and a
newline; the child answers `pid <n>\n` at once and `exit <code>\n` when done. The server exits when
its parent goes away or stdin closes. Standard library only (and what the launcher imports).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
from pathlib import Path

from appliance.pipelines import launcher


def _warm(with_minio: bool) -> None:
    """Import what tasks will need, so that forks start with it loaded.

    kfp is imported as its executor does (`_KFP_RUNTIME=true`: the DSL runtime without kfp.client and
    the Kubernetes client, 0.05 s instead of 0.5 s); the variable is removed again afterwards so that
    container components do not inherit it. minio only when the pipeline root is an object store.
    """
    import importlib  # noqa: PLC0415

    previous = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        try:
            importlib.import_module("kfp.dsl.executor_main")
        except ImportError as exc:
            print(f"this Python cannot import kfp: {exc}", file=sys.stderr, flush=True)
            sys.exit(3)
        for name in ("kfp.dsl.executor", *(("minio",) if with_minio else ())):
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    finally:
        if previous is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = previous


def _child(conn: socket.socket, task_file: str) -> int:
    conn.sendall(f"pid {os.getpid()}\n".encode())
    os.setsid()  # its own process group, so that a timeout can stop the task and whatever it started
    spec = json.loads(Path(task_file).read_text())
    log = os.open(spec["log_file"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    result = launcher.run_task(spec, in_process=True)
    launcher.write_result(spec, result)
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(f"exit {int(result['exit_code'])}\n".encode())
    return 0


def serve(socket_path: str) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    parent = os.getppid()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(64)
    print("ready", flush=True)
    while os.getppid() == parent:
        readable, _, _ = select.select([server, sys.stdin], [], [], 1.0)
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1):
            break
        if server not in readable:
            continue
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            while not data.endswith(b"\n") and len(data) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if not data.endswith(b"\n"):
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                code = 1
                try:
                    code = _child(conn, data.decode().strip())
                finally:
                    os._exit(code)
    server.close()


def main() -> None:
    args = sys.argv[1:]
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "--with-minio"):
        print("usage: python -m appliance.pipelines.forkserver SOCKET [--with-minio]", file=sys.stderr)
        sys.exit(2)
    _warm(with_minio="--with-minio" in args)
    serve(args[0])


if __name__ == "__main__":
    main()

"""Build and run the model server: REST and gRPC over one data plane, in one or several processes.

Called by `python -m appliance.serving` (the model-server image) and by `appliance.api.serve`
(`appliance serve model.onnx`). `serve` blocks until SIGINT or SIGTERM and then stops cleanly; a
startup failure (bad model path, busy port, a model that does not load) is raised as a
`ServingError` with a hint. The listeners open first and the models load after, so readiness
answers false while they load. With `workers > 1` each worker process loads its models, then binds the
same ports with SO_REUSEPORT, and the kernel spreads connections over the workers that are ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
import uvloop

from appliance.serving import dataplane, errors, grpc_server, metrics, repository, rest, tensors

log = logging.getLogger("appliance.serving")
MiB = 1024 * 1024
GC_THRESHOLD = 20_000  # allocations between young-generation collections (CPython's default: 700)


@dataclass(frozen=True)
class Options:
    model_path: Path
    name: str | None = None
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int | None = 8081  # None: no gRPC listener
    workers: int = 1
    max_body_bytes: int = 64 * MiB
    body_timeout: float = 30.0
    intra_op_threads: int | None = None  # ONNX Runtime intra-op threads per model; default 1 (model.py)


@dataclass(frozen=True)
class Endpoints:
    http: str
    grpc: str | None
    models: list[str] = field(default_factory=list)
    workers: int = 1


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int, *, reuse_port: bool, what: str = "HTTP", flag: str = "--http-port") -> socket.socket:
    """A listening TCP socket for uvicorn; StartupError when the address is taken or invalid."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise errors.StartupError(
            f"cannot resolve host {host!r}: {exc}", hint="use an IP address such as 127.0.0.1"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise errors.StartupError(
            f"cannot listen for {what} on {_address(host, port)}: {exc.strerror}",
            hint=f"the port is probably in use; pick another with {flag}",
        ) from None
    sock.listen(2048)
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` owns SIGINT/SIGTERM for both transports."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve_async(
    options: Options,
    on_ready: Callable[[Endpoints], None],
    *,
    reuse_port: bool,
    workers: int,
) -> None:
    repo = repository.Repository(options.model_path, options.name, intra_op_threads=options.intra_op_threads)
    plane = dataplane.DataPlane(repo, metrics.Metrics(), max_elements=options.max_body_bytes)
    app = rest.RestApp(plane, max_body_bytes=options.max_body_bytes, body_timeout=options.body_timeout)
    loop = asyncio.get_running_loop()
    preloaded = workers > 1
    if preloaded:
        # A worker joins the SO_REUSEPORT group only once its models are loaded, so the kernel never
        # hands a connection to a worker that would answer 503 while its siblings are ready. (With one
        # process the listeners open first and readiness says false while the models load.)
        await loop.run_in_executor(None, repo.load_all)
    sock = listen(options.host, options.http_port, reuse_port=reuse_port)
    http_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level="warning",
        timeout_graceful_shutdown=5,
        limit_concurrency=None,
    )
    http = _Uvicorn(config)
    grpc = None
    grpc_address = None
    if options.grpc_port is not None:
        grpc = grpc_server.GrpcServer(
            plane, options.host, options.grpc_port, max_message_bytes=options.max_body_bytes, reuse_port=reuse_port
        )
        grpc_address = _address(options.host, grpc.port)
        grpc.start()

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http_task = asyncio.create_task(http.serve(sockets=[sock]))
    try:
        for _ in range(500):  # uvicorn starts in milliseconds; bounded anyway
            if http.started or http_task.done():
                break
            await asyncio.sleep(0.01)
        if http_task.done():
            http_task.result()
            raise errors.StartupError("the HTTP server stopped while starting", hint="run with -v to see its log")
        load = _start_loading(loop, repo, preloaded=preloaded)
        stopped: asyncio.Future[bool] = asyncio.create_task(stop.wait())
        waiting: set[asyncio.Future[Any]] = {load, stopped}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if load in done:
            load.result()  # a model that does not load stops the server with its error
            tune_gc()
            http_url = f"http://{_address(options.host, http_port)}"
            on_ready(Endpoints(http_url, grpc_address, repo.names(), workers))
            await stopped
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        http.should_exit = True
        if grpc is not None:  # in a thread, so that REST drains meanwhile
            await loop.run_in_executor(None, grpc.stop, 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http_task, timeout=10)
        sock.close()


def _start_loading(
    loop: asyncio.AbstractEventLoop, repo: repository.Repository, *, preloaded: bool
) -> asyncio.Future[None]:
    """The models' load: already done (a worker loads before it listens), or started now in a thread."""
    if preloaded:
        done: asyncio.Future[None] = loop.create_future()
        done.set_result(None)
        return done
    return loop.run_in_executor(None, repo.load_all)


def tune_gc() -> None:
    """Requests allocate many short-lived objects; with the default thresholds the collector runs every
    few requests and now and then walks the whole heap (numpy, onnxruntime, grpc...), a latency spike.
    Freeze what startup built (never collected again) and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)


def _run(options: Options, on_ready: Callable[[Endpoints], None], *, reuse_port: bool, workers: int) -> None:
    # Overflowing casts of request values raise, so `tensors` rejects them without scanning for inf.
    with np.errstate(over=tensors.OVERFLOW), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_async(options, on_ready, reuse_port=reuse_port, workers=workers))


def serve(options: Options, on_ready: Callable[[Endpoints], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM. `on_ready` is called once every model is loaded and serving."""
    callback = on_ready or (lambda _endpoints: None)
    if options.workers <= 1:
        _run(options, callback, reuse_port=False, workers=1)
    else:
        _serve_workers(options, callback)


# ---- several worker processes -------------------------------------------------------------------


def _worker(options: Options, index: int, events: Any) -> None:
    """A worker process: serve with SO_REUSEPORT and report ready or a startup error to the parent."""
    logging.basicConfig(level=logging.WARNING, format=f"worker {index}: %(levelname)s %(name)s: %(message)s")
    try:
        _run(
            options,
            lambda endpoints: events.put(("ready", index, "", "")),
            reuse_port=True,
            workers=options.workers,
        )
    except errors.ApplianceError as exc:
        events.put(("error", index, exc.message, exc.hint or ""))
    except KeyboardInterrupt:
        pass


def _probe_port(host: str, port: int, what: str = "HTTP", flag: str = "--http-port") -> int:
    """Fail early when a port is taken (SO_REUSEPORT would otherwise share it silently); resolve port 0."""
    sock = listen(host, port, reuse_port=False, what=what, flag=flag)
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()


def _serve_workers(options: Options, on_ready: Callable[[Endpoints], None]) -> None:
    names = list(repository.discover(options.model_path, options.name))
    http_port = _probe_port(options.host, options.http_port)
    grpc_port = None
    if options.grpc_port is not None:
        grpc_port = _probe_port(options.host, options.grpc_port, "gRPC", "--grpc-port")
    resolved = replace(options, http_port=http_port, grpc_port=grpc_port)
    metrics_dir = tempfile.mkdtemp(prefix="odh-serving-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # the spawned workers inherit it
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(resolved, i, events), name=f"serving-worker-{i}")
        for i in range(options.workers)
    ]
    stop = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        ready: set[int] = set()
        announced = False
        while not stop:
            try:
                kind, index, message, hint = events.get(timeout=0.2)
            except queue.Empty:
                if any(not p.is_alive() for p in procs):
                    raise errors.StartupError(
                        "a worker process exited unexpectedly", hint="run with one worker to see its error"
                    ) from None
                continue
            if kind == "error":
                raise errors.StartupError(f"worker {index}: {message}", hint=hint or None)
            ready.add(index)
            if len(ready) == len(procs) and not announced:
                announced = True
                http = f"http://{_address(options.host, http_port)}"
                grpc = _address(options.host, grpc_port) if grpc_port is not None else None
                on_ready(Endpoints(http, grpc, names, options.workers))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_workers(procs)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _stop_workers(procs: list[Any]) -> None:
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(5)

"""Model-serving benchmark: one run, one machine, one ONNX model, every server.

    .venv/bin/python benchmarks/serving/run.py [--duration 10] [--concurrency 1 8]

Measures, with the same 4-in/3-out model (inputs a..d FP32 [1, 4]):
  raw       InferenceSession.run in a loop, in process (the floor; c threads at concurrency c)
  bare      a bare ASGI + onnxruntime app (bare_asgi.py): the reference for our REST overhead
  ours      python -m appliance.serving: REST JSON, REST binary, gRPC (1 worker, and 2 workers)
  kserve    KServe's Python ModelServer with a custom Model (kserve_server.py), REST JSON
  mlserver  MLServer with a custom MLModel (mlserver_runtime.py), REST JSON
and the binary-extension latency of a [1, 3, 224, 224] FP32 image model against InferenceSession.run.

Load comes from one native client in a separate process, h2load (Debian's nghttp2-client), for REST
(HTTP/1.1) and gRPC (HTTP/2) alike, so the client costs little CPU and the same for both. kserve and
mlserver live in their own virtualenvs under benchmarks/.venvs/, created here on first use. Results
are printed as a Markdown table and written to benchmarks/results/serving-<time>.json.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from appliance.serving import model as serving_model  # noqa: E402
from appliance.serving.proto import grpc_predict_v2_pb2 as pb  # noqa: E402
from appliance.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402
from tests import onnx_models  # noqa: E402

VENVS = REPO / "benchmarks" / ".venvs"
PINS = {
    "kserve": ["kserve==0.21.0", "onnxruntime==1.31.1"],
    # uvloop 0.22+ breaks MLServer 1.7.1's inference workers (get_event_loop() in a fresh process)
    "mlserver": ["mlserver==1.7.1", "onnxruntime==1.31.1", "uvloop==0.21.0"],
}


@dataclass
class Result:
    target: str
    protocol: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_venv(name: str) -> Path:
    python = VENVS / name / "bin" / "python"
    stamp = VENVS / name / ".pins"
    if not (python.exists() and stamp.exists() and stamp.read_text() == "\n".join(PINS[name])):
        print(f"creating {VENVS / name} ({', '.join(PINS[name])}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS[name]], check=True)
        stamp.write_text("\n".join(PINS[name]))
    return python


# ---- the load generator -------------------------------------------------------------------------


def h2load(url: str, body: Path, headers: dict[str, str], concurrency: int, duration: float, *, h1: bool) -> Result:
    """h2load: `concurrency` connections, one request in flight on each; p50/p99 from its per-request log."""
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        argv = ["h2load", "-D", str(max(1, round(duration))), "--warm-up-time", "1", "-c", str(concurrency), "-m", "1"]
        argv += ["-d", str(body), "--log-file", log.name, *(["--h1"] if h1 else [])]
        for key, value in headers.items():
            argv += ["-H", f"{key}: {value}"]
        run = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 60, check=True)
        rows = [line.split("\t") for line in Path(log.name).read_text().splitlines() if line.strip()]
    out = run.stdout
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    done = [row for row in rows if int(row[1]) >= 100]  # 0: cut off when the duration ended
    latencies = sorted(int(row[2]) / 1000 for row in done)
    errors = sum(1 for row in done if not row[1].startswith("2"))
    failed = re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    if failed:
        errors += sum(int(n) for n in failed.groups())
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result("", "", concurrency, rps, p50, p99, errors)


def raw_run(path: Path, feeds: dict[str, np.ndarray], concurrency: int, duration: float) -> Result:
    session = ort.InferenceSession(
        str(path), sess_options=serving_model.session_options(), providers=["CPUExecutionProvider"]
    )
    for _ in range(200):
        session.run(None, feeds)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    stop = time.perf_counter() + duration

    def loop(out: list[float]) -> None:
        while (start := time.perf_counter()) < stop:
            session.run(None, feeds)
            out.append(time.perf_counter() - start)

    threads = [threading.Thread(target=loop, args=(latencies[i],)) for i in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    samples = sorted(x for per in latencies for x in per)
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1e3  # noqa: E731
    return Result("raw InferenceSession.run", "in-process", concurrency, len(samples) / elapsed, p(0.5), p(0.99))


# ---- servers -------------------------------------------------------------------------------------


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120, body: bytes | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout}s")


@contextmanager
def process(
    argv: list[str], log: Path, cwd: Path | None = None, pythonpath: Path = REPO
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def mlserver_dir(work: Path, model: Path, http_port: int, grpc_port: int, parallel_workers: int | None) -> Path:
    root = work / f"mlserver-{parallel_workers}"
    (root / "four").mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "mlserver_runtime.py", root / "mlserver_runtime.py")
    settings: dict[str, object] = {"http_port": http_port, "grpc_port": grpc_port, "metrics_port": free_port()}
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "four",
        "implementation": "mlserver_runtime.OnnxRuntime",
        "parameters": {"uri": str(model)},
    }
    (root / "four" / "model-settings.json").write_text(json.dumps(model_settings))
    return root


# ---- the run -------------------------------------------------------------------------------------


def bodies(work: Path, feeds: dict[str, np.ndarray], image: np.ndarray) -> dict[str, tuple[Path, dict[str, str]]]:
    """Request bodies on disk for h2load: REST JSON, REST binary, the image, and a gRPC frame."""
    json_doc = {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": list(a.shape), "data": a.reshape(-1).tolist()}
            for n, a in feeds.items()
        ]
    }
    out: dict[str, tuple[Path, dict[str, str]]] = {}
    path = work / "four.json"
    path.write_bytes(orjson.dumps(json_doc))
    out["json"] = (path, {"content-type": "application/json"})

    def binary(name: str, tensors: dict[str, np.ndarray]) -> None:
        doc = {
            "inputs": [
                {"name": n, "datatype": "FP32", "shape": list(a.shape), "parameters": {"binary_data_size": a.nbytes}}
                for n, a in tensors.items()
            ],
            "parameters": {"binary_data_output": True},
        }
        header = orjson.dumps(doc)
        target = work / f"{name}.bin"
        target.write_bytes(header + b"".join(a.tobytes() for a in tensors.values()))
        headers = {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))}
        out[name] = (target, headers)

    binary("binary", feeds)
    binary("image", {"x": image})
    message = grpc_request(feeds).SerializeToString()
    (work / "four.grpc").write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)  # gRPC framing
    out["grpc"] = (work / "four.grpc", {"content-type": "application/grpc", "te": "trailers"})
    return out


def grpc_request(feeds: dict[str, np.ndarray]) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor
    return pb.ModelInferRequest(
        model_name="four",
        inputs=[tensor(name=n, datatype="FP32", shape=a.shape) for n, a in feeds.items()],
        raw_input_contents=[a.tobytes() for a in feeds.values()],
    )


def check_grpc(address: str, feeds: dict[str, np.ndarray]) -> None:
    """h2load sees only HTTP statuses: one real gRPC call first must return the right numbers."""
    with grpc.insecure_channel(address) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(grpc_request(feeds), timeout=30)
    got = np.frombuffer(reply.raw_output_contents[0], np.float32).reshape(1, 4)
    np.testing.assert_allclose(got, feeds["a"] + feeds["b"], rtol=1e-6)


def grpc_errors(http_url: str) -> float:
    """gRPC errors the server itself counted (h2load cannot see grpc-status)."""
    with urllib.request.urlopen(f"{http_url}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    prefix = "model_server_errors_total{"
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines if ln.startswith(prefix) and 'protocol="grpc"' in ln)


def machine_facts() -> dict[str, object]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "pygrpc-native": importlib.metadata.version("pygrpc-native"),  # our gRPC transport
        "grpcio": grpc.__version__,  # the floor server and the checking client
        "loadavg_before": os.getloadavg(),
    }


class Bench:
    """One run: the models, the request bodies, the results so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.duration, self.warm = args.duration, min(2.0, args.duration)
        self.work = Path(tempfile.mkdtemp(prefix="odh-serving-bench-"))
        self.models = self.work / "models"
        self.four = onnx_models.four_in_three_out(self.models / "four" / "model.onnx")
        self.image_model = onnx_models.image(self.models / "image" / "model.onnx")
        rng = np.random.default_rng(0)
        self.feeds = {n: rng.standard_normal((1, 4)).astype(np.float32) for n in "abcd"}
        self.image = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        self.body = bodies(self.work, self.feeds, self.image)
        self.results: list[Result] = []

    def record(self, target: str, protocol: str, result: Result) -> None:
        result.target, result.protocol = target, protocol
        self.results.append(result)
        print(
            f"  {target:30} {protocol:12} c={result.concurrency}: {result.rps:9.0f} req/s  "
            f"p50 {result.p50_ms:7.3f} ms  p99 {result.p99_ms:7.3f} ms  errors {result.errors}",
            flush=True,
        )

    def http_runs(self, target: str, url: str, kinds: list[str]) -> None:
        for kind in kinds:
            path, headers = self.body[kind]
            h2load(url, path, headers, 8, self.warm, h1=True)
            for c in self.args.concurrency:
                self.record(target, f"REST {kind}", h2load(url, path, headers, c, self.duration, h1=True))

    def grpc_runs(self, target: str, address: str, http_url: str) -> None:
        check_grpc(address, self.feeds)
        path, headers = self.body["grpc"]
        url = f"http://{address}/inference.GRPCInferenceService/ModelInfer"
        h2load(url, path, headers, 8, self.warm, h1=False)
        for c in self.args.concurrency:
            result = h2load(url, path, headers, c, self.duration, h1=False)
            result.errors += int(grpc_errors(http_url))
            self.record(target, "gRPC raw", result)

    def floor(self) -> None:
        for c in self.args.concurrency:
            self.record("raw InferenceSession.run", "in-process", raw_run(self.four, self.feeds, c, self.duration))

    def bare(self) -> None:
        for tuned in (False, True):
            port = free_port()
            argv = [sys.executable, str(HERE / "bare_asgi.py"), str(self.four), str(port)]
            with process([*argv, *(["--tune-gc"] if tuned else [])], self.work / f"bare-{tuned}.log") as proc:
                url = f"http://127.0.0.1:{port}/"
                wait_http(url, proc, body=self.body["json"][0].read_bytes())
                self.http_runs("bare ASGI + onnxruntime" + (" (GC tuned)" if tuned else ""), url, ["json"])

    def ours(self, workers: int) -> None:
        http_port, grpc_port = free_port(), free_port()
        argv = [
            sys.executable,
            "-m",
            "appliance.serving",
            "--model-dir",
            str(self.models),
            "--http-port",
            str(http_port),
        ]
        argv += ["--grpc-port", str(grpc_port), "--workers", str(workers), "--log-level", "WARNING"]
        http_url = f"http://127.0.0.1:{http_port}"
        with process(argv, self.work / f"ours{workers}.log", cwd=REPO) as proc:
            wait_http(f"{http_url}/v2/health/ready", proc)
            target = f"ours ({workers} worker{'s' if workers > 1 else ''})"
            self.http_runs(target, f"{http_url}/v2/models/four/infer", ["json", "binary"])
            self.grpc_runs(target, f"127.0.0.1:{grpc_port}", http_url)
            if workers == 1 and "image" not in self.args.skip:
                self.image_latency(f"{http_url}/v2/models/image/infer")

    def image_latency(self, url: str) -> None:
        """The binary extension's cost for a [1, 3, 224, 224] FP32 request, against InferenceSession.run."""
        path, headers = self.body["image"]
        h2load(url, path, headers, 1, self.warm, h1=True)
        self.record("ours (1 worker) image", "REST binary", h2load(url, path, headers, 1, self.duration, h1=True))
        self.record("raw run image", "in-process", raw_run(self.image_model, {"x": self.image}, 1, self.duration))

    def grpc_floor(self) -> None:
        port = free_port()
        with process([sys.executable, str(HERE / "grpc_floor.py"), str(port)], self.work / "grpc-floor.log") as proc:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            path, headers = self.body["grpc"]
            url = f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"
            h2load(url, path, headers, 8, self.warm, h1=False)
            for c in self.args.concurrency:
                result = h2load(url, path, headers, c, self.duration, h1=False)
                self.record("grpc.aio, canned reply (floor)", "gRPC raw", result)

    def kserve(self) -> None:
        python = ensure_venv("kserve")
        http_port, grpc_port = free_port(), free_port()
        argv = [str(python), str(HERE / "kserve_server.py"), str(self.four), "four", str(http_port), str(grpc_port)]
        with process(argv, self.work / "kserve.log") as proc:
            wait_http(f"http://127.0.0.1:{http_port}/v2/health/ready", proc)
            self.http_runs("KServe ModelServer", f"http://127.0.0.1:{http_port}/v2/models/four/infer", ["json"])

    def mlserver(self) -> None:
        # MLServer as configured by default (inference in one separate worker process), and with
        # parallel_workers=0 (inference in the server process), its fastest setting for a small model.
        python = ensure_venv("mlserver")
        for parallel_workers, target in ((None, "MLServer"), (0, "MLServer (parallel_workers=0)")):
            http_port, grpc_port = free_port(), free_port()
            root = mlserver_dir(self.work, self.four, http_port, grpc_port, parallel_workers)
            log = self.work / f"mlserver-{parallel_workers}.log"
            with process([str(python.parent / "mlserver"), "start", str(root)], log, cwd=root) as proc:
                wait_http(f"http://127.0.0.1:{http_port}/v2/models/four/ready", proc)
                self.http_runs(target, f"http://127.0.0.1:{http_port}/v2/models/four/infer", ["json"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=1, help="repeat everything; report each cell's median")
    parser.add_argument(
        "--skip", nargs="*", default=[], help="targets to skip: bare ours ours2 image grpcfloor kserve mlserver"
    )
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        print("error: h2load is not installed\nhint: apt-get install nghttp2-client", file=sys.stderr)
        return 1
    machine = machine_facts()
    print(f"machine: {machine}", flush=True)
    bench = Bench(args)
    steps = [("bare", bench.bare), ("ours", lambda: bench.ours(1)), ("ours2", lambda: bench.ours(2))]
    steps += [("grpcfloor", bench.grpc_floor), ("kserve", bench.kserve), ("mlserver", bench.mlserver)]
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}", flush=True)
        bench.floor()
        for name, step in steps:
            if name not in args.skip:
                step()
    machine["loadavg_after"] = os.getloadavg()
    report(bench.results, machine, args)
    return 0


def medians(results: list[Result]) -> list[Result]:
    """One row per (target, protocol, concurrency): the median of each number over the rounds."""
    groups: dict[tuple[str, str, int], list[Result]] = {}
    for r in results:
        groups.setdefault((r.target, r.protocol, r.concurrency), []).append(r)
    return [
        Result(
            target,
            protocol,
            c,
            statistics.median(r.rps for r in rows),
            statistics.median(r.p50_ms for r in rows),
            statistics.median(r.p99_ms for r in rows),
            sum(r.errors for r in rows),
        )
        for (target, protocol, c), rows in groups.items()
    ]


def report(all_results: list[Result], machine: dict[str, object], args: argparse.Namespace) -> None:
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = medians(all_results)
    document = {"machine": machine, "args": vars(args), "runs": [asdict(r) for r in all_results]}
    (out_dir / f"serving-{stamp}.json").write_text(json.dumps(document, indent=2))
    print(f"\nmedians over {args.rounds} round(s); all runs in benchmarks/results/serving-{stamp}.json")
    print("\n| target | protocol | concurrency | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        cells = [r.target, r.protocol, r.concurrency, f"{r.rps:.0f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", r.errors]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    by = {(r.target, r.protocol, r.concurrency): r for r in results}
    print()
    for c in args.concurrency:
        ours = by.get(("ours (1 worker)", "REST json", c))
        best = max(
            (r for r in results if r.target.startswith("ours (") and r.protocol == "REST json" and r.concurrency == c),
            key=lambda r: r.rps,
            default=None,
        )
        for name, other in (
            ("KServe", by.get(("KServe ModelServer", "REST json", c))),
            ("MLServer", by.get(("MLServer", "REST json", c))),
            ("MLServer (parallel_workers=0)", by.get(("MLServer (parallel_workers=0)", "REST json", c))),
            ("bare ASGI", by.get(("bare ASGI + onnxruntime", "REST json", c))),
            ("bare ASGI (GC tuned)", by.get(("bare ASGI + onnxruntime (GC tuned)", "REST json", c))),
        ):
            if ours and other:
                print(f"c={c}: ours(1 worker) REST JSON / {name} = {ours.rps / other.rps:.2f}x", end="")
                if best and best is not ours:
                    print(f"; best ours ({best.target}) / {name} = {best.rps / other.rps:.2f}x", end="")
                print()
        grpc = by.get(("ours (1 worker)", "gRPC raw", c))
        if ours and grpc:
            print(f"c={c}: ours gRPC / ours REST JSON = {grpc.rps / ours.rps:.2f}x")
        floor = by.get(("grpc.aio, canned reply (floor)", "gRPC raw", c))
        if ours and floor:
            print(f"c={c}: grpc.aio doing nothing / ours REST JSON = {floor.rps / ours.rps:.2f}x")
    image, raw = by.get(("ours (1 worker) image", "REST binary", 1)), by.get(("raw run image", "in-process", 1))
    if image and raw:
        print(
            f"image [1,3,224,224] FP32 via binary extension adds {image.p50_ms - raw.p50_ms:.3f} ms at p50 over run()"
        )


if __name__ == "__main__":
    sys.exit(main())

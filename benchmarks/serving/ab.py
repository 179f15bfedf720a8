"""Alternating A/B runs on a shared machine: the same measurements, interleaved, with CPU per request.

    .venv/bin/python benchmarks/serving/ab.py --rounds 5 --duration 4 \
        --variant rest=ours:json --variant grpc=ours:grpc [--variant bare=bare:json] [--src old=DIR]

`run.py` measures every server one after the other, so a burst of load from another process lands on
whichever server is being measured at that moment. Here every server starts once, and each round
measures every variant in turn at every concurrency, so the variants share the machine's moods; each
measurement also records the server's own CPU time per request (utime + stime of its process from
/proc, which moves far less than req/s) and the load average. A variant is NAME=SERVER:BODY with
SERVER one of `ours`, `ours-nogrpc` (ours with --no-grpc), `bare`, `bare-gc` (bare_asgi.py, with and
without --tune-gc), optionally `ours@SRC` to run the model server from another source tree given with
--src SRC=DIR, and BODY one of json, binary, grpc. One worker process each. Prints one line per
measurement, then per pair of variants the ratio of each round and the median; all of it also goes
to benchmarks/results/serving-ab-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/serving/run.py: h2load, bodies, process, wait_http)

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    round: int
    variant: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    loadavg: str
    errors: int


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (every thread of the process)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Servers:
    def __init__(self, bench: run.Bench, sources: dict[str, Path], stack: contextlib.ExitStack) -> None:
        self.bench, self.sources, self.stack = bench, sources, stack
        self.running: dict[str, tuple[int, str, str]] = {}  # server -> pid, REST URL, gRPC address

    def get(self, server: str) -> tuple[int, str, str]:
        if server not in self.running:
            self.running[server] = self._start(server)
        return self.running[server]

    def _start(self, server: str) -> tuple[int, str, str]:
        bench = self.bench
        http_port, grpc_port = run.free_port(), run.free_port()
        log = bench.work / f"ab-{server.replace('@', '-')}.log"
        if server.startswith("bare"):
            argv = [sys.executable, str(HERE / "bare_asgi.py"), str(bench.four), str(http_port)]
            proc = self.stack.enter_context(run.process([*argv, *(["--tune-gc"] if server == "bare-gc" else [])], log))
            url = f"http://127.0.0.1:{http_port}/"
            run.wait_http(url, proc, body=bench.body["json"][0].read_bytes())
            return proc.pid, url, ""
        kind, _, source = server.partition("@")
        cwd = self.sources[source] if source else run.REPO
        argv = [sys.executable, "-m", "appliance.serving", "--model-dir", str(bench.models)]
        argv += ["--http-port", str(http_port), "--log-level", "WARNING"]
        argv += ["--no-grpc"] if kind == "ours-nogrpc" else ["--grpc-port", str(grpc_port)]
        proc = self.stack.enter_context(run.process(argv, log, cwd=cwd, pythonpath=cwd))
        http_url = f"http://127.0.0.1:{http_port}"
        run.wait_http(f"{http_url}/v2/health/ready", proc)
        if kind == "ours":
            run.check_grpc(f"127.0.0.1:{grpc_port}", bench.feeds)
        return proc.pid, f"{http_url}/v2/models/four/infer", f"127.0.0.1:{grpc_port}"


def measure(servers: Servers, spec: str, c: int, duration: float) -> tuple[run.Result, float]:
    server, body = spec.split(":")
    pid, url, address = servers.get(server)
    path, headers = servers.bench.body[body]
    h1 = body != "grpc"
    if not h1:
        url = f"http://{address}/inference.GRPCInferenceService/ModelInfer"
    before = cpu_seconds(pid)
    result = run.h2load(url, path, headers, c, duration, h1=h1)
    spent = cpu_seconds(pid) - before
    requests = result.rps * (duration + 1)  # h2load's measured window plus its 1 s warm-up (both load the server)
    return result, spent / requests * 1e6 if requests else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="NAME=SERVER:BODY (at least two)")
    parser.add_argument("--src", action="append", default=[], help="SRC=DIR: a source tree for ours@SRC")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.variant)
    sources = {name: Path(d).resolve() for name, d in (s.split("=", 1) for s in args.src)}
    bench = run.Bench(argparse.Namespace(duration=args.duration, concurrency=args.concurrency, skip=[]))
    samples: list[Sample] = []
    with contextlib.ExitStack() as stack:
        servers = Servers(bench, sources, stack)
        for spec in variants.values():  # start each and warm it up before the first measurement
            server, body = spec.split(":")
            servers.get(server)
            measure(servers, spec, 8, 1)
        for r in range(1, args.rounds + 1):
            for c in args.concurrency:
                for name, spec in variants.items():
                    load = loadavg()
                    result, cpu = measure(servers, spec, c, args.duration)
                    s = Sample(r, name, c, result.rps, result.p50_ms, result.p99_ms, cpu, load, result.errors)
                    samples.append(s)
                    print(
                        f"round {r} c={c} {name:12} {s.rps:8.0f} req/s  p50 {s.p50_ms:6.3f} ms  "
                        f"p99 {s.p99_ms:6.3f} ms  {cpu:6.1f} µs CPU/req  load {load}  errors {s.errors}",
                        flush=True,
                    )
    names = list(variants)
    print()
    for other in names[1:]:
        for c in args.concurrency:
            ratios, cpu_ratios = [], []
            for r in range(1, args.rounds + 1):
                a = next(s for s in samples if s.round == r and s.variant == other and s.concurrency == c)
                b = next(s for s in samples if s.round == r and s.variant == names[0] and s.concurrency == c)
                ratios.append(a.rps / b.rps)
                cpu_ratios.append(a.cpu_us_per_request / b.cpu_us_per_request)
            print(
                f"c={c} {other} / {names[0]} req/s: "
                + " ".join(f"{x:.2f}" for x in ratios)
                + f"  median {statistics.median(ratios):.2f}   CPU/req: "
                + " ".join(f"{x:.2f}" for x in cpu_ratios)
                + f"  median {statistics.median(cpu_ratios):.2f}"
            )
    out = run.REPO / "benchmarks" / "results" / f"serving-ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"argv": sys.argv[1:], "variants": variants, "machine": run.machine_facts()}
    doc["samples"] = [asdict(s) for s in samples]
    out.write_text(json.dumps(doc, indent=1, default=str))
    print(f"\n{out.relative_to(run.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

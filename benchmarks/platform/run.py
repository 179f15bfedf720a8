"""Platform benchmark: `appliance up` from images already in the local engine to DataScienceCluster
Ready, the idle memory of cluster + platform, and `appliance down`.

    .venv/bin/python benchmarks/platform/run.py [--rounds 1] [--idle 60]

"From a loaded bundle" means what `appliance bundle load` leaves behind: the node image and the
platform images in the local Docker engine, nothing else. Each round runs, in a cluster of its own
(`odh-bench`, free host ports, a private data directory):

  up      `appliance up` from no cluster until it returns — it returns once the operator reports the
          DataScienceCluster; the script then waits (bounded) for phase Ready and records that time
  idle    after `--idle` seconds with nothing deployed: the node container's memory (`docker stats`,
          i.e. the cgroup of the whole cluster: control plane, kubelet, containerd and every pod) and
          the per-pod view of the biggest processes inside it
  second  a second `appliance up` on the healthy cluster (the idempotent path)
  down    `appliance down`

Results are printed and written to benchmarks/results/platform-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "odh-bench"
READY_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def appliance(env: dict[str, str], *args: str, timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)  # fmt: skip
    return time.monotonic() - start, result


def kubectl(env: dict[str, str], kubeconfig: Path, *args: str) -> str:
    binary = next(Path.home().glob(".cache/odh-appliance/go/bin/kubectl-*/kubectl"), None)
    argv = [str(binary) if binary else "kubectl", "--kubeconfig", str(kubeconfig), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False).stdout


def dsc_phase(env: dict[str, str], kubeconfig: Path) -> str:
    return kubectl(env, kubeconfig, "get", "dsc", "default-dsc", "-o", "jsonpath={.status.phase}").strip()


def node_memory(name: str) -> dict[str, str]:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}", name], capture_output=True,
                         text=True, timeout=60, check=False).stdout  # fmt: skip
    data = json.loads(out.splitlines()[0]) if out.strip() else {}
    return {"mem_usage": data.get("MemUsage", "?"), "cpu": data.get("CPUPerc", "?")}


def top_processes(name: str) -> list[str]:
    """The biggest resident processes in the node (the cgroup total includes page cache, these do not)."""
    out = subprocess.run(["docker", "exec", name, "ps", "-eo", "rss=,comm=", "--sort=-rss"], capture_output=True,
                         text=True, timeout=60, check=False).stdout  # fmt: skip
    rows = []
    for line in out.splitlines()[:12]:
        rss, _, comm = line.strip().partition(" ")
        if rss.isdigit():
            rows.append(f"{comm.strip()} {int(rss) / 1024:.0f} MiB")
    return rows


def one_round(idle: float) -> dict[str, object]:
    data_home = Path(tempfile.mkdtemp(prefix="odh-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODH_APPLIANCE_")}
    env |= {"XDG_DATA_HOME": str(data_home / "data"), "XDG_CONFIG_HOME": str(data_home / "config"),
            "ODH_APPLIANCE_CLUSTER_NAME": CLUSTER, "ODH_APPLIANCE_PORTS__HTTP": str(free_port()),
            "ODH_APPLIANCE_PORTS__GRPC": str(free_port()), "COLUMNS": "200"}  # fmt: skip
    kubeconfig = data_home / "data" / "odh-appliance" / "clusters" / CLUSTER / "kubeconfig"
    appliance(env, "down", timeout=600)
    result: dict[str, object] = {}
    try:
        start = time.monotonic()
        seconds, up = appliance(env, "up")
        if up.returncode != 0:
            raise SystemExit(f"appliance up failed:\n{up.stdout}\n{up.stderr}")
        result["up_returned_s"] = round(seconds, 1)
        deadline = time.monotonic() + READY_TIMEOUT
        while dsc_phase(env, kubeconfig) != "Ready":
            if time.monotonic() > deadline:
                dump = kubectl(env, kubeconfig, "get", "dsc", "-o", "yaml")
                raise SystemExit(f"the DataScienceCluster did not become Ready:\n{dump}")
            time.sleep(1)
        result["dsc_ready_s"] = round(time.monotonic() - start, 1)
        result["up_steps"] = [line for line in up.stderr.splitlines() if line.startswith(("✓", "-", "✗"))]
        time.sleep(idle)
        result["idle_after_s"] = idle
        result["node_idle"] = node_memory(f"{CLUSTER}-control-plane")
        result["node_top_rss"] = top_processes(f"{CLUSTER}-control-plane")
        seconds, again = appliance(env, "up")
        result["second_up_s"] = round(seconds, 1)
        result["second_up_ok"] = again.returncode == 0
    finally:
        seconds, down = appliance(env, "down", timeout=600)
        result["down_s"] = round(seconds, 1)
        result["down_ok"] = down.returncode == 0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    rounds = []
    for n in range(args.rounds):
        print(f"round {n + 1}/{args.rounds} ...", flush=True)
        rounds.append(one_round(args.idle))
        print(json.dumps(rounds[-1], indent=2), flush=True)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "rounds": rounds,
    }
    out = ROOT / "benchmarks" / "results" / f"platform-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()

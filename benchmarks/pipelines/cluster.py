"""Submit → Succeeded on the cluster's pipeline server, for the trivial 3-step pipeline; per-task overhead.

    .venv/bin/python benchmarks/pipelines/cluster.py --rounds 5 [--server URL --token T]

Needs a running appliance with datasciencepipelines Managed (the CLI's configuration names the
cluster: ODH_APPLIANCE_CLUSTER_NAME, ports). Compiles `tests/integration/pipelines/sources/trivial.py`
with the task Python's kfp, uploads it, then per round: create a run (caching off) and poll its
state every 50 ms until it ends. Reported per round: submit → Succeeded (client clock), and per
task: the server's started → finished (pod created, scheduled, container started, the launcher
and component ran, log read back, pod deleted). "Overhead" is that task time minus the component's
own run time, which the launcher's log prints as `seconds` in its result line. Results go to
`benchmarks/results/pipelines-cluster-<time>.json`; the medians are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appliance import api
from appliance.pipelines import launcher, local

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "integration" / "pipelines" / "sources" / "trivial.py"


def compile_trivial(out: Path) -> Path:
    target = out / "trivial.yaml"
    script = (
        f"import sys; sys.path.insert(0, {str(SOURCE.parent)!r}); import trivial; from kfp import compiler; "
        f"compiler.Compiler().compile(trivial.pipeline, {str(target)!r})"
    )
    subprocess.run([local.find_task_python(), "-W", "ignore", "-c", script], check=True, timeout=300)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server")
    parser.add_argument("--token")
    args = parser.parse_args()
    server = api.pipelines_server(api.load_config(), url=args.server, token=args.token)
    with tempfile.TemporaryDirectory() as tmp:
        uploaded = api.pipelines_upload(server, compile_trivial(Path(tmp)), name="bench-trivial",
                                        version=time.strftime("v%Y%m%d-%H%M%S"))  # fmt: skip
    rounds = []
    for i in range(args.rounds):
        submitted = time.monotonic()
        run = api.pipelines_create_run(server, "bench-trivial", version=uploaded["version"], enable_cache=False)
        done = api.pipelines_wait(server, run["run_id"], timeout=600, interval=0.05)
        total = time.monotonic() - submitted
        tasks = []
        for task in done["tasks"]:
            result = launcher.read_result(api.pipelines_task_log(server, run["run_id"], task["task_id"])) or {}
            component = float(result.get("seconds", 0.0))
            tasks.append({"task": task["task_id"], "seconds": task["seconds"], "launcher_seconds": component,
                          "overhead": task["seconds"] - component})  # fmt: skip
        rounds.append({"run_id": run["run_id"], "state": done["state"], "submit_to_end": total, "tasks": tasks})
        print(f"round {i + 1}: {done['state']} in {total:.2f}s; tasks "
              + ", ".join(f"{t['seconds']:.2f}s" for t in tasks), flush=True)  # fmt: skip
    out = ROOT / "benchmarks" / "results" / f"pipelines-cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"rounds": rounds}, indent=2))
    ok = [r for r in rounds if r["state"] == "succeeded"]
    if not ok:
        print("no round succeeded", file=sys.stderr)
        return 1
    per_task = [t for r in ok for t in r["tasks"]]
    print(
        f"median submit → Succeeded: {statistics.median(r['submit_to_end'] for r in ok):.2f}s "
        f"(min {min(r['submit_to_end'] for r in ok):.2f}s, max {max(r['submit_to_end'] for r in ok):.2f}s)"
    )
    print(f"median per task: {statistics.median(t['seconds'] for t in per_task):.2f}s, of which the launcher "
          f"{statistics.median(t['launcher_seconds'] for t in per_task):.2f}s; overhead "
          f"{statistics.median(t['overhead'] for t in per_task):.2f}s")  # fmt: skip
    print(f"samples: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

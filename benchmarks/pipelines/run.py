"""Benchmark: a trivial 3-step sequential pipeline, kfp.local versus our local runner.

    .venv/bin/python benchmarks/pipelines/run.py --rounds 5

Compiles tests/integration/pipelines/sources/trivial.py with the task Python (.venv-kfp), then, in
alternation for each round:
- kfp.local: `kfp.local.init(SubprocessRunner(use_venv=False))` and a call of the pipeline, timed in
  a process that has already imported kfp (the number kfp.local users see per run), and the whole
  process (python start + import kfp + run);
- ours, `api.pipelines_run_local` in process (fork server start included, caching off), and the
  engine part alone (after the fork server is up), with each task's start-to-end time;
- ours, the CLI end to end (`appliance pipelines run --local --no-cache`: python start, imports,
  fork server, run, summary);
- ours without the fork server (one `python -m appliance.pipelines.launcher` per task, what a pod runs).
Prints a Markdown table of medians and writes every sample to benchmarks/results/pipelines-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "tests" / "integration" / "pipelines" / "sources"
sys.path.insert(0, str(ROOT))

from appliance import api, progress  # noqa: E402
from appliance.pipelines import local  # noqa: E402

KFP_LOCAL = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {sources!r})
import kfp.local, trivial
t1 = time.perf_counter()
kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root={root!r})
task = trivial.pipeline(x=1)
t2 = time.perf_counter()
assert task.output == 4, task.output
print(json.dumps({{"import": t1 - t0, "run": t2 - t1}}))
"""


def compile_trivial(python: str, out: Path) -> Path:
    script = (
        f"import sys; sys.path.insert(0, {str(SOURCES)!r}); import trivial; from kfp import compiler; "
        f"compiler.Compiler().compile(trivial.pipeline, {str(out)!r})"
    )
    subprocess.run([python, "-W", "ignore", "-c", script], check=True, timeout=300)
    return out


def kfp_local_round(python: str, tmp: Path) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-W", "ignore", "-c", KFP_LOCAL.format(sources=str(SOURCES), root=str(tmp / "kfp-root"))],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    wall = time.perf_counter() - started
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    return {"run": inner["run"], "process": wall}


def ours_round(python: str, pipeline: Path, tmp: Path, *, fork_server: bool) -> dict[str, Any]:
    loaded = api.load_config()
    events: list[progress.StepEvent] = []
    started = time.perf_counter()
    run = api.pipelines_run_local(
        loaded,
        pipeline,
        api.Progress(events.append),
        parameters={"x": "1"},
        pipeline_root=str(tmp / "root"),
        enable_cache=False,
        python=python,
        fork_server=fork_server,
        database=tmp / "runs.db",
        workdir=tmp / "work",
    )
    wall = time.perf_counter() - started
    assert run.state == "succeeded" and run.outputs == {"Output": 4}, run
    first = min(t.started for t in run.tasks if t.started is not None)
    last = max(t.finished for t in run.tasks if t.finished is not None)
    return {
        "api": wall,
        "engine": last - first,
        "tasks": [t.seconds for t in run.tasks],
    }


def cli_round(python: str, pipeline: Path, tmp: Path) -> float:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "xdg")}
    args = [str(ROOT / ".venv" / "bin" / "appliance"), "pipelines", "run", str(pipeline), "--local", "--no-cache"]
    started = time.perf_counter()
    subprocess.run([*args, "--python", python], env=env, capture_output=True, check=True, timeout=300)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", help="the task Python with kfp [default: found like the CLI does]")
    options = parser.parse_args()
    python = local.find_task_python(options.python)
    samples: dict[str, list[Any]] = {
        k: [] for k in ("kfp_run", "kfp_process", "api", "engine", "tasks", "cli", "nofork")
    }
    with tempfile.TemporaryDirectory(prefix="pipelines-bench-") as name:
        tmp = Path(name)
        pipeline = compile_trivial(python, tmp / "trivial.yaml")
        for i in range(options.rounds):
            kfp = kfp_local_round(python, tmp / f"kfp{i}")
            samples["kfp_run"].append(kfp["run"])
            samples["kfp_process"].append(kfp["process"])
            ours = ours_round(python, pipeline, tmp / f"ours{i}", fork_server=True)
            samples["api"].append(ours["api"])
            samples["engine"].append(ours["engine"])
            samples["tasks"].extend(ours["tasks"])
            samples["cli"].append(cli_round(python, pipeline, tmp / f"cli{i}"))
            samples["nofork"].append(ours_round(python, pipeline, tmp / f"nofork{i}", fork_server=False)["api"])
            print(f"round {i + 1}: kfp.local {kfp['run']:.2f}s, ours {ours['api']:.2f}s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in samples.items()}
    rows = [
        ("kfp.local SubprocessRunner, run only (kfp already imported)", med["kfp_run"]),
        ("kfp.local, whole process (python + import kfp + run)", med["kfp_process"]),
        ("**ours, api.pipelines_run_local (fork server start included)**", med["api"]),
        ("ours, engine only: first task start to last task end", med["engine"]),
        ("ours, one task start to end (median of all tasks)", med["tasks"]),
        ("ours, CLI end to end (`appliance pipelines run --local --no-cache`)", med["cli"]),
        ("ours without the fork server (a launcher process per task)", med["nofork"]),
    ]
    print(f"\n{options.rounds} rounds, medians; task Python {python}\n")
    print("| what | seconds |\n|---|---:|")
    for label, value in rows:
        print(f"| {label} | {value:.3f} |")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"pipelines-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"rounds": options.rounds, "python": python, "samples": samples}, indent=1))
    print(f"\nsamples: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""How long the GPU pieces take to build from source (docs/gpu.md, docs/benchmarks.md).

Builds the NVIDIA Container Toolkit binaries (Go module proxy, cgo) and the NVIDIA device plugin
(vendored source of its pinned commit, offline) into a temporary binary cache, so each build really
runs. `--cold` also uses an empty Go build cache (and so compiles every package); without it the
machine's Go build cache is used, as a rebuild after a recipe change would. Module downloads are
never timed out of the picture: the module cache is the machine's.

    .venv/bin/python benchmarks/gpu/build_times.py --source ~/.cache/odh-appliance/src/k8s-device-plugin [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from appliance.images import gobuild, gpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="git repository of k8s-device-plugin")
    parser.add_argument("--cold", action="store_true", help="use an empty Go build cache")
    args = parser.parse_args()
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="odh-gpu-bench-") as tmp:
        if args.cold:
            os.environ["GOCACHE"] = str(Path(tmp) / "gocache")
        cache = Path(tmp) / "cache"
        for recipe in gpu.TOOLKIT_BINARIES:
            started = time.monotonic()
            gobuild.build(recipe, cache)
            timings[recipe.name] = round(time.monotonic() - started, 1)
            print(f"{recipe.name} {recipe.version}: {timings[recipe.name]} s", flush=True)
        started = time.monotonic()
        gpu.build_vendored(gpu.DEVICE_PLUGIN, args.source, cache)
        timings[gpu.DEVICE_PLUGIN.name] = round(time.monotonic() - started, 1)
        print(f"{gpu.DEVICE_PLUGIN.name} {gpu.DEVICE_PLUGIN.version}: {timings[gpu.DEVICE_PLUGIN.name]} s", flush=True)
    results = Path(__file__).resolve().parents[1] / "results"
    results.mkdir(exist_ok=True)
    name = f"gpu-build-{'cold' if args.cold else 'warm'}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    (results / name).write_text(json.dumps({"cold_go_cache": args.cold, "seconds": timings}, indent=2) + "\n")
    print(f"written: benchmarks/results/{name}")


if __name__ == "__main__":
    main()

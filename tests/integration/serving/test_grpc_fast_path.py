"""gRPC's fast paths (raw_feeds, grpc_wire) accept only what the general path accepts and reply the
same (the checks run in their own process: see grpc_fast_path_checks.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import onnx_models

REPO = Path(__file__).resolve().parents[3]


def test_the_grpc_fast_path_accepts_only_what_the_full_path_accepts(tmp_path: Path) -> None:
    onnx_models.four_in_three_out(tmp_path / "four" / "model.onnx")
    script = Path(__file__).with_name("grpc_fast_path_checks.py")
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], check=False, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok ") >= 36, run.stdout  # every check ran

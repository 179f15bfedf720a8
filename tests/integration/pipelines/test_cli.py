"""`appliance pipelines run --local` as a user runs it: a real process, task states, summary, exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import MinioServer
from tests.integration.conftest import RunCli, closed_port
from tests.integration.pipelines.conftest import BUCKET

pytestmark = pytest.mark.integration


def test_run_prints_task_states_and_the_outputs(
    run_cli: RunCli, compiled: dict[str, Path], task_python: str, minio_server: MinioServer
) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": minio_server.access_key,
        "AWS_SECRET_ACCESS_KEY": minio_server.secret_key,
        "AWS_S3_ENDPOINT": minio_server.url,
    }
    args = ["pipelines", "run", str(compiled["trivial"]), "--local", "-p", "x=5", "--python", task_python]
    result = run_cli(*args, "--pipeline-root", f"s3://{BUCKET}/cli", env=env)
    assert result.returncode == 0, result.stderr
    for task in ("add", "add-2", "add-3"):
        assert f"• {task} running" in result.stderr
        assert f"✓ {task} succeeded" in result.stderr
    assert "output Output = 8" in result.stdout
    assert "trivial: succeeded" in result.stdout
    again = run_cli(*args, "--pipeline-root", f"s3://{BUCKET}/cli", "--json", env=env)
    assert again.returncode == 0, again.stderr
    data = again.json()
    assert data["state"] == "succeeded" and data["outputs"] == {"Output": 8}
    assert [t["state"] for t in data["tasks"]] == ["cached"] * 3  # same inputs: the earlier run's outputs


def test_a_failing_run_exits_non_zero_with_exit_code_and_log_tail(
    run_cli: RunCli, compiled: dict[str, Path], task_python: str, tmp_path: Path
) -> None:
    result = run_cli(
        "pipelines", "run", str(compiled["failing"]), "--local", "--python", task_python,
        "-p", f"marker_dir={tmp_path}", "-p", "code=9", "--pipeline-root", str(tmp_path / "root"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "error: task exit-handler-1/boom failed: exit code 9" in result.stderr
    assert "about to fail: the disk is full (simulated)" in result.stderr  # the log tail
    assert "hint: its log: " in result.stderr
    assert "Traceback" not in result.stderr
    assert "✓ final succeeded" in result.stderr  # the exit handler still ran


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "x"], "error: -p expects NAME=VALUE"),
        (["-p", "x=abc"], "error: parameter x: 'abc' is not a valid NUMBER_INTEGER"),
        (["-p", "y=1"], "error: pipeline 'trivial' has no parameter 'y'"),
    ],
)
def test_bad_parameters_are_one_line_errors(
    run_cli: RunCli, compiled: dict[str, Path], task_python: str, args: list[str], message: str
) -> None:
    result = run_cli("pipelines", "run", str(compiled["trivial"]), "--local", "--python", task_python, *args)
    assert result.returncode == 2 or (result.returncode == 1 and "-p expects" in message)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_file_that_is_not_a_pipeline_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"schemaVersion": "2.1.0", "pipelineInfo": {"name": "x"}, "root": {"dag": {"tasks": {
        "a": {"componentRef": {"name": "comp-missing"}, "taskInfo": {"name": "a"}}}}}}))  # fmt: skip
    result = run_cli("pipelines", "run", str(bad), "--local")
    assert result.returncode == 2
    assert "error: component root: task a: componentRef 'comp-missing' is not defined" in result.stderr
    assert "hint: compile the pipeline with the kfp SDK" in result.stderr
    assert "Traceback" not in result.stderr
    # Without --local the run is for the cluster's pipeline server: the file is checked here first.
    without_local = run_cli("pipelines", "run", str(bad))
    assert without_local.returncode == 2 and "componentRef 'comp-missing' is not defined" in without_local.stderr
    no_cluster = run_cli("pipelines", "run", "trivial")  # a pipeline name, and no cluster: one line + hint
    assert no_cluster.returncode == 1 and "hint: run `appliance up`" in no_cluster.stderr
    assert "Traceback" not in no_cluster.stderr


def test_a_task_python_without_kfp_is_a_clear_error(run_cli: RunCli, compiled: dict[str, Path], tmp_path: Path) -> None:
    base = ["pipelines", "run", str(compiled["trivial"]), "--local", "--pipeline-root", str(tmp_path)]
    result = run_cli(*base, "--python", sys.executable)  # the appliance's own Python has no kfp
    assert result.returncode == 1
    assert "did not start: this Python cannot import kfp" in result.stderr
    assert "hint: tasks need a Python with kfp 2.x" in result.stderr and "Traceback" not in result.stderr
    nofork = run_cli(*base, "--python", sys.executable, "--no-fork-server")
    assert nofork.returncode == 1 and "cannot import kfp" in nofork.stderr
    missing = run_cli(*base, "--python", str(tmp_path / "no-python"))
    assert missing.returncode == 1 and "does not exist or is not executable" in missing.stderr


def test_an_unusable_pipeline_root_is_a_clear_error(
    run_cli: RunCli, compiled: dict[str, Path], task_python: str, tmp_path: Path
) -> None:
    base = ["pipelines", "run", str(compiled["trivial"]), "--local", "--python", task_python]
    no_credentials = run_cli(*base, "--pipeline-root", "s3://bucket/x")
    assert no_credentials.returncode == 1
    assert "error: an s3:// pipeline root needs AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT" in (
        no_credentials.stderr
    )
    closed = {
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_S3_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
    }
    unreachable = run_cli(*base, "--pipeline-root", "s3://bucket/x", env=closed)
    assert (
        unreachable.returncode == 1 and "error: cannot reach the object store for s3://bucket/x" in unreachable.stderr
    )
    assert "hint: check AWS_S3_ENDPOINT" in unreachable.stderr
    a_file = tmp_path / "file"
    a_file.write_text("")
    not_a_dir = run_cli(*base, "--pipeline-root", str(a_file / "sub"))
    assert not_a_dir.returncode == 1 and f"error: cannot use {a_file / 'sub'} as the pipeline root" in not_a_dir.stderr
    for result in (no_credentials, unreachable, not_a_dir):
        assert "Traceback" not in result.stderr

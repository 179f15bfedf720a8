"""The launcher on its own, as a pod will run it: no engine, no kfp, the task JSON in, a result out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import minio
import pytest

from appliance.pipelines import launcher
from tests.integration.pipelines.conftest import BUCKET, read_object

pytestmark = pytest.mark.integration


def _task(tmp_path: Path, root: str, mount_root: str) -> dict[str, object]:
    """A container component: reads an input artifact, writes an output parameter and artifact."""
    data_uri = f"{root}/in/data.txt"
    return {
        "task": "shout",
        "executor_input": {
            "inputs": {
                "parameterValues": {"suffix": "!"},
                "artifacts": {
                    "data": {
                        "artifacts": [
                            {"name": "data", "type": {"schemaTitle": "system.Dataset"}, "uri": data_uri, "metadata": {}}
                        ]
                    }
                },
            },
            "outputs": {
                "parameters": {"size": {"outputFile": str(tmp_path / "out" / "size")}},
                "artifacts": {
                    "loud": {
                        "artifacts": [
                            {
                                "name": "loud",
                                "type": {"schemaTitle": "system.Dataset"},
                                "uri": f"{root}/out/loud",
                                "metadata": {},
                            }
                        ]
                    }
                },
                "outputFile": str(tmp_path / "out" / "executor_output.json"),
            },
        },
        "command": ["sh", "-c", 'test -f "$0" && tr a-z A-Z < "$0" | sed "s/$/$1/" > "$2" && wc -c < "$2" > "$3"'],
        "args": [
            "{{$.inputs.artifacts['data'].path}}",
            "{{$.inputs.parameters['suffix']}}",
            "{{$.outputs.artifacts['loud'].path}}",
            "{{$.outputs.parameters['size'].output_file}}",
        ],
        "output_types": {"size": "NUMBER_INTEGER"},
        "pipeline_root": root,
        "mount_root": mount_root,
        "workdir": str(tmp_path / "work"),
    }


def test_a_pod_style_run_from_stdin_with_minio(
    s3: minio.Minio, s3_env: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(BUCKET, "launcher/in/data.txt", __import__("io").BytesIO(b"hello"), 5)
    spec = _task(tmp_path, f"minio://{BUCKET}/launcher", str(tmp_path / "mnt"))
    done = subprocess.run(
        [sys.executable, "-m", "appliance.pipelines", "-"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = launcher.read_result(done.stdout)
    assert result is not None and result["exit_code"] == 0
    assert result["parameters"] == {"size": 6}
    assert read_object(s3, f"minio://{BUCKET}/launcher/out/loud") == "HELLO!"
    assert (tmp_path / "mnt" / "minio" / BUCKET / "launcher" / "in" / "data.txt").read_text() == "hello"


def test_launcher_failures_are_reported_in_the_result(tmp_path: Path) -> None:
    spec = _task(tmp_path, str(tmp_path / "root"), "/")
    spec["env"] = {"TASK_ENV": "1"}
    missing = subprocess.run(
        [sys.executable, "-m", "appliance.pipelines", "env:ODH_TEST_TASK"],
        env={"PATH": "/usr/bin:/bin", "ODH_TEST_TASK": json.dumps(spec), "PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # The input artifact is a path that does not exist: the component fails on it.
    result = launcher.read_result(missing.stdout)
    assert result is not None and result["exit_code"] == missing.returncode != 0
    bad = subprocess.run(
        [sys.executable, "-m", "appliance.pipelines", "-"],
        check=False,
        input="{",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "is not JSON" in bad.stderr

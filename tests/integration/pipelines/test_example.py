"""examples/iris_onnx on this machine: compiled by the real kfp SDK, loaded by our IR validator, and its
ingest → train → export part run on the local runner against a real MinIO (`deploy_model=false`: the
deploy and smoke-test steps need a cluster; tests/e2e/test_d_pipelines.py runs the whole pipeline there).

The exported model is then loaded by our model server's ONNX code and must agree with the CSV's labels,
so a model the server cannot load, or one with other tensor names, fails here, not on the cluster.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import minio
import numpy as np
import pytest

from appliance import api, progress
from appliance.pipelines import ir
from tests.integration.pipelines.conftest import BUCKET, COMPILE_TIMEOUT, by_id

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[3] / "examples" / "iris_onnx"
DATA_BUCKET = "data"
DATA_KEY = "iris/iris.csv"


@pytest.fixture(scope="module")
def example_yaml(task_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example compiled as its README says: `python examples/iris_onnx/pipeline.py OUT.yaml`."""
    target = tmp_path_factory.mktemp("example") / "iris_onnx.yaml"
    done = subprocess.run(
        [task_python, "-W", "ignore", str(EXAMPLE / "pipeline.py"), str(target)],
        capture_output=True,
        text=True,
        timeout=COMPILE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return target


def test_example_compiles_to_ir_our_loader_accepts(example_yaml: Path) -> None:
    pipeline = ir.load(example_yaml)
    assert pipeline.name == "iris-onnx"
    params = pipeline.root.input_parameters
    assert {"data_uri", "model_name", "deploy_model", "namespace", "data_connection"} <= set(params)
    assert pipeline.root.dag is not None
    tasks = pipeline.root.dag.tasks
    assert {"ingest", "train", "export-onnx", "condition-1"} <= set(tasks)
    # Steps that read or change the world outside the run are never served from the cache: a re-run
    # reads the CSV again, and deploys and tests again (the model may have been deleted meanwhile).
    assert not tasks["ingest"].enable_cache and tasks["train"].enable_cache
    condition = pipeline.component(tasks["condition-1"].component).dag
    assert condition is not None
    assert not condition.tasks["deploy"].enable_cache and not condition.tasks["smoke-test"].enable_cache


def _upload_csv(s3: minio.Minio) -> None:
    if not s3.bucket_exists(DATA_BUCKET):
        s3.make_bucket(DATA_BUCKET)
    s3.fput_object(DATA_BUCKET, DATA_KEY, str(EXAMPLE / "iris.csv"))


def test_example_ingests_trains_and_exports_onnx_locally(
    example_yaml: Path, task_python: str, s3: minio.Minio, tmp_path: Path
) -> None:
    _upload_csv(s3)
    run = api.pipelines_run_local(
        api.load_config(),
        example_yaml,
        api.Progress(progress.Recorder()),
        parameters={"data_uri": f"s3://{DATA_BUCKET}/{DATA_KEY}", "deploy_model": "false"},
        pipeline_root=f"s3://{BUCKET}/example",
        python=task_python,
        database=tmp_path / "runs.db",
        workdir=tmp_path / "work",
    )
    assert run.state == "succeeded", f"{run.error}\n" + "\n".join(t.log_tail for t in run.failed)
    tasks = by_id(run)
    assert tasks["ingest"].outputs["parameters"]["Output"] == 150
    accuracy = run.outputs["Output"]
    assert 0.9 <= accuracy <= 1.0
    assert tasks["condition-1"].state == "skipped"  # no cluster: deploy and smoke test did not run
    assert tasks["train"].outputs["artifacts"]["metrics"][0]["metadata"]["accuracy"] == accuracy

    onnx = tasks["export-onnx"].outputs["artifacts"]["onnx_model"][0]
    assert onnx["metadata"]["file"] == "model.onnx"
    assert onnx["metadata"]["classes"] == ["setosa", "versicolor", "virginica"]
    bucket, _, prefix = onnx["uri"].removeprefix("s3://").partition("/")
    path = tmp_path / "model" / "model.onnx"
    s3.fget_object(bucket, f"{prefix}/model.onnx", str(path))  # the directory the InferenceService will serve

    # What the model server will do with it: the same input and output names the smoke test uses.
    from appliance.serving import model  # noqa: PLC0415

    loaded = model.OnnxModel.load("iris", "1", path)
    with (EXAMPLE / "iris.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    features = onnx["metadata"]["features"]
    x = np.array([[float(r[c]) for c in features] for r in rows], dtype=np.float32)
    assert [s.name for s in loaded.inputs] == ["input"]
    (labels,) = loaded.run({"input": x}, ["label"])
    truth = np.array([onnx["metadata"]["classes"].index(r["species"]) for r in rows])
    assert float((labels == truth).mean()) >= 0.9


def test_example_fails_clearly_when_the_csv_is_missing(
    example_yaml: Path, task_python: str, s3: minio.Minio, tmp_path: Path
) -> None:
    run = api.pipelines_run_local(
        api.load_config(),
        example_yaml,
        api.Progress(progress.Recorder()),
        parameters={"data_uri": f"s3://{BUCKET}/no/such.csv", "deploy_model": "false"},
        pipeline_root=f"s3://{BUCKET}/example-missing",
        python=task_python,
        database=tmp_path / "runs.db",
        workdir=tmp_path / "work",
    )
    assert run.state == "failed"
    (failed,) = run.failed
    assert failed.task_id == "ingest"
    assert "cannot read s3://pipelines/no/such.csv" in failed.log_tail
    assert "NoSuchKey" in failed.log_tail

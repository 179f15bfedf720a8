"""Pipelines integration fixtures: compile with the real kfp SDK, run on the local runner.

kfp cannot be installed next to the appliance (every kfp 2.x pins kubernetes<31), so the pipelines
in `sources/` are compiled by the task Python (`.venv-kfp`, `make pipelines-runtime`) in a
subprocess — the way a user compiles with their own SDK — and the YAML is what the tests run.
Artifacts go to a real MinIO server (the `minio_server` fixture) under `s3://pipelines/<test>`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import minio
import pytest

from appliance import api, progress
from tests.conftest import MinioServer

SOURCES = Path(__file__).with_name("sources")
COMPILE_TIMEOUT = 180
PIPELINES = {  # name → (module, function)
    "features": ("features", "pipeline"),
    "params": ("params", "pipeline"),
    "failing": ("failing", "pipeline"),
    "retries": ("failing", "retries"),
    "installed-packages": ("failing", "installed_packages"),
    "missing-packages": ("failing", "missing_packages"),
    "caching": ("caching", "pipeline"),
    "trivial": ("trivial", "pipeline"),
    "slow": ("slow", "pipeline"),
    "collections": ("collections_", "pipeline"),
    "custom-path": ("collections_", "custom_path_pipeline"),
}
BUCKET = "pipelines"


@pytest.fixture(scope="session")
def task_python() -> str:
    """The Python with kfp that runs tasks; the test fails (not skips) when it is missing."""
    from appliance.pipelines import local  # noqa: PLC0415 - a test-only shortcut to the finder

    try:
        return local.find_task_python()
    except api.ApplianceError as exc:
        pytest.fail(f"{exc} — {exc.hint}")


@pytest.fixture(scope="session")
def compiled(task_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every pipeline in sources/ compiled by kfp.compiler.Compiler (one subprocess for all)."""
    out = tmp_path_factory.mktemp("compiled")
    script = "\n".join(
        [
            "import importlib, sys",
            f"sys.path.insert(0, {str(SOURCES)!r})",
            "from kfp import compiler",
            "def build(module, function, path):",
            "    compiler.Compiler().compile(getattr(importlib.import_module(module), function), path)",
            *(f"build({m!r}, {f!r}, {str(out / n) + '.yaml'!r})" for n, (m, f) in PIPELINES.items()),
        ]
    )
    done = subprocess.run(
        [task_python, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        timeout=COMPILE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {name: out / f"{name}.yaml" for name in PIPELINES}


@pytest.fixture
def s3_env(minio_server: MinioServer, monkeypatch: pytest.MonkeyPatch) -> MinioServer:
    """The data-connection variables that point pipelines at the test MinIO."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", minio_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", minio_server.secret_key)
    monkeypatch.setenv("AWS_S3_ENDPOINT", minio_server.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return minio_server


@pytest.fixture
def s3(s3_env: MinioServer) -> minio.Minio:
    client = minio.Minio(s3_env.endpoint, s3_env.access_key, s3_env.secret_key, secure=False)
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    return client


def read_object(client: minio.Minio, uri: str) -> str:
    assert uri.startswith(("s3://", "minio://")), uri
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    response = client.get_object(bucket, key)
    try:
        return bytes(response.read()).decode()
    finally:
        response.close()
        response.release_conn()


RunPipeline = Callable[..., tuple[api.PipelineRun, progress.Recorder]]


@pytest.fixture
def run_pipeline(
    task_python: str, compiled: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> RunPipeline:
    """Run a compiled pipeline through appliance.api with a run history in tmp_path."""

    def run(name: str, root: str | None = None, **kwargs: Any) -> tuple[api.PipelineRun, progress.Recorder]:
        recorder = progress.Recorder()
        kwargs.setdefault("database", tmp_path / "runs.db")
        kwargs.setdefault("workdir", tmp_path / "work")
        result = api.pipelines_run_local(
            api.load_config(),
            compiled[name],
            api.Progress(recorder),
            pipeline_root=root or f"s3://{BUCKET}/{request.node.name}",
            python=task_python,
            **kwargs,
        )
        return result, recorder

    return run


def by_id(run: api.PipelineRun) -> dict[str, api.PipelineTask]:
    return {t.task_id: t for t in run.tasks}

"""The storage initializer against a real MinIO server: KServe's and ODH's credential conventions, the
KServe layouts, errors with hints, and the model server serving what it downloaded."""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import minio
import numpy as np
import pytest
import tritonclient.http as thttp

from appliance.serving import errors, storage
from tests import onnx_models
from tests.conftest import MinioServer
from tests.integration.serving.conftest import start_server, stop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bucket(minio_server: MinioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A bucket holding models/four/model.onnx and models/versioned/{1,2}/model.onnx."""
    client = minio.Minio(
        minio_server.endpoint, access_key=minio_server.access_key, secret_key=minio_server.secret_key, secure=False
    )
    name = "models-" + secrets.token_hex(4)
    client.make_bucket(name)
    local = tmp_path_factory.mktemp("upload")
    files = {
        "models/four/model.onnx": onnx_models.four_in_three_out(local / "four.onnx"),
        "models/versioned/1/model.onnx": onnx_models.identity("FP32", local / "v1.onnx"),
        "models/versioned/2/model.onnx": onnx_models.four_in_three_out(local / "v2.onnx"),
        "models/fourish/model.onnx": onnx_models.identity("INT8", local / "other.onnx"),  # shares a prefix
    }
    for key, path in files.items():
        client.fput_object(name, key, str(path))
    client.put_object(name, "models/four/README.md", io.BytesIO(b"hello"), 5)
    yield name


def kserve_env(server: MinioServer) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.url,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_kserve_endpoint_url_single_model_directory(minio_server: MinioServer, bucket: str, tmp_path: Path) -> None:
    files = storage.download(f"s3://{bucket}/models/four", tmp_path / "mnt", kserve_env(minio_server))
    assert sorted(p.relative_to(tmp_path / "mnt").as_posix() for p in files) == ["README.md", "model.onnx"]
    assert (tmp_path / "mnt" / "README.md").read_bytes() == b"hello"
    assert not (tmp_path / "mnt" / "fourish").exists()  # a prefix is a directory, not a string prefix


def test_kserve_s3_endpoint_and_use_https_versioned_layout(
    minio_server: MinioServer, bucket: str, tmp_path: Path
) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": minio_server.access_key,
        "AWS_SECRET_ACCESS_KEY": minio_server.secret_key,
        "S3_ENDPOINT": minio_server.endpoint,
        "S3_USE_HTTPS": "0",
    }
    storage.download(f"s3://{bucket}/models/versioned/", tmp_path, env)
    assert (tmp_path / "1" / "model.onnx").is_file()
    assert (tmp_path / "2" / "model.onnx").is_file()


def test_odh_data_connection_bucket_and_path(minio_server: MinioServer, bucket: str, tmp_path: Path) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": minio_server.access_key,
        "AWS_SECRET_ACCESS_KEY": minio_server.secret_key,
        "AWS_S3_ENDPOINT": minio_server.url,
        "AWS_S3_BUCKET": bucket,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    files = storage.download("models/four/model.onnx", tmp_path, env)  # a single object
    assert files == [tmp_path / "model.onnx"]


def test_wrong_credentials_missing_bucket_and_empty_prefix(
    minio_server: MinioServer, bucket: str, tmp_path: Path
) -> None:
    env = {**kserve_env(minio_server), "AWS_SECRET_ACCESS_KEY": "wrong-" + secrets.token_hex(8)}
    with pytest.raises(errors.StorageError) as exc:
        storage.download(f"s3://{bucket}/models/four", tmp_path, env)
    assert "SignatureDoesNotMatch" in exc.value.message or "AccessDenied" in exc.value.message
    assert exc.value.hint and "AWS_SECRET_ACCESS_KEY" in exc.value.hint
    with pytest.raises(errors.StorageError, match="does not exist"):
        storage.download("s3://no-such-bucket-here/x", tmp_path, kserve_env(minio_server))
    with pytest.raises(errors.StorageError, match="no objects at"):
        storage.download(f"s3://{bucket}/models/nothing", tmp_path, kserve_env(minio_server))


def test_model_server_downloads_then_serves(minio_server: MinioServer, bucket: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    env.update(kserve_env(minio_server))
    running = start_server(
        tmp_path / "mnt",
        tmp_path / "log.txt",
        "--storage-uri",
        f"s3://{bucket}/models/versioned",
        "--model-name",
        "m",
        env=env,
    )
    try:
        client = thttp.InferenceServerClient(running.http)
        meta = client.get_model_metadata("m")
        assert meta["versions"] == ["1", "2"]
        tensors = []
        for name in "abcd":
            tensor = thttp.InferInput(name, [1, 4], "FP32")
            tensor.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
            tensors.append(tensor)
        assert client.infer("m", tensors).as_numpy("product").tolist() == [[1.0] * 4]
        client.close()
    finally:
        assert stop(running.proc) == 0, running.output()


def test_storage_initializer_entry_point(minio_server: MinioServer, bucket: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    env.update(kserve_env(minio_server))
    ok = subprocess.run(
        [sys.executable, "-m", "appliance.serving.storage", f"s3://{bucket}/models/four", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "model.onnx").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "appliance.serving.storage", "gs://elsewhere/x", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert "error: gs://elsewhere/x: unsupported storage URI" in bad.stderr
    assert "hint:" in bad.stderr

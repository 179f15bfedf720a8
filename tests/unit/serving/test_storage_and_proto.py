"""Storage URI and credential conventions; the committed gRPC stubs match the .proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.serving import errors, storage

REPO = Path(__file__).resolve().parents[3]


def test_parse_uri() -> None:
    assert storage.parse_uri("s3://models/a/b/", {}) == storage.S3Location("models", "a/b")
    assert storage.parse_uri("s3://models", {}) == storage.S3Location("models", "")
    assert storage.parse_uri("a/b", {"AWS_S3_BUCKET": "odh-bucket"}) == storage.S3Location("odh-bucket", "a/b")
    for bad in ("gs://b/x", "a/b", "s3:///x", "s3://B_ad/x"):
        with pytest.raises(errors.StorageError):
            storage.parse_uri(bad, {})


@pytest.mark.parametrize(
    ("env", "endpoint", "secure"),
    [
        ({}, "s3.amazonaws.com", True),
        ({"AWS_ENDPOINT_URL": "http://minio:9000", "S3_ENDPOINT": "ignored:1"}, "minio:9000", False),
        ({"S3_ENDPOINT": "minio:9000", "S3_USE_HTTPS": "0"}, "minio:9000", False),
        ({"S3_ENDPOINT": "minio:9000"}, "minio:9000", True),
        ({"AWS_S3_ENDPOINT": "https://s3.example:8443"}, "s3.example:8443", True),
        ({"AWS_S3_ENDPOINT": "minio.ns.svc:9000"}, "minio.ns.svc:9000", True),
    ],
)
def test_endpoint_conventions(env: dict[str, str], endpoint: str, secure: bool) -> None:
    settings = storage.settings_from_env(env)
    assert (settings.endpoint, settings.secure) == (endpoint, secure)


def test_credentials_conventions() -> None:
    both = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "eu-1", "S3_VERIFY_SSL": "0"}
    settings = storage.settings_from_env(both)
    assert (settings.access_key, settings.secret_key, settings.region, settings.verify) == ("k", "s", "eu-1", False)
    anonymous = storage.settings_from_env({**both, "awsAnonymousCredential": "true"})
    assert anonymous.access_key is None and anonymous.secret_key is None
    with pytest.raises(errors.StorageError, match="partner"):
        storage.settings_from_env({"AWS_ACCESS_KEY_ID": "k"})


def test_committed_grpc_stubs_match_the_proto(tmp_path: Path) -> None:
    proto = "appliance/serving/proto/grpc_predict_v2.proto"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
         f"--grpc_python_out={tmp_path}", proto],
        cwd=REPO, check=True, timeout=120,
    )  # fmt: skip
    for name in ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py"):
        generated = (tmp_path / "appliance/serving/proto" / name).read_text()
        committed = (REPO / "appliance/serving/proto" / name).read_text()
        assert generated == committed, f"{name} is stale; regenerate it (see the header of {proto})"

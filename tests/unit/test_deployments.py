"""Model deployments' pure parts: storage URIs, the InferenceService a deploy makes (as the operator
reads it), and a deployment as a row. (The calls against a cluster run in the e2e tier.)"""

from __future__ import annotations

from typing import Any

import pytest

from appliance import errors
from appliance.actions import deployments
from appliance.operator import inference


@pytest.mark.parametrize(
    ("key", "uri"),
    [
        ("iris/model.onnx", "s3://models/iris"),
        ("iris.onnx", "s3://models/iris.onnx"),
        ("a/b/x.onnx", "s3://models/a/b/x.onnx"),
    ],
)
def test_storage_uri(key: str, uri: str) -> None:
    assert deployments.storage_uri("models", key) == uri


def test_manifest_is_what_the_operator_serves() -> None:
    isvc = deployments.manifest("proj", "iris", "s3://models/iris")
    pred = inference.predictor(isvc)
    assert (pred.name, pred.namespace, pred.model_format, pred.storage_uri, pred.replicas) == (
        "iris", "proj", "onnx", "s3://models/iris", 1,
    )  # fmt: skip
    assert pred.secret == "aws-connection-minio"
    with pytest.raises(errors.UsageError):
        deployments.manifest("proj", "iris", "/local/path")
    with pytest.raises(errors.UsageError):
        deployments.manifest("proj", "Iris!", "s3://models/iris")


def isvc(**status: Any) -> dict[str, Any]:
    obj = deployments.manifest("proj", "iris", "s3://models/iris")
    obj["status"] = {"url": inference.url("iris", "proj"), **status}
    return obj


def ready(status: str, reason: str, message: str = "") -> list[dict[str, str]]:
    return [{"type": "Ready", "status": status, "reason": reason, "message": message}]


@pytest.mark.parametrize(
    ("obj", "state", "message"),
    [
        (isvc(conditions=ready("True", "PredictorReady")), "Ready", ""),
        (isvc(conditions=ready("False", "Progressing", "0/1 replicas ready")), "Loading", "0/1 replicas ready"),
        (isvc(), "Loading", ""),
        (isvc(conditions=ready("False", "StorageInitializerFailed", "no objects"),
              modelStatus={"lastFailureInfo": {"reason": "StorageInitializerFailed", "message": "no objects"}}),
         "Failed", "StorageInitializerFailed: no objects"),
    ],
)  # fmt: skip
def test_summarize(obj: dict[str, Any], state: str, message: str) -> None:
    row = deployments.summarize(obj)
    assert (row.state, row.message, row.ready) == (state, message, state == "Ready")
    assert (row.namespace, row.name, row.storage_uri) == ("proj", "iris", "s3://models/iris")
    assert row.url == "http://iris-predictor.proj.svc.cluster.local:8080"

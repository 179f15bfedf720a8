"""The workbench actions' pure parts: the Notebook a form makes, a Notebook as a row, URLs, patches.
(The calls against a cluster run in the e2e tier.)"""

from __future__ import annotations

from typing import Any

import pytest

from appliance import api, config, errors
from appliance.actions import workbenches
from appliance.operator import notebook


def test_manifest_is_the_upstream_shape() -> None:
    nb = workbenches.manifest("proj", "wb", size="medium", gpu=1)
    assert nb["apiVersion"] == "kubeflow.org/v1" and nb["kind"] == "Notebook"
    assert nb["metadata"]["namespace"] == "proj" and nb["metadata"]["labels"]["opendatahub.io/dashboard"] == "true"
    (container,) = nb["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "wb" and container["image"] == workbenches.DEFAULT_IMAGE
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1}
    assert container["envFrom"] == [{"secretRef": {"name": "aws-connection-minio"}}]
    # the operator accepts it as is
    assert [o["kind"] for o in notebook.objects(nb)] == ["PersistentVolumeClaim", "Service", "StatefulSet"]
    assert (
        "nvidia.com/gpu"
        not in workbenches.manifest("proj", "wb")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    )
    assert workbenches.project_manifest("proj")["metadata"]["labels"] == {"opendatahub.io/dashboard": "true"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad_Name"}, "'Bad_Name' is not a valid workbench name"),
        ({"namespace": "-x"}, "'-x' is not a valid project name"),
        ({"size": "huge"}, "unknown size 'huge'"),
        ({"gpu": -1}, "the GPU count cannot be negative"),
    ],
)
def test_manifest_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    args = {"namespace": "proj", "name": "wb", **kwargs}
    with pytest.raises(errors.UsageError) as caught:
        workbenches.manifest(args.pop("namespace"), args.pop("name"), **args)
    assert caught.value.message == message


def obj(annotations: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    nb = workbenches.manifest("proj", "wb")
    nb["metadata"]["annotations"] = annotations or {}
    nb["metadata"]["creationTimestamp"] = "2026-11-22T09:30:00Z"
    nb["status"] = status
    return nb


@pytest.mark.parametrize(
    ("notebook_obj", "state", "message"),
    [
        (obj(readyReplicas=1), "Running", ""),
        (obj(readyReplicas=0, containerState={"waiting": {"reason": "ContainerCreating"}}), "Starting",
         "ContainerCreating"),
        (obj({notebook.STOP_ANNOTATION: "now"}, readyReplicas=0), "Stopped", ""),
        (obj({notebook.STOP_ANNOTATION: "now"}, readyReplicas=1), "Stopping", "waiting for the pod to end"),
        (obj(conditions=[{"type": "Ready", "status": "False", "reason": "ImageNotAvailable", "message": "build it"}]),
         "Failed", "ImageNotAvailable: build it"),
    ],
)  # fmt: skip
def test_summarize_states(notebook_obj: dict[str, Any], state: str, message: str) -> None:
    row = workbenches.summarize(notebook_obj)
    assert (row.state, row.message, row.ready) == (state, message, state == "Running")
    assert (row.namespace, row.name, row.cpu, row.memory, row.gpu) == ("proj", "wb", "1", "2Gi", 0)
    assert row.url_path == "/notebook/proj/wb/"


def test_url_and_stop_patch() -> None:
    url = workbenches.url("http://127.0.0.1:8080/", "proj", "wb", "abc")
    assert url == "http://127.0.0.1:8080/notebook/proj/wb/lab?token=abc"
    assert workbenches.stop_patch(False) == {"metadata": {"annotations": {notebook.STOP_ANNOTATION: None}}}
    stamp = workbenches.stop_patch(True)["metadata"]["annotations"][notebook.STOP_ANNOTATION]
    assert stamp.endswith("Z") and len(stamp) == 20


@pytest.mark.parametrize(
    ("bind", "url"),
    [("127.0.0.1", "http://127.0.0.1:9080"), ("0.0.0.0", "http://127.0.0.1:9080"), ("::1", "http://[::1]:9080")],
)
def test_gateway_url_follows_the_config(bind: str, url: str) -> None:
    loaded = config.load(overrides=[f"bind_address={bind}", "ports.http=9080"], environ={})
    assert api.gateway_url(loaded) == url
    assert api.model_url(loaded, "p", "m") == url + "/serving/p/m"

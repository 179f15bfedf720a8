"""Pure desired state for model serving: InferenceService + ServingRuntime → Deployment, Service, status."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.operator import dataconnection, inference, install

AT = "2026-01-01T00:00:00Z"


def isvc(model: dict[str, Any] | None = None, **predictor: Any) -> dict[str, Any]:
    """An InferenceService in the upstream YAML shape (as the ODH dashboard writes one)."""
    spec_model = {"modelFormat": {"name": "onnx"}, "storageUri": "s3://models/demo/v1"} if model is None else model
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "demo", "namespace": "proj", "uid": "u-1", "generation": 3},
        "spec": {"predictor": {"model": spec_model, **predictor}},
    }


def runtime() -> dict[str, Any]:
    return inference.default_runtime("proj", "img:1")


def deployment_and_service(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    dep, svc = inference.objects(obj, runtime())
    assert (dep["kind"], svc["kind"]) == ("Deployment", "Service")
    return dep, svc


def test_default_runtime_is_an_onnx_v2_serving_runtime() -> None:
    rt = inference.default_runtime("proj")
    assert rt["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert rt["metadata"] == {**rt["metadata"], "name": "odh-onnx-runtime", "namespace": "proj"}
    assert rt["spec"]["supportedModelFormats"] == [{"name": "onnx", "version": "1", "autoSelect": True}]
    assert "v2" in rt["spec"]["protocolVersions"]
    (container,) = rt["spec"]["containers"]
    assert container["image"] == "localhost/odh-appliance/model-server:latest"
    assert "--model_name={{.Name}}" in container["args"]


def test_deployment_serves_the_model_from_an_init_container_download() -> None:
    dep, _ = deployment_and_service(isvc())
    assert dep["metadata"]["name"] == "demo-predictor"
    assert dep["metadata"]["namespace"] == "proj"
    pod = dep["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    assert init["image"] == main["image"] == "img:1"
    assert init["command"] + init["args"] == ["python", "-m", "appliance.serving.storage", "s3://models/demo/v1",
                                              "/mnt/models"]  # fmt: skip
    assert init["envFrom"] == [{"secretRef": {"name": dataconnection.NAME}}]
    assert {"name": "kserve-provision-location", "mountPath": "/mnt/models"} in init["volumeMounts"]
    assert main["volumeMounts"][0]["mountPath"] == "/mnt/models" and main["volumeMounts"][0]["readOnly"]
    assert pod["volumes"] == [{"name": "kserve-provision-location", "emptyDir": {}}]
    assert "--model_name=demo" in main["args"] and "--host=0.0.0.0" in main["args"]
    assert {p["containerPort"] for p in main["ports"]} == {8080, 8081}
    assert main["readinessProbe"]["httpGet"] == {"path": "/v2/models/demo/ready", "port": 8080}
    assert main["imagePullPolicy"] == init["imagePullPolicy"] == "IfNotPresent"
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert dep["spec"]["replicas"] == 1
    assert main["lifecycle"]["preStop"]["sleep"]["seconds"] > 0  # endpoints drop the old pod before it stops


def test_service_is_named_like_kserve_raw_deployment_and_exposes_rest_and_grpc() -> None:
    dep, svc = deployment_and_service(isvc())
    assert svc["metadata"]["name"] == "demo-predictor"
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"http": 8080, "grpc": 8081}
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert labels["serving.kserve.io/inferenceservice"] == "demo"
    assert labels["component"] == "predictor"


def test_everything_is_owned_by_the_inference_service() -> None:
    for obj in deployment_and_service(isvc()):
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref == {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "demo",
                       "uid": "u-1", "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def test_a_new_storage_uri_changes_the_pod_template_so_a_new_replicaset_rolls_out() -> None:
    old, _ = deployment_and_service(isvc())
    new, _ = deployment_and_service(isvc({"modelFormat": {"name": "onnx"}, "storageUri": "s3://models/demo/v2"}))
    assert old["spec"]["template"] != new["spec"]["template"]
    assert new["spec"]["template"]["spec"]["initContainers"][0]["args"][0] == "s3://models/demo/v2"
    assert old["spec"]["selector"] == new["spec"]["selector"]  # same Deployment, new ReplicaSet


def test_storage_key_names_the_data_connection_and_storage_path_reads_from_its_bucket() -> None:
    model = {"modelFormat": {"name": "onnx"}, "storage": {"key": "my-connection", "path": "models/demo/"}}
    dep, _ = deployment_and_service(isvc(model))
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["envFrom"] == [{"secretRef": {"name": "my-connection"}}]
    assert init["args"][0] == "models/demo"  # the storage initializer reads it from AWS_S3_BUCKET


def test_replicas_and_resources_come_from_the_spec() -> None:
    resources = {"requests": {"cpu": "1"}, "limits": {"memory": "2Gi"}}
    model = {"modelFormat": {"name": "ONNX"}, "storageUri": "s3://models/x", "resources": resources}
    dep, _ = deployment_and_service(isvc(model, minReplicas=2, maxReplicas=3))
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"] == resources


@pytest.mark.parametrize(
    ("model", "predictor", "reason", "text"),
    [
        ({"modelFormat": {"name": "onnx"}, "storageUri": "http://example.com/m"}, {}, "InvalidStorageUri", "s3://"),
        ({"modelFormat": {"name": "onnx"}, "storageUri": "s3://Bad_Bucket/m"}, {}, "InvalidStorageUri", "s3://"),
        ({"modelFormat": {"name": "onnx"}}, {}, "InvalidStorageUri", "None"),
        ({"storageUri": "s3://models/m"}, {}, "InvalidSpec", "modelFormat.name"),
        ({}, {}, "InvalidSpec", "spec.predictor.model is required"),
        ({"modelFormat": {"name": "onnx"}, "storageUri": "s3://models/m"}, {"minReplicas": -1}, "InvalidSpec", "-1"),
        (
            {"modelFormat": {"name": "onnx"}, "storageUri": "s3://models/m"},
            {"minReplicas": 3, "maxReplicas": 2},
            "InvalidSpec",
            "less than",
        ),
    ],
)
def test_bad_specs_are_invalid_spec_with_a_clear_message(
    model: dict[str, Any], predictor: dict[str, Any], reason: str, text: str
) -> None:
    with pytest.raises(inference.InvalidSpec) as caught:
        inference.objects(isvc(model, **predictor), runtime())
    assert caught.value.reason == reason
    assert text in str(caught.value)


def test_runtime_selection_by_format_by_name_and_unknown_format() -> None:
    other = {"metadata": {"name": "sk"}, "spec": {"supportedModelFormats": [{"name": "sklearn", "autoSelect": True}]}}
    assert inference.select_runtime(inference.predictor(isvc()), [other, runtime()])["metadata"]["name"] == (
        "odh-onnx-runtime"
    )
    named = inference.predictor(isvc({"modelFormat": {"name": "onnx"}, "runtime": "sk", "storageUri": "s3://models/x"}))
    with pytest.raises(inference.InvalidSpec, match="does not support model format 'onnx'") as caught:
        inference.select_runtime(named, [other, runtime()])
    assert caught.value.reason == "RuntimeNotRecognized"
    missing = inference.predictor(
        isvc({"modelFormat": {"name": "onnx"}, "runtime": "nope", "storageUri": "s3://models/x"})
    )
    with pytest.raises(inference.InvalidSpec, match="nope does not exist"):
        inference.select_runtime(missing, [runtime()])
    tf = inference.predictor(isvc({"modelFormat": {"name": "tensorflow"}, "storageUri": "s3://models/x"}))
    with pytest.raises(inference.InvalidSpec, match="supported here: onnx, sklearn") as caught:
        inference.select_runtime(tf, [other, runtime()])
    assert caught.value.reason == "NoSupportingRuntime"
    disabled = {**runtime(), "spec": {**runtime()["spec"], "disabled": True}}
    with pytest.raises(inference.InvalidSpec):
        inference.select_runtime(inference.predictor(isvc()), [disabled])


def rolled(**status: int) -> dict[str, Any]:
    base = {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
    return {"metadata": {"generation": 2}, "spec": {"replicas": 1}, "status": {**base, **status}}


def test_rollout_is_done_only_when_the_new_replicaset_alone_is_ready() -> None:
    assert inference.rollout(rolled()) == (True, "1/1 replicas ready")
    assert not inference.rollout(None)[0]
    assert not inference.rollout(rolled(observedGeneration=1))[0]
    assert inference.rollout(rolled(replicas=2)) == (False, "rolling out: 1/1 replicas updated, 1 old")
    assert not inference.rollout(rolled(readyReplicas=0, availableReplicas=0))[0]


def test_status_ready_has_url_conditions_and_model_status() -> None:
    st = inference.status(isvc(), problem=None, deployment=rolled(), at=AT)
    assert st["url"] == "http://demo-predictor.proj.svc.cluster.local:8080"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == conds["PredictorReady"]["status"] == "True"
    assert st["modelStatus"] == {
        "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
        "transitionStatus": "UpToDate",
    }
    assert st["observedGeneration"] == 3


def test_status_with_a_problem_is_ready_false_with_reason_and_message() -> None:
    st = inference.status(isvc(), problem=("InvalidStorageUri", "storageUri 'x' is not s3://"), deployment=rolled())
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidStorageUri")
    assert "is not s3://" in ready["message"]
    assert st["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert st["modelStatus"]["lastFailureInfo"]["reason"] == "InvalidStorageUri"
    pending = inference.status(isvc(), problem=None, deployment=None)
    assert next(c for c in pending["conditions"] if c["type"] == "Ready")["reason"] == "Progressing"
    assert pending["modelStatus"]["transitionStatus"] == "InProgress"


def test_status_keeps_transition_times_when_nothing_changed() -> None:
    first = inference.status(isvc(), problem=None, deployment=rolled(), at=AT)
    again = inference.status({**isvc(), "status": first}, problem=None, deployment=rolled(), at="later")
    assert again == first


def pod(init: dict[str, Any] | None = None, main: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "status": {
            "initContainerStatuses": [{"image": "img:1", **(init or {"state": {"terminated": {"exitCode": 0}}})}],
            "containerStatuses": [{"image": "img:1", **(main or {"state": {"running": {}}})}],
        }
    }


def test_pod_problems_name_the_missing_image_the_failed_download_and_the_failed_load() -> None:
    assert inference.pod_problem([pod()]) is None
    assert inference.pod_problem([]) is None
    missing = inference.pod_problem([pod(init={"state": {"waiting": {"reason": "ErrImageNeverPull"}}})])
    assert missing is not None and missing[0] == "ImageNotPresent" and "img:1" in missing[1]
    crashed = {
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "message": "error: no objects at s3://models/nope\nhint: x"}},
    }
    download = inference.pod_problem([pod(init=crashed)])
    assert download is not None and download[0] == "StorageInitializerFailed"
    assert "no objects at s3://models/nope" in download[1]
    load = inference.pod_problem([pod(main={"state": {"terminated": {"exitCode": 2, "message": "bad model"}}})])
    assert load == ("ModelLoadFailed", "the model server failed (exit 2): bad model")


def test_operator_rbac_covers_serving() -> None:
    rules = install.cluster_role()["rules"]

    def allowed(group: str, resource: str, verb: str) -> bool:
        return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)

    assert allowed("serving.kserve.io", "inferenceservices", "watch")
    assert allowed("serving.kserve.io", "inferenceservices/status", "patch")
    assert allowed("serving.kserve.io", "servingruntimes", "create")
    assert allowed("apps", "deployments", "patch")
    assert allowed("", "services", "create")
    assert allowed("", "pods", "list")
    assert allowed("", "nodes", "list")  # KserveReady looks for the model-server image on the node


def test_kserve_health_needs_the_model_server_image_on_the_node_and_counts_services() -> None:
    missing = inference.health("img:1", ["registry.k8s.io/pause:3.10"], [])
    assert (missing.ready, missing.reason) == (False, "ImageNotPresent")
    assert "img:1" in missing.message
    ok = inference.status(isvc(), problem=None, deployment=rolled())
    bad = inference.status(isvc(), problem=("InvalidStorageUri", "x"), deployment=None)
    found = inference.health("img:1", ["img:1"], [{"status": ok}, {"status": bad}])
    assert (found.ready, found.reason) == (True, "ReconcileCompleted")
    assert "1/2 InferenceServices ready" in found.message

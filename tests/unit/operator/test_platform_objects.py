"""Pure desired state: CRDs, MinIO objects and credentials, data connections, DSCI status, install manifests."""

from __future__ import annotations

import string

import pytest

from appliance.operator import conditions, crds, dataconnection, handlers, inference, initialization, install, minio


def test_crds_cover_the_odh_and_kserve_apis_with_status_and_open_schemas() -> None:
    docs = {d["metadata"]["name"]: d for d in crds.all_crds()}
    assert set(docs) == {
        "datascienceclusters.datasciencecluster.opendatahub.io",
        "dscinitializations.dscinitialization.opendatahub.io",
        "notebooks.kubeflow.org",
        "inferenceservices.serving.kserve.io",
        "servingruntimes.serving.kserve.io",
    }
    dsc = docs["datascienceclusters.datasciencecluster.opendatahub.io"]["spec"]
    assert dsc["scope"] == "Cluster"
    assert dsc["names"]["shortNames"] == ["dsc"]
    assert docs["dscinitializations.dscinitialization.opendatahub.io"]["spec"]["names"]["shortNames"] == ["dsci"]
    assert docs["inferenceservices.serving.kserve.io"]["spec"]["names"]["shortNames"] == ["isvc"]
    assert docs["inferenceservices.serving.kserve.io"]["spec"]["versions"][0]["name"] == "v1beta1"
    assert docs["servingruntimes.serving.kserve.io"]["spec"]["versions"][0]["name"] == "v1alpha1"
    assert docs["notebooks.kubeflow.org"]["spec"]["scope"] == "Namespaced"
    for doc in docs.values():
        (version,) = doc["spec"]["versions"]
        assert version["subresources"] == {"status": {}}
        props = version["schema"]["openAPIV3Schema"]["properties"]
        assert props["spec"]["x-kubernetes-preserve-unknown-fields"] is True
        assert props["status"]["x-kubernetes-preserve-unknown-fields"] is True
        assert version["additionalPrinterColumns"][-1]["name"] == "Age"


def test_generated_credentials_are_random_and_strong() -> None:
    first, second = minio.generate_credentials(), minio.generate_credentials()
    assert first != second
    assert len(first["MINIO_ROOT_PASSWORD"]) == 40
    assert set(first["MINIO_ROOT_PASSWORD"]) <= set(string.ascii_letters + string.digits)
    assert "minioadmin" not in first.values()
    assert len(first["MINIO_ROOT_USER"]) >= 3


def test_minio_statefulset_uses_the_secret_a_pvc_and_the_readiness_endpoint() -> None:
    sts = minio.statefulset("opendatahub", "localhost/odh-appliance/minio:abc")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "localhost/odh-appliance/minio:abc"
    assert container["imagePullPolicy"] in ("Never", "IfNotPresent")
    env = {e["name"]: e for e in container["env"]}
    assert env["MINIO_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": minio.SECRET,
        "key": "MINIO_ROOT_PASSWORD",
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/minio/health/ready"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert "storageClassName" not in claim["spec"]  # the default StorageClass
    assert container["volumeMounts"] == [{"name": claim["metadata"]["name"], "mountPath": "/data"}]
    assert pod["securityContext"]["runAsUser"] == 1001
    svc = minio.service("opendatahub")
    assert svc["spec"]["ports"][0]["port"] == 9000
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert minio.endpoint("opendatahub") == "http://minio.opendatahub.svc.cluster.local:9000"


def test_credentials_secret_holds_exactly_the_root_keys() -> None:
    creds = minio.generate_credentials()
    secret = minio.credentials_secret("ns", creds)
    assert secret["stringData"] == creds
    assert secret["metadata"]["namespace"] == "ns"


@pytest.mark.parametrize(
    ("sts", "ready"),
    [
        (None, False),
        ({"spec": {"replicas": 1}, "status": {}}, False),
        ({"metadata": {"generation": 2}, "spec": {"replicas": 1},
          "status": {"readyReplicas": 1, "observedGeneration": 1}}, False),
        ({"metadata": {"generation": 2}, "spec": {"replicas": 1},
          "status": {"readyReplicas": 1, "observedGeneration": 2}}, True),
    ],
)  # fmt: skip
def test_statefulset_readiness(sts: dict[str, object] | None, ready: bool) -> None:
    assert minio.statefulset_ready(sts)[0] is ready  # type: ignore[arg-type]


def test_data_connection_has_the_odh_shape() -> None:
    creds = {"MINIO_ROOT_USER": "u", "MINIO_ROOT_PASSWORD": "p"}
    secret = dataconnection.secret("project", creds, "http://minio.opendatahub.svc.cluster.local:9000")
    meta = secret["metadata"]
    assert meta["namespace"] == "project"
    assert meta["labels"]["opendatahub.io/dashboard"] == "true"
    assert meta["annotations"]["opendatahub.io/connection-type"] == "s3"
    assert secret["stringData"] == {
        "AWS_ACCESS_KEY_ID": "u",
        "AWS_SECRET_ACCESS_KEY": "p",
        "AWS_S3_ENDPOINT": "http://minio.opendatahub.svc.cluster.local:9000",
        "AWS_S3_BUCKET": "data",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    assert dataconnection.DEFAULT_BUCKET in minio.DEFAULT_BUCKETS


def test_which_namespaces_ask_for_a_connection() -> None:
    assert dataconnection.wants_connection({"opendatahub.io/dashboard": "true"})
    assert not dataconnection.wants_connection({"opendatahub.io/dashboard": "false"})
    assert not dataconnection.wants_connection(None)


def test_applications_namespace_default_and_validation() -> None:
    assert initialization.applications_namespace(None) == "opendatahub"
    assert initialization.applications_namespace({"applicationsNamespace": "odh-apps"}) == "odh-apps"
    for bad in ("Not_Valid", "x" * 64, 42, "-leading"):
        with pytest.raises(initialization.InvalidSpec):
            initialization.applications_namespace({"applicationsNamespace": bad})


def test_dsci_status_progressing_ready_and_invalid() -> None:
    at = "2026-01-01T00:00:00Z"
    starting = initialization.status("opendatahub", False, "MinIO is starting", at=at)
    assert starting["phase"] == "Progressing"
    assert not conditions.is_true(starting["conditions"], "Ready")
    assert starting["applicationsNamespace"] == "opendatahub"
    ready = initialization.status("opendatahub", True, "MinIO answers", starting, at="2026-01-02T00:00:00Z")
    assert ready["phase"] == "Ready"
    assert conditions.is_true(ready["conditions"], "ObjectStorageReady")
    assert conditions.find(ready["conditions"], "Ready")["lastTransitionTime"] == "2026-01-02T00:00:00Z"  # type: ignore[index]
    bad = initialization.status(None, False, "", error="spec.applicationsNamespace 'X' is not valid", at=at)
    assert bad["phase"] == "Error"
    assert conditions.find(bad["conditions"], "Ready")["reason"] == "InvalidSpec"  # type: ignore[index]


def test_install_manifests_least_rights_and_no_pulls() -> None:
    docs = install.operator_manifests("localhost/odh-appliance/operator:abc", "localhost/odh-appliance/minio:def")
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ClusterRole", "ClusterRole",
                     "Deployment"]  # fmt: skip
    role = docs[2]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert "delete" not in verbs and "*" not in verbs
    assert all("*" not in rule["resources"] for rule in role["rules"])
    (container,) = docs[-1]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "localhost/odh-appliance/operator:abc"
    assert container["imagePullPolicy"] in ("Never", "IfNotPresent")
    assert {"name": install.MINIO_IMAGE_ENV, "value": "localhost/odh-appliance/minio:def"} in container["env"]
    assert {"name": inference.MODEL_SERVER_IMAGE_ENV, "value": inference.DEFAULT_IMAGE} in container["env"]
    pinned = install.operator_manifests("op:1", "minio:2", "localhost/odh-appliance/model-server:abc")
    pinned_env = pinned[-1]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": inference.MODEL_SERVER_IMAGE_ENV, "value": "localhost/odh-appliance/model-server:abc"} in pinned_env
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert docs[-1]["spec"]["template"]["spec"]["serviceAccountName"] == docs[1]["metadata"]["name"]


def test_default_dsc_maps_config_components_to_management_states() -> None:
    dsc = install.dsc({"workbenches": True, "ray": False})
    assert dsc["spec"]["components"] == {"ray": {"managementState": "Removed"},
                                         "workbenches": {"managementState": "Managed"}}  # fmt: skip
    assert dsc["kind"] == "DataScienceCluster" and dsc["apiVersion"] == "datasciencecluster.opendatahub.io/v1"
    assert install.dsci()["spec"] == {"applicationsNamespace": "opendatahub"}


def test_owned_objects_point_at_their_controller() -> None:
    owner = {"apiVersion": "dscinitialization.opendatahub.io/v1", "kind": "DSCInitialization",
             "metadata": {"name": "default-dsci", "uid": "123"}}  # fmt: skip
    obj = handlers.owned(minio.service("ns"), owner)
    (ref,) = obj["metadata"]["ownerReferences"]
    assert ref["uid"] == "123" and ref["controller"] is True
    assert "ownerReferences" not in minio.service("ns")["metadata"]


def test_changed_conditions_become_event_lines_once() -> None:
    first = initialization.status("ns", False, "MinIO is starting", at="t0")
    assert len(handlers.changed({}, first)) == 2
    assert handlers.changed(first, initialization.status("ns", False, "MinIO is starting", first)) == []
    lines = handlers.changed(first, initialization.status("ns", True, "MinIO answers", first))
    assert any(line.startswith("Ready=True") for line in lines)

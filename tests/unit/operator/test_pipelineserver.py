"""The pipeline server's desired objects: tight namespaced RBAC, the PVC-backed Deployment, health."""

from __future__ import annotations

from appliance.operator import components, install, pipelineserver


def test_the_server_may_only_manage_pods_in_its_own_namespace() -> None:
    role = pipelineserver.cluster_role()
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    ]
    account, binding, *_ = pipelineserver.rbac("odh")
    assert account["kind"] == "ServiceAccount" and account["metadata"]["namespace"] == "odh"
    assert binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] == "odh"  # not cluster-wide
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ds-pipeline"}
    # The operator may bind exactly that role (and the task pods'), and holds no deleting rights itself.
    rules = install.cluster_role()["rules"]
    assert {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
            "resourceNames": ["ds-pipeline", "pipeline-runner-ds-pipeline"], "verbs": ["bind"]} in rules  # fmt: skip
    assert not any("delete" in r["verbs"] for r in rules)
    assert install.operator_manifests("op:1", "minio:1")[4] == role


def test_task_pods_may_only_manage_inference_services_in_the_servers_namespace() -> None:
    role = pipelineserver.task_cluster_role()
    assert role["metadata"]["name"] == "pipeline-runner-ds-pipeline"
    assert role["rules"] == [  # no Secrets (credentials come by envFrom), no pods, nothing cluster-wide
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
         "verbs": ["get", "create", "patch", "delete"]},
    ]  # fmt: skip
    _, _, account, binding = pipelineserver.rbac("odh")
    assert account["kind"] == "ServiceAccount" and account["metadata"] == {
        "name": "pipeline-runner-ds-pipeline", "namespace": "odh", "labels": pipelineserver.LABELS
    }  # fmt: skip
    assert binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] == "odh"
    assert binding["roleRef"]["name"] == "pipeline-runner-ds-pipeline"
    (subject,) = binding["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "pipeline-runner-ds-pipeline", "namespace": "odh"}
    assert install.operator_manifests("op:1", "minio:1")[5] == role
    # The server starts task pods under that account.
    command = pipelineserver.objects("odh")[-1]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--task-service-account") + 1] == "pipeline-runner-ds-pipeline"


def test_deployment_runs_the_server_on_the_pvc_with_the_token_and_minio() -> None:
    docs = pipelineserver.objects("odh", "localhost/odh-appliance/pipeline-runner:abc")
    assert [d["kind"] for d in docs] == [
        "ServiceAccount", "RoleBinding", "ServiceAccount", "RoleBinding", "PersistentVolumeClaim", "Service",
        "Deployment",
    ]  # fmt: skip
    deployment = docs[-1]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one SQLite writer
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ds-pipeline"
    (server,) = pod["containers"]
    command = server["command"]
    assert command[:3] == ["python", "-m", "appliance.pipelines.server"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags["--backend"] == "kube" and flags["--namespace"] == "odh"
    assert flags["--runner-image"] == "localhost/odh-appliance/pipeline-runner:abc"
    assert flags["--pipeline-root"] == "s3://pipelines" and flags["--data-dir"] == pipelineserver.DATA_DIR
    assert flags["--credentials-secret"] == pipelineserver.S3_SECRET
    assert server["envFrom"] == [{"secretRef": {"name": pipelineserver.S3_SECRET}}]
    token = server["env"][0]
    assert token["valueFrom"]["secretKeyRef"] == {"name": pipelineserver.TOKEN_SECRET, "key": "token"}
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": pipelineserver.PVC}}]
    assert server["readinessProbe"]["httpGet"]["path"] == "/healthz"
    stopped = pipelineserver.objects("odh", replicas=0)[-1]
    assert stopped["spec"]["replicas"] == 0


def test_s3_secret_has_data_connection_keys_for_the_pipelines_bucket() -> None:
    secret = pipelineserver.s3_secret("odh", {"MINIO_ROOT_USER": "u", "MINIO_ROOT_PASSWORD": "p"})
    assert secret["stringData"] == {
        "AWS_ACCESS_KEY_ID": "u",
        "AWS_SECRET_ACCESS_KEY": "p",
        "AWS_S3_ENDPOINT": "http://minio.odh.svc.cluster.local:9000",
        "AWS_S3_BUCKET": "pipelines",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_health_and_the_component_is_implemented() -> None:
    assert "datasciencepipelines" in components.IMPLEMENTED
    assert pipelineserver.health(None, "odh")[:2] == (False, "Progressing")
    starting = {"spec": {"replicas": 1}, "status": {}}
    assert pipelineserver.health(starting, "odh")[:2] == (False, "Progressing")
    ready = {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}}
    assert pipelineserver.health(ready, "odh")[:2] == (True, "Ready")
    assert pipelineserver.health({"spec": {"replicas": 0}}, "odh")[:2] == (False, "Removed")
    env = {e["name"]: e["value"] for e in install.operator_manifests("op:1", "m:1")[-1]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}  # fmt: skip
    assert env[pipelineserver.IMAGE_ENV] == pipelineserver.DEFAULT_IMAGE

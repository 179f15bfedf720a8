"""The Kubernetes backend's pure parts: the image rule, the task pod, how a pod's end is read, the log split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.pipelines import backend, ir, kube, launcher

DATA = Path(__file__).with_name("data")


def _request(image: str = "python:3.11", resources: dict[str, Any] | None = None) -> backend.TaskRequest:
    raw: dict[str, Any] = {"container": {"image": image, "command": ["sh", "-c"], "args": ["echo hi"]}}
    if resources:
        raw["container"]["resources"] = resources
    executor = ir.Executor(
        label="exec-add", image=image, command=("sh", "-c"), args=("echo hi",), env={"K": "v"}, raw=raw
    )
    return backend.TaskRequest(
        run_id="trivial-20261122-050239-6b4ecd",
        task_id="exit-handler-1/for-loop-2.0/Add_Two",
        attempt=2,
        executor=executor,
        executor_input={"inputs": {"parameterValues": {"a": 1}}, "outputs": {"outputFile": "/tmp/kfp-outputs/o"}},
        output_types={"Output": "NUMBER_INTEGER"},
        outputs_dir=kube.OUTPUTS_DIR,
        pipeline_root="s3://pipelines/root",
        context={"pipeline_job_name": "trivial-20261122-050239-6b4ecd"},
    )


SETTINGS = kube.KubeSettings(
    namespace="opendatahub",
    pipeline_root="s3://pipelines/root",
    credentials_secret="aws-connection-pipelines",
    owner={"apiVersion": "apps/v1", "kind": "Deployment", "name": "ds-pipeline", "uid": "u-1"},
)


def test_normalize_image_names_as_containerd_lists_them() -> None:
    assert kube.normalize_image("python:3.11") == "docker.io/library/python:3.11"
    assert kube.normalize_image("python") == "docker.io/library/python:latest"
    assert kube.normalize_image("me/tool:1") == "docker.io/me/tool:1"
    assert kube.normalize_image("localhost/odh-appliance/pipeline-runner") == (
        "localhost/odh-appliance/pipeline-runner:latest"
    )
    assert kube.normalize_image("quay.io:443/a/b:2") == "quay.io:443/a/b:2"


def test_images_missing_on_the_node_run_on_the_pipeline_runner() -> None:
    missing = {"docker.io/library/python:3.11"}  # as the backend learns it (ErrImageNeverPull)
    assert kube.choose_image("python:3.11", missing, kube.RUNNER_IMAGE) == kube.RUNNER_IMAGE
    assert kube.choose_image("busybox:1.36", missing, kube.RUNNER_IMAGE) == "busybox:1.36"
    assert kube.choose_image("", missing, kube.RUNNER_IMAGE) == kube.RUNNER_IMAGE


def test_pod_on_the_runner_image_runs_the_launcher_with_the_task_in_its_environment() -> None:
    pod = kube.pod_manifest(_request(), SETTINGS, kube.RUNNER_IMAGE)
    meta, spec = pod["metadata"], pod["spec"]
    assert len(meta["name"]) <= 63 and meta["name"].endswith("-a2")
    assert meta["name"].startswith("exit-handler-1-for-loop-2-0-add-two-")
    assert meta["annotations"] == {
        kube.RUN_ANNOTATION: "trivial-20261122-050239-6b4ecd",
        kube.TASK_ANNOTATION: "exit-handler-1/for-loop-2.0/Add_Two",
    }
    assert meta["labels"][kube.RUN_LABEL] == kube.run_label("trivial-20261122-050239-6b4ecd")
    assert meta["ownerReferences"][0]["name"] == "ds-pipeline"
    assert spec["restartPolicy"] == "Never" and "initContainers" not in spec
    (main,) = spec["containers"]
    assert main["command"] == [kube.TASK_PYTHON, "-m", "appliance.pipelines", f"env:{kube.TASK_ENV}"]
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["PYTHONPATH"] == kube.LAUNCHER_PATH
    assert env["PATH"].startswith("/opt/kfp/bin:")  # kfp's `sh -ec ... python3 -m kfp.dsl.executor_main`
    task = json.loads(env[kube.TASK_ENV])
    assert "result_file" not in task  # the result comes back on stdout, in the pod's log
    assert task["mount_root"] == "/" and task["command"] == ["sh", "-c"] and task["env"] == {"K": "v"}
    assert main["envFrom"] == [{"secretRef": {"name": "aws-connection-pipelines"}}]
    assert {m["mountPath"] for m in main["volumeMounts"]} == {"/tmp", "/minio", "/s3", "/gcs"}


def test_pod_on_a_component_image_gets_the_launcher_from_an_init_container() -> None:
    pod = kube.pod_manifest(_request("busybox:1.36"), SETTINGS, "busybox:1.36")
    (init,) = pod["spec"]["initContainers"]
    assert init["image"] == SETTINGS.runner_image
    (main,) = pod["spec"]["containers"]
    assert main["image"] == "busybox:1.36" and main["command"][0] == "python3"
    assert main["imagePullPolicy"] == "Never"  # tried on the node, never pulled
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["PYTHONPATH"] == kube.LAUNCHER_COPY and "PATH" not in env  # the image's own PATH
    assert {"name": "launcher", "mountPath": kube.LAUNCHER_COPY, "readOnly": True} in main["volumeMounts"]


def test_kfp_resources_become_requests_and_limits() -> None:
    resources = {"resourceCpuLimit": "2", "resourceMemoryLimit": "1Gi", "cpuRequest": 0.5, "memoryRequest": 1.5}
    pod = kube.pod_manifest(_request(resources=resources), SETTINGS, kube.RUNNER_IMAGE)
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "2", "memory": "1Gi"},
        "requests": {"cpu": "0.5", "memory": "1.5G"},
    }


def test_pod_end_reads_exit_codes_and_image_problems() -> None:
    assert kube.pod_end({"status": {"phase": "Pending"}}) is None
    running = {"status": {"phase": "Running", "containerStatuses": [{"name": "main", "state": {"running": {}}}]}}
    assert kube.pod_end(running) is None
    done = {"containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}
    assert kube.pod_end({"status": done}) == kube.PodEnd(3, "Error")
    pull = {"containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ErrImageNeverPull"}}}]}
    end = kube.pod_end({"status": pull})
    assert end is not None and end.exit_code == launcher.LAUNCHER_ERROR_EXIT_CODE and "ErrImageNeverPull" in end.reason
    deadline = {"phase": "Failed", "reason": "DeadlineExceeded"}
    assert kube.pod_end({"status": deadline}) == kube.PodEnd(1, "DeadlineExceeded")


def test_split_log_takes_the_result_line_out_of_the_tail() -> None:
    text = "\n".join([f"line {i}" for i in range(30)] + [launcher.RESULT_MARKER + json.dumps({"exit_code": 0})])
    result, tail = kube.split_log(text)
    assert result == {"exit_code": 0}
    assert tail.splitlines() == [f"line {i}" for i in range(10, 30)]
    assert kube.split_log("boom") == (None, "boom")

"""Iris, end to end, as a Kubeflow Pipelines v2 pipeline written with the kfp SDK.

ingest (a CSV from MinIO) → train (scikit-learn) → export (ONNX, skl2onnx) → deploy (an InferenceService)
→ smoke test (Open Inference Protocol v2 REST, the served model's answers against scikit-learn's).

Compile it with any kfp 2.x (the appliance's task runtime has one: `make pipelines-runtime`):

    .venv-kfp/bin/python examples/iris_onnx/pipeline.py            # writes iris_onnx.yaml here
    .venv-kfp/bin/python examples/iris_onnx/pipeline.py out.yaml

then upload and run it with `appliance pipelines run iris_onnx.yaml` (see examples/README.md).

Every component is a plain `@dsl.component` on `python:3.11` (kfp's default image today) that names the
packages it needs in `packages_to_install`, as on any KFP. The appliance's pipeline-runner image carries exactly these
versions (appliance/pipelines/task-requirements.txt), so on a disconnected cluster nothing is installed
and the tasks start at once; on a KFP with network, kfp's preamble installs them.

Only the function bodies travel to the task pods, so each component imports what it uses inside itself.
"""

import sys
from pathlib import Path

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

# kfp's default image, named so that a newer kfp does not move it: the appliance runs these tasks on its
# pipeline-runner image (Python 3.11) when the node lacks python:3.11, as on a disconnected site.
BASE_IMAGE = "python:3.11"
# The versions of the appliance's task runtime (and of the workbench image).
ML_PACKAGES = ["numpy==2.4.6", "scikit-learn==1.9.1", "skl2onnx==1.20.0", "onnx==1.23.2"]
S3_PACKAGES = ["minio==7.2.20"]
KUBE_PACKAGES = ["kubernetes==30.1.0"]


@dsl.component(base_image=BASE_IMAGE, packages_to_install=S3_PACKAGES)
def ingest(data_uri: str, dataset: Output[Dataset]) -> int:
    """Download the CSV at `data_uri` (s3://BUCKET/KEY) from MinIO and check its columns; the row count.

    Credentials: the AWS_* variables of an ODH data connection (AWS_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION). On the appliance every task pod has them (the pipeline
    server's data connection, Secret ds-pipeline-s3); locally they come from your environment.
    """
    import csv
    import os
    from urllib.parse import urlsplit

    import minio
    from minio.error import S3Error

    if not data_uri.startswith("s3://") or "/" not in data_uri[len("s3://") :]:
        raise ValueError(f"data_uri must be s3://BUCKET/KEY, not {data_uri!r}")
    bucket, _, key = data_uri[len("s3://") :].partition("/")
    missing = [k for k in ("AWS_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(k)]
    if missing:
        raise RuntimeError(f"no S3 credentials: {', '.join(missing)} not set (a data connection's AWS_* variables)")
    endpoint = urlsplit(os.environ["AWS_S3_ENDPOINT"])
    client = minio.Minio(
        endpoint.netloc,
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        secure=endpoint.scheme == "https",
        region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    try:
        client.fget_object(bucket, key, dataset.path)
    except S3Error as exc:
        raise RuntimeError(
            f"cannot read {data_uri} from {os.environ['AWS_S3_ENDPOINT']}: {exc.code} {exc.message} "
            "(upload the CSV first: see examples/README.md)"
        ) from exc

    wanted = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    with open(dataset.path, newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    if header != wanted:
        raise ValueError(f"{data_uri}: columns {header}, expected {wanted}")
    if len(rows) < 30:
        raise ValueError(f"{data_uri}: only {len(rows)} rows; too few to train and test on")
    for number, row in enumerate(rows, start=2):
        try:
            [float(row[c]) for c in wanted[:-1]]
        except ValueError:
            raise ValueError(f"{data_uri} line {number}: a feature is not a number: {row}") from None
    dataset.metadata.update({"rows": len(rows), "columns": header, "source": data_uri})
    print(f"ingested {len(rows)} rows from {data_uri}")
    return len(rows)


@dsl.component(base_image=BASE_IMAGE, packages_to_install=ML_PACKAGES)
def train(
    dataset: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    test_fraction: float = 0.25,
    seed: int = 42,
    min_accuracy: float = 0.9,
) -> float:
    """Fit a scikit-learn classifier (scaler + logistic regression) on a stratified split; its test accuracy.

    Fails when the accuracy is below `min_accuracy`, so a bad model is never exported or deployed.
    The model is pickled with its feature and class names (the ONNX export and the smoke test read them).
    """
    import csv
    import pickle

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with open(dataset.path, newline="") as f:
        rows = list(csv.DictReader(f))
    features = [c for c in rows[0] if c != "species"]
    classes = sorted({r["species"] for r in rows})
    x = np.array([[float(r[c]) for c in features] for r in rows], dtype=np.float32)
    y = np.array([classes.index(r["species"]) for r in rows], dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    classifier.fit(x_train, y_train)
    accuracy = float(classifier.score(x_test, y_test))
    metrics.log_metric("accuracy", accuracy)
    metrics.log_metric("train_rows", len(y_train))
    metrics.log_metric("test_rows", len(y_test))
    print(f"test accuracy {accuracy:.3f} on {len(y_test)} rows (classes: {', '.join(classes)})")
    if accuracy < min_accuracy:
        raise RuntimeError(f"test accuracy {accuracy:.3f} is below min_accuracy {min_accuracy}: not exporting")
    with open(model.path, "wb") as f:
        pickle.dump({"classifier": classifier, "features": features, "classes": classes}, f)
    model.metadata.update({"framework": "scikit-learn", "features": features, "classes": classes})
    return accuracy


@dsl.component(base_image=BASE_IMAGE, packages_to_install=ML_PACKAGES)
def export_onnx(sklearn_model: Input[Model], onnx_model: Output[Model]) -> None:
    """Convert the classifier to ONNX (skl2onnx): a directory holding `model.onnx`, as KServe's
    storage initializer and the model server expect under /mnt/models.

    Input `input` (FP32, [batch, 4]); outputs `label` (INT64, class index) and `probabilities`
    (FP32, [batch, classes]) — plain tensors (no ZipMap), as the Open Inference Protocol carries them.
    """
    import os
    import pickle

    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    with open(sklearn_model.path, "rb") as f:
        saved = pickle.load(f)
    features, classes = saved["features"], saved["classes"]
    proto = to_onnx(
        saved["classifier"],
        initial_types=[("input", FloatTensorType([None, len(features)]))],
        options={"zipmap": False},
    )
    onnx.checker.check_model(proto)
    os.makedirs(onnx_model.path, exist_ok=True)
    path = os.path.join(onnx_model.path, "model.onnx")
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    onnx_model.metadata.update(
        {"framework": "onnx", "file": "model.onnx", "opset": opset, "features": features, "classes": classes}
    )
    print(f"exported {path} ({os.path.getsize(path)} bytes, opset {opset}) → {onnx_model.uri}")


@dsl.component(base_image=BASE_IMAGE, packages_to_install=KUBE_PACKAGES)
def deploy(
    onnx_model: Input[Model],
    model_name: str,
    namespace: str = "",
    data_connection: str = "ds-pipeline-s3",
    timeout_seconds: int = 300,
) -> str:
    """Create (or update) the InferenceService `model_name` serving the ONNX model, wait until it is
    Ready and return its in-cluster URL (`status.address.url`).

    `namespace`: "" is the task's own (the pipeline server's namespace, where its task service account
    may manage InferenceServices). `data_connection`: the Secret with the AWS_* keys that the model's
    storage initializer reads the model with (the pipeline server's own, by default).
    """
    import time

    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    config.load_incluster_config()
    if not namespace:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            namespace = f.read().strip()
    uri = onnx_model.uri.replace("minio://", "s3://", 1)
    if not uri.startswith("s3://"):
        raise ValueError(f"the model is at {uri}: an InferenceService needs an s3:// pipeline root")
    group, version, plural = "serving.kserve.io", "v1beta1", "inferenceservices"
    isvc = {
        "apiVersion": f"{group}/{version}",
        "kind": "InferenceService",
        "metadata": {
            "name": model_name,
            "namespace": namespace,
            "labels": {"opendatahub.io/dashboard": "true", "app.kubernetes.io/part-of": "iris-onnx-example"},
            "annotations": {
                "openshift.io/display-name": model_name,
                "serving.kserve.io/deploymentMode": "RawDeployment",
            },
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "onnx"},
                    "storageUri": uri,
                    "storage": {"key": data_connection},
                }
            }
        },
    }
    api = client.CustomObjectsApi()
    try:
        api.create_namespaced_custom_object(group, version, namespace, plural, isvc)
        print(f"created InferenceService {namespace}/{model_name} from {uri}")
    except ApiException as exc:
        if exc.status != 409:
            raise RuntimeError(
                f"cannot create InferenceService {namespace}/{model_name}: {exc.status} {exc.reason}: {exc.body}"
            ) from exc
        patch = {"spec": isvc["spec"], "metadata": {"labels": isvc["metadata"]["labels"]}}
        api.patch_namespaced_custom_object(group, version, namespace, plural, model_name, patch)
        print(f"updated InferenceService {namespace}/{model_name} to {uri}")

    spec_problems = {"InvalidSpec", "InvalidStorageUri", "NoSupportingRuntime", "RuntimeNotRecognized",
                     "InvalidRuntime", "DataConnectionNotFound"}  # fmt: skip
    deadline = time.monotonic() + timeout_seconds
    last = "no status yet"
    while time.monotonic() < deadline:
        current = api.get_namespaced_custom_object(group, version, namespace, plural, model_name)
        status = current.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is not None and status.get("observedGeneration", 0) >= current["metadata"].get("generation", 0):
            last = f"Ready={ready.get('status')} ({ready.get('reason')}): {ready.get('message')}"
            if ready.get("status") == "True":
                url = status["address"]["url"]
                print(f"InferenceService {namespace}/{model_name} is Ready at {url}")
                return str(url)
            if ready.get("reason") in spec_problems:
                raise RuntimeError(f"InferenceService {namespace}/{model_name} cannot be served: {last}")
        time.sleep(2)
    raise RuntimeError(
        f"InferenceService {namespace}/{model_name} not Ready after {timeout_seconds}s: {last} "
        f"(kubectl -n {namespace} describe inferenceservice {model_name}; kubectl -n {namespace} logs "
        f"deploy/{model_name}-predictor -c storage-initializer)"
    )


@dsl.component(base_image=BASE_IMAGE, packages_to_install=ML_PACKAGES)
def smoke_test(url: str, model_name: str, dataset: Input[Dataset], sklearn_model: Input[Model]) -> str:
    """Send every row of the dataset to the served model (OIP v2 REST `/v2/models/<name>/infer`) and
    compare its labels with scikit-learn's predictions; fail, naming the rows, when any differs."""
    import csv
    import json
    import pickle
    import time
    import urllib.error
    import urllib.request

    import numpy as np

    with open(sklearn_model.path, "rb") as f:
        saved = pickle.load(f)
    with open(dataset.path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in saved["features"]] for r in rows], dtype=np.float32)
    expected = saved["classifier"].predict(x)
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}]}
    ).encode()
    endpoint = f"{url.rstrip('/')}/v2/models/{model_name}/infer"
    deadline = time.monotonic() + 60  # the Service may take a moment to route to the new pod
    while True:
        request = urllib.request.Request(endpoint, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.load(response)
            break
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"POST {endpoint}: {exc.code} {exc.read().decode(errors='replace')[:500]}") from exc
        except (urllib.error.URLError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"POST {endpoint}: {exc}") from exc
            time.sleep(2)
    outputs = {o["name"]: o for o in answer.get("outputs", [])}
    if "label" not in outputs:
        raise RuntimeError(f"the model answered without a `label` output: {sorted(outputs)}")
    served = np.array(outputs["label"]["data"], dtype=np.int64)
    differ = [i for i in range(len(rows)) if served[i] != expected[i]] if len(served) == len(rows) else None
    if differ is None or differ:
        detail = (
            f"{len(served)} labels for {len(rows)} rows"
            if differ is None
            else "; ".join(
                f"row {i}: served {saved['classes'][served[i]]}, scikit-learn {saved['classes'][expected[i]]}"
                for i in differ[:10]
            )
        )
        raise RuntimeError(f"the served model disagrees with scikit-learn ({endpoint}): {detail}")
    summary = f"{model_name}: {len(rows)} rows, served labels equal scikit-learn's"
    print(summary)
    return summary


@dsl.pipeline(
    name="iris-onnx",
    description="Ingest the iris CSV from MinIO, train scikit-learn, export ONNX, serve it and smoke-test it.",
)
def pipeline(
    data_uri: str = "s3://data/iris/iris.csv",
    model_name: str = "iris",
    deploy_model: bool = True,
    namespace: str = "",
    data_connection: str = "ds-pipeline-s3",
    min_accuracy: float = 0.9,
    deploy_timeout: int = 300,
) -> float:
    """`deploy_model=false` stops after the export (the model stays in the pipeline root): what runs
    without a cluster (`appliance pipelines run --local`)."""
    # Caching is off where a step reads or changes the world outside the pipeline: the CSV may have
    # changed under the same URI, and a re-run must deploy and test again (the model may be gone).
    data = ingest(data_uri=data_uri).set_caching_options(False)
    trained = train(dataset=data.outputs["dataset"], min_accuracy=min_accuracy)
    exported = export_onnx(sklearn_model=trained.outputs["model"])
    with dsl.If(deploy_model == True):  # noqa: E712 - kfp builds the condition from `==`
        served = deploy(
            onnx_model=exported.outputs["onnx_model"],
            model_name=model_name,
            namespace=namespace,
            data_connection=data_connection,
            timeout_seconds=deploy_timeout,
        ).set_caching_options(False)
        smoke_test(
            url=served.output,
            model_name=model_name,
            dataset=data.outputs["dataset"],
            sklearn_model=trained.outputs["model"],
        ).set_caching_options(False)
    return trained.outputs["Output"]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("iris_onnx.yaml")
    compiler.Compiler().compile(pipeline, str(target))
    print(f"compiled {target}")

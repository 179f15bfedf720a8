"""The one facade that the CLI and the TUI call. Nothing above this module touches Docker,
Kubernetes or the host directly; everything below it is reached through these functions.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import appliance
from appliance import config, errors, objectstore, progress
from appliance.actions import context as action_context
from appliance.actions import deployments as deployment_action
from appliance.actions import down as down_action
from appliance.actions import platform as platform_action
from appliance.actions import status as status_action
from appliance.actions import up as up_action
from appliance.actions import workbenches as workbench_action
from appliance.bundle import build as bundle_build_mod
from appliance.bundle import contents as bundle_contents
from appliance.bundle import load as bundle_load_mod
from appliance.bundle import sign as bundle_sign
from appliance.bundle import verify as bundle_verify_mod
from appliance.cluster import provider as cluster_provider
from appliance.doctor import checks, facts
from appliance.images import base as base_image_mod
from appliance.images import build as image_build
from appliance.images import catalog as images_catalog
from appliance.images import engine as images_engine
from appliance.serving import client as model_client
from appliance.serving import process as model_process

# Re-exported for front ends, which may not import the lower layers themselves.
ApplianceError = errors.ApplianceError
CheckResult = checks.CheckResult
Loaded = config.Loaded
DEFAULT_COMPONENTS = dict(config.DEFAULT_COMPONENTS)  # the DataScienceCluster components and their defaults


def load_config(
    *,
    config_file: str | None = None,
    overrides: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
) -> config.Loaded:
    """The effective configuration: defaults < file < environment < flags."""
    return config.load(config_file=config_file, overrides=overrides, flags=flags)


def config_as_yaml(loaded: config.Loaded) -> str:
    return config.as_yaml(loaded.config)


def config_as_dict(loaded: config.Loaded) -> dict[str, Any]:
    return {
        "config": loaded.config.model_dump(mode="json"),
        "sources": loaded.sources,
        "file": str(loaded.file) if loaded.file else None,
        "paths": {
            "config_file": str(loaded.files_considered[0]) if loaded.files_considered else None,
            "config_dir": str(loaded.paths.config_dir),
            "data_dir": str(loaded.paths.data_dir),
            "cache_dir": str(loaded.paths.cache_dir),
        },
    }


@dataclass(frozen=True)
class DoctorReport:
    results: list[checks.CheckResult]

    @property
    def failed(self) -> list[checks.CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("pass", "warn", "fail")}

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.counts(), "checks": [r.as_dict() for r in self.results]}

    def raise_for_failures(self) -> None:
        if self.failed:
            names = ", ".join(r.name for r in self.failed)
            raise errors.CheckFailed(
                f"{len(self.failed)} of {len(self.results)} checks failed: {names}",
                hint="each failed check above has a hint; fix them and run `appliance doctor` again",
            )


def doctor(loaded: config.Loaded) -> DoctorReport:
    """Run every preflight check against the real host."""
    observed = facts.gather(loaded.config, loaded.paths)
    return DoctorReport(checks.evaluate(observed))


def version_info() -> dict[str, str]:
    return {
        "odh-appliance": appliance.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "executable": sys.executable,
    }


@dataclass(frozen=True)
class ServeEndpoints:
    """Where `serve` answers, handed to `on_ready` once every model is loaded."""

    http: str
    grpc: str | None
    models: list[str]
    workers: int


def serve(
    model: str | Path,
    *,
    name: str | None = None,
    host: str = "127.0.0.1",
    http_port: int = 8080,
    grpc_port: int | None = 8081,
    workers: int = 1,
    on_ready: Callable[[ServeEndpoints], None] | None = None,
) -> None:
    """Serve an ONNX model (a .onnx file or a model directory) over the Open Inference Protocol, REST
    and gRPC, until SIGINT/SIGTERM. Startup failures raise ApplianceErrors with hints."""
    # Imported here: onnxruntime and grpc take a second to import, and `appliance --help` must not wait.
    from appliance.serving import server  # noqa: PLC0415

    if workers < 1:
        raise errors.UsageError(f"--workers must be at least 1, not {workers}")

    def ready(endpoints: server.Endpoints) -> None:
        if on_ready is not None:
            on_ready(ServeEndpoints(endpoints.http, endpoints.grpc, endpoints.models, endpoints.workers))

    options = server.Options(
        model_path=Path(model), name=name, host=host, http_port=http_port, grpc_port=grpc_port, workers=workers
    )
    server.serve(options, ready)


# --- images and bundles (DESIGN.md §4): appliance.images and appliance.bundle ----------------------

BuiltImage = image_build.BuiltImage
BundleBuildResult = bundle_build_mod.BuildResult
BundleContents = bundle_contents.Contents
BundleLoadResult = bundle_load_mod.LoadResult
BundleVerifyResult = bundle_verify_mod.VerifyResult
Progress = progress.Progress
StepEvent = progress.StepEvent
STEP_MARK = progress.MARK
DEFAULT_BASE_IMAGE = base_image_mod.DEFAULT.tag


def _source_root() -> Path:
    return images_catalog.source_root(Path(appliance.__file__).resolve().parent)


def image_build_options(
    *,
    ca_bundle: str | None = None,
    use_ca_bundle: bool = True,
    network: str | None = "host",
    base_image: str | None = None,
    no_cache: bool = False,
) -> image_build.BuildOptions:
    """Build options: the CA bundle defaults to the host's when it exists (`use_ca_bundle=False`: none)."""
    ca = Path(ca_bundle) if ca_bundle else image_build.default_ca_bundle() if use_ca_bundle else None
    return image_build.BuildOptions(
        base_image=base_image or DEFAULT_BASE_IMAGE,
        ca_bundle=ca,
        network=None if network in (None, "", "default") else network,
        no_cache=no_cache,
    )


def images_base(
    loaded: config.Loaded,
    prog: progress.Progress,
    *,
    from_image: str | None = None,
    mirror: str | None = None,
    rebuild: bool = False,
) -> base_image_mod.BaseResult:
    """Make the Python base image: from Debian packages, or from an existing image (`from_image`)."""
    recipe = dataclasses.replace(base_image_mod.DEFAULT, mirror=mirror) if mirror else base_image_mod.DEFAULT
    if from_image:
        return base_image_mod.from_image(from_image, recipe, prog)
    return base_image_mod.ensure(recipe, loaded.paths.cache_dir, prog, rebuild=rebuild)


def images_build(
    loaded: config.Loaded, prog: progress.Progress, names: Sequence[str], options: image_build.BuildOptions
) -> list[image_build.BuiltImage]:
    """Build the named platform images (all when none are named), making the base image first if needed."""
    specs = images_catalog.select(list(names))
    if options.base_image == DEFAULT_BASE_IMAGE and images_engine.inspect(DEFAULT_BASE_IMAGE) is None:
        base_image_mod.ensure(base_image_mod.DEFAULT, loaded.paths.cache_dir, prog)
    return image_build.build_images(specs, _source_root(), loaded.paths.cache_dir, options, prog)


def images_list() -> list[dict[str, Any]]:
    """Every platform image and its latest local build (or None)."""
    rows = []
    for spec in images_catalog.CATALOG.values():
        info = images_engine.inspect(f"{spec.repository()}:latest")
        content_tag = next((t for t in info.tags if not t.endswith(":latest")), None) if info else None
        rows.append(
            {
                "name": spec.name,
                "summary": spec.summary,
                "tag": content_tag,
                "id": info.id if info else None,
                "size": info.size if info else None,
            }
        )
    return rows


def bundle_build(
    loaded: config.Loaded,
    prog: progress.Progress,
    definition: str,
    output: str,
    options: image_build.BuildOptions,
    *,
    sign_key: str | None = None,
    compress: bool = True,
) -> bundle_build_mod.BuildResult:
    return bundle_build_mod.build(
        Path(definition),
        Path(output),
        _source_root(),
        loaded.paths.cache_dir,
        options,
        prog,
        sign_key=Path(sign_key) if sign_key else None,
        compress=compress,
    )


def bundle_verify(path: str, prog: progress.Progress, *, key: str | None = None) -> bundle_verify_mod.VerifyResult:
    return bundle_verify_mod.verify(Path(path), prog, public_key=Path(key) if key else None)


def bundle_inspect(path: str) -> bundle_contents.Contents:
    return bundle_contents.inspect(Path(path))


def bundle_load(
    loaded: config.Loaded, path: str, prog: progress.Progress, *, key: str | None = None
) -> bundle_load_mod.LoadResult:
    return bundle_load_mod.load(
        Path(path), loaded.paths.bin_dir, loaded.paths.data_dir, prog, public_key=Path(key) if key else None
    )


def bundle_keygen(path: str) -> bundle_sign.KeyPair:
    return bundle_sign.generate(Path(path))


# --- the cluster (DESIGN.md §2 actions over a provider): appliance.actions and appliance.cluster ---

ClusterStatus = status_action.Status


def _action_context(loaded: config.Loaded, prog: progress.Progress) -> action_context.Context:
    return action_context.Context(
        cfg=loaded.config,
        paths=loaded.paths,
        provider=cluster_provider.for_config(loaded.config, loaded.paths),
        progress=prog,
        source_root=_source_root,
    )


def up(loaded: config.Loaded, prog: progress.Progress, *, merge_kubeconfig: bool = False) -> Path:
    """Bring the cluster up (or resume / confirm it); returns the kubeconfig path."""
    ctx = _action_context(loaded, prog)
    up_action.run(ctx, merge_kubeconfig=merge_kubeconfig)
    return ctx.kubeconfig


def down(loaded: config.Loaded, prog: progress.Progress, *, keep_data: bool = False) -> bool:
    """Delete the cluster; False when there was none."""
    return down_action.run(_action_context(loaded, prog), keep_data=keep_data)


def status(loaded: config.Loaded) -> status_action.Status:
    return status_action.run(_action_context(loaded, progress.Progress()))


def cluster_problem(loaded: config.Loaded) -> str | None:
    """None while the cluster's API server answers; else one line (cheap enough to poll for a banner)."""
    return status_action.problem(_action_context(loaded, progress.Progress()))


def credentials(loaded: config.Loaded) -> dict[str, str]:
    """The MinIO root credentials (access_key, secret_key, endpoint, secret) — shown only on request."""
    ctx = _action_context(loaded, progress.Progress())
    found = platform_action.credentials(ctx.cluster())
    url = platform_action.gateway_url(ctx)
    if url:
        found["gateway_endpoint"] = url  # the same S3 API from this host, through the gateway
    return found


def endpoints(loaded: config.Loaded) -> list[dict[str, str]]:
    """What a person opens from this host, through the gateway: name, url, auth (how to authenticate)."""
    ctx = _action_context(loaded, progress.Progress())
    return platform_action.endpoints(ctx, ctx.cluster())


def gpu_images(
    loaded: config.Loaded, prog: progress.Progress, *, device_plugin_source: str | None = None
) -> dict[str, str]:
    """Build (or confirm) the GPU node variant and the device plugin image; returns their tags by name.
    The CPU node image is built first only when it is missing."""
    from appliance.images import gpu, nodeimage  # noqa: PLC0415

    version = loaded.config.kubernetes_version
    node = nodeimage.node_tag(version)
    if images_engine.inspect(node) is None:
        nodeimage.build_node_image(version, _source_root(), loaded.paths.cache_dir, prog)
    if images_engine.inspect(DEFAULT_BASE_IMAGE) is None:
        base_image_mod.ensure(base_image_mod.DEFAULT, loaded.paths.cache_dir, prog)
    source = Path(device_plugin_source).expanduser() if device_plugin_source else None
    return {
        "kind-node-gpu": gpu.ensure_node_gpu_image(version, node, _source_root(), loaded.paths.cache_dir, prog),
        "nvidia-device-plugin": gpu.ensure_device_plugin_image(
            _source_root(), loaded.paths.cache_dir, prog, source=source
        ),
    }


def node_image(loaded: config.Loaded, prog: progress.Progress) -> str:
    """Build (or confirm) the kind node image for the configured Kubernetes version; returns its tag."""
    from appliance.images import nodeimage  # noqa: PLC0415

    return nodeimage.build_node_image(loaded.config.kubernetes_version, _source_root(), loaded.paths.cache_dir, prog)


# --- endpoints on this machine: where front ends reach the platform --------------------------------
# The platform gateway (issue #6) serves MinIO's S3 API at its root (path-style), notebooks under
# /notebook/<ns>/<name>/ and model REST endpoints under /serving/<ns>/<name>/v2/... on ports.http.
# Every front end resolves endpoints through these functions only, so a change of the gateway's
# layout is a change here.


def gateway_url(loaded: config.Loaded) -> str:
    """The gateway as seen from this machine: http://127.0.0.1:<ports.http> (or the bind address)."""
    url = platform_action.gateway_url(_action_context(loaded, progress.Progress()))
    if url is None:
        raise errors.ApplianceError(
            f"the appliance maps no host port to the gateway of a {loaded.config.provider} cluster",
            hint="reach its NodePort 30080 on the node, or `kubectl -n opendatahub port-forward svc/odh-gateway "
            "8080:80` (docs/gateway.md)",
        )
    return url


def storage_target(loaded: config.Loaded) -> objectstore.Target:
    """The cluster's MinIO behind the gateway, with the root credentials read from the cluster."""
    creds = credentials(loaded)
    return objectstore.Target(creds.get("gateway_endpoint") or gateway_url(loaded), creds["access_key"],
                              creds["secret_key"])  # fmt: skip


def storage_target_for(endpoint: str, access_key: str, secret_key: str) -> objectstore.Target:
    """Any S3 endpoint (a test server, a port-forward, another MinIO) with explicit credentials."""
    return objectstore.Target(endpoint, access_key, secret_key)


def model_url(loaded: config.Loaded, namespace: str, name: str) -> str:
    """The REST base URL of a deployed model (an InferenceService) behind the gateway."""
    return f"{gateway_url(loaded)}/serving/{namespace}/{name}"


def model_endpoint(loaded: config.Loaded, namespace: str, name: str) -> tuple[str, str | None]:
    """A deployed model's REST base URL through the gateway and its Bearer token (None: auth off)."""
    return model_url(loaded, namespace, name), deployment_action.token(_cluster(loaded), namespace, name)


# --- object storage (MinIO's S3 API): appliance.objectstore ---------------------------------------

StorageTarget = objectstore.Target
StorageBucket = objectstore.Bucket
StorageObject = objectstore.Object


def storage_buckets(target: objectstore.Target) -> list[objectstore.Bucket]:
    return objectstore.buckets(target)


def storage_make_bucket(target: objectstore.Target, name: str) -> None:
    objectstore.make_bucket(target, name)


def storage_remove_bucket(target: objectstore.Target, name: str) -> None:
    """Delete an empty bucket (the object store refuses a bucket with objects, with a hint)."""
    objectstore.remove_bucket(target, name)


def storage_objects(
    target: objectstore.Target, bucket: str, prefix: str = "", *, recursive: bool = True
) -> list[objectstore.Object]:
    return objectstore.objects(target, bucket, prefix, recursive=recursive)


def storage_upload(
    target: objectstore.Target, bucket: str, key: str, path: str | Path, prog: progress.Progress
) -> objectstore.Object:
    return objectstore.upload(target, bucket, key, Path(path).expanduser(), prog)


def storage_download(
    target: objectstore.Target, bucket: str, key: str, dest: str | Path, prog: progress.Progress
) -> Path:
    return objectstore.download(target, bucket, key, Path(dest).expanduser(), prog)


def storage_delete(target: objectstore.Target, bucket: str, key: str) -> None:
    objectstore.remove(target, bucket, key)


def storage_preview(target: objectstore.Target, bucket: str, key: str, limit: int = 64 * 1024) -> bytes:
    return objectstore.read(target, bucket, key, limit)


# --- a model server's Open Inference Protocol (REST): appliance.serving.client --------------------

ModelMetadata = model_client.ModelMetadata
TensorSpec = model_client.TensorSpec
Tensor = model_client.Tensor
MetricsScrape = model_client.Scrape
ModelRates = model_client.ModelRates


LocalModelServer = model_process.LocalServer


def serve_background(
    name: str,
    *,
    model_path: str | Path | None = None,
    storage: objectstore.Target | None = None,
    bucket: str = "",
    key: str = "",
) -> model_process.LocalServer:
    """Start a model server on 127.0.0.1 (a free port, REST) for a local .onnx, or for an object in
    MinIO (`storage`, `bucket`, `key`), and wait until it is ready. Stop it with `.stop()`."""
    if model_path is not None:
        return model_process.start(name=name, model_path=Path(model_path))
    if storage is None or not bucket or not key:
        raise errors.UsageError("serve_background needs a local model or a bucket and key in object storage")
    env = {
        "AWS_ENDPOINT_URL": storage.endpoint,
        "AWS_ACCESS_KEY_ID": storage.access_key,
        "AWS_SECRET_ACCESS_KEY": storage.secret_key,
        "AWS_DEFAULT_REGION": storage.region,
    }
    return model_process.start(name=name, storage_uri=f"s3://{bucket}/{key}", s3_env=env)


def model_server_ready(url: str, *, token: str | None = None) -> bool:
    return model_client.server_ready(url, token=token)


def model_list(url: str, *, token: str | None = None) -> list[dict[str, str]]:
    """The models a server has (its repository index): name, version, state. `token`: the Bearer
    token a model behind the gateway needs (`model_endpoint`)."""
    return model_client.models(url, token=token)


def model_metadata(url: str, model: str, *, token: str | None = None) -> model_client.ModelMetadata:
    return model_client.metadata(url, model, token=token)


def model_example(spec: model_client.TensorSpec) -> str:
    """A placeholder for a "try it" form field: one example value per element."""
    return model_client.example_text(spec)


def model_parse_input(spec: model_client.TensorSpec, text: str) -> model_client.Tensor:
    """What a person typed for one input → a tensor (raises an ApplianceError naming the input)."""
    return model_client.parse_tensor(spec, text)


def model_infer(
    url: str, model: str, inputs: Sequence[model_client.Tensor], *, token: str | None = None
) -> list[model_client.Tensor]:
    return model_client.infer(url, model, list(inputs), token=token)


def model_format_output(tensor: model_client.Tensor) -> str:
    return model_client.format_tensor(tensor)


def model_metrics(url: str, at: float, *, token: str | None = None) -> model_client.Scrape:
    """One scrape of the server's /metrics: counters per model, stamped with `at` (time.monotonic()).
    For a deployed model, `url` is its gateway path (`model_endpoint`): the gateway passes
    `/serving/<ns>/<name>/metrics` to its predictor, behind the same token."""
    return model_client.parse_metrics(model_client.scrape(url, token=token), at)


def model_rates(before: model_client.Scrape, after: model_client.Scrape) -> list[model_client.ModelRates]:
    """Requests/s, errors/s and mean latency per model between two scrapes."""
    return model_client.rates(before, after)


# --- workbenches (kubeflow.org/v1 Notebook): appliance.actions.workbenches -------------------------

Workbench = workbench_action.Workbench
WORKBENCH_SIZES = tuple(workbench_action.SIZES)
WORKBENCH_IMAGE = workbench_action.DEFAULT_IMAGE
WORKBENCH_PROJECT = workbench_action.DEFAULT_PROJECT


def _cluster(loaded: config.Loaded) -> Any:
    return _action_context(loaded, progress.Progress()).cluster()


def workbenches(loaded: config.Loaded) -> list[workbench_action.Workbench]:
    return workbench_action.list_all(_cluster(loaded))


def workbench_create(
    loaded: config.Loaded,
    namespace: str,
    name: str,
    *,
    image: str = workbench_action.DEFAULT_IMAGE,
    size: str = "small",
    gpu: int = 0,
) -> workbench_action.Workbench:
    """Create (or update) a Notebook in a data science project (the namespace is made and labelled)."""
    return workbench_action.create(_cluster(loaded), namespace, name, image=image, size=size, gpu=gpu)


def workbench_manifest(
    namespace: str, name: str, *, image: str = workbench_action.DEFAULT_IMAGE, size: str = "small", gpu: int = 0
) -> dict[str, Any]:
    """The Notebook `workbench_create` would apply (validated; raises UsageError on bad input)."""
    return workbench_action.manifest(namespace, name, image=image, size=size, gpu=gpu)


def workbench_set_stopped(loaded: config.Loaded, namespace: str, name: str, stopped: bool) -> None:
    workbench_action.set_stopped(_cluster(loaded), namespace, name, stopped)


def workbench_delete(loaded: config.Loaded, namespace: str, name: str) -> None:
    workbench_action.delete(_cluster(loaded), namespace, name)


def workbench_url(loaded: config.Loaded, namespace: str, name: str) -> str:
    """The browser URL behind the gateway, with the workbench's token (a secret: show it on request)."""
    cluster = _cluster(loaded)
    return workbench_action.url(gateway_url(loaded), namespace, name, workbench_action.token(cluster, namespace, name))


def workbench_logs(loaded: config.Loaded, namespace: str, name: str, tail: int = 500) -> str:
    return workbench_action.logs(_cluster(loaded), namespace, name, tail)


def workbench_object(loaded: config.Loaded, namespace: str, name: str) -> dict[str, Any]:
    """The Notebook as the API server has it (for describe / YAML views)."""
    return workbench_action.get(_cluster(loaded), namespace, name)


def to_yaml(obj: Any) -> str:
    import yaml  # noqa: PLC0415

    return str(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))


# --- model deployments (KServe InferenceService, RawDeployment): appliance.actions.deployments ----

Deployment = deployment_action.Deployment


def model_storage_uri(bucket: str, key: str) -> str:
    """The storageUri of a model object: its folder for `<name>/model.onnx`, else the object."""
    return deployment_action.storage_uri(bucket, key)


def model_deploy(loaded: config.Loaded, namespace: str, name: str, storage_uri: str) -> None:
    """Create (or update) an InferenceService serving `storage_uri` (s3://...) in a data science project."""
    deployment_action.deploy(_cluster(loaded), namespace, name, storage_uri)


def model_deployments(loaded: config.Loaded) -> list[deployment_action.Deployment]:
    return deployment_action.list_all(_cluster(loaded))


def model_undeploy(loaded: config.Loaded, namespace: str, name: str) -> None:
    deployment_action.delete(_cluster(loaded), namespace, name)


# --- pipelines (issue #7): appliance.pipelines — the KFP v2 engine and its local runner -------------
# Imported inside the functions: `appliance --help` must not pay for them, and this section stays
# self-contained for the pipeline server that comes later.


@dataclass(frozen=True)
class PipelineTask:
    """One task of a run, as front ends show it."""

    task_id: str
    kind: str
    state: str
    attempts: int
    exit_code: int | None
    started: float | None  # epoch seconds
    finished: float | None
    seconds: float | None
    error: str
    log_path: str
    log_tail: str
    outputs: dict[str, Any]


@dataclass(frozen=True)
class PipelineRun:
    run_id: str
    pipeline: str
    state: str  # succeeded | failed
    outputs: dict[str, Any]
    tasks: list[PipelineTask]
    error: str
    pipeline_root: str
    database: str
    seconds: float

    @property
    def failed(self) -> list[PipelineTask]:
        return [t for t in self.tasks if t.state == "failed" and t.kind in ("container", "importer")] or [
            t for t in self.tasks if t.state == "failed"
        ]


def pipelines_home(loaded: config.Loaded) -> Path:
    """Where local pipeline runs keep their history (runs.db), scratch files and default artifact root."""
    return loaded.paths.data_dir / "pipelines"


def pipelines_run_local(
    loaded: config.Loaded,
    path: str | Path,
    prog: progress.Progress,
    *,
    parameters: Mapping[str, str] | None = None,
    pipeline_root: str | None = None,
    enable_cache: bool = True,
    python: str | None = None,
    fork_server: bool = True,
    allow_pip: bool = False,
    max_parallel: int = 4,
    task_timeout: float = 3600.0,
    database: str | Path | None = None,
    workdir: str | Path | None = None,
) -> PipelineRun:
    """Run a compiled KFP pipeline (IR YAML/JSON) on this machine; every task is a local process.

    pipeline_root: `s3://bucket/prefix` or `minio://bucket/prefix` (credentials from AWS_* variables,
    as in an ODH data connection) or a directory [default: <data dir>/pipelines/artifacts]. A failed
    run is returned (state "failed"), not raised: the caller shows the failing task and its log.
    """
    import time as time_mod  # noqa: PLC0415

    from appliance.pipelines import engine, ir, local, runs, store  # noqa: PLC0415

    started = time_mod.monotonic()
    if max_parallel < 1:
        raise errors.UsageError(f"--max-parallel must be at least 1, not {max_parallel}")
    pipeline = ir.load(path)
    home = pipelines_home(loaded)
    artifact_store = store.Store(pipeline_root or pipeline.default_pipeline_root or str(home / "artifacts"))
    settings = local.LocalSettings(
        python=local.find_task_python(python),
        workdir=Path(workdir) if workdir else home / "work",
        pipeline_root=artifact_store.root,
        fork_server=fork_server,
        allow_pip=allow_pip,
        task_timeout=task_timeout,
    )
    backend = local.LocalBackend(settings)
    backend.start()  # the fork server imports kfp while we check the store and open the history
    try:
        artifact_store.ensure_bucket()
        records = runs.RunStore(database or home / "runs.db")
        try:
            backend.wait_ready()
            options = engine.Options(
                pipeline_root=artifact_store.root, enable_cache=enable_cache, max_parallel=max_parallel
            )
            result = engine.Engine(pipeline, backend, records, prog, options).run(dict(parameters or {}))
        finally:
            records.close()
    finally:
        backend.close()
    fields = [f.name for f in dataclasses.fields(PipelineTask)]
    tasks = [PipelineTask(**{name: getattr(t, name) for name in fields}) for t in result.tasks]
    return PipelineRun(
        run_id=result.run_id,
        pipeline=pipeline.name,
        state=result.state,
        outputs=result.outputs,
        tasks=tasks,
        error=result.error,
        pipeline_root=artifact_store.root,
        database=str(database or home / "runs.db"),
        seconds=time_mod.monotonic() - started,
    )


# --- the pipeline server (issue #7 part 2): upload, run, list, get, logs through the gateway ------
# The server is `appliance.pipelines.server` (deployed by the operator when datasciencepipelines is
# Managed). Where it is and its token are resolved in ONE place, `pipelines_server`; the calls below
# are plain HTTP with the standard library and return the server's JSON.

PIPELINES_URL_ENV = "ODH_PIPELINES_URL"  # not ODH_APPLIANCE_*: those are configuration settings
PIPELINES_TOKEN_ENV = "ODH_PIPELINES_TOKEN"  # the name the server reads its token from, too
PIPELINES_TIMEOUT = 30.0
TERMINAL_RUN_STATES = ("succeeded", "failed")


@dataclass(frozen=True)
class PipelineServer:
    url: str  # the API base: http://127.0.0.1:8080/ds-pipeline (the gateway) or the server itself
    token: str


def pipelines_server(loaded: config.Loaded, *, url: str | None = None, token: str | None = None) -> PipelineServer:
    """Where the pipeline server is: --server/--token, else $ODH_PIPELINES_URL/_TOKEN, else the
    cluster's gateway (`/ds-pipeline`) with the token from the Secret the operator made."""
    import os  # noqa: PLC0415

    url = url or os.environ.get(PIPELINES_URL_ENV)
    token = token if token is not None else os.environ.get(PIPELINES_TOKEN_ENV)
    if url and token is not None:
        return PipelineServer(url.rstrip("/"), token)
    ctx = _action_context(loaded, progress.Progress())
    if not url:
        base = platform_action.gateway_url(ctx)
        if base is None:
            raise errors.ApplianceError(
                "this cluster's gateway is not mapped to this host, so the pipeline server's address is unknown",
                hint=f"pass --server URL (or set {PIPELINES_URL_ENV})",
            )
        url = f"{base}{platform_action.PIPELINES_PATH}"
    if token is None:
        token = platform_action.pipelines_token(ctx.cluster())
    return PipelineServer(url.rstrip("/"), token)


def _pipelines_call(
    server: PipelineServer, method: str, path: str, body: bytes | None = None, *, raw: bool = False
) -> Any:
    import json  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    request = urllib.request.Request(f"{server.url}{path}", data=body, method=method)
    if server.token:
        request.add_header("Authorization", f"Bearer {server.token}")
    if body is not None:
        request.add_header("Content-Type", "application/json" if body[:1] in (b"{", b"[") else "application/yaml")
    try:
        with urllib.request.urlopen(request, timeout=PIPELINES_TIMEOUT) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = str(json.loads(text).get("error", text))
        except ValueError:
            message = text.strip() or exc.reason
        hint = {
            401: "the token is wrong or missing: `appliance pipelines` reads it from the cluster, or pass --token",
            404: "`appliance pipelines list` shows the runs; `--pipelines` the uploaded pipelines",
            502: "the gateway has no pipeline server behind it: is datasciencepipelines Managed? `appliance status`",
            503: "the pipeline server is starting; retry in a moment",
        }.get(exc.code)
        raise errors.ApplianceError(f"pipeline server: {message} (HTTP {exc.code})", hint=hint) from None
    except (urllib.error.URLError, OSError) as exc:
        raise errors.ApplianceError(
            f"the pipeline server at {server.url} does not answer ({exc})",
            hint="`appliance status` shows whether the cluster and DataSciencePipelines are ready",
        ) from None
    return data if raw else json.loads(data)


def pipelines_validate(path: str | Path) -> str:
    """Load and check a compiled pipeline here (a bad file never reaches the server); returns its name."""
    from appliance.pipelines import ir  # noqa: PLC0415

    return ir.load(path).name


def pipelines_upload(
    server: PipelineServer, path: str | Path, *, name: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """Upload a compiled pipeline: a new pipeline (named after its pipelineInfo unless `name`), or with
    `version`, a new version of an existing one (created when it does not exist)."""
    import urllib.parse  # noqa: PLC0415

    from appliance.pipelines import ir  # noqa: PLC0415 - validate here: a bad file never reaches the server

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise errors.UsageError(f"cannot read {file}: {exc.strerror}") from exc
    pipeline = ir.loads(text, source=str(file))
    name = name or pipeline.name
    quoted = urllib.parse.quote(name, safe="")
    if version:
        known = {str(p["name"]) for p in _pipelines_call(server, "GET", "/apis/v1/pipelines")["pipelines"]}
        if name in known:
            q = urllib.parse.urlencode({"version": version})
            return dict(_pipelines_call(server, "POST", f"/apis/v1/pipelines/{quoted}/versions?{q}", text.encode()))
    q = urllib.parse.urlencode({"name": name, **({"version": version} if version else {})})
    return dict(_pipelines_call(server, "POST", f"/apis/v1/pipelines?{q}", text.encode()))


def pipelines_list(server: PipelineServer) -> list[dict[str, Any]]:
    return list(_pipelines_call(server, "GET", "/apis/v1/pipelines")["pipelines"])


def pipelines_create_run(
    server: PipelineServer,
    pipeline: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    version: str | None = None,
    enable_cache: bool = True,
) -> dict[str, Any]:
    """Start a run of an uploaded pipeline; returns the run (state `running`). Parameters may be
    typed values or CLI text (`-p x=5`); the server checks them against the pipeline."""
    import json  # noqa: PLC0415

    body = {"pipeline": pipeline, "parameters": dict(parameters or {}), "enable_cache": enable_cache}
    if version:
        body["version"] = version
    return dict(_pipelines_call(server, "POST", "/apis/v1/runs", json.dumps(body).encode()))


def pipelines_runs(server: PipelineServer, limit: int = 50) -> list[dict[str, Any]]:
    return list(_pipelines_call(server, "GET", f"/apis/v1/runs?limit={int(limit)}")["runs"])


def pipelines_get_run(server: PipelineServer, run_id: str) -> dict[str, Any]:
    import urllib.parse  # noqa: PLC0415

    return dict(_pipelines_call(server, "GET", f"/apis/v1/runs/{urllib.parse.quote(run_id, safe='')}"))


def pipelines_task_log(server: PipelineServer, run_id: str, task_id: str) -> str:
    import urllib.parse  # noqa: PLC0415

    path = f"/apis/v1/runs/{urllib.parse.quote(run_id, safe='')}/log?{urllib.parse.urlencode({'task': task_id})}"
    return bytes(_pipelines_call(server, "GET", path, raw=True)).decode(errors="replace")


def pipelines_wait(
    server: PipelineServer,
    run_id: str,
    *,
    timeout: float = 3600.0,
    interval: float = 0.5,
    on_change: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll the run until it ends (bounded by `timeout`); `on_change` gets each task that changed state."""
    import time as time_mod  # noqa: PLC0415

    seen: dict[str, tuple[str, int]] = {}
    deadline = time_mod.monotonic() + timeout
    while True:
        run = pipelines_get_run(server, run_id)
        for task in run["tasks"]:
            key = (str(task["state"]), int(task.get("attempts") or 0))
            if seen.get(task["task_id"]) != key:
                seen[task["task_id"]] = key
                if on_change is not None:
                    on_change(task)
        if run["state"] in TERMINAL_RUN_STATES:
            return run
        if time_mod.monotonic() > deadline:
            raise errors.ApplianceError(
                f"run {run_id} is still {run['state']} after {timeout:g}s",
                hint=f"it goes on in the cluster: `appliance pipelines get {run_id}`",
            )
        time_mod.sleep(interval)


# --- pipelines in the terminal UI (issue #8): run forms, artifacts, durations -----------------------

ARTIFACT_PREVIEW_LIMIT = 64 * 1024  # artifacts up to this size are shown inline when they are text
TEXT_ARTIFACTS = ("Metrics", "ClassificationMetrics", "SlicedClassificationMetrics", "Markdown", "HTML", "Dataset")


@dataclass(frozen=True)
class PipelineParameter:
    """One declared input parameter of a pipeline, as a run form shows it."""

    name: str
    type: str  # STRING | NUMBER_INTEGER | NUMBER_DOUBLE | BOOLEAN | LIST | STRUCT
    default: Any = None
    has_default: bool = False
    optional: bool = False

    @property
    def required(self) -> bool:
        return not (self.has_default or self.optional)

    @property
    def default_text(self) -> str:
        """The default as a person types it (`-p` text): true/false, JSON for lists and structs."""
        import json  # noqa: PLC0415

        value = self.default
        if not self.has_default or value is None:
            return ""
        if self.type == "BOOLEAN":
            return "true" if value else "false"
        if self.type in ("LIST", "STRUCT"):
            return json.dumps(value)
        if self.type == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def describe(self) -> str:
        """`count (NUMBER_INTEGER, default 4)`, `path (STRING, required)`."""
        if self.has_default:
            extra = "default " + (self.default_text or '""')
        else:
            extra = "optional" if self.optional else "required"
        return f"{self.name} ({self.type}, {extra})"


def pipelines_parameters(server: PipelineServer, pipeline: str, version: str | None = None) -> list[PipelineParameter]:
    """The input parameters of an uploaded pipeline's version (the newest by default). A server that
    predates this (no `parameters` in its answer) gives an empty list: the run uses the defaults."""
    import urllib.parse  # noqa: PLC0415

    query = f"?{urllib.parse.urlencode({'version': version})}" if version else ""
    info = _pipelines_call(server, "GET", f"/apis/v1/pipelines/{urllib.parse.quote(pipeline, safe='')}{query}")
    return [
        PipelineParameter(str(p["name"]), str(p["type"]), p.get("default"), bool(p.get("has_default")),
                          bool(p.get("optional")))
        for p in info.get("parameters") or []
    ]  # fmt: skip


def pipelines_run_seconds(run: Mapping[str, Any], now: float | None = None) -> float | None:
    """How long a run (as the server lists it) took, or has been running."""
    import time as time_mod  # noqa: PLC0415

    created = run.get("created")
    if not isinstance(created, int | float):
        return None
    finished = run.get("finished")
    end = finished if isinstance(finished, int | float) and finished else (now or time_mod.time())
    return max(0.0, float(end) - float(created))


def duration_text(seconds: float | None) -> str:
    """`0.4s`, `12s`, `3m05s`, `1h02m`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass(frozen=True)
class PipelineArtifact:
    """An output artifact of a run's task."""

    run_id: str
    task_id: str
    name: str
    uri: str
    schema_title: str  # system.Dataset, system.Metrics, ...
    metadata: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.schema_title.rpartition(".")[2] or "Artifact"

    @property
    def text_like(self) -> bool:
        return self.kind in TEXT_ARTIFACTS


def pipelines_artifacts(server: PipelineServer, run_id: str) -> list[PipelineArtifact]:
    import urllib.parse  # noqa: PLC0415

    listed = _pipelines_call(server, "GET", f"/apis/v1/runs/{urllib.parse.quote(run_id, safe='')}/artifacts")
    return [
        PipelineArtifact(run_id, str(a["task_id"]), str(a["name"]), str(a.get("uri", "")),
                         str((a.get("type") or {}).get("schemaTitle", "")), dict(a.get("metadata") or {}))
        for a in listed["artifacts"]
    ]  # fmt: skip


def pipelines_artifact_bytes(server: PipelineServer, artifact: PipelineArtifact) -> bytes:
    """The artifact's bytes (single-file artifacts; a directory artifact is an error with its URI)."""
    import urllib.parse  # noqa: PLC0415

    query = urllib.parse.urlencode({"task": artifact.task_id, "name": artifact.name})
    path = f"/apis/v1/runs/{urllib.parse.quote(artifact.run_id, safe='')}/artifacts/download?{query}"
    return bytes(_pipelines_call(server, "GET", path, raw=True))


def pipelines_artifact_text(server: PipelineServer, artifact: PipelineArtifact) -> str:
    """What a person sees when opening an artifact: its URI, type and metadata, and for small text-like
    artifacts (Metrics, Markdown, HTML, a Dataset CSV, ...) its contents."""
    lines = [f"uri: {artifact.uri}", f"type: {artifact.schema_title or '-'}", f"task: {artifact.task_id}"]
    if artifact.metadata:
        lines += ["metadata:", *(f"  {k}: {v}" for k, v in artifact.metadata.items())]
    if not artifact.text_like:
        lines.append(f"\n({artifact.kind}: contents not shown; g downloads it)")
        return "\n".join(lines)
    try:
        data = pipelines_artifact_bytes(server, artifact)
    except errors.ApplianceError as exc:
        lines.append(f"\n(contents not available: {exc.message})")
        return "\n".join(lines)
    if b"\0" in data[:4096]:
        lines.append(f"\n({len(data)} bytes, binary; g downloads it)")
    elif len(data) > ARTIFACT_PREVIEW_LIMIT:
        head = data[:ARTIFACT_PREVIEW_LIMIT].decode(errors="replace")
        lines.append(f"\ncontents (first {ARTIFACT_PREVIEW_LIMIT // 1024} kB of {len(data)} bytes):\n{head}")
    else:
        lines.append(f"\ncontents ({len(data)} bytes):\n" + data.decode(errors="replace"))
    return "\n".join(lines)


def pipelines_download_artifact(server: PipelineServer, artifact: PipelineArtifact, dest: str | Path) -> Path:
    """Save the artifact to `dest` (a file, or a directory: then `<dest>/<artifact name>`)."""
    target = Path(dest).expanduser()
    if target.is_dir():
        target = target / artifact.name
    data = pipelines_artifact_bytes(server, artifact)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise errors.UsageError(f"cannot write {target}: {exc.strerror}") from exc
    return target

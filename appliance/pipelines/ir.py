"""Load and validate a compiled Kubeflow Pipelines v2 IR (`PipelineSpec`, `schemaVersion: 2.1.0`).

Called by `appliance.api` (for `appliance pipelines run`) and by `engine`, which only ever sees the
typed objects below, never the raw YAML. Everything the engine relies on is checked here, so that
a bad file fails before any task runs with one line that names the component/task and the field.
Fields we do not use are ignored, as KFP's backend ignores fields it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.pipelines import errors

SUPPORTED_SCHEMA_VERSIONS = ("2.0.0", "2.1.0")
PARAMETER_TYPES = ("STRING", "NUMBER_INTEGER", "NUMBER_DOUBLE", "BOOLEAN", "LIST", "STRUCT", "TASK_FINAL_STATUS")
HINT = "compile the pipeline with the kfp SDK 2.x: kfp.compiler.Compiler().compile(pipeline_func, 'pipeline.yaml')"


@dataclass(frozen=True)
class ParameterSpec:
    type: str
    default: Any = None
    has_default: bool = False
    optional: bool = False


@dataclass(frozen=True)
class ArtifactSpec:
    schema_title: str
    schema_version: str = "0.0.1"
    is_list: bool = False
    optional: bool = False


@dataclass(frozen=True)
class ParameterInput:
    """Where a task's input parameter comes from (exactly one of the kinds)."""

    kind: str  # constant | component_input | task_output | task_final_status
    value: Any = None  # constant value, or the component input's name
    producer: str = ""
    key: str = ""
    selector: str = ""  # parameterExpressionSelector, e.g. parseJson(string_value)["a"]


@dataclass(frozen=True)
class ArtifactInput:
    kind: str  # component_input | task_output
    name: str = ""
    producer: str = ""
    key: str = ""


@dataclass(frozen=True)
class Iterator:
    """`parameterIterator` / `artifactIterator` of a ParallelFor task."""

    item_input: str
    raw_items: str | None = None  # a JSON list (static loop)
    items_input: str | None = None  # the name of the task input that holds the list
    over_artifacts: bool = False
    parallelism: int = 0  # 0: no limit


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 0
    backoff_seconds: float = 0.0
    backoff_factor: float = 2.0
    backoff_max_seconds: float = 3600.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        return float(min(self.backoff_seconds * self.backoff_factor ** (retry - 1), self.backoff_max_seconds))


@dataclass(frozen=True)
class Task:
    name: str
    component: str
    parameters: dict[str, ParameterInput] = field(default_factory=dict)
    artifacts: dict[str, ArtifactInput] = field(default_factory=dict)
    dependent_tasks: tuple[str, ...] = ()
    condition: str = ""
    all_upstream_completed: bool = False  # triggerPolicy.strategy ALL_UPSTREAM_TASKS_COMPLETED (exit handlers)
    iterator: Iterator | None = None
    enable_cache: bool = False
    retry: RetryPolicy | None = None
    display_name: str = ""

    def upstream(self) -> set[str]:
        """Every sibling task this one waits for: dependentTasks plus the producers of its inputs."""
        names = set(self.dependent_tasks)
        names.update(p.producer for p in self.parameters.values() if p.producer)
        names.update(a.producer for a in self.artifacts.values() if a.producer)
        return names


@dataclass(frozen=True)
class OutputSelector:
    producer: str
    key: str


@dataclass(frozen=True)
class Dag:
    tasks: dict[str, Task]
    output_parameters: dict[str, list[OutputSelector]] = field(default_factory=dict)  # several: dsl.OneOf
    output_artifacts: dict[str, list[OutputSelector]] = field(default_factory=dict)


@dataclass(frozen=True)
class Component:
    name: str
    input_parameters: dict[str, ParameterSpec] = field(default_factory=dict)
    input_artifacts: dict[str, ArtifactSpec] = field(default_factory=dict)
    output_parameters: dict[str, ParameterSpec] = field(default_factory=dict)
    output_artifacts: dict[str, ArtifactSpec] = field(default_factory=dict)
    dag: Dag | None = None
    executor_label: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # for cache keys


@dataclass(frozen=True)
class Executor:
    """A `deploymentSpec.executors` entry: a container, or an importer."""

    label: str
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    importer_uri: ParameterInput | None = None
    importer_type: ArtifactSpec | None = None
    importer_metadata: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_importer(self) -> bool:
        return self.importer_uri is not None


@dataclass(frozen=True)
class Pipeline:
    name: str
    root: Component
    components: dict[str, Component]
    executors: dict[str, Executor]
    schema_version: str
    sdk_version: str = ""
    default_pipeline_root: str = ""

    def component(self, name: str) -> Component:
        return self.components[name]


def load(path: str | Path) -> Pipeline:
    """Read a compiled pipeline (YAML or JSON; the `# PIPELINE DEFINITION` header is fine)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise errors.InvalidPipeline(f"cannot read {path}: {exc.strerror}", hint=HINT) from exc
    return loads(text, source=str(path))


def loads(text: str, *, source: str = "pipeline") -> Pipeline:
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise errors.InvalidPipeline(f"{source} is not YAML/JSON: {str(exc).splitlines()[0]}", hint=HINT) from exc
    if not documents:
        raise errors.InvalidPipeline(f"{source} is empty", hint=HINT)
    doc = documents[0]
    if isinstance(doc, dict) and "pipelineSpec" in doc and "root" not in doc:  # a PipelineJob wrapper
        doc = doc["pipelineSpec"]
    return parse(doc, source=source)


def parse(doc: Any, *, source: str = "pipeline") -> Pipeline:
    """Turn a PipelineSpec dict into typed objects; raise InvalidPipeline naming the bad field."""
    spec = _mapping(doc, source)
    version = str(spec.get("schemaVersion", ""))
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise errors.InvalidPipeline(
            f"{source}: schemaVersion {version or '(missing)'!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_SCHEMA_VERSIONS)}); is this a KFP v1 (Argo) workflow?",
            hint=HINT,
        )
    name = str(_mapping(spec.get("pipelineInfo"), "pipelineInfo").get("name") or "pipeline")
    executors = {
        label: _executor(label, _mapping(raw, f"deploymentSpec.executors.{label}"))
        for label, raw in _mapping(
            _mapping(spec.get("deploymentSpec", {}), "deploymentSpec").get("executors", {}), "deploymentSpec.executors"
        ).items()
    }
    components = {
        cname: _component(cname, _mapping(raw, f"components.{cname}"))
        for cname, raw in _mapping(spec.get("components", {}), "components").items()
    }
    root = _component("root", _mapping(spec.get("root"), "root"))
    if root.dag is None:
        raise errors.InvalidPipeline(f"{source}: root has no dag", hint=HINT)
    pipeline = Pipeline(
        name=name,
        root=root,
        components=components,
        executors=executors,
        schema_version=version,
        sdk_version=str(spec.get("sdkVersion", "")),
        default_pipeline_root=str(spec.get("defaultPipelineRoot", "")),
    )
    _check_references(pipeline)
    return pipeline


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise errors.InvalidPipeline(f"{where} must be a mapping, not {type(value).__name__}", hint=HINT)
    return dict(value)


def _parameter_specs(raw: Any, where: str) -> dict[str, ParameterSpec]:
    specs = {}
    for pname, praw in _mapping(raw or {}, where).items():
        p = _mapping(praw, f"{where}.{pname}")
        ptype = str(p.get("parameterType", ""))
        if ptype not in PARAMETER_TYPES:
            raise errors.InvalidPipeline(f"{where}.{pname}: unknown parameterType {ptype!r}", hint=HINT)
        specs[pname] = ParameterSpec(
            type=ptype,
            default=p.get("defaultValue"),
            has_default="defaultValue" in p,
            optional=bool(p.get("isOptional", False)),
        )
    return specs


def _artifact_specs(raw: Any, where: str) -> dict[str, ArtifactSpec]:
    specs = {}
    for aname, araw in _mapping(raw or {}, where).items():
        a = _mapping(araw, f"{where}.{aname}")
        atype = _mapping(a.get("artifactType", {}), f"{where}.{aname}.artifactType")
        specs[aname] = ArtifactSpec(
            schema_title=str(atype.get("schemaTitle", "system.Artifact")),
            schema_version=str(atype.get("schemaVersion", "0.0.1")),
            is_list=bool(a.get("isArtifactList", False)),
            optional=bool(a.get("isOptional", False)),
        )
    return specs


def _component(name: str, raw: dict[str, Any]) -> Component:
    where = f"component {name}"
    inputs = _mapping(raw.get("inputDefinitions", {}), f"{where}: inputDefinitions")
    outputs = _mapping(raw.get("outputDefinitions", {}), f"{where}: outputDefinitions")
    dag = _dag(name, _mapping(raw["dag"], f"{where}: dag")) if "dag" in raw else None
    label = str(raw.get("executorLabel", ""))
    if dag is None and not label:
        raise errors.InvalidPipeline(f"{where} has neither a dag nor an executorLabel", hint=HINT)
    return Component(
        name=name,
        input_parameters=_parameter_specs(inputs.get("parameters"), f"{where}: inputDefinitions.parameters"),
        input_artifacts=_artifact_specs(inputs.get("artifacts"), f"{where}: inputDefinitions.artifacts"),
        output_parameters=_parameter_specs(outputs.get("parameters"), f"{where}: outputDefinitions.parameters"),
        output_artifacts=_artifact_specs(outputs.get("artifacts"), f"{where}: outputDefinitions.artifacts"),
        dag=dag,
        executor_label=label,
        raw=raw,
    )


def _dag(component: str, raw: dict[str, Any]) -> Dag:
    tasks = {
        tname: _task(component, tname, _mapping(traw, f"component {component}: task {tname}"))
        for tname, traw in _mapping(raw.get("tasks", {}), f"component {component}: dag.tasks").items()
    }
    outputs = _mapping(raw.get("outputs", {}), f"component {component}: dag.outputs")
    out_params: dict[str, list[OutputSelector]] = {}
    for oname, oraw in _mapping(outputs.get("parameters", {}), "dag.outputs.parameters").items():
        o = _mapping(oraw, f"component {component}: dag.outputs.parameters.{oname}")
        if "valueFromParameter" in o:
            sels = [o["valueFromParameter"]]
        elif "valueFromOneof" in o:
            sels = list(_mapping(o["valueFromOneof"], "valueFromOneof").get("parameterSelectors", []))
        else:
            raise errors.InvalidPipeline(
                f"component {component}: dag.outputs.parameters.{oname} has no valueFromParameter", hint=HINT
            )
        out_params[oname] = [
            OutputSelector(str(s.get("producerSubtask", "")), str(s.get("outputParameterKey", ""))) for s in sels
        ]
    out_artifacts = {
        oname: [
            OutputSelector(str(s.get("producerSubtask", "")), str(s.get("outputArtifactKey", "")))
            for s in _mapping(oraw, f"dag.outputs.artifacts.{oname}").get("artifactSelectors", [])
        ]
        for oname, oraw in _mapping(outputs.get("artifacts", {}), "dag.outputs.artifacts").items()
    }
    for oname, sels in [*out_params.items(), *out_artifacts.items()]:
        for sel in sels:
            if sel.producer not in tasks:
                raise errors.InvalidPipeline(
                    f"component {component}: output {oname} selects unknown task {sel.producer!r}", hint=HINT
                )
    return Dag(tasks=tasks, output_parameters=out_params, output_artifacts=out_artifacts)


def _parameter_input(where: str, raw: dict[str, Any]) -> ParameterInput:
    selector = str(raw.get("parameterExpressionSelector", ""))
    if "runtimeValue" in raw:
        runtime = _mapping(raw["runtimeValue"], f"{where}.runtimeValue")
        return ParameterInput("constant", value=runtime.get("constant"), selector=selector)
    if "componentInputParameter" in raw:
        return ParameterInput("component_input", value=str(raw["componentInputParameter"]), selector=selector)
    if "taskOutputParameter" in raw:
        out = _mapping(raw["taskOutputParameter"], f"{where}.taskOutputParameter")
        return ParameterInput(
            "task_output", producer=str(out.get("producerTask", "")), key=str(out.get("outputParameterKey", ""))
        )
    if "taskFinalStatus" in raw:
        status = _mapping(raw["taskFinalStatus"], f"{where}.taskFinalStatus")
        return ParameterInput("task_final_status", producer=str(status.get("producerTask", "")))
    raise errors.InvalidPipeline(
        f"{where}: expected runtimeValue, componentInputParameter, taskOutputParameter or taskFinalStatus", hint=HINT
    )


def _task(component: str, name: str, raw: dict[str, Any]) -> Task:
    where = f"component {component}: task {name}"
    ref = _mapping(raw.get("componentRef"), f"{where}.componentRef").get("name")
    if not ref:
        raise errors.InvalidPipeline(f"{where}.componentRef.name is missing", hint=HINT)
    inputs = _mapping(raw.get("inputs", {}), f"{where}.inputs")
    parameters = {
        pname: _parameter_input(f"{where}.inputs.parameters.{pname}", _mapping(praw, f"{where}.inputs.{pname}"))
        for pname, praw in _mapping(inputs.get("parameters", {}), f"{where}.inputs.parameters").items()
    }
    artifacts = {}
    for aname, araw in _mapping(inputs.get("artifacts", {}), f"{where}.inputs.artifacts").items():
        a = _mapping(araw, f"{where}.inputs.artifacts.{aname}")
        if "componentInputArtifact" in a:
            artifacts[aname] = ArtifactInput("component_input", name=str(a["componentInputArtifact"]))
        elif "taskOutputArtifact" in a:
            out = _mapping(a["taskOutputArtifact"], f"{where}.inputs.artifacts.{aname}.taskOutputArtifact")
            artifacts[aname] = ArtifactInput(
                "task_output", producer=str(out.get("producerTask", "")), key=str(out.get("outputArtifactKey", ""))
            )
        else:
            raise errors.InvalidPipeline(
                f"{where}.inputs.artifacts.{aname}: expected componentInputArtifact or taskOutputArtifact "
                "(artifact constants are not supported)",
                hint=HINT,
            )
    trigger = _mapping(raw.get("triggerPolicy", {}), f"{where}.triggerPolicy")
    retry = None
    if "retryPolicy" in raw:
        r = _mapping(raw["retryPolicy"], f"{where}.retryPolicy")
        retry = RetryPolicy(
            max_retries=_int(r.get("maxRetryCount", 0), f"{where}.retryPolicy.maxRetryCount"),
            backoff_seconds=_duration(r.get("backoffDuration", "0s"), f"{where}.retryPolicy.backoffDuration"),
            backoff_factor=float(r.get("backoffFactor", 2.0)),
            backoff_max_seconds=_duration(
                r.get("backoffMaxDuration", "3600s"), f"{where}.retryPolicy.backoffMaxDuration"
            ),
        )
    return Task(
        name=name,
        component=str(ref),
        parameters=parameters,
        artifacts=artifacts,
        dependent_tasks=tuple(str(t) for t in raw.get("dependentTasks", [])),
        condition=str(trigger.get("condition", "")),
        all_upstream_completed=trigger.get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED",
        iterator=_iterator(where, raw),
        enable_cache=bool(_mapping(raw.get("cachingOptions", {}), f"{where}.cachingOptions").get("enableCache")),
        retry=retry,
        display_name=str(_mapping(raw.get("taskInfo", {}), f"{where}.taskInfo").get("name", name)),
    )


def _iterator(where: str, raw: dict[str, Any]) -> Iterator | None:
    limit = _int(
        _mapping(raw.get("iteratorPolicy", {}), f"{where}.iteratorPolicy").get("parallelismLimit", 0),
        f"{where}.iteratorPolicy.parallelismLimit",
    )
    if "parameterIterator" in raw:
        it = _mapping(raw["parameterIterator"], f"{where}.parameterIterator")
        items = _mapping(it.get("items"), f"{where}.parameterIterator.items")
        if "raw" not in items and "inputParameter" not in items:
            raise errors.InvalidPipeline(f"{where}.parameterIterator.items needs raw or inputParameter", hint=HINT)
        return Iterator(
            item_input=str(it.get("itemInput", "")),
            raw_items=str(items["raw"]) if "raw" in items else None,
            items_input=str(items["inputParameter"]) if "inputParameter" in items else None,
            parallelism=limit,
        )
    if "artifactIterator" in raw:
        it = _mapping(raw["artifactIterator"], f"{where}.artifactIterator")
        items = _mapping(it.get("items"), f"{where}.artifactIterator.items")
        return Iterator(
            item_input=str(it.get("itemInput", "")),
            items_input=str(items.get("inputArtifact", "")),
            over_artifacts=True,
            parallelism=limit,
        )
    return None


def _executor(label: str, raw: dict[str, Any]) -> Executor:
    where = f"deploymentSpec.executors.{label}"
    if "container" in raw:
        c = _mapping(raw["container"], f"{where}.container")
        env = {str(e.get("name")): str(e.get("value", "")) for e in c.get("env", []) if isinstance(e, Mapping)}
        return Executor(
            label=label,
            image=str(c.get("image", "")),
            command=tuple(_placeholder_arg(x) for x in c.get("command", [])),
            args=tuple(_placeholder_arg(x) for x in c.get("args", [])),
            env=env,
            raw=raw,
        )
    if "importer" in raw:
        imp = _mapping(raw["importer"], f"{where}.importer")
        uri = _mapping(imp.get("artifactUri"), f"{where}.importer.artifactUri")
        if "constant" in uri:
            source = ParameterInput("constant", value=uri["constant"])
        elif "runtimeParameter" in uri:
            source = ParameterInput("component_input", value=str(uri["runtimeParameter"]))
        else:
            raise errors.InvalidPipeline(f"{where}.importer.artifactUri needs constant or runtimeParameter", hint=HINT)
        ts = _mapping(imp.get("typeSchema", {}), f"{where}.importer.typeSchema")
        return Executor(
            label=label,
            importer_uri=source,
            importer_type=ArtifactSpec(str(ts.get("schemaTitle", "system.Artifact")), str(ts.get("schemaVersion", ""))),
            importer_metadata=dict(imp.get("metadata", {}) or {}),
            raw=raw,
        )
    kinds = ", ".join(sorted(raw)) or "nothing"
    raise errors.InvalidPipeline(
        f"{where}: only container and importer executors are supported (found {kinds})",
        hint="custom jobs (Vertex AI) and resolvers do not run here",
    )


def _placeholder_arg(value: Any) -> str:
    """Command/args items are strings, or IfPresent/Concat structures which we keep as JSON text."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise errors.InvalidPipeline(f"{where} must be an integer, not {value!r}", hint=HINT) from exc


def _duration(value: Any, where: str) -> float:
    """Protobuf Duration JSON: '30s', '1.5s' (kfp compiles every backoff to seconds)."""
    text = str(value).strip()
    try:
        return float(text[:-1]) if text.endswith("s") else float(text)
    except ValueError as exc:
        raise errors.InvalidPipeline(f"{where} must be a duration like '30s', not {value!r}", hint=HINT) from exc


def _check_references(pipeline: Pipeline) -> None:
    """Every componentRef, executorLabel, dependentTask and producer names something that exists."""
    for comp in [pipeline.root, *pipeline.components.values()]:
        if comp.executor_label and comp.executor_label not in pipeline.executors:
            raise errors.InvalidPipeline(
                f"component {comp.name}: executorLabel {comp.executor_label!r} is not in deploymentSpec.executors",
                hint=HINT,
            )
        if comp.dag is None:
            continue
        for task in comp.dag.tasks.values():
            where = f"component {comp.name}: task {task.name}"
            if task.component not in pipeline.components:
                raise errors.InvalidPipeline(f"{where}: componentRef {task.component!r} is not defined", hint=HINT)
            for producer in task.upstream():
                if producer not in comp.dag.tasks:
                    raise errors.InvalidPipeline(f"{where}: depends on unknown task {producer!r}", hint=HINT)
            if task.name in task.upstream():
                raise errors.InvalidPipeline(f"{where}: depends on itself", hint=HINT)
        _check_acyclic(comp)


def _check_acyclic(comp: Component) -> None:
    assert comp.dag is not None
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            raise errors.InvalidPipeline(f"component {comp.name}: dependency cycle {cycle}", hint=HINT)
        state[name] = 1
        assert comp.dag is not None
        for up in sorted(comp.dag.tasks[name].upstream()):
            visit(up, [*trail, name])
        state[name] = 2

    for name in comp.dag.tasks:
        visit(name, [])

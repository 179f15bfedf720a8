"""IR loading: real kfp-compiled YAML parses into the objects the engine uses, and bad input is one
clear error naming the field.

data/*.yaml were compiled by kfp 2.17.0 from tests/integration/pipelines/sources (features.py,
params.py); regenerate with `.venv-kfp/bin/python` and kfp.compiler.Compiler().compile when those change.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance import errors
from appliance.pipelines import errors as pipeline_errors
from appliance.pipelines import ir

DATA = Path(__file__).with_name("data")


def test_features_pipeline_parses() -> None:
    pipeline = ir.load(DATA / "features.yaml")
    assert pipeline.name == "features" and pipeline.schema_version == "2.1.0"
    assert pipeline.root.input_parameters["count"] == ir.ParameterSpec("NUMBER_INTEGER", 4.0, True, True)
    root = pipeline.root.dag
    assert root is not None
    cleanup = root.tasks["cleanup"]
    assert cleanup.all_upstream_completed and cleanup.upstream() == {"exit-handler-1"}
    assert cleanup.parameters["status"] == ir.ParameterInput("task_final_status", producer="exit-handler-1")
    group = pipeline.component("comp-exit-handler-1").dag
    assert group is not None
    loop = group.tasks["for-loop-2"]
    assert loop.iterator == ir.Iterator(
        item_input="pipelinechannel--make-numbers-Output-loop-item",
        items_input="pipelinechannel--make-numbers-Output",
        parallelism=2,
    )
    assert group.tasks["for-loop-8"].iterator == ir.Iterator(
        item_input="pipelinechannel--loop-item-param-7", raw_items="[1, 2, 3]"
    )
    assert group.tasks["total"].upstream() == {"for-loop-2", "make-numbers"}
    assert group.tasks["total"].enable_cache
    static = pipeline.component("comp-for-loop-8").dag
    assert static is not None
    retried = static.tasks["square-2"]
    assert not retried.enable_cache
    assert retried.retry == ir.RetryPolicy(max_retries=2, backoff_seconds=0.0, backoff_factor=2.0)
    branches = pipeline.component("comp-condition-branches-3").dag
    assert branches is not None
    assert branches.tasks["condition-4"].condition == "int(inputs.parameter_values['pipelinechannel--total-sum']) > 10"
    body = pipeline.component("comp-for-loop-2").dag
    assert body is not None
    assert body.output_parameters == {"pipelinechannel--square-Output": [ir.OutputSelector("square", "Output")]}
    make = pipeline.executors["exec-make-numbers"]
    assert make.command[:2] == ("sh", "-c") and make.args[:2] == ("--executor_input", "{{$}}")
    assert pipeline.component("comp-total").output_artifacts["model"] == ir.ArtifactSpec("system.Model", "0.0.1")


def test_params_pipeline_parses_importer_oneof_and_nested_outputs() -> None:
    pipeline = ir.load(DATA / "params.yaml")
    importer = pipeline.executors["exec-importer"]
    assert importer.is_importer
    assert importer.importer_uri == ir.ParameterInput("component_input", value="uri")
    assert importer.importer_type == ir.ArtifactSpec("system.Dataset", "0.0.1")
    inner = pipeline.component("comp-inner").dag
    assert inner is not None
    assert inner.output_artifacts == {"data": [ir.OutputSelector("shout", "out")]}
    assert inner.output_parameters == {"n": [ir.OutputSelector("shout", "n")]}
    branches = pipeline.component("comp-condition-branches-1").dag
    assert branches is not None
    (selectors,) = branches.output_parameters.values()
    assert [s.producer for s in selectors] == ["condition-2", "condition-3"]
    shout = pipeline.executors["exec-shout"]
    assert shout.args == (
        "{{$.inputs.parameters['text']}}",
        "{{$.outputs.artifacts['out'].path}}",
        "{{$.outputs.parameters['n'].output_file}}",
    )
    describe = pipeline.component("comp-describe").input_parameters
    assert describe["opt"].optional and not describe["opt"].has_default
    assert describe["dflt"] == ir.ParameterSpec("NUMBER_INTEGER", 7.0, True, True)


def _features() -> dict[str, Any]:
    return dict(yaml.safe_load((DATA / "features.yaml").read_text()))


def _bad(doc: Any) -> pipeline_errors.InvalidPipeline:
    with pytest.raises(pipeline_errors.InvalidPipeline) as info:
        ir.parse(doc, source="p.yaml")
    assert isinstance(info.value, errors.UsageError) and info.value.exit_code == 2
    assert info.value.hint and "\n" not in info.value.message
    return info.value


def test_kfp_v1_and_garbage_are_rejected(tmp_path: Path) -> None:
    assert "schemaVersion '(missing)' is not supported" in _bad({"apiVersion": "argoproj.io/v1alpha1"}).message
    assert "must be a mapping" in _bad(["a"]).message
    path = tmp_path / "x.yaml"
    path.write_text("a: [unclosed")
    with pytest.raises(pipeline_errors.InvalidPipeline, match="is not YAML/JSON"):
        ir.load(path)
    with pytest.raises(pipeline_errors.InvalidPipeline, match="cannot read"):
        ir.load(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["root"]["dag"]["tasks"]["cleanup"]["componentRef"].update(name="comp-nope"),
            "component root: task cleanup: componentRef 'comp-nope' is not defined",
        ),
        (
            lambda d: d["components"]["comp-square"].update(executorLabel="exec-nope"),
            "component comp-square: executorLabel 'exec-nope' is not in deploymentSpec.executors",
        ),
        (
            lambda d: d["components"]["comp-square"]["inputDefinitions"]["parameters"]["x"].update(
                parameterType="NUMBER"
            ),
            "component comp-square: inputDefinitions.parameters.x: unknown parameterType 'NUMBER'",
        ),
        (
            lambda d: d["components"]["comp-for-loop-8"]["dag"]["tasks"]["square-2"]["retryPolicy"].update(
                backoffDuration="soon"
            ),
            "task square-2.retryPolicy.backoffDuration must be a duration like '30s', not 'soon'",
        ),
        (
            lambda d: d["root"]["dag"]["tasks"]["exit-handler-1"].update(dependentTasks=["cleanup"]),
            "component root: dependency cycle",
        ),
        (
            lambda d: d["root"]["dag"]["tasks"]["cleanup"].update(dependentTasks=["ghost"]),
            "component root: task cleanup: depends on unknown task 'ghost'",
        ),
        (
            lambda d: d["deploymentSpec"]["executors"].update({"exec-square": {"customJob": {}}}),
            "deploymentSpec.executors.exec-square: only container and importer executors are supported",
        ),
        (
            lambda d: d["components"]["comp-square"].pop("executorLabel"),
            "component comp-square has neither a dag nor an executorLabel",
        ),
        (
            lambda d: d["root"]["dag"]["tasks"]["exit-handler-1"]["inputs"]["parameters"].update(
                {"pipelinechannel--count": {"bogus": 1}}
            ),
            "task exit-handler-1.inputs.parameters.pipelinechannel--count: expected runtimeValue",
        ),
    ],
)
def test_bad_fields_are_named(mutate: Any, message: str) -> None:
    doc = copy.deepcopy(_features())
    mutate(doc)
    assert message in _bad(doc).message


def test_a_pipeline_job_wrapper_is_unwrapped() -> None:
    text = yaml.safe_dump({"displayName": "x", "pipelineSpec": _features()})
    assert ir.loads(text).name == "features"


def test_retry_backoff_grows_and_is_capped() -> None:
    policy = ir.RetryPolicy(max_retries=5, backoff_seconds=1.0, backoff_factor=2.0, backoff_max_seconds=5.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]

"""The engine's scheduling logic over a scripted backend (no processes): data passing, retries with
backoff, failure propagation to exit handlers, caching per task and per run, run-time parameters."""

from __future__ import annotations

from typing import Any

import pytest

from appliance import progress
from appliance.pipelines import backend, engine, errors, ir, runs, values


def _container(name: str, inputs: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "executorLabel": f"exec-{name}",
        "outputDefinitions": {"parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}}},
    }
    if inputs:
        spec["inputDefinitions"] = {"parameters": {k: {"parameterType": v} for k, v in inputs.items()}}
    return spec


def _pipeline(retry: dict[str, Any] | None = None, cache: bool = True) -> ir.Pipeline:
    """root: exit handler `final` guarding a group where a → b (b gets a's Output + 1 via the script)."""
    group_tasks: dict[str, Any] = {
        "a": {
            "componentRef": {"name": "comp-a"},
            "inputs": {"parameters": {"x": {"componentInputParameter": "pipelinechannel--x"}}},
            "cachingOptions": {"enableCache": cache},
            "taskInfo": {"name": "a"},
        },
        "b": {
            "componentRef": {"name": "comp-b"},
            "dependentTasks": ["a"],
            "inputs": {
                "parameters": {"y": {"taskOutputParameter": {"producerTask": "a", "outputParameterKey": "Output"}}}
            },
            "cachingOptions": {"enableCache": cache},
            "taskInfo": {"name": "b"},
        },
    }
    if retry:
        group_tasks["a"]["retryPolicy"] = retry
    doc = {
        "schemaVersion": "2.1.0",
        "pipelineInfo": {"name": "unit"},
        "components": {
            "comp-a": _container("a", {"x": "NUMBER_INTEGER"}),
            "comp-b": _container("b", {"y": "NUMBER_INTEGER"}),
            "comp-final": {
                "executorLabel": "exec-final",
                "inputDefinitions": {
                    "parameters": {"status": {"parameterType": "TASK_FINAL_STATUS", "isOptional": True}}
                },
            },
            "comp-exit-handler-1": {
                "dag": {"tasks": group_tasks},
                "inputDefinitions": {"parameters": {"pipelinechannel--x": {"parameterType": "NUMBER_INTEGER"}}},
            },
        },
        "deploymentSpec": {
            "executors": {f"exec-{n}": {"container": {"image": "python:3.11", "command": ["true"]}} for n in "ab"}
            | {"exec-final": {"container": {"image": "python:3.11", "command": ["true"]}}}
        },
        "root": {
            "dag": {
                "tasks": {
                    "exit-handler-1": {
                        "componentRef": {"name": "comp-exit-handler-1"},
                        "inputs": {"parameters": {"pipelinechannel--x": {"componentInputParameter": "x"}}},
                        "taskInfo": {"name": "exit-handler-1"},
                    },
                    "final": {
                        "componentRef": {"name": "comp-final"},
                        "dependentTasks": ["exit-handler-1"],
                        "inputs": {"parameters": {"status": {"taskFinalStatus": {"producerTask": "exit-handler-1"}}}},
                        "triggerPolicy": {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"},
                        "taskInfo": {"name": "final"},
                    },
                }
            },
            "inputDefinitions": {
                "parameters": {"x": {"parameterType": "NUMBER_INTEGER", "defaultValue": 1.0, "isOptional": True}}
            },
        },
    }
    return ir.parse(doc)


class ScriptedBackend:
    """Plays scripted exit codes per task; a successful task outputs its input + 1."""

    def __init__(self, exit_codes: dict[str, list[int]] | None = None) -> None:
        self.exit_codes = exit_codes or {}
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    def outputs_dir(self, run_id: str, task_id: str, attempt: int) -> str:
        return f"/nowhere/{run_id}/{task_id}/{attempt}"

    def run(self, request: backend.TaskRequest) -> backend.TaskResult:
        values = request.executor_input["inputs"].get("parameterValues", {})
        self.calls.append((request.task_id, request.attempt, values))
        codes = self.exit_codes.get(request.task_id, [0])
        code = codes[min(request.attempt, len(codes)) - 1]
        if code:
            return backend.TaskResult(exit_code=code, log_tail=f"{request.task_id} failed")
        numbers = [v for v in values.values() if isinstance(v, int)]
        return backend.TaskResult(exit_code=0, parameters={"Output": (numbers[0] + 1) if numbers else 0})


def _run(pipeline: ir.Pipeline, backend: ScriptedBackend, store: runs.RunStore, **options: Any) -> engine.RunResult:
    sleeps: list[float] = []
    eng = engine.Engine(
        pipeline, backend, store, progress.Progress(), engine.Options(pipeline_root="/tmp/root", **options),
        sleep=sleeps.append,
    )  # fmt: skip
    result = eng.run({"x": "5"})
    result.outputs["_sleeps"] = sleeps
    return result


def test_data_passes_and_the_exit_handler_sees_success() -> None:
    backend = ScriptedBackend()
    result = _run(_pipeline(), backend, runs.RunStore(":memory:"))
    assert result.state == "succeeded"
    calls = {task: values for task, _, values in backend.calls}
    assert calls["exit-handler-1/a"] == {"x": 5}
    assert calls["exit-handler-1/b"] == {"y": 6}
    assert calls["final"]["status"]["state"] == "SUCCEEDED"
    assert calls["final"]["status"]["pipelineTaskName"] == "exit-handler-1"


def test_retries_back_off_and_then_succeed() -> None:
    retry = {"maxRetryCount": 3, "backoffDuration": "1s", "backoffFactor": 2, "backoffMaxDuration": "3s"}
    backend = ScriptedBackend({"exit-handler-1/a": [1, 1, 1, 0]})
    result = _run(_pipeline(retry=retry), backend, runs.RunStore(":memory:"))
    assert result.state == "succeeded"
    assert result.outputs["_sleeps"] == [1.0, 2.0, 3.0]
    a = next(t for t in result.tasks if t.task_id == "exit-handler-1/a")
    assert a.attempts == 4 and a.exit_code == 0


def test_a_failure_skips_downstream_fails_the_run_and_reaches_the_exit_handler() -> None:
    backend = ScriptedBackend({"exit-handler-1/a": [2]})
    result = _run(_pipeline(), backend, runs.RunStore(":memory:"))
    assert result.state == "failed"
    states = {t.task_id: t.state for t in result.tasks}
    assert states == {"exit-handler-1/a": "failed", "exit-handler-1/b": "skipped", "final": "succeeded"}
    assert result.failed_tasks()[0].exit_code == 2 and result.failed_tasks()[0].log_tail == "exit-handler-1/a failed"
    final = next(values for task, _, values in backend.calls if task == "final")
    assert final["status"]["state"] == "FAILED" and "exit code 2" in final["status"]["error"]["message"]
    assert "task exit-handler-1/a failed: exit code 2" in result.error


def test_caching_per_run_and_per_task() -> None:
    store = runs.RunStore(":memory:")
    first = ScriptedBackend()
    assert _run(_pipeline(), first, store).state == "succeeded"
    second = ScriptedBackend()
    cached = _run(_pipeline(), second, store)
    assert {t.task_id: t.state for t in cached.tasks if t.task_id != "final"} == {
        "exit-handler-1/a": "cached",
        "exit-handler-1/b": "cached",
    }
    assert [task for task, _, _ in second.calls] == ["final"]  # its input (the run's status) differs
    off = ScriptedBackend()
    _run(_pipeline(), off, store, enable_cache=False)
    assert sorted(task for task, _, _ in off.calls) == ["exit-handler-1/a", "exit-handler-1/b", "final"]
    per_task = ScriptedBackend()
    _run(_pipeline(cache=False), per_task, store)
    assert sorted(task for task, _, _ in per_task.calls) == ["exit-handler-1/a", "exit-handler-1/b", "final"]


def test_cache_keys_ignore_names_but_not_inputs() -> None:
    pipeline = _pipeline()
    a, b = pipeline.component("comp-a"), pipeline.component("comp-b")
    ea, eb = pipeline.executors["exec-a"], pipeline.executors["exec-b"]
    same_spec_b = ir.Component(name="comp-a-2", raw={**a.raw, "executorLabel": "exec-a-2"})
    assert values.cache_key(a, ea, {"x": 1}, {}) == values.cache_key(same_spec_b, ea, {"x": 1}, {})
    assert values.cache_key(a, ea, {"x": 1}, {}) != values.cache_key(a, ea, {"x": 2}, {})
    assert values.cache_key(a, ea, {"x": 1}, {}) != values.cache_key(b, eb, {"x": 1}, {})
    art = [{"uri": "s3://b/1", "type": {}}]
    assert values.cache_key(a, ea, {}, {"d": art}) != values.cache_key(a, ea, {}, {"d": [{"uri": "s3://b/2"}]})


def test_run_time_parameters_are_typed_and_checked() -> None:
    eng = engine.Engine(
        _pipeline(), ScriptedBackend(), runs.RunStore(":memory:"), progress.Progress(), engine.Options("/tmp/r")
    )
    assert eng.resolve_parameters({}) == {"x": 1}  # the default, 1.0 in the IR, as an integer
    assert eng.resolve_parameters({"x": "7"}) == {"x": 7}
    with pytest.raises(errors.InvalidParameter, match="has no parameter 'y'"):
        eng.resolve_parameters({"y": "1"})
    with pytest.raises(errors.InvalidParameter, match="parameter x: 'seven' is not a valid NUMBER_INTEGER"):
        eng.resolve_parameters({"x": "seven"})


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("3", "NUMBER_INTEGER", 3),
        (3.0, "NUMBER_INTEGER", 3),
        ("0.5", "NUMBER_DOUBLE", 0.5),
        (2, "NUMBER_DOUBLE", 2.0),
        ("true", "BOOLEAN", True),
        ("[1, 2]", "LIST", [1, 2]),
        ('{"a": 1}', "STRUCT", {"a": 1}),
        (4, "STRING", "4"),
        ([1], "STRING", "[1]"),
    ],
)
def test_coerce(value: Any, kind: str, expected: Any) -> None:
    assert values.coerce(value, kind) == expected


def test_cli_booleans_must_be_true_or_false() -> None:
    with pytest.raises(ValueError, match="is not true or false"):
        values.parse_cli_parameter("yes", "BOOLEAN")


def test_pipelines_with_input_artifacts_are_refused_before_running() -> None:
    pipeline = _pipeline()
    root = ir.Component(
        name="root",
        input_artifacts={"data": ir.ArtifactSpec("system.Dataset")},
        dag=pipeline.root.dag,
        raw=pipeline.root.raw,
    )
    with_artifacts = ir.Pipeline("unit", root, pipeline.components, pipeline.executors, "2.1.0")
    backend = ScriptedBackend()
    eng = engine.Engine(with_artifacts, backend, runs.RunStore(":memory:"), progress.Progress(), engine.Options("/r"))
    with pytest.raises(errors.InvalidParameter, match=r"takes input artifacts \(data\): not supported yet"):
        eng.run({})
    assert backend.calls == []


def _loop_pipeline(parallelism: int) -> ir.Pipeline:
    """root: a ParallelFor over [1, 2, 3] whose body runs `a` on the item; the root outputs the list."""
    body_task = {
        "componentRef": {"name": "comp-a"},
        "inputs": {"parameters": {"x": {"componentInputParameter": "item"}}},
        "cachingOptions": {},
        "taskInfo": {"name": "a"},
    }
    return ir.parse(
        {
            "schemaVersion": "2.1.0",
            "pipelineInfo": {"name": "loop"},
            "components": {
                "comp-a": _container("a", {"x": "NUMBER_INTEGER"}),
                "comp-for-loop": {
                    "dag": {
                        "tasks": {"a": body_task},
                        "outputs": {
                            "parameters": {
                                "xs": {"valueFromParameter": {"producerSubtask": "a", "outputParameterKey": "Output"}}
                            }
                        },
                    },
                    "inputDefinitions": {"parameters": {"item": {"parameterType": "NUMBER_INTEGER"}}},
                    "outputDefinitions": {"parameters": {"xs": {"parameterType": "LIST"}}},
                },
            },
            "deploymentSpec": {"executors": {"exec-a": {"container": {"image": "x", "command": ["true"]}}}},
            "root": {
                "dag": {
                    "tasks": {
                        "loop": {
                            "componentRef": {"name": "comp-for-loop"},
                            "parameterIterator": {"itemInput": "item", "items": {"raw": "[1, 2, 3]"}},
                            "iteratorPolicy": {"parallelismLimit": parallelism},
                            "taskInfo": {"name": "loop"},
                        }
                    },
                    "outputs": {
                        "parameters": {
                            "Output": {"valueFromParameter": {"producerSubtask": "loop", "outputParameterKey": "xs"}}
                        }
                    },
                },
                "outputDefinitions": {"parameters": {"Output": {"parameterType": "LIST"}}},
            },
        }
    )


def test_a_loop_collects_outputs_in_item_order() -> None:
    backend = ScriptedBackend()
    eng = engine.Engine(
        _loop_pipeline(0), backend, runs.RunStore(":memory:"), progress.Progress(), engine.Options("/r")
    )
    result = eng.run({})
    assert result.state == "succeeded"
    assert result.outputs == {"Output": [2, 3, 4]}
    assert sorted(task for task, _, _ in backend.calls) == ["loop.0/a", "loop.1/a", "loop.2/a"]


def test_a_failed_iteration_stops_the_loop_from_starting_more() -> None:
    backend = ScriptedBackend({"loop.0/a": [4]})
    eng = engine.Engine(
        _loop_pipeline(1), backend, runs.RunStore(":memory:"), progress.Progress(), engine.Options("/r")
    )
    result = eng.run({})
    assert result.state == "failed" and "exit code 4" in result.error
    assert [task for task, _, _ in backend.calls] == ["loop.0/a"]  # parallelism 1: nothing else started

"""Pipelines compiled with the real kfp SDK, run on the local runner with a MinIO pipeline root.

Each test checks the outputs the components computed, the artifacts in MinIO, and the run record.
"""

from __future__ import annotations

import json
from pathlib import Path

import minio
import pytest

from appliance import api
from tests.integration.pipelines.conftest import BUCKET, RunPipeline, by_id, read_object

pytestmark = pytest.mark.integration


def test_loops_conditions_exit_handler_and_artifacts(run_pipeline: RunPipeline, s3: minio.Minio) -> None:
    run, recorder = run_pipeline("features", parameters={"count": "4"})
    assert run.state == "succeeded", run.error
    tasks = by_id(run)
    # ParallelFor over a task output (parallelism 2): 0², 1², 2², 3² collected into `total`.
    squares = sorted(tasks[f"exit-handler-1/for-loop-2.{i}/square"].outputs["parameters"]["Output"] for i in range(4))
    assert squares == [0, 1, 4, 9]
    total = tasks["exit-handler-1/total"].outputs
    assert total["parameters"] == {"sum": 14, "label": "big"}
    model_uri = total["artifacts"]["model"][0]["uri"]
    assert model_uri.startswith(f"s3://{BUCKET}/")
    assert read_object(s3, model_uri) == "model of 0,1,2,3"  # the Dataset written by make-numbers, read by total
    assert total["artifacts"]["metrics"][0]["metadata"] == {"sum": 14}
    data = tasks["exit-handler-1/make-numbers"].outputs["artifacts"]["data"][0]
    assert data["metadata"] == {"count": 4} and data["type"]["schemaTitle"] == "system.Dataset"
    # dsl.If/Elif/Else: sum 14 > 10, so only the If branch ran, with the label.
    branches = "exit-handler-1/condition-branches-3"
    assert tasks[f"{branches}/condition-4/report"].outputs["parameters"]["Output"] == "big/True/0.5/"
    assert tasks[f"{branches}/condition-5"].state == "skipped"
    assert tasks[f"{branches}/condition-6"].state == "skipped"
    # A static ParallelFor with caching off and a retry policy.
    static = sorted(tasks[f"exit-handler-1/for-loop-8.{i}/square-2"].outputs["parameters"]["Output"] for i in range(3))
    assert static == [1, 4, 9]
    # The exit handler ran last and saw the group succeed.
    assert tasks["cleanup"].outputs["parameters"]["Output"] == "SUCCEEDED"
    # parallelismLimit 2: never more than two iterations of for-loop-2 at once.
    spans = [(t.started, t.finished) for t in run.tasks if "/for-loop-2." in t.task_id]
    assert len(spans) == 4
    assert max(sum(1 for s, f in spans if s <= start < f) for start, _ in spans) <= 2
    # Progress events: every container task started and ended.
    ends = recorder.final_states()
    assert ends["cleanup"] == "done" and ends[f"{branches}/condition-5"] == "skipped"


def test_parameters_nested_pipeline_importer_and_oneof(
    run_pipeline: RunPipeline, s3: minio.Minio, tmp_path: Path
) -> None:
    s3.put_object(BUCKET, "inputs/in.txt", __import__("io").BytesIO(b"imported"), 8)
    params = {"s": "hello", "data_uri": f"s3://{BUCKET}/inputs/in.txt", "i": "5", "b": "true", "xs": "[3, 4]"}
    run, _ = run_pipeline("params", parameters=params)
    assert run.state == "succeeded", run.error
    tasks = by_id(run)
    described = json.loads(tasks["describe"].outputs["parameters"]["Output"])
    assert described == {
        "s": "hello",
        "i": 5,
        "f": 0.5,  # default
        "b": True,
        "xs": [3, 4],
        "d": {"k": "v"},  # default
        "opt": None,  # optional input not given
        "dflt": 7,  # the component's own default
    }
    # A pipeline used as a component: a container component with placeholders inside it.
    shout = tasks["inner/shout"].outputs
    assert shout["parameters"]["n"] == 3
    assert read_object(s3, shout["artifacts"]["out"][0]["uri"]) == "hello!"
    read = tasks["read"].outputs
    assert read["parameters"]["Output"] == "hello!x3"
    assert read_object(s3, read["artifacts"]["report"][0]["uri"]) == "# hello!"
    assert read_object(s3, read["artifacts"]["page"][0]["uri"]) == "<p>hello!</p>"
    matrix = read["artifacts"]["cm"][0]["metadata"]["confusionMatrix"]
    assert matrix["rows"] == [{"row": [2, 0]}, {"row": [1, 3]}]
    # The importer passes the URI; the consumer downloads it.
    assert tasks["read-imported"].outputs["parameters"]["Output"] == f"imported@s3://{BUCKET}/inputs/in.txt"
    # set_env_variable reaches the component; resource limits are ignored locally.
    assert tasks["from-env"].outputs["parameters"]["Output"] == "hola"
    # A directory artifact goes up file by file and comes down as a directory.
    assert tasks["list-dir"].outputs["parameters"]["Output"] == [
        "config.json", "weights/w0.txt", "weights/w1.txt", "weights/w2.txt", "weights/w3.txt", "weights/w4.txt",
    ]  # fmt: skip
    model_uri = tasks["save-dir"].outputs["artifacts"]["model"][0]["uri"]
    assert read_object(s3, model_uri + "/weights/w3.txt") == "3"
    # ParallelFor over a run-time list parameter; the ints become the STRING input `text`.
    looped = [t.outputs["parameters"]["Output"] for t in run.tasks if t.task_id.startswith("for-loop")]
    assert sorted(looped) == ["3", "4"]
    # dsl.OneOf picks the branch that ran; the pipeline's own output.
    assert run.outputs == {"Output": "H"}
    # The same pipeline with a launcher process per task (no fork server), taking the other branch.
    run_tails, _ = run_pipeline("params", parameters={**params, "flip": "tails"}, fork_server=False, enable_cache=False)
    assert run_tails.state == "succeeded", run_tails.error
    assert run_tails.outputs == {"Output": "T"}
    tails = by_id(run_tails)
    assert tails["from-env"].outputs["parameters"]["Output"] == "hola"
    assert tails["read"].outputs["parameters"]["Output"] == "hello!x3"
    assert len(tails["list-dir"].outputs["parameters"]["Output"]) == 6


def test_a_failing_task_fails_the_run_and_the_exit_handler_still_runs(
    run_pipeline: RunPipeline, s3: minio.Minio, tmp_path: Path
) -> None:
    run, recorder = run_pipeline("failing", parameters={"marker_dir": str(tmp_path), "code": "7"})
    assert run.state == "failed"
    tasks = by_id(run)
    boom = tasks["exit-handler-1/boom"]
    assert boom.state == "failed" and boom.exit_code == 7 and boom.attempts == 1
    assert "the disk is full (simulated)" in boom.log_tail
    assert "exit code 7" in boom.error
    assert tasks["exit-handler-1/after"].state == "skipped"  # downstream of the failure: not run
    assert (tmp_path / "final").read_text() == "FAILED exit-handler-1"
    assert run.failed[0].task_id == "exit-handler-1/boom"
    assert recorder.final_states()["exit-handler-1/boom"] == "failed"


def test_retries_are_honoured(run_pipeline: RunPipeline, s3: minio.Minio, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.mkdir()
    run, recorder = run_pipeline("retries", parameters={"counter_dir": str(counter), "fail_times": "2"})
    assert run.state == "succeeded", run.error
    flaky = by_id(run)["flaky"]
    assert flaky.attempts == 3 and flaky.outputs["parameters"]["Output"] == 3
    retries = [e.message for e in recorder.events if e.kind == "update" and e.message]
    assert retries == [
        "attempt 1 failed (exit code 3); retry in 0s",
        "attempt 2 failed (exit code 3); retry in 0s",
    ]
    # More failures than retries: the task fails after 3 attempts, with its last log.
    again = tmp_path / "again"
    again.mkdir()
    failed, _ = run_pipeline("retries", parameters={"counter_dir": str(again), "fail_times": "5"})
    assert failed.state == "failed"
    flaky = by_id(failed)["flaky"]
    assert flaky.attempts == 3 and flaky.exit_code == 3
    assert "attempt 3 fails on purpose" in flaky.log_tail
    assert "after 3 attempts" in flaky.error


def test_caching_reuses_outputs_unless_turned_off(run_pipeline: RunPipeline, s3: minio.Minio, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    def count(tag: str) -> int:
        return len(list(marks.glob(f"{tag}-*")))

    first, _ = run_pipeline("caching", parameters={"log_dir": str(marks)})
    assert first.state == "succeeded", first.error
    assert (count("cached"), count("uncached")) == (1, 1)
    second, _ = run_pipeline("caching", parameters={"log_dir": str(marks)})
    assert second.state == "succeeded", second.error
    assert (count("cached"), count("uncached")) == (1, 2)  # per-task caching off: ran again
    tasks = by_id(second)
    assert tasks["mark"].state == "cached"
    # The cached task's artifact is the first run's, and its consumer still reads it.
    assert tasks["mark"].outputs == by_id(first)["mark"].outputs
    assert second.outputs == {"Output": "cached"}
    third, _ = run_pipeline("caching", parameters={"log_dir": str(marks)}, enable_cache=False)
    assert third.state == "succeeded", third.error
    assert (count("cached"), count("uncached")) == (2, 3)  # caching off for the run


def test_subprocess_launcher_and_local_directory_root(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    """Without the fork server each task is `python -m appliance.pipelines.launcher` (what a pod runs)."""
    root = tmp_path / "artifacts"
    run, _ = run_pipeline("features", root=str(root), fork_server=False, parameters={"count": "3"})
    assert run.state == "succeeded", run.error
    total = by_id(run)["exit-handler-1/total"].outputs
    assert total["parameters"] == {"sum": 5, "label": "small"}
    model = Path(total["artifacts"]["model"][0]["uri"])
    assert model.is_relative_to(root) and model.read_text() == "model of 0,1,2"


def test_subprocess_launcher_with_minio(run_pipeline: RunPipeline, s3: minio.Minio) -> None:
    """Subprocess tasks find minio:// artifacts under their local mount root (the sitecustomize shim)."""
    run, _ = run_pipeline("features", root=f"minio://{BUCKET}/sub", fork_server=False, parameters={"count": "2"})
    assert run.state == "succeeded", run.error
    total = by_id(run)["exit-handler-1/total"].outputs
    uri = total["artifacts"]["model"][0]["uri"]
    assert uri.startswith(f"minio://{BUCKET}/sub/") and read_object(s3, uri) == "model of 0,1"


def test_run_history_is_persisted(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    from appliance.pipelines import runs  # noqa: PLC0415 - the store the pipeline server will read

    run, _ = run_pipeline("trivial", root=str(tmp_path / "a"), parameters={"x": "10"})
    assert run.state == "succeeded" and run.outputs == {"Output": 13}
    store = runs.RunStore(tmp_path / "runs.db")
    try:
        record = store.run(run.run_id)
        assert record is not None and record.state == "succeeded" and record.parameters == {"x": 10}
        assert [t.state for t in store.tasks(run.run_id)] == ["succeeded"] * 3
        states = [(task, state) for _, task, state, _ in store.events(run.run_id)]
        assert states == [
            ("add", "running"), ("add", "succeeded"),
            ("add-2", "running"), ("add-2", "succeeded"),
            ("add-3", "running"), ("add-3", "succeeded"),
        ]  # fmt: skip
    finally:
        store.close()


def test_bad_parameters_are_usage_errors(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    with pytest.raises(api.ApplianceError, match="needs parameter 's'"):
        run_pipeline("params", root=str(tmp_path), parameters={"data_uri": "x"})
    with pytest.raises(api.ApplianceError, match="has no parameter 'nope'"):
        run_pipeline("trivial", root=str(tmp_path), parameters={"nope": "1"})
    with pytest.raises(api.ApplianceError, match="parameter x: 'abc' is not a valid NUMBER_INTEGER"):
        run_pipeline("trivial", root=str(tmp_path), parameters={"x": "abc"})


def test_pip_preamble_is_skipped_when_packages_are_installed(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    run, _ = run_pipeline("installed-packages", root=str(tmp_path / "a"))
    assert run.state == "succeeded", run.error
    assert run.outputs["Output"].startswith("7.")
    assert "[launcher] installing" not in by_id(run)["needs-installed"].log_tail  # pip never ran


def test_a_package_that_would_need_the_network_fails_clearly(
    run_pipeline: RunPipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PIP_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
    run, _ = run_pipeline("missing-packages", root=str(tmp_path / "a"))
    assert run.state == "failed"
    task = by_id(run)["needs-missing"]
    assert "surely-not-installed-package==1.0" in task.error
    assert "no package index is configured" in task.error
    assert "surely-not-installed-package" in task.log_tail


def test_nested_loops_collected_artifacts_and_placeholders(run_pipeline: RunPipeline, s3: minio.Minio) -> None:
    run, _ = run_pipeline("collections", parameters={"who": "ana"})
    assert run.state == "succeeded", run.error
    tasks = by_id(run)
    assert tasks["echo"].outputs["parameters"]["Output"] == f"hello ana from {run.run_id}"
    assert tasks["echo-2"].outputs["parameters"]["Output"] == "echo-2"
    # ParallelFor over a list of structs, one at a time, with item fields as inputs and in a condition.
    described = [t.outputs["parameters"]["Output"] for t in run.tasks if t.task_id.endswith("/describe")]
    assert sorted(described) == ["b=5", "c=9"]
    assert sum(1 for t in run.tasks if t.state == "skipped" and "/condition-" in t.task_id) == 1
    made = [t for t in run.tasks if t.task_id.endswith("/make")]
    assert len(made) == 4  # 2 × 2 iterations of the nested loops
    for task in made:
        (artifact,) = task.outputs["artifacts"]["out"]
        assert read_object(s3, artifact["uri"]) in {"1.10", "1.20", "2.10", "2.20"}
    assert tasks["read-all"].outputs["parameters"]["Output"] == "1.10,1.20,2.10,2.20"
    # A pipeline that loops over a list of artifacts (artifactIterator) and collects the results.
    assert sorted(t.outputs["parameters"]["Output"] for t in run.tasks if t.task_id.startswith("loop-over/")) == [
        "1.10", "1.20", "2.10", "2.20",
    ]  # fmt: skip


@pytest.mark.parametrize("where", ["minio", "directory"])
def test_an_artifact_written_to_a_custom_path_is_uploaded(
    run_pipeline: RunPipeline, s3: minio.Minio, tmp_path: Path, where: str
) -> None:
    """`artifact.path = ...` in a component: kfp reports custom_path; the launcher uploads from there."""
    root = f"s3://{BUCKET}/custom" if where == "minio" else str(tmp_path / "root")
    run, _ = run_pipeline("custom-path", root=root)
    assert run.state == "succeeded", run.error
    assert by_id(run)["read-one"].outputs["parameters"]["Output"] == "written elsewhere"

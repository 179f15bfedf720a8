"""The launcher's pure parts: kfp's pip preamble, ExecutorInput, placeholders and reading outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from appliance.pipelines import executor_input, ir, preamble, store

DATA = Path(__file__).with_name("data")


def _command(label: str) -> list[str]:
    executor = ir.load(DATA / "features.yaml").executors[label]
    return [*executor.command, *executor.args]


def test_the_compiled_preamble_is_split_from_the_executor_script() -> None:
    command = _command("exec-square")
    split = preamble.split(command)
    assert split is not None
    assert split.requirements == ("kfp==2.17.0", 'typing-extensions>=3.7.4,<5; python_version<"3.9"')
    call = preamble.kfp_executor_call(split.rest)
    assert call is not None
    source, argv = call
    assert "def square(x: int) -> int:" in source
    assert argv == ["--executor_input", "{{$}}", "--function_to_execute", "square"]
    assert preamble.split(["sh", "-c", "echo hi"]) is None
    assert preamble.kfp_executor_call(["python", "-c", "print()"]) is None


def test_requirements_with_options_and_user_packages() -> None:
    script = (
        "python3 -m pip install --quiet --no-warn-script-location --index-url https://mirror/simple "
        "--trusted-host mirror 'pandas==2.2.2' 'scikit-learn' && python3 -m pip install 'kfp==2.17.0' '--no-deps' "
        '&& "$0" "$@"\n'
    )
    assert preamble.requirements_of(script) == ["pandas==2.2.2", "scikit-learn", "kfp==2.17.0"]


def test_unsatisfied_compares_installed_versions() -> None:
    # PyYAML 6.0.2 is pinned in this environment; kfp is not installed here.
    assert preamble.unsatisfied(["PyYAML==6.0.2", "pyyaml>=5,<7", "PyYAML~=6.0", "pyyaml==6.*"]) == []
    assert preamble.unsatisfied(["pyyaml<6", "pyyaml!=6.0.2", "pyyaml==5.*"]) == [
        "pyyaml<6",
        "pyyaml!=6.0.2",
        "pyyaml==5.*",
    ]
    assert preamble.unsatisfied(["surely-not-installed-package"]) == ["surely-not-installed-package"]
    assert preamble.unsatisfied(["git+https://example.invalid/x.git"]) == ["git+https://example.invalid/x.git"]
    assert preamble.unsatisfied(['not-installed; python_version<"3.0"']) == []  # marker does not apply
    assert preamble.unsatisfied(["kfp==2.0.0"]) == ["kfp==2.0.0"]
    assert preamble.marker_applies(f'python_version>="{sys.version_info[0]}.{sys.version_info[1]}"')


def test_executor_input_is_what_kfps_driver_writes() -> None:
    built = executor_input.build(
        parameters={"x": 3, "opt": "a"},
        artifacts={"data": [executor_input.runtime_artifact("data", "system.Dataset", "0.0.1", "s3://b/k")]},
        output_parameters={"Output": "NUMBER_INTEGER"},
        output_artifacts={"model": ("system.Model", "0.0.1", "s3://b/run/task/model")},
        outputs_dir="/w/out",
    )
    assert built == {
        "inputs": {
            "parameterValues": {"x": 3, "opt": "a"},
            "artifacts": {
                "data": {
                    "artifacts": [
                        {
                            "name": "data",
                            "type": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"},
                            "uri": "s3://b/k",
                            "metadata": {},
                        }
                    ]
                }
            },
        },
        "outputs": {
            "parameters": {"Output": {"outputFile": "/w/out/parameters/Output"}},
            "artifacts": {
                "model": {
                    "artifacts": [
                        {
                            "name": "model",
                            "type": {"schemaTitle": "system.Model", "schemaVersion": "0.0.1"},
                            "uri": "s3://b/run/task/model",
                            "metadata": {},
                        }
                    ]
                }
            },
            "outputFile": "/w/out/executor_output.json",
        },
    }


def test_placeholders_if_present_and_concat() -> None:
    built = executor_input.build(
        parameters={"msg": "hi", "n": 2.0, "flag": True, "xs": [1]},
        artifacts={"data": [executor_input.runtime_artifact("data", "system.Dataset", "0.0.1", "minio://b/in")]},
        output_parameters={"count": "NUMBER_INTEGER"},
        output_artifacts={"out": ("system.Dataset", "0.0.1", "minio://b/out")},
        outputs_dir="/w",
    )
    items = [
        "echo",
        "{{$.inputs.parameters['msg']}}-{{$.inputs.parameters['n']}}",
        "{{$.inputs.parameters['flag']}}",
        "{{$.inputs.parameters['xs']}}",
        "{{$.inputs.artifacts['data'].path}}",
        "{{$.inputs.artifacts['data'].uri}}",
        "{{$.outputs.artifacts['out'].path}}",
        "{{$.outputs.parameters['count'].output_file}}",
        "{{$.pipeline_job_name}}",
        json.dumps({"IfPresent": {"InputName": "msg", "Then": ["--msg", "{{$.inputs.parameters['msg']}}"]}}),
        json.dumps({"IfPresent": {"InputName": "absent", "Then": ["--no"], "Else": ["--else"]}}),
        json.dumps({"Concat": ["a-", "{{$.inputs.parameters['msg']}}", "-b"]}),
    ]
    resolved = executor_input.resolve_args(
        items, built, path_of=lambda uri: store.local_path(uri, "/mnt"), context={"pipeline_job_name": "p"}
    )
    assert resolved == [
        "echo",
        "hi-2",
        "true",
        "[1]",
        "/mnt/minio/b/in",
        "minio://b/in",
        "/mnt/minio/b/out",
        "/w/parameters/count",
        "p",
        "--msg",
        "hi",
        "--else",
        "a-hi-b",
    ]
    assert json.loads(executor_input.resolve_args(["{{$}}"], built, path_of=str)[0]) == built
    with pytest.raises(ValueError, match="unsupported placeholder"):
        executor_input.resolve_args(["{{$.nope}}"], built, path_of=str)


def test_outputs_are_read_from_executor_output_and_files(tmp_path: Path) -> None:
    built = executor_input.build(
        parameters={},
        artifacts={},
        output_parameters={"n": "NUMBER_INTEGER", "f": "NUMBER_DOUBLE", "b": "BOOLEAN", "s": "STRING", "l": "LIST"},
        output_artifacts={"m": ("system.Metrics", "0.0.1", "s3://b/m")},
        outputs_dir=str(tmp_path),
    )
    (tmp_path / "parameters").mkdir()
    for name, text in {"n": "3\n", "f": "0.25", "b": "True", "s": "text\n", "l": "[1, 2]"}.items():
        (tmp_path / "parameters" / name).write_text(text)
    (tmp_path / "executor_output.json").write_text(
        json.dumps({"parameterValues": {"n": 4}, "artifacts": {"m": {"artifacts": [{"metadata": {"acc": 0.9}}]}}})
    )
    parameters, artifacts = executor_input.read_outputs(
        built, {"n": "NUMBER_INTEGER", "f": "NUMBER_DOUBLE", "b": "BOOLEAN", "s": "STRING", "l": "LIST"}
    )
    assert parameters == {"n": 4, "f": 0.25, "b": True, "s": "text\n", "l": [1, 2]}
    assert artifacts["m"][0]["uri"] == "s3://b/m" and artifacts["m"][0]["metadata"] == {"acc": 0.9}


def test_store_paths_follow_kfps_mount_convention() -> None:
    assert store.local_path("minio://bucket/a/b", "/") == "/minio/bucket/a/b"
    assert store.local_path("s3://bucket/a", "/scratch") == "/scratch/s3/bucket/a"
    assert store.local_path("/abs/path", "/scratch") == "/abs/path"
    assert store.split_uri("s3://bucket/a/b/") == ("bucket", "a/b")
    assert store.join("s3://b/root/", "p", "/run/", "t") == "s3://b/root/p/run/t"
    assert store.S3Settings.from_env(
        {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_S3_ENDPOINT": "http://127.0.0.1:9000"}
    ) == store.S3Settings("127.0.0.1:9000", False, "a", "s")
    with pytest.raises(store.errors.RuntimeUnavailable, match="needs AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT"):
        store.S3Settings.from_env({"AWS_ACCESS_KEY_ID": "a"})

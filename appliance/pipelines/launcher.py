"""The launcher: runs ONE task of a pipeline, wherever the task runs.

`python -m appliance.pipelines.launcher TASK.json` is what a task process (and later a Kubernetes
pod, with the component's image) runs: it reads the task file that the engine wrote (executor input,
command, args, pipeline root, mount root), downloads input artifacts from the object store to KFP's
local paths, fills the command's placeholders, drops kfp's `pip install` preamble when the packages
are already installed (see `preamble`), runs the component, reads its outputs back, uploads output
artifacts, and writes a result JSON (exit code, output parameters, output artifacts).

`forkserver` calls `run_task(..., in_process=True)` in a forked child that has already imported
kfp, so a kfp lightweight component runs without a new interpreter or a new `import kfp`.

Imports only the standard library, `minio` (for object-store roots) and this package's task-side
modules (store, executor_input, preamble): it must stay free of the engine and of the appliance's
other dependencies, because it runs in the task's Python, not ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from appliance.pipelines import executor_input, preamble, store

LAUNCHER_ERROR_EXIT_CODE = 200  # the launcher itself failed (inputs, outputs, placeholders), not the component
MOUNT_ENV = "ODH_PIPELINES_MOUNT_ROOT"  # read by the sitecustomize shim in mounts/


TIMEOUT_EXIT_CODE = 124


class LauncherError(Exception):
    """A task could not be prepared or its outputs not collected; the message says which and why."""

    exit_code = LAUNCHER_ERROR_EXIT_CODE


class TaskTimeout(LauncherError):
    exit_code = TIMEOUT_EXIT_CODE

    def __init__(self, timeout: float) -> None:
        super().__init__(f"the component ran past its timeout of {timeout:g}s and was stopped")


class _Expired(BaseException):
    """Raised by SIGALRM inside an in-process component; BaseException so that components do not catch it."""


def _expire(signum: int, frame: object) -> None:
    raise _Expired


def _log(message: str) -> None:
    print(f"[launcher] {message}", file=sys.stderr, flush=True)


def _pip_allowed(spec: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    return bool(spec.get("allow_pip")) or any(env.get(k) for k in ("PIP_INDEX_URL", "PIP_FIND_LINKS"))


def prepare_command(spec: Mapping[str, Any], command: list[str], env: Mapping[str, str]) -> list[str]:
    """Drop a satisfied pip preamble; refuse an unsatisfied one unless a package index is configured."""
    split = preamble.split(command)
    if split is None:
        return command
    missing = preamble.unsatisfied(split.requirements)
    if not missing:
        return list(split.rest)
    if _pip_allowed(spec, env):
        _log(f"installing {', '.join(missing)} with pip (a package index is configured)")
        return command
    raise LauncherError(
        f"needs packages that the task's Python does not have: {', '.join(missing)}; no package index is configured "
        "and the runner does not reach the network on its own. Install them into the task Python, set PIP_INDEX_URL "
        "to a package mirror, or allow pip (`--allow-pip-install`)"
    )


def _patch_kfp_mounts(mount_root: str) -> None:
    """Point kfp's /minio/, /s3/, /gcs/ mount prefixes under `mount_root` (a scratch dir locally)."""
    from kfp.dsl.types import artifact_types  # noqa: PLC0415 - only inside a kfp task process

    for attr, mount in (("_MINIO_LOCAL_MOUNT_PREFIX", "minio"), ("_S3_LOCAL_MOUNT_PREFIX", "s3")):
        setattr(artifact_types, attr, os.path.join(mount_root, mount) + "/")
    artifact_types._GCS_LOCAL_MOUNT_PREFIX = os.path.join(mount_root, "gcs") + "/"


def _run_kfp_in_process(source: str, argv: list[str], workdir: Path, mount_root: str, timeout: float) -> int:
    """Run kfp's executor_main in this (forked) process: what the `sh -ec` script would do."""
    module = workdir / "component" / "ephemeral_component.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(source)
    os.environ["_KFP_RUNTIME"] = "true"
    from kfp.dsl import executor_main  # noqa: PLC0415 - already imported by the fork server

    if mount_root != "/":
        _patch_kfp_mounts(mount_root)
    sys.argv = ["executor_main", "--component_module_path", str(module), *argv]
    signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        executor_main.executor_main()
    except _Expired:
        raise TaskTimeout(timeout) from None
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _run_subprocess(command: list[str], env: dict[str, str], workdir: Path, timeout: float) -> int:
    try:
        completed = subprocess.run(command, env=env, cwd=workdir, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LauncherError(f"cannot start {command[0]!r}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise TaskTimeout(timeout) from exc
    return completed.returncode


def _download_inputs(exec_input: Mapping[str, Any], artifact_store: store.Store, path_of: Callable[[str], str]) -> None:
    """Fetch every input artifact to its local path; make the parent directories of output paths."""
    for name, listed in exec_input.get("inputs", {}).get("artifacts", {}).items():
        for artifact in listed.get("artifacts", []):
            try:
                artifact_store.download(artifact["uri"], path_of(artifact["uri"]))
            except Exception as exc:
                raise LauncherError(f"cannot download input artifact {name} from {artifact['uri']}: {exc}") from exc
    for listed in exec_input.get("outputs", {}).get("artifacts", {}).values():
        for artifact in listed.get("artifacts", []):
            Path(path_of(artifact["uri"])).parent.mkdir(parents=True, exist_ok=True)
    for parameter in exec_input.get("outputs", {}).get("parameters", {}).values():
        Path(parameter["outputFile"]).parent.mkdir(parents=True, exist_ok=True)


def _upload_outputs(
    spec: Mapping[str, Any], exec_input: Mapping[str, Any], artifact_store: store.Store, path_of: Callable[[str], str]
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Read the task's outputs back and upload its output artifacts to the pipeline root."""
    parameters, artifacts = executor_input.read_outputs(exec_input, spec.get("output_types", {}))
    for name, listed in artifacts.items():
        for artifact in listed:
            local = artifact.pop("custom_path", "") or path_of(artifact["uri"])
            try:
                artifact_store.upload(local, artifact["uri"])
            except Exception as exc:
                raise LauncherError(f"cannot upload output artifact {name} to {artifact['uri']}: {exc}") from exc
    return parameters, artifacts


def run_task(spec: Mapping[str, Any], *, in_process: bool = False) -> dict[str, Any]:
    """Run the task described by `spec` (see module docstring); returns the result dict."""
    started = time.monotonic()
    result: dict[str, Any] = {"exit_code": LAUNCHER_ERROR_EXIT_CODE, "parameters": {}, "artifacts": {}, "error": ""}
    try:
        env = {**os.environ, **{str(k): str(v) for k, v in spec.get("env", {}).items()}}
        artifact_store = store.Store(str(spec["pipeline_root"]), env)
        mount_root = str(spec.get("mount_root") or "/")
        workdir = Path(str(spec["workdir"]))
        workdir.mkdir(parents=True, exist_ok=True)
        exec_input = spec["executor_input"]

        def path_of(uri: str) -> str:
            return store.local_path(uri, mount_root)

        _download_inputs(exec_input, artifact_store, path_of)
        outputs_file = Path(str(exec_input.get("outputs", {}).get("outputFile", workdir / "out.json")))
        outputs_file.parent.mkdir(parents=True, exist_ok=True)

        try:
            command = executor_input.resolve_args(
                [*spec.get("command", []), *spec.get("args", [])],
                exec_input,
                path_of=path_of,
                context=spec.get("context", {}),
            )
        except (ValueError, KeyError) as exc:
            raise LauncherError(f"cannot fill the command's placeholders: {exc}") from exc
        if not command:
            raise LauncherError("the component has no command")
        command = prepare_command(spec, command, env)
        if mount_root != "/":
            env[MOUNT_ENV] = mount_root
            shim = str(Path(__file__).with_name("mounts"))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (shim, env.get("PYTHONPATH", "")) if p)
        timeout = float(spec.get("timeout", 3600))
        kfp_call = preamble.kfp_executor_call(command) if in_process else None
        if kfp_call is not None:
            os.environ.update(env)
            os.chdir(workdir)
            code = _run_kfp_in_process(kfp_call[0], kfp_call[1], workdir, mount_root, timeout)
        else:
            code = _run_subprocess(command, env, workdir, timeout)
        result["exit_code"] = code
        if code == 0:
            parameters, artifacts = _upload_outputs(spec, exec_input, artifact_store, path_of)
            result["parameters"], result["artifacts"] = parameters, artifacts
    except LauncherError as exc:
        result["exit_code"] = exc.exit_code
        result["error"] = str(exc)
        _log(f"error: {exc}")
    except Exception as exc:  # a bug in the launcher: keep the traceback in the task log
        traceback.print_exc()
        result["exit_code"] = LAUNCHER_ERROR_EXIT_CODE
        result["error"] = f"launcher failed: {type(exc).__name__}: {exc}"
    result["seconds"] = round(time.monotonic() - started, 4)
    return result


RESULT_MARKER = "ODH_PIPELINES_RESULT "


def write_result(spec: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    """To `result_file` when the task file names one (local runs); otherwise as the last line of
    stdout after RESULT_MARKER, where a pod's log carries it back to the pipeline server."""
    if not spec.get("result_file"):
        sys.stdout.flush()
        print(RESULT_MARKER + json.dumps(result), flush=True)
        return
    path = Path(str(spec["result_file"]))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)


def read_result(log_text: str) -> dict[str, Any] | None:
    """The result a launcher printed (see write_result), from its log; None when it printed none."""
    for line in reversed(log_text.splitlines()):
        if line.startswith(RESULT_MARKER):
            return dict(json.loads(line[len(RESULT_MARKER) :]))
    return None


def main(argv: list[str] | None = None) -> int:
    """`python -m appliance.pipelines.launcher TASK.json` (or `-`: the task JSON on stdin, or `env:NAME`:
    in an environment variable, as a pod gets it); exits with the component's exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m appliance.pipelines.launcher TASK.json|-|env:NAME", file=sys.stderr)
        return 2
    source = args[0]
    if source == "-":
        text = sys.stdin.read()
    elif source.startswith("env:"):
        text = os.environ.get(source[4:], "")
    else:
        text = Path(source).read_text()
    try:
        spec = json.loads(text)
    except ValueError as exc:
        print(f"launcher: the task ({source}) is not JSON: {exc}", file=sys.stderr)
        return 2
    result = run_task(spec)
    write_result(spec, result)
    return int(result["exit_code"])


if __name__ == "__main__":
    sys.exit(main())

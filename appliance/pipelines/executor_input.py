"""The ExecutorInput JSON a task receives, its placeholders, and reading its outputs back.

`build` is called by `engine` for every container task: it writes the same JSON that KFP's driver
hands to `kfp.dsl.executor_main` (`inputs.parameterValues`, `inputs.artifacts`, `outputs.parameters`
with an `outputFile` each, `outputs.artifacts` with URIs under the pipeline root, and
`outputs.outputFile` for executor_output.json). `resolve_args` and `read_outputs` are called by
`launcher`, inside the task process: the first fills the command line's `{{$...}}` placeholders
(also `IfPresent`/`Concat`), the second reads executor_output.json and the output parameter files.

Standard library only: this module runs inside task processes.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

EXECUTOR_OUTPUT_FILE = "executor_output.json"


def runtime_artifact(
    name: str, schema_title: str, schema_version: str, uri: str, metadata: Any = None
) -> dict[str, Any]:
    return {
        "name": name,
        "type": {"schemaTitle": schema_title, "schemaVersion": schema_version},
        "uri": uri,
        "metadata": dict(metadata or {}),
    }


def build(
    *,
    parameters: Mapping[str, Any],
    artifacts: Mapping[str, list[dict[str, Any]]],
    output_parameters: Mapping[str, str],
    output_artifacts: Mapping[str, tuple[str, str, str]],
    outputs_dir: str,
) -> dict[str, Any]:
    """The ExecutorInput of one task.

    parameters: resolved input parameter values (defaults already applied); artifacts: input name →
    runtime artifacts; output_parameters: name → parameterType; output_artifacts: name →
    (schemaTitle, schemaVersion, uri); outputs_dir: where the task writes its output files.
    """
    inputs: dict[str, Any] = {}
    if parameters:
        inputs["parameterValues"] = dict(parameters)
    if artifacts:
        inputs["artifacts"] = {name: {"artifacts": list(items)} for name, items in artifacts.items()}
    outputs: dict[str, Any] = {}
    if output_parameters:
        outputs["parameters"] = {
            name: {"outputFile": posixpath.join(outputs_dir, "parameters", name)} for name in output_parameters
        }
    if output_artifacts:
        outputs["artifacts"] = {
            name: {"artifacts": [runtime_artifact(name, title, version, uri)]}
            for name, (title, version, uri) in output_artifacts.items()
        }
    outputs["outputFile"] = posixpath.join(outputs_dir, EXECUTOR_OUTPUT_FILE)
    return {"inputs": inputs, "outputs": outputs}


def format_parameter(value: Any) -> str:
    """A parameter as it appears in a command line (KFP's driver: JSON for lists/structs/bools)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


_PLACEHOLDER = re.compile(r"\{\{\$(?P<path>[^{}]*)\}\}")
_PATH = re.compile(
    r"^\.(?P<side>inputs|outputs)\.(?P<kind>parameters|artifacts)\[['\"](?P<name>[^'\"]+)['\"]\]"
    r"(?:\.(?P<field>[a-z_]+))?$"
)


def resolve_args(
    items: list[str],
    executor_input: Mapping[str, Any],
    *,
    path_of: Callable[[str], str],
    context: Mapping[str, str] | None = None,
) -> list[str]:
    """Fill every placeholder in a container's command/args; `path_of(uri)` is an artifact's local path.

    Items that are JSON `IfPresent` / `Concat` structures (as ir keeps them) expand to 0..n items.
    """
    out: list[str] = []
    for item in items:
        structure = _structure(item)
        if structure is None:
            out.append(_substitute(item, executor_input, path_of, context or {}))
        else:
            out.extend(_expand(structure, executor_input, path_of, context or {}))
    return out


def _structure(item: str) -> Any:
    if not item.startswith("{") or item.startswith("{{"):
        return None
    try:
        value = json.loads(item)
    except ValueError:
        return None
    return value if isinstance(value, dict) and ({"IfPresent", "Concat"} & value.keys()) else None


def _expand(
    value: Any, executor_input: Mapping[str, Any], path_of: Callable[[str], str], context: Mapping[str, str]
) -> list[str]:
    if isinstance(value, str):
        return [_substitute(value, executor_input, path_of, context)]
    if isinstance(value, list):
        return [s for v in value for s in _expand(v, executor_input, path_of, context)]
    if isinstance(value, dict) and "Concat" in value:
        return ["".join(s for v in value["Concat"] for s in _expand(v, executor_input, path_of, context))]
    if isinstance(value, dict) and "IfPresent" in value:
        spec = value["IfPresent"]
        name = spec.get("InputName", "")
        inputs = executor_input.get("inputs", {})
        present = name in inputs.get("parameterValues", {}) or name in inputs.get("artifacts", {})
        branch = spec.get("Then") if present else spec.get("Else")
        return [] if branch is None else _expand(branch, executor_input, path_of, context)
    return [json.dumps(value)]


def _substitute(
    text: str, executor_input: Mapping[str, Any], path_of: Callable[[str], str], context: Mapping[str, str]
) -> str:
    def one(match: re.Match[str]) -> str:
        path = match.group("path")
        if path == "":
            return json.dumps(executor_input)
        if path.startswith(".") and path[1:] in context:
            return context[path[1:]]
        parsed = _PATH.match(path)
        if parsed is None:
            raise ValueError(f"unsupported placeholder {match.group(0)}")
        side, kind, name, field = parsed.group("side", "kind", "name", "field")
        section = executor_input.get(side, {})
        if kind == "parameters":
            if side == "inputs":
                values = section.get("parameterValues", {})
                return format_parameter(values[name]) if name in values else ""
            return str(section.get("parameters", {})[name]["outputFile"])
        artifacts = section.get("artifacts", {}).get(name, {}).get("artifacts", [])
        if not artifacts:
            return ""
        artifact = artifacts[0]
        if field == "uri":
            return str(artifact["uri"])
        if field == "metadata":
            return json.dumps(artifact.get("metadata", {}))
        return path_of(str(artifact["uri"]))

    return _PLACEHOLDER.sub(one, text)


def parse_parameter(text: str, parameter_type: str) -> Any:
    """An output parameter file's text as a value of its declared type."""
    if parameter_type == "STRING":
        return text
    stripped = text.strip()
    if parameter_type == "NUMBER_INTEGER":
        return int(float(stripped)) if "." in stripped else int(stripped)
    if parameter_type == "NUMBER_DOUBLE":
        return float(stripped)
    if parameter_type == "BOOLEAN":
        return stripped.lower() in ("true", "1")
    return json.loads(stripped)


def read_outputs(
    executor_input: Mapping[str, Any], output_types: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Output parameters and artifacts after the task ran: executor_output.json wins over files."""
    outputs = executor_input.get("outputs", {})
    written: dict[str, Any] = {}
    output_file = Path(str(outputs.get("outputFile", "")))
    if outputs.get("outputFile") and output_file.is_file():
        written = json.loads(output_file.read_text() or "{}")
    parameters: dict[str, Any] = {}
    for name, spec in outputs.get("parameters", {}).items():
        if name in written.get("parameterValues", {}):
            parameters[name] = written["parameterValues"][name]
            continue
        path = Path(spec["outputFile"])
        if path.is_file():
            parameters[name] = parse_parameter(path.read_text(), output_types.get(name, "STRING"))
    artifacts: dict[str, list[dict[str, Any]]] = {}
    for name, listed in outputs.get("artifacts", {}).items():
        declared = listed.get("artifacts", [])
        reported = written.get("artifacts", {}).get(name, {}).get("artifacts", [])
        merged = []
        for i, artifact in enumerate(declared):
            update = reported[i] if i < len(reported) else {}
            entry = {**artifact, "uri": update.get("uri") or artifact["uri"], "metadata": update.get("metadata") or {}}
            if update.get("custom_path"):  # the component wrote the artifact elsewhere (`artifact.path = ...`)
                entry["custom_path"] = update["custom_path"]
            merged.append(entry)
        artifacts[name] = merged
    return parameters, artifacts

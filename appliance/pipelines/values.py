"""Parameter values as KFP's driver treats them: types, run-time text, placeholders, cache keys.

Called by `engine` for every task input and by `appliance.api` (through the engine) for `-p NAME=VALUE`.
Pure functions; no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from appliance.pipelines import executor_input, ir


def coerce(value: Any, parameter_type: str) -> Any:
    """A parameter value as its declared type (loop items arrive as strings, integers as 4.0)."""
    try:
        if parameter_type == "NUMBER_INTEGER" and not isinstance(value, bool):
            return int(float(value)) if isinstance(value, str | float) else value
        if parameter_type == "NUMBER_DOUBLE" and isinstance(value, str | int) and not isinstance(value, bool):
            return float(value)
        if parameter_type == "BOOLEAN" and isinstance(value, str):
            return value.strip().lower() == "true"
        if parameter_type in ("LIST", "STRUCT") and isinstance(value, str):
            return json.loads(value)
        if parameter_type == "STRING" and not isinstance(value, str):
            return executor_input.format_parameter(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{value!r} is not a valid {parameter_type}") from exc
    return value


def parse_cli_parameter(text: str, parameter_type: str) -> Any:
    """`-p name=value` text as the parameter's type (lists and structs as JSON)."""
    if parameter_type == "BOOLEAN" and text.strip().lower() not in ("true", "false"):
        raise ValueError(f"{text!r} is not true or false")
    return coerce(text, parameter_type)


_PLACEHOLDER = re.compile(r"\{\{\$([^{}]*)\}\}")
_INPUT = re.compile(r"\.inputs\.parameters\[['\"]([^'\"]+)['\"]\]")


def fill_placeholders(value: str, parameters: Mapping[str, Any], context: Mapping[str, str]) -> str:
    """A constant input with placeholders, as the driver fills it: f-strings over pipeline channels
    (`{{$.inputs.parameters['pipelinechannel--x']}}`) and dsl.PIPELINE_*_PLACEHOLDER values
    (`{{$.pipeline_job_name}}`, from `context`). Unknown placeholders stay as they are."""

    def one(match: re.Match[str]) -> str:
        path = match.group(1)
        named = _INPUT.fullmatch(path)
        if named is not None:
            if named.group(1) not in parameters:
                raise ValueError(f"placeholder {match.group(0)} names no input of the task")
            return executor_input.format_parameter(parameters[named.group(1)])
        return context.get(path.lstrip("."), match.group(0))

    return _PLACEHOLDER.sub(one, value)


def cache_key(
    component: ir.Component,
    executor: ir.Executor,
    parameters: Mapping[str, Any],
    artifacts: Mapping[str, list[dict[str, Any]]],
) -> str:
    """Same component spec (names aside) and same inputs → same key."""
    spec = {k: v for k, v in component.raw.items() if k != "executorLabel"}
    payload = {
        "component": spec,
        "executor": executor.raw,
        "parameters": dict(parameters),
        "artifacts": {name: [(a.get("uri"), a.get("type")) for a in items] for name, items in artifacts.items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

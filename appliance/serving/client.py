"""A small Open Inference Protocol (REST) client for front ends: models, metadata, inference, metrics.

Called by `appliance.api` for the TUI's models screen ("try it": a form built from a model's
metadata) and its request-rate/latency panel. Plain urllib and JSON, so importing it costs nothing
(no numpy, no onnxruntime). The pure parts — turning what a person typed into a tensor that matches
the model's signature, and turning two `/metrics` scrapes into rates — are unit-tested on their own.
Server errors (`{"error": ...}`) and unreachable servers become `ServingError`s with a hint.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import parser as prom_parser

from appliance.serving import errors

TIMEOUT = 10.0
INTEGER_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
FLOAT_TYPES = ("FP16", "FP32", "FP64", "BF16")
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 for a dimension of any size

    def describe(self) -> str:
        dims = ", ".join("?" if d < 0 else str(d) for d in self.shape)
        return f"{self.name}: {self.datatype} [{dims}]"


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    platform: str
    versions: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]

    def as_request(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape), "data": self.data}


# --- HTTP -----------------------------------------------------------------------------------------


def _request(base: str, path: str, body: Any = None, *, token: str | None = None) -> Any:
    url = base.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        message = _error_text(exc.read()) or exc.reason
        raise errors.ServingError(
            f"the model server answered {exc.code}: {message}", hint=_hint_for_status(exc.code)
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise errors.ServingError(
            f"the model server at {base} does not answer ({reason})",
            hint="is it running? `appliance serve model.onnx` locally, or deploy the model and wait for Ready",
        ) from None
    if path.endswith("/metrics"):
        return raw.decode(errors="replace")
    return json.loads(raw) if raw else None


def _error_text(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("error", "")) or raw.decode(errors="replace")[:200]
    except (ValueError, AttributeError):
        return raw.decode(errors="replace")[:200]


def _hint_for_status(status: int) -> str:
    if status == 404:
        return "no such model on this server; refresh the model list"
    if status == 503:
        return "the model is not ready yet; wait a moment and try again"
    if status == 400:
        return "the inputs do not match the model's signature (see the metadata)"
    if status in (401, 403):
        return "the endpoint needs a token"
    return "see the model server's log"


def server_ready(base: str, *, token: str | None = None) -> bool:
    try:
        _request(base, "/v2/health/ready", token=token)
    except errors.ServingError:
        return False
    return True


def models(base: str, *, token: str | None = None) -> list[dict[str, str]]:
    """The server's repository index: name, version, state (READY/UNAVAILABLE/...)."""
    index = _request(base, "/v2/repository/index", {}, token=token) or []
    return [{k: str(v) for k, v in item.items()} for item in index]


def metadata(base: str, model: str, *, token: str | None = None) -> ModelMetadata:
    return parse_metadata(_request(base, f"/v2/models/{model}", token=token))


def infer(base: str, model: str, inputs: list[Tensor], *, token: str | None = None) -> list[Tensor]:
    body = {"inputs": [t.as_request() for t in inputs]}
    reply = _request(base, f"/v2/models/{model}/infer", body, token=token) or {}
    return [
        Tensor(str(o.get("name", "")), str(o.get("datatype", "")), tuple(o.get("shape", ())), list(o.get("data", [])))
        for o in reply.get("outputs", [])
    ]


def scrape(base: str, *, token: str | None = None) -> str:
    return str(_request(base, "/metrics", token=token))


# --- metadata and the "try it" form ---------------------------------------------------------------


def parse_metadata(data: Any) -> ModelMetadata:
    def specs(items: Any) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(str(i["name"]), str(i["datatype"]), tuple(int(d) for d in i.get("shape", [])))
            for i in items or []
        )

    return ModelMetadata(
        name=str(data.get("name", "")),
        platform=str(data.get("platform", "")),
        versions=tuple(str(v) for v in data.get("versions") or ()),
        inputs=specs(data.get("inputs")),
        outputs=specs(data.get("outputs")),
    )


def example_shape(spec: TensorSpec) -> tuple[int, ...]:
    """A concrete shape for a form's example: each free dimension becomes 1."""
    return tuple(1 if d < 0 else d for d in spec.shape)


def example_text(spec: TensorSpec, limit: int = 64) -> str:
    """What a form field shows as a placeholder: one value per element of `example_shape`."""
    count = math.prod(example_shape(spec))
    value = {"BOOL": "false", "BYTES": "text"}.get(spec.datatype, "0")
    if count > limit:
        return f"{count} values, e.g. {', '.join([value] * 3)}, ... (or a JSON array)"
    return ", ".join([value] * count)


def parse_tensor(spec: TensorSpec, text: str) -> Tensor:
    """What a person typed in a form field → a tensor for `spec`.

    Accepts a JSON value (a nested array gives the shape) or values separated by commas, spaces or
    semicolons (the shape comes from the model: a single free dimension takes what is left, several
    free dimensions become 1 except the last). Raises `errors.InvalidInput` naming the field.
    """
    text = text.strip()
    if not text:
        raise errors.InvalidInput(f"{spec.name}: no value given", hint=f"type {example_text(spec)}")
    raw, shape = _values_and_shape(spec, text)
    values = [_convert(spec, v) for v in raw]
    if shape is None:
        shape = _fit_shape(spec, len(values))
    elif len(shape) != len(spec.shape) or any(w >= 0 and w != g for w, g in zip(spec.shape, shape, strict=True)):
        raise errors.InvalidInput(
            f"{spec.name}: shape {list(shape)} does not fit the model's {list(spec.shape)}",
            hint="-1 in the model's shape means any size",
        )
    return Tensor(spec.name, spec.datatype, shape, values)


def _values_and_shape(spec: TensorSpec, text: str) -> tuple[list[Any], tuple[int, ...] | None]:
    if text[0] in '["' or (text[0] in "-0123456789tf" and "," not in text and " " not in text):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list):
            shape = _nested_shape(spec, value)
            return _flatten(value), shape
        if value is not None:
            return [value], None
    return [v for v in _SPLIT.split(text) if v], None


def _nested_shape(spec: TensorSpec, value: list[Any]) -> tuple[int, ...] | None:
    shape: list[int] = []
    level: Any = value
    while isinstance(level, list):
        shape.append(len(level))
        level = level[0] if level else None
    if len(shape) == 1 and len(spec.shape) != 1:
        return None  # a flat list: fit it to the model's shape
    if math.prod(shape) != len(_flatten(value)):
        raise errors.InvalidInput(f"{spec.name}: the nested array is ragged", hint="every row needs the same length")
    return tuple(shape)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for element in value for item in _flatten(element)]
    return [value]


def _fit_shape(spec: TensorSpec, count: int) -> tuple[int, ...]:
    fixed = math.prod(d for d in spec.shape if d >= 0)
    free = [i for i, d in enumerate(spec.shape) if d < 0]
    shape = list(spec.shape)
    if not free:
        if count != fixed:
            raise errors.InvalidInput(
                f"{spec.name}: {count} values given, the model's shape {list(spec.shape)} needs {fixed}",
                hint=f"type {fixed} values",
            )
        return tuple(shape)
    if fixed == 0 or count % fixed:
        raise errors.InvalidInput(
            f"{spec.name}: {count} values do not fill the shape {list(spec.shape)}",
            hint=f"give a multiple of {fixed} values" if fixed else "give a nested JSON array",
        )
    for i in free[:-1]:
        shape[i] = 1
    shape[free[-1]] = count // fixed
    return tuple(shape)


def _convert(spec: TensorSpec, value: Any) -> Any:
    kind = spec.datatype
    try:
        if kind == "BOOL":
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if kind in INTEGER_TYPES:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(str(value)) if not isinstance(value, int | float) else int(value)
        if kind in FLOAT_TYPES:
            return float(value)
        return str(value)
    except (ValueError, TypeError):
        wanted = "true or false" if kind == "BOOL" else "whole numbers" if kind in INTEGER_TYPES else "numbers"
        raise errors.InvalidInput(f"{spec.name}: {value!r} is not a {kind} value", hint=f"type {wanted}") from None


def format_tensor(tensor: Tensor, limit: int = 40) -> str:
    """An output for people: `sum FP32 [1, 4] = 1, 2, 3, 4` (long data cut with a count)."""
    data = tensor.data[:limit]
    shown = ", ".join(_short(v) for v in data)
    if len(tensor.data) > limit:
        shown += f", ... ({len(tensor.data)} values)"
    return f"{tensor.name} {tensor.datatype} {list(tensor.shape)} = {shown}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# --- metrics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCounters:
    """Counters for one model at one scrape."""

    requests: float = 0.0
    errors: float = 0.0
    latency_sum: float = 0.0
    latency_count: float = 0.0


@dataclass(frozen=True)
class ModelRates:
    model: str
    requests_per_s: float
    errors_per_s: float
    mean_latency_ms: float | None  # over the interval; None when nothing was inferred in it
    total_requests: float


@dataclass
class Scrape:
    at: float  # time.monotonic() of the scrape
    models: dict[str, ModelCounters] = field(default_factory=dict)


def parse_metrics(text: str, at: float) -> Scrape:
    """The model server's Prometheus text → counters per model: inference requests (every protocol
    and status code summed), errors, and the latency histogram's sum and count."""
    sums: dict[str, dict[str, float]] = {}
    for family in prom_parser.text_string_to_metric_families(text):
        for sample in family.samples:
            model = sample.labels.get("model")
            if model is None or (
                sample.name == "model_server_requests_total" and sample.labels.get("endpoint") != "infer"
            ):
                continue  # requests: inferences only (not metadata or readiness probes)
            slot = {
                "model_server_requests_total": "requests",
                "model_server_errors_total": "errors",
                "model_server_inference_duration_seconds_sum": "latency_sum",
                "model_server_inference_duration_seconds_count": "latency_count",
            }.get(sample.name)
            if slot:
                counters = sums.setdefault(model, {})
                counters[slot] = counters.get(slot, 0.0) + float(sample.value)
    return Scrape(at, {m: ModelCounters(**c) for m, c in sums.items() if m})


def rates(before: Scrape, after: Scrape) -> list[ModelRates]:
    """Request and error rates and the mean latency between two scrapes, per model."""
    span = max(after.at - before.at, 1e-9)
    result = []
    for model, now in sorted(after.models.items()):
        then = before.models.get(model, ModelCounters())
        count = now.latency_count - then.latency_count
        result.append(
            ModelRates(
                model=model,
                requests_per_s=max(now.requests - then.requests, 0.0) / span,
                errors_per_s=max(now.errors - then.errors, 0.0) / span,
                mean_latency_ms=(now.latency_sum - then.latency_sum) / count * 1000 if count > 0 else None,
                total_requests=now.requests,
            )
        )
    return result

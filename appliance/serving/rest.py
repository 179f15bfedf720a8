"""The REST transport: a lean raw-ASGI app (run by uvicorn with httptools and uvloop) over `DataPlane`.

Routes are those of the Open Inference Protocol's HTTP/REST binding, plus the binary tensor
extension (`Inference-Header-Content-Length`, `binary_data_size`, `binary_data` /
`binary_data_output`), the repository extension (index, load, unload) and `/metrics`. Bodies are
parsed and written with orjson; tensors go through `tensors`. Every error leaves as
`{"error": "..."}` with the status from `errors.STATUS`; anything unexpected is logged with its
traceback and answered 500, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
import orjson

from appliance.serving import dataplane, datatypes, errors, model, tensors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("appliance.serving.rest")

JSON = b"application/json"
OCTETS = b"application/octet-stream"
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_READY = orjson.dumps({"ready": True})
_NOT_READY = orjson.dumps({"ready": False})
_LIVE = orjson.dumps({"live": True})
_BY_NAME = datatypes.BY_NAME


def _json(status: int, doc: Any) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    return status, JSON, orjson.dumps(doc), []


class RestApp:
    """An ASGI 3 application. Build one per server with the data plane it serves."""

    def __init__(self, plane: dataplane.DataPlane, *, max_body_bytes: int, body_timeout: float = 30.0) -> None:
        self.plane = plane
        self.metrics = plane.metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        # /v2/models/<name>/infer of every model in the repository (a fixed set) -> its name
        self._infer_paths = {f"/v2/models/{name}/infer": name for name in plane.repository.names()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        start = time.perf_counter()
        name = self._infer_paths.get(scope["path"])
        model_label, endpoint = ("", "other") if name is None else (name, "infer")
        try:
            if name is not None and scope["method"] == "POST":  # the hot path, as `_route` would route it
                status, ctype, body, extra = await self._infer(name, None, scope, receive)
            else:
                parts = scope["path"].strip("/").split("/")
                model_label, endpoint = self._labels(parts)
                status, ctype, body, extra = await self._route(scope["method"], parts, scope, receive)
        except errors.ServingError as exc:
            status, ctype, body, extra = self._error(exc, model_label)
        except Exception as exc:
            log.exception("bug while handling %s %s", scope["method"], scope["path"])
            status, ctype, body, extra = self._error(exc, model_label)
        # Counted before the reply leaves, so a client that scrapes /metrics right after sees its request.
        seconds = time.perf_counter() - start if endpoint == "infer" and status == 200 else None
        self.metrics.request(model_label, "rest", endpoint, status, seconds)
        headers = [(b"content-type", ctype), (b"content-length", b"%d" % len(body)), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _error(self, exc: BaseException, model_label: str) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        status = errors.status_of(exc)
        message = exc.message if isinstance(exc, errors.ServingError) else f"internal error: {type(exc).__name__}"
        self.metrics.error(model_label, "rest", status.http, type(exc).__name__)
        extra = [(b"connection", b"close")] if isinstance(exc, errors.RequestTimeout) else []
        return status.http, JSON, orjson.dumps({"error": message}), extra

    def _labels(self, parts: list[str]) -> tuple[str, str]:
        if len(parts) >= 3 and parts[0] == "v2" and parts[1] == "models":
            return self.plane.metric_label(parts[2]), parts[-1] if parts[-1] in ("infer", "ready") else "metadata"
        return "", parts[-1] if parts else "other"

    async def _route(
        self, method: str, parts: list[str], scope: Scope, receive: Receive
    ) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        if parts[0] == "v2":
            n = len(parts)
            if n >= 3 and parts[1] == "models":
                name, rest = parts[2], parts[3:]
                version = None
                if len(rest) >= 2 and rest[0] == "versions":
                    version, rest = rest[1], rest[2:]
                if rest == ["infer"]:
                    _expect(method, "POST")
                    return await self._infer(name, version, scope, receive)
                if rest == ["ready"]:
                    _expect(method, "GET")
                    ready = self.plane.model_ready(name, version)
                    return _json(200 if ready else 503, {"name": name, "ready": ready})
                if not rest:
                    _expect(method, "GET")
                    return _json(200, self.plane.model_metadata(name, version))
            elif n == 1:
                _expect(method, "GET")
                return _json(200, self.plane.server_metadata())
            elif n == 3 and parts[1] == "health" and parts[2] in ("live", "ready"):
                _expect(method, "GET")
                if parts[2] == "live":
                    return 200, JSON, _LIVE, []
                return (200, JSON, _READY, []) if self.plane.ready() else (503, JSON, _NOT_READY, [])
            elif n >= 3 and parts[1] == "repository":
                return await self._repository(method, parts[2:])
        elif parts == ["metrics"]:
            _expect(method, "GET")
            text, ctype = self.metrics.render()
            return 200, ctype.encode(), text, []
        raise errors.RouteNotFound(f"no such endpoint: {method} {scope['path']}")

    async def _repository(self, method: str, rest: list[str]) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        if rest == ["index"]:
            _expect(method, "POST", "GET")
            return _json(200, self.plane.repository.index())
        if len(rest) == 3 and rest[0] == "models" and rest[2] in ("load", "unload"):
            _expect(method, "POST")
            if rest[2] == "load":
                await self.plane.load(rest[1])
            else:
                await self.plane.unload(rest[1])
            return 200, JSON, b"{}", []
        raise errors.RouteNotFound(f"no such endpoint: {method} /v2/repository/{'/'.join(rest)}")

    async def _read_body(self, scope: Scope, receive: Receive, declared: int | None) -> bytes:
        if declared is not None and declared > self.max_body_bytes:
            raise errors.PayloadTooLarge(
                f"request body of {declared} bytes is over this server's limit of {self.max_body_bytes} bytes"
            )
        message = await receive()  # the common case: the whole body has already arrived
        body = message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)
        chunks, size = [body], len(body)
        try:
            async with asyncio.timeout(self.body_timeout):
                while message.get("more_body"):
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise errors.InvalidInput("the client closed the connection before sending the whole body")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise errors.PayloadTooLarge(
                            f"request body is over this server's limit of {self.max_body_bytes}"
                        )
                    chunks.append(chunk)
        except TimeoutError:
            raise errors.RequestTimeout(
                f"request body incomplete after {self.body_timeout:g}s: got {size} of {declared} bytes"
            ) from None
        return b"".join(chunks)

    async def _infer(
        self, name: str, version: str | None, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        m = self.plane.get_model(name, version)
        declared = header_value = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = int(value)  # the HTTP parser has already rejected a non-numeric one
            elif key == b"inference-header-content-length":
                header_value = value
        body = await self._read_body(scope, receive, declared)
        header_length = None if header_value is None else _header_length(header_value, len(body))
        if header_length is None:
            doc, binary = _loads(body), None
            plan = m.float_inputs
            feeds = None if plan is None else float_feeds(plan, doc, self.plane.max_elements)
            if feeds is not None:
                request_id = doc.get("id")
                if request_id is None or type(request_id) is str:
                    return json_response(m, request_id, await self.plane.run(m, feeds, m.output_names))
        else:
            view = memoryview(body)
            doc, binary = _loads(view[:header_length]), view[header_length:]
        request = decode_request(doc, binary, self.plane.max_elements)
        response = await self.plane.infer(m, request)
        return encode_response(response)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _expect(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise errors.MethodNotAllowed(f"method {method} is not allowed here; use {' or '.join(allowed)}")


def _header_length(value: bytes, body_length: int) -> int:
    try:
        length = int(value)
    except ValueError:
        raise errors.InvalidInput(f"Inference-Header-Content-Length {value[:40]!r} is not an integer") from None
    if not 0 <= length <= body_length:
        raise errors.InvalidInput(f"Inference-Header-Content-Length {length} is outside the body's {body_length} bytes")
    return length


def _loads(data: bytes | memoryview) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise errors.InvalidInput(f"request body must be a JSON object, got {type(doc).__name__}")
    return doc


def _parameters(holder: dict[str, Any], where: str) -> dict[str, Any]:
    params = holder.get("parameters")
    if params is None:
        return {}
    if type(params) is not dict:
        raise errors.InvalidInput(f"{where}: parameters must be a JSON object")
    return params


def decode_request(doc: dict[str, Any], binary: memoryview | None, max_elements: int) -> dataplane.InferRequest:
    """An OIP JSON inference request (plus binary tensor data) as a data-plane request.

    This runs once per input of every request, so it is written for speed: type() checks, no helper
    calls on the common path."""
    inputs_doc = doc.get("inputs")
    if type(inputs_doc) is not list or not inputs_doc:
        raise errors.InvalidInput("request must have a non-empty 'inputs' array")
    binary_output = _parameters(doc, "request").get("binary_data_output", False) if "parameters" in doc else False
    if type(binary_output) is not bool:
        raise errors.InvalidInput("parameter binary_data_output must be true or false")
    inputs = []
    offset = 0
    for item in inputs_doc:
        if type(item) is not dict:
            raise errors.InvalidInput("each input must be a JSON object with name, datatype, shape and data")
        name = item.get("name")
        if type(name) is not str:
            raise errors.InvalidInput("each input needs a string 'name'")
        declared = item.get("datatype")
        dt = _BY_NAME.get(declared) if type(declared) is str else None
        if dt is None:
            dt = datatypes.from_name(declared, tensor=name)  # raises with the precise reason
        shape, count = tensors.parse_shape(item.get("shape"), tensor=name, max_elements=max_elements)
        size = _parameters(item, f"input '{name}'").get("binary_data_size") if "parameters" in item else None
        if size is None:
            data = item.get("data")
            array = None
            if type(data) is list and dt.dtype.kind == "f":  # the common case, inlined: float data
                try:
                    parsed = np.array(data)
                    if parsed.dtype.kind == "f" and parsed.size == count:
                        array = parsed.astype(dt.dtype, copy=False).reshape(shape)
                except (ValueError, TypeError, OverflowError, FloatingPointError):
                    array = None  # from_json says precisely what is wrong
            if array is None:
                if "data" not in item:
                    raise errors.InvalidInput(f"input '{name}' has neither 'data' nor a binary_data_size parameter")
                array = tensors.from_json(dt, shape, data, tensor=name)
        else:
            if type(size) is not int or size < 0:
                raise errors.InvalidInput(f"input '{name}': binary_data_size must be a non-negative integer")
            if binary is None:
                raise errors.InvalidInput(
                    f"input '{name}' has binary_data_size but the request has no Inference-Header-Content-Length"
                )
            if offset + size > len(binary):
                raise errors.InvalidInput(
                    f"input '{name}': binary_data_size {size} runs past the {len(binary)} bytes of binary data"
                )
            array = tensors.from_raw(dt, shape, binary[offset : offset + size], tensor=name)
            offset += size
        inputs.append(dataplane.InputTensor(name, dt, shape, array))
    if binary is not None and offset != len(binary):
        raise errors.InvalidInput(
            f"the body has {len(binary)} bytes of binary data but the inputs' binary_data_size add up to {offset}"
        )
    outputs = _outputs(doc) if "outputs" in doc else None
    return dataplane.InferRequest(inputs, outputs, _request_id(doc) if "id" in doc else None, binary_output)


def float_feeds(
    plan: dict[str, tuple[str, int, tuple[tuple[int, int], ...], np.dtype]], doc: dict[str, Any], max_elements: int
) -> dict[str, np.ndarray] | None:
    """The fast path for the commonest request: the model's float inputs, each once, as JSON numbers.

    Returns the feeds for `OnnxModel.run` only when `decode_request` followed by `dataplane.validate`
    would accept the request and build the same arrays (every check of both is here, against the
    model's `float_inputs` plan, without the intermediate objects); anything else — parameters,
    requested outputs, integer or nested-wrong data, a wrong name, datatype or shape, a value out of
    range — returns None, and the full path then answers with its precise error or handles it."""
    inputs_doc = doc.get("inputs")
    if type(inputs_doc) is not list or len(inputs_doc) != len(plan) or "parameters" in doc or "outputs" in doc:
        return None
    feeds: dict[str, np.ndarray] = {}
    for item in inputs_doc:
        if type(item) is not dict or "parameters" in item:
            return None
        name = item.get("name")
        if type(name) is not str or name in feeds:
            return None
        expected = plan.get(name)
        if expected is None:
            return None
        datatype, rank, fixed, dtype = expected
        shape, data = item.get("shape"), item.get("data")
        if item.get("datatype") != datatype or type(data) is not list:
            return None
        count = tensors.plain_count(shape, rank, fixed, max_elements)
        if count is None:
            return None
        try:
            parsed = np.array(data)
            if parsed.dtype.kind != "f" or parsed.size != count:
                return None
            feeds[name] = parsed.astype(dtype, copy=False).reshape(shape)
        except (ValueError, TypeError, OverflowError, FloatingPointError):
            return None
    return feeds


def json_response(
    m: model.OnnxModel, request_id: str | None, results: list[np.ndarray]
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """What `encode_response` writes for every output of `m` as JSON data (the fast path's reply)."""
    outputs = [
        {"name": name, "datatype": datatype, "shape": array.shape, "data": array.reshape(-1)}
        for name, datatype, array in zip(m.output_names, m.output_datatypes, results, strict=True)
    ]
    head: dict[str, Any] = {"model_name": m.name, "model_version": m.version}
    if request_id is not None:
        head["id"] = request_id
    head["outputs"] = outputs
    return 200, JSON, orjson.dumps(head, option=_NUMPY), []


def _request_id(doc: dict[str, Any]) -> str | None:
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise errors.InvalidInput("request 'id' must be a string")
    return request_id


def _outputs(doc: dict[str, Any]) -> list[dataplane.OutputRequest] | None:
    outputs_doc = doc.get("outputs")
    if outputs_doc is None:
        return None
    if not isinstance(outputs_doc, list):
        raise errors.InvalidInput("'outputs' must be an array")
    outputs = []
    for item in outputs_doc:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise errors.InvalidInput("each requested output must be an object with a string 'name'")
        binary = _parameters(item, f"output '{item['name']}'").get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise errors.InvalidInput(f"output '{item['name']}': binary_data must be true or false")
        outputs.append(dataplane.OutputRequest(item["name"], binary))
    return outputs


def encode_response(response: dataplane.InferResponse) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    outputs = []
    blobs = []
    for out in response.outputs:
        doc: dict[str, Any] = {"name": out.name, "datatype": out.datatype.name, "shape": out.shape}
        if out.binary:
            raw = tensors.to_raw(out.array)
            doc["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            doc["data"] = tensors.to_json_data(out.array)
        outputs.append(doc)
    head: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version}
    if response.id is not None:
        head["id"] = response.id
    head["outputs"] = outputs
    header = orjson.dumps(head, option=_NUMPY)
    if not blobs:
        return 200, JSON, header, []
    extra = [(b"inference-header-content-length", str(len(header)).encode())]
    return 200, OCTETS, b"".join([header, *blobs]), extra

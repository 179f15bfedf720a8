"""The gRPC transport: `inference.GRPCInferenceService` on grpc.aio over `DataPlane`.

`server` builds it next to the REST app, in the same event loop and over the same data plane.
Inputs arrive as `raw_input_contents` (what tritonclient sends) or typed `contents`; outputs always
leave as `raw_output_contents`, which every OIP client reads. Errors become a gRPC status through
`errors.STATUS`, the same table REST uses.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import numpy as np
from grpc import aio

from appliance.serving import dataplane, datatypes, errors, model, tensors
from appliance.serving.proto import grpc_predict_v2_pb2 as pb
from appliance.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

log = logging.getLogger("appliance.serving.grpc")
T = TypeVar("T")
_LITTLE_ENDIAN = sys.byteorder == "little"


def decode_request(request: pb.ModelInferRequest, max_elements: int) -> dataplane.InferRequest:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise errors.InvalidInput(
            f"raw_input_contents has {len(raw)} entries but the request has {len(request.inputs)} inputs"
        )
    if not request.inputs:
        raise errors.InvalidInput("request must have at least one input")
    inputs = []
    for i, tensor in enumerate(request.inputs):
        dt = datatypes.from_name(tensor.datatype, tensor=tensor.name)
        shape, _ = tensors.parse_shape(list(tensor.shape), tensor=tensor.name, max_elements=max_elements)
        if raw:
            array = tensors.from_raw(dt, shape, raw[i], tensor=tensor.name)
        elif dt.contents_field is None:
            raise errors.InvalidInput(f"input '{tensor.name}': {dt.name} data can only be sent in raw_input_contents")
        else:
            values = getattr(tensor.contents, dt.contents_field)
            array = tensors.from_contents(dt, shape, values, tensor=tensor.name)
        inputs.append(dataplane.InputTensor(tensor.name, dt, shape, array))
    outputs = [dataplane.OutputRequest(o.name) for o in request.outputs] or None
    return dataplane.InferRequest(inputs, outputs, request.id or None)


def raw_feeds(
    plan: dict[str, tuple[str, int, tuple[tuple[int, int], ...], np.dtype]],
    request: pb.ModelInferRequest,
    max_elements: int,
) -> dict[str, np.ndarray] | None:
    """The fast path for the commonest request: the model's float inputs, each once, as raw contents.

    Returns the feeds for `OnnxModel.run` only when `decode_request` followed by `dataplane.validate`
    would accept the request and build the same arrays (every check of both, against the model's
    `float_inputs` plan, reading each protobuf field once); anything else, typed contents and
    requested outputs included, returns None and goes the general way, which answers with the
    precise error. Big-endian hosts always go the general way (raw contents are little-endian)."""
    if not _LITTLE_ENDIAN or request.outputs:
        return None
    inputs, raw = request.inputs, request.raw_input_contents
    if len(inputs) != len(plan) or len(raw) != len(plan):
        return None
    feeds: dict[str, np.ndarray] = {}
    for tensor, data in zip(inputs, raw, strict=True):
        name = tensor.name
        expected = plan.get(name)
        if expected is None or name in feeds:
            return None
        datatype, rank, fixed, dtype = expected
        shape = list(tensor.shape)
        if tensor.datatype != datatype or len(shape) != rank or rank > tensors.MAX_RANK:
            return None
        count = 1
        for d in shape:
            if d < 0:
                return None
            count *= d
        if count > max_elements:
            return None
        for axis, size in fixed:
            if shape[axis] != size:
                return None
        if len(data) != count * dtype.itemsize:
            return None
        feeds[name] = np.frombuffer(data, dtype).reshape(shape)
    return feeds


def raw_response(m: model.OnnxModel, request_id: str, results: list[np.ndarray]) -> pb.ModelInferResponse:
    """What `encode_response` builds for every output of `m` (the fast path's reply; little-endian hosts)."""
    tensor = pb.ModelInferResponse.InferOutputTensor
    return pb.ModelInferResponse(
        model_name=m.name,
        model_version=m.version,
        id=request_id,
        outputs=[
            tensor(name=name, datatype=datatype, shape=array.shape)
            for name, datatype, array in zip(m.output_names, m.output_datatypes, results, strict=True)
        ],
        raw_output_contents=[array.tobytes() for array in results],
    )


def encode_response(response: dataplane.InferResponse) -> pb.ModelInferResponse:
    return pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name=o.name, datatype=o.datatype.name, shape=o.shape)
            for o in response.outputs
        ],
        raw_output_contents=[tensors.to_raw(o.array) for o in response.outputs],
    )


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: dataplane.DataPlane) -> None:
        self.plane = plane
        self.metrics = plane.metrics

    async def _call(
        self, context: aio.ServicerContext[Any, Any], endpoint: str, model: str, fn: Callable[[], Awaitable[T]]
    ) -> T:
        start = time.perf_counter()
        label = self.plane.metric_label(model) if model else ""
        try:
            result = await fn()
        except Exception as exc:
            status = errors.status_of(exc)
            if not isinstance(exc, errors.ServingError):
                log.exception("bug in gRPC %s", endpoint)
            message = exc.message if isinstance(exc, errors.ServingError) else f"internal error: {type(exc).__name__}"
            self.metrics.error(label, "grpc", status.http, type(exc).__name__)
            self.metrics.request(label, "grpc", endpoint, status.http)
            await context.abort(grpc.StatusCode[status.grpc], message)
        seconds = time.perf_counter() - start if endpoint == "infer" else None
        self.metrics.request(label, "grpc", endpoint, 200, seconds)
        return result

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        async def fn() -> pb.ServerLiveResponse:
            return pb.ServerLiveResponse(live=self.plane.live())

        return await self._call(context, "live", "", fn)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        async def fn() -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=self.plane.ready())

        return await self._call(context, "ready", "", fn)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        async def fn() -> pb.ModelReadyResponse:
            return pb.ModelReadyResponse(ready=self.plane.model_ready(request.name, request.version))

        return await self._call(context, "ready", request.name, fn)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> pb.ServerMetadataResponse:
        async def fn() -> pb.ServerMetadataResponse:
            return pb.ServerMetadataResponse(**self.plane.server_metadata())

        return await self._call(context, "metadata", "", fn)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        async def fn() -> pb.ModelMetadataResponse:
            meta = self.plane.model_metadata(request.name, request.version)
            tensor = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(
                name=meta["name"],
                versions=meta["versions"],
                platform=meta["platform"],
                inputs=[tensor(**t) for t in meta["inputs"]],
                outputs=[tensor(**t) for t in meta["outputs"]],
            )

        return await self._call(context, "metadata", request.name, fn)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        async def fn() -> pb.ModelInferResponse:
            m = self.plane.get_model(request.model_name, request.model_version)
            plan = m.float_inputs
            feeds = None if plan is None else raw_feeds(plan, request, self.plane.max_elements)
            if feeds is not None:
                return raw_response(m, request.id, await self.plane.run(m, feeds, m.output_names))
            decoded = decode_request(request, self.plane.max_elements)
            return encode_response(await self.plane.infer(m, decoded))

        return await self._call(context, "infer", request.model_name, fn)


def build(plane: dataplane.DataPlane, *, max_message_bytes: int, reuse_port: bool) -> aio.Server:
    """A grpc.aio server with the inference service; `bind` it, then `start` it in the running loop."""
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(plane), server)  # type: ignore[no-untyped-call]
    return server


def bind(server: aio.Server, host: str, port: int) -> int:
    """Listen on host:port; the port actually bound (useful with port 0)."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cause = ""
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        bound, cause = 0, f" ({exc})"
    if not bound:
        raise errors.StartupError(
            f"cannot listen for gRPC on {address}{cause}",
            hint="the port is probably in use; pick another with --grpc-port",
        )
    return bound

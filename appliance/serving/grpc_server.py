"""The gRPC transport: `inference.GRPCInferenceService` on grpc.aio over `DataPlane`.

`server` builds it next to the REST app, in the same event loop and over the same data plane.
Inputs arrive as `raw_input_contents` (what tritonclient sends) or typed `contents`; outputs always
leave as `raw_output_contents`, which every OIP client reads. Errors become a gRPC status through
`errors.STATUS`, the same table REST uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc import aio

from appliance.serving import dataplane, datatypes, errors, tensors
from appliance.serving.proto import grpc_predict_v2_pb2 as pb
from appliance.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

log = logging.getLogger("appliance.serving.grpc")
T = TypeVar("T")


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

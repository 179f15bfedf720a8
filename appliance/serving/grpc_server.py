"""The gRPC transport: `inference.GRPCInferenceService` over `DataPlane`, on pygrpc-native's front.

`server` starts it next to the REST app, over the same data plane. HTTP/2 and the gRPC framing run
in pygrpc-native's Rust threads, outside the GIL (`NativeGrpcFront`); calls reach Python in batches,
and one dispatch thread of ours decodes each, runs it through the data plane and answers it by id.
Slow models run in a thread pool so that health calls keep answering (as REST does with the event
loop). grpcio's own servers cost more CPU per call on this machine than our whole REST path
(docs/benchmarks.md, "gRPC"), and so did pygrpc-native's grpcio-compatible `aio.server()` with a
servicer. grpcio is not needed to serve: it stays a test and benchmark dependency (clients, the
generated `_pb2_grpc` stubs).

Inputs arrive as `raw_input_contents` (what tritonclient sends) or typed `contents`; outputs always
leave as `raw_output_contents`, which every OIP client reads. Errors become a gRPC status through
`errors.STATUS`, the same table REST uses; a malformed protobuf message is an `InvalidInput`, and a
message over the size limit a `PayloadTooLarge` (RESOURCE_EXHAUSTED), as on REST.

Threads: the dispatch thread and the pool threads update the metrics under one lock of their own;
REST updates them from the event loop. Their in-process counts are keyed by protocol, so the two
transports never update the same entry (`metrics`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from google.protobuf import message as pb_message
from pygrpc_native import EVENT_CALL, NativeGrpcFront

from appliance.serving import dataplane, datatypes, errors, grpc_wire, model, tensors
from appliance.serving.proto import grpc_predict_v2_pb2 as pb

log = logging.getLogger("appliance.serving.grpc")
_LITTLE_ENDIAN = sys.byteorder == "little"
SERVICE = "/inference.GRPCInferenceService/"
BATCH = 64  # calls taken from the front at once
# Rust (tokio) threads doing HTTP/2 for the front. One: Python's dispatch thread is the bottleneck
# long before one of them is, and with the library's default of 2 a call hops between more threads;
# alternating runs on 2 cores measured less server CPU per call with 1 (docs/benchmarks.md).
IO_THREADS = 1
POLL_MS = 200  # how often an idle dispatch thread looks whether it should stop


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
        if tensor.datatype != datatype:
            return None
        shape = list(tensor.shape)
        count = tensors.plain_count(shape, rank, fixed, max_elements)
        if count is None or len(data) != count * dtype.itemsize:
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


def response_header(m: model.OnnxModel, results: list[np.ndarray]) -> bytes:
    """`raw_response` without its id and raw contents, serialized (`grpc_wire` appends those)."""
    tensor = pb.ModelInferResponse.InferOutputTensor
    return pb.ModelInferResponse(
        model_name=m.name,
        model_version=m.version,
        outputs=[
            tensor(name=name, datatype=datatype, shape=array.shape)
            for name, datatype, array in zip(m.output_names, m.output_datatypes, results, strict=True)
        ],
    ).SerializeToString()


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


Handler = Callable[..., "bytes | None"]  # ModelInfer takes more than the request (see `_call`)


class GrpcServer:
    """The six methods of `inference.GRPCInferenceService` on one port, answered by one dispatch thread.

    Construct it (binds the port, `StartupError` when it is taken), `start` it, `stop` it. With
    `reuse_port` several worker processes share the port (SO_REUSEPORT), as REST's workers do."""

    def __init__(
        self, plane: dataplane.DataPlane, host: str, port: int, *, max_message_bytes: int, reuse_port: bool
    ) -> None:
        self.plane = plane
        self.metrics = plane.metrics
        self.max_message_bytes = max_message_bytes
        self._lock = threading.Lock()  # the metrics, from the dispatch and pool threads; `_pending`
        self._pending = 0  # calls handed to the pool and not yet answered
        self._stopping = False
        self._grace = 0.0
        self._plans = grpc_wire.Plans()  # only the dispatch thread uses them
        # method id (the index) -> path, request class, metrics endpoint, handler
        self._methods: list[tuple[str, Any, str, Handler]] = [
            ("ServerLive", pb.ServerLiveRequest, "live", self._server_live),
            ("ServerReady", pb.ServerReadyRequest, "ready", self._server_ready),
            ("ModelReady", pb.ModelReadyRequest, "ready", self._model_ready),
            ("ServerMetadata", pb.ServerMetadataRequest, "metadata", self._server_metadata),
            ("ModelMetadata", pb.ModelMetadataRequest, "metadata", self._model_metadata),
            ("ModelInfer", pb.ModelInferRequest, "infer", self._model_infer),
        ]
        self._infer_id = len(self._methods) - 1
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.front = NativeGrpcFront(
                address,
                [(SERVICE + name, False) for name, *_ in self._methods],
                io_threads=IO_THREADS,
                reuse_port=reuse_port,
                keepalive_permit_without_calls=False,  # grpc-core's default for servers
            )
        except OSError as exc:
            raise errors.StartupError(
                f"cannot listen for gRPC on {address}: {exc.strerror or exc}",
                hint="the port is probably in use; pick another with --grpc-port",
            ) from None
        self.port: int = self.front.bound_port
        workers = min(32, (os.cpu_count() or 1) + 4)  # the size of asyncio's default executor (REST's)
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="grpc-infer")
        self._thread = threading.Thread(target=self._dispatch, name="grpc-dispatch", daemon=True)

    def start(self) -> None:
        self.front.start()
        self._thread.start()

    def stop(self, grace: float) -> None:
        """Answer new calls UNAVAILABLE, let those under way finish for up to `grace` seconds, close."""
        self._grace = grace
        self._stopping = True
        if self._thread.is_alive():
            self._thread.join(grace + POLL_MS / 1000 + 1)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.front.close()

    # ---- the dispatch thread ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        # numpy's error state is per thread: casts that overflow must raise here too (`tensors`).
        with np.errstate(over=tensors.OVERFLOW):
            deadline = None
            front, infer = self.front, self._infer_id
            while (events := front.recv_batch(BATCH, POLL_MS)) is not None:
                stopping = self._stopping
                for kind, call_id, method_id, payload, _ in events:
                    if kind != EVENT_CALL or payload is None:
                        continue  # a cancel: the answer, if any, goes nowhere
                    try:
                        if stopping:
                            front.fail(call_id, errors.GRPC_CODES["UNAVAILABLE"], "the server is shutting down")
                        elif method_id == infer:
                            self._infer(call_id, payload)
                        else:
                            self._call(call_id, method_id, payload, infer)
                    except Exception as exc:  # a bug: answer it and keep the thread serving
                        log.error("bug in gRPC dispatch", exc_info=exc)
                        front.fail(call_id, errors.GRPC_CODES["INTERNAL"], f"internal error: {type(exc).__name__}")
                if stopping:
                    deadline = deadline or time.monotonic() + self._grace
                    if not self._pending or time.monotonic() > deadline:
                        break

    def _infer(self, call_id: int, payload: bytes) -> None:
        """ModelInfer: a request of a kind seen before goes `grpc_wire`'s way, anything else `_call`'s."""
        start = time.perf_counter()
        split = grpc_wire.split(payload) if len(payload) <= self.max_message_bytes else None
        if split is not None:
            key, request_id, raws = split
            plan = self._plans.get(key)
            if plan is not None:
                try:
                    m: model.OnnxModel | None = self.plane.get_model(plan.name, plan.version)
                except errors.ServingError:
                    m = None  # unloaded or reloaded since: the parsed way answers
                feeds = plan.feeds(payload, raws) if m is plan.model else None
                if feeds is not None and self.plane.runs_inline(plan.model) and _utf8(request_id):
                    try:
                        results = plan.model.run(feeds, plan.model.output_names)
                        shapes = tuple(a.shape for a in results)
                        header = plan.headers.get(shapes)
                        if header is None:
                            header = plan.headers[shapes] = response_header(plan.model, results)
                        reply = plan.reply(request_id, results, header)
                    except Exception as exc:
                        self._fail(call_id, "infer", plan.label, exc)
                        return
                    self.front.respond(call_id, reply)
                    with self._lock:
                        self.metrics.request(plan.label, "grpc", "infer", 200, time.perf_counter() - start)
                    return
        self._call(call_id, self._infer_id, payload, self._infer_id, split)

    def _call(
        self,
        call_id: int,
        method_id: int,
        payload: bytes,
        infer: int,
        split: tuple[bytes, bytes, list[tuple[int, int]]] | None = None,
    ) -> None:
        start = time.perf_counter()
        _, request_type, endpoint, handler = self._methods[method_id]
        label = ""
        try:
            if len(payload) > self.max_message_bytes:
                raise errors.PayloadTooLarge(
                    f"request message of {len(payload)} bytes is over the limit of {self.max_message_bytes} bytes"
                )
            try:
                request = request_type.FromString(payload)
            except pb_message.DecodeError:
                raise errors.InvalidInput(f"the request is not a valid {request_type.__name__} message") from None
            name = request.model_name if method_id == infer else getattr(request, "name", "")
            label = self.plane.metric_label(name) if name else ""
            reply = handler(request, call_id, start, label, split) if method_id == infer else handler(request)
        except Exception as exc:
            self._fail(call_id, endpoint, label, exc)
            return
        if reply is None:
            return  # handed to the pool, which answers
        self.front.respond(call_id, reply)
        seconds = time.perf_counter() - start if method_id == infer else None
        with self._lock:
            self.metrics.request(label, "grpc", endpoint, 200, seconds)

    def _fail(self, call_id: int, endpoint: str, label: str, exc: Exception) -> None:
        status = errors.status_of(exc)
        if isinstance(exc, errors.ServingError):
            message = exc.message
        else:
            log.error("bug in gRPC %s", endpoint, exc_info=exc)
            message = f"internal error: {type(exc).__name__}"
        self.front.fail(call_id, errors.GRPC_CODES[status.grpc], message)
        with self._lock:
            self.metrics.error(label, "grpc", status.http, type(exc).__name__)
            self.metrics.request(label, "grpc", endpoint, status.http)

    # ---- the methods -----------------------------------------------------------------------------

    def _server_live(self, request: pb.ServerLiveRequest) -> bytes:
        return pb.ServerLiveResponse(live=self.plane.live()).SerializeToString()

    def _server_ready(self, request: pb.ServerReadyRequest) -> bytes:
        return pb.ServerReadyResponse(ready=self.plane.ready()).SerializeToString()

    def _model_ready(self, request: pb.ModelReadyRequest) -> bytes:
        return pb.ModelReadyResponse(ready=self.plane.model_ready(request.name, request.version)).SerializeToString()

    def _server_metadata(self, request: pb.ServerMetadataRequest) -> bytes:
        return pb.ServerMetadataResponse(**self.plane.server_metadata()).SerializeToString()

    def _model_metadata(self, request: pb.ModelMetadataRequest) -> bytes:
        meta = self.plane.model_metadata(request.name, request.version)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        ).SerializeToString()

    def _model_infer(
        self,
        request: pb.ModelInferRequest,
        call_id: int,
        start: float,
        label: str,
        split: tuple[bytes, bytes, list[tuple[int, int]]] | None,
    ) -> bytes | None:
        plane = self.plane
        m = plane.get_model(request.model_name, request.model_version)
        plan = m.float_inputs
        feeds = None if plan is None else raw_feeds(plan, request, plane.max_elements)
        if feeds is not None and split is not None:  # remember this kind of request (`grpc_wire`)
            wire = grpc_wire.plan_of(request.model_name, request.model_version, label, m, feeds)
            self._plans.add(split[0], wire)
        if feeds is not None:  # the fast path: every output, raw
            names = m.output_names
            request_id = request.id

            def reply(results: list[np.ndarray]) -> bytes:
                return raw_response(m, request_id, results).SerializeToString()

        else:
            decoded = decode_request(request, plane.max_elements)
            feeds, names, binary = plane.prepare(m, decoded)

            def reply(results: list[np.ndarray]) -> bytes:
                return encode_response(plane.response(m, decoded, names, binary, results)).SerializeToString()

        if plane.runs_inline(m):
            return reply(m.run(feeds, names))
        with self._lock:
            self._pending += 1
        self._pool.submit(self._run_in_pool, call_id, start, label, m, feeds, names, reply)
        return None

    def _run_in_pool(
        self,
        call_id: int,
        start: float,
        label: str,
        m: model.OnnxModel,
        feeds: dict[str, np.ndarray],
        names: list[str],
        reply: Callable[[list[np.ndarray]], bytes],
    ) -> None:
        try:
            data = reply(m.run(feeds, names))
        except Exception as exc:
            self._fail(call_id, "infer", label, exc)
        else:
            self.front.respond(call_id, data)
            with self._lock:
                self.metrics.request(label, "grpc", "infer", 200, time.perf_counter() - start)
        finally:
            with self._lock:
                self._pending -= 1


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True

"""Checks of gRPC's fast paths, run by test_grpc_fast_path.py in a process of their own.

`grpc_server.raw_feeds` may only accept a request that `decode_request` + `dataplane.validate` accept,
with the same arrays, and `raw_response` must build the message `encode_response` builds. The wire
path (`grpc_wire`) may only take a request, mutated or with random bytes changed, that the parsed
path accepts, with the same arrays, and its reply must parse to `raw_response`'s message. They import
our generated `inference.*` protobuf modules, which cannot share a process with tritonclient's (the
same message names in protobuf's default pool), hence the separate process.
Usage: python grpc_fast_path_checks.py MODELS_DIR (prints one line per check; exits 1 on a failure)
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import message as pb_message

from appliance.serving import dataplane, errors, grpc_server, grpc_wire, metrics, model, repository
from appliance.serving.proto import grpc_predict_v2_pb2 as pb
from appliance.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

MAX = 1000


def _pb_request(batch: int = 2) -> pb.ModelInferRequest:
    arrays = {n: np.arange(4 * batch, dtype=np.float32).reshape(batch, 4) / 3 for n in "abcd"}
    return pb.ModelInferRequest(
        model_name="four",
        inputs=[pb.ModelInferRequest.InferInputTensor(name=n, datatype="FP32", shape=[batch, 4]) for n in arrays],
        raw_input_contents=[a.tobytes() for a in arrays.values()],
    )


def _grpc_full_path(m: model.OnnxModel, request: pb.ModelInferRequest) -> dict[str, np.ndarray] | str:
    try:
        decoded = grpc_server.decode_request(request, MAX)
        feeds = dataplane.validate(m, decoded.inputs)
        dataplane.choose_outputs(m, decoded)
    except errors.ServingError as exc:
        return exc.message
    return feeds


def _grpc_mutations() -> list[tuple[str, Any]]:
    def shape(i: int, dims: list[int]) -> Any:
        def apply(r: pb.ModelInferRequest) -> None:
            del r.inputs[i].shape[:]
            r.inputs[i].shape.extend(dims)

        return apply

    def field(i: int, key: str, value: str) -> Any:
        return lambda r: setattr(r.inputs[i], key, value)

    def raw(i: int, value: bytes) -> Any:
        return lambda r: r.raw_input_contents.__setitem__(i, value)

    def typed(r: pb.ModelInferRequest) -> None:
        for t, data in zip(r.inputs, r.raw_input_contents, strict=True):
            t.contents.fp32_contents.extend(np.frombuffer(data, np.float32).tolist())
        del r.raw_input_contents[:]

    return [
        ("nothing", lambda r: None),
        ("an id", lambda r: setattr(r, "id", "r-1")),
        ("wrong datatype", field(0, "datatype", "FP64")),
        ("unknown datatype", field(1, "datatype", "FLOAT")),
        ("unknown input", field(0, "name", "e")),
        ("duplicate input", field(1, "name", "a")),
        ("wrong fixed dimension", shape(0, [1, 8])),
        ("wrong rank", shape(0, [8])),
        ("negative dimension", shape(0, [-2, -4])),
        ("too many elements", shape(0, [1000, 4])),
        ("short raw data", raw(0, b"\0" * 12)),
        ("long raw data", raw(0, b"\0" * 64)),
        ("a missing input", lambda r: (r.inputs.pop(), r.raw_input_contents.pop())),
        ("raw contents for fewer inputs", lambda r: r.raw_input_contents.pop()),
        ("typed contents", typed),
        ("requested outputs", lambda r: r.outputs.add(name="sum")),
    ]


def check_fast_path(four: model.OnnxModel, what: str, mutate: Any) -> None:
    request = _pb_request()
    mutate(request)
    assert four.float_inputs is not None
    fast = grpc_server.raw_feeds(four.float_inputs, request, MAX)
    full = _grpc_full_path(four, request)
    if what in ("nothing", "an id"):
        assert fast is not None, f"{what}: the fast path should take this request"
    if fast is None:
        return
    assert not isinstance(full, str), f"{what}: fast path accepted what the full path rejects: {full}"
    assert list(fast) == list(full)
    for name, array in fast.items():
        assert array.dtype == full[name].dtype and array.shape == full[name].shape
        np.testing.assert_array_equal(array, full[name])


def check_fast_reply(four: model.OnnxModel) -> None:
    decoded = grpc_server.decode_request(_pb_request(batch=3), MAX)
    results = four.run(dataplane.validate(four, decoded.inputs), four.output_names)
    outputs = [
        dataplane.OutputTensor(n, four.output_by_name[n].datatype, a.shape, a, False)
        for n, a in zip(four.output_names, results, strict=True)
    ]
    for request_id in ("", "r-1"):
        general = grpc_server.encode_response(
            dataplane.InferResponse(four.name, four.version, request_id or None, outputs)
        )
        assert grpc_server.raw_response(four, request_id, results) == general


def _base_plan(four: model.OnnxModel) -> tuple[bytes, grpc_wire.Plan]:
    request = _pb_request()
    assert four.float_inputs is not None
    feeds = grpc_server.raw_feeds(four.float_inputs, request, MAX)
    split = grpc_wire.split(request.SerializeToString())
    assert feeds is not None and split is not None
    return split[0], grpc_wire.plan_of("four", "", "four", four, feeds)


def _wire_agrees(four: model.OnnxModel, key: bytes, plan: grpc_wire.Plan, payload: bytes, what: str) -> bool:
    """True when the wire path takes `payload` (after checking that the parsed path agrees)."""
    split = grpc_wire.split(payload)
    if split is None or split[0] != key:
        return False  # parsed (and then perhaps planned) the usual way
    feeds = plan.feeds(payload, split[2])
    if feeds is None or not grpc_server._utf8(split[1]):
        return False
    try:
        request = pb.ModelInferRequest.FromString(payload)
    except pb_message.DecodeError:
        raise AssertionError(f"{what}: the wire path took a message protobuf cannot parse") from None
    full = _grpc_full_path(four, request)
    assert not isinstance(full, str), f"{what}: the wire path took what the full path rejects: {full}"
    assert list(feeds) == list(full), what
    for name, array in feeds.items():
        assert array.dtype == full[name].dtype and array.shape == full[name].shape, what
        np.testing.assert_array_equal(array, full[name])
    assert split[1].decode() == request.id, what
    return True


def check_wire_path(four: model.OnnxModel, what: str, mutate: Any) -> None:
    key, plan = _base_plan(four)
    request = _pb_request()
    mutate(request)
    taken = _wire_agrees(four, key, plan, request.SerializeToString(), what)
    if what in ("nothing", "an id"):
        assert taken, f"{what}: the wire path should take this request"


def check_wire_random_bytes(four: model.OnnxModel) -> int:
    """Random byte changes, truncations and insertions of a valid request; returns how many were taken."""
    key, plan = _base_plan(four)
    base = _pb_request().SerializeToString()
    rng = np.random.default_rng(5)
    taken = 0
    for i in range(3000):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(data)))
            op = int(rng.integers(0, 3))
            if op == 0:
                data[at] = int(rng.integers(0, 256))
            elif op == 1:
                del data[at:]
            else:
                data[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 4)), dtype=np.uint8))
            if not data:
                break
        taken += _wire_agrees(four, key, plan, bytes(data), f"random change {i}")
    return taken


def check_wire_reply(four: model.OnnxModel) -> None:
    _, plan = _base_plan(four)
    decoded = grpc_server.decode_request(_pb_request(batch=3), MAX)
    results = four.run(dataplane.validate(four, decoded.inputs), four.output_names)
    header = grpc_server.response_header(four, results)
    for request_id in ("", "r-1", "é" * 200):
        reply = plan.reply(request_id.encode(), results, header)
        assert pb.ModelInferResponse.FromString(reply) == grpc_server.raw_response(four, request_id, results)


def check_slow_model_goes_through_the_pool(models: Path) -> None:
    """A model slower than dataplane.INLINE_RUN_SECONDS runs in the gRPC server's pool: the reply is the
    same, and health calls answer while it runs (the dispatch thread is free)."""
    repo = repository.Repository(models)
    repo.load_all()
    plane = dataplane.DataPlane(repo, metrics.Metrics(), max_elements=MAX)
    four = repo.get("four")
    server = grpc_server.GrpcServer(plane, "127.0.0.1", 0, max_message_bytes=1 << 20, reuse_port=False)
    server.start()
    real_run = four.run
    started, release = threading.Event(), threading.Event()

    def slow_run(feeds: Any, names: Any) -> list[np.ndarray]:
        started.set()
        release.wait(10)
        return real_run(feeds, names)

    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            request = _pb_request()
            inline = stub.ModelInfer(request, timeout=10)
            four.mean_run_seconds = 1.0  # slow from now on
            four.run = slow_run  # type: ignore[method-assign]
            pending = stub.ModelInfer.future(request, timeout=10)
            assert started.wait(10), "the slow inference never started"
            assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live, "health did not answer meanwhile"
            release.set()
            assert pending.result() == inline
    finally:
        release.set()
        server.stop(1.0)


def main(models: Path) -> int:
    four = repository.Repository(models).load("four")
    failures = 0
    checks: list[tuple[str, Any]] = [(what, mutate) for what, mutate in _grpc_mutations()]
    for what, mutate in checks:
        try:
            check_fast_path(four, what, mutate)
            print(f"ok   {what}")
        except AssertionError as exc:
            failures += 1
            print(f"FAIL {what}: {exc}")
    for what, mutate in checks:
        try:
            check_wire_path(four, what, mutate)
            print(f"ok   wire path: {what}")
        except AssertionError as exc:
            failures += 1
            print(f"FAIL wire path: {what}: {exc}")
    more: list[tuple[str, Any]] = [
        ("the fast reply is the general reply", lambda: check_fast_reply(four)),
        ("the wire reply parses to the fast reply", lambda: check_wire_reply(four)),
        ("random byte changes: the wire path takes only what the parsed path accepts", None),
        ("a slow model runs in the pool while health answers", lambda: check_slow_model_goes_through_the_pool(models)),
    ]
    for what, check in more:
        try:
            note = ""
            if check is None:
                note = f" ({check_wire_random_bytes(four)} of 3000 taken)"
            else:
                check()
            print(f"ok   {what}{note}")
        except AssertionError as exc:
            failures += 1
            print(f"FAIL {what}: {exc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

"""Checks of gRPC's fast path, run by test_grpc_fast_path.py in a process of their own.

`grpc_server.raw_feeds` may only accept a request that `decode_request` + `dataplane.validate` accept,
with the same arrays, and `raw_response` must build the message `encode_response` builds. They import
our generated `inference.*` protobuf modules, which cannot share a process with tritonclient's (the
same message names in protobuf's default pool), hence the separate process.
Usage: python grpc_fast_path_checks.py MODELS_DIR (prints one line per check; exits 1 on a failure)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from appliance.serving import dataplane, errors, grpc_server, model, repository
from appliance.serving.proto import grpc_predict_v2_pb2 as pb

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
    try:
        check_fast_reply(four)
        print("ok   the fast reply is the general reply")
    except AssertionError as exc:
        failures += 1
        print(f"FAIL the fast reply: {exc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

"""A probe, not a server: could gRPC beat our REST path on this machine with an HTTP/2 stack outside
grpcio? pygrpc-native (PyPI, 0.x, NOT a dependency of this project) does HTTP/2 and the gRPC framing
in Rust threads and hands calls to Python in batches. Here one Python thread takes those batches and
answers ModelInfer with our own fast path (`raw_feeds`, `OnnxModel.run`, `raw_response`); nothing
else (no other methods, no metrics, no error answers: the benchmark's requests are all valid).
Numbers and what they mean: docs/benchmarks.md, "Why gRPC is slower".

    pip install --target /tmp/native-site --no-deps pygrpc-native
    PYTHONPATH=/tmp/native-site .venv/bin/python benchmarks/serving/grpc_native_probe.py MODELS_DIR PORT [--canned]

MODELS_DIR holds four/model.onnx (the benchmark's model); --canned answers with a fixed reply.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from pygrpc_native import EVENT_CALL, NativeGrpcFront

from appliance.serving import grpc_server, repository, server, tensors
from appliance.serving.proto import grpc_predict_v2_pb2 as pb


def main(models: Path, port: int, canned: bool) -> None:
    repo = repository.Repository(models)
    repo.load_all()
    m = repo.get("four")
    plan = m.float_inputs
    assert plan is not None
    reply = pb.ModelInferResponse(model_name="four", model_version="1").SerializeToString()
    front = NativeGrpcFront(f"127.0.0.1:{port}", [("/inference.GRPCInferenceService/ModelInfer", False)])
    front.start()
    server.tune_gc()
    parse = pb.ModelInferRequest.FromString
    while (events := front.recv_batch(64)) is not None:
        for kind, call_id, _method, payload, _client in events:
            if kind != EVENT_CALL or payload is None:
                continue
            if canned:
                front.respond(call_id, reply)
                continue
            request = parse(payload)
            feeds = grpc_server.raw_feeds(plan, request, 1 << 24)
            if feeds is None:
                front.fail(call_id, 3, "the probe serves only the benchmark's request")
                continue
            results = m.run(feeds, m.output_names)
            front.respond(call_id, grpc_server.raw_response(m, request.id, results).SerializeToString())


if __name__ == "__main__":
    with np.errstate(over=tensors.OVERFLOW):
        main(Path(sys.argv[1]), int(sys.argv[2]), "--canned" in sys.argv)

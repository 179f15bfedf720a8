"""The floor for any grpcio server on this machine: grpc.aio (on uvloop, like ours) answering ModelInfer
with a canned response, doing no work at all. Our gRPC transport cannot be faster than this.
Usage: python grpc_floor.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvloop
from grpc import aio

from appliance.serving.proto import grpc_predict_v2_pb2 as pb
from appliance.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

REPLY = pb.ModelInferResponse(
    model_name="four",
    model_version="1",
    outputs=[pb.ModelInferResponse.InferOutputTensor(name=n, datatype="FP32", shape=[1, 4]) for n in ("a", "b", "c")],
    raw_output_contents=[b"\0" * 16] * 3,
)


class Canned(pb_grpc.GRPCInferenceServiceServicer):
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        return REPLY


async def main(port: int) -> None:
    server = aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Canned(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))

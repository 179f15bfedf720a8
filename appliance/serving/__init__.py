"""The model server: an Open Inference Protocol (KServe V2) server on ONNX Runtime.

One transport-neutral data plane (`dataplane`, over `repository` and `model`) with thin transports on
top: REST (`rest`, raw ASGI under uvicorn) and gRPC (`grpc_server` and `grpc_wire`, on pygrpc-native's
HTTP/2 front in Rust). `server` builds both over one data plane; `python -m appliance.serving` is the
model-server image's entry point and `appliance serve model.onnx` (through `appliance.api.serve`) runs
the same thing locally.

Importing this package is cheap: the heavy modules (onnxruntime, pygrpc_native, numpy) load only when a
submodule that needs them is imported.
"""

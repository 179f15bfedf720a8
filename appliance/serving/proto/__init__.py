"""Generated protobuf and gRPC modules for the OIP gRPC binding (see grpc_predict_v2.proto)."""

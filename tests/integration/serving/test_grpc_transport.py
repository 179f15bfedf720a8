"""The gRPC transport's own behaviour over the wire (pygrpc-native's front, `grpc_server`, `grpc_wire`):
repeated requests on the wire path, what it must hand to the parsed path (a model unloaded since,
an id that is not UTF-8), malformed and oversized messages, and metrics. Clients are tritonclient and
grpcio sending raw bytes (tritonclient's messages serialize to the same wire format as ours)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from tests.integration.serving.conftest import RunningServer

pytestmark = pytest.mark.integration

INFER = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture
def grpc_client(server: RunningServer) -> Iterator[tgrpc.InferenceServerClient]:
    client = tgrpc.InferenceServerClient(server.grpc)
    yield client
    client.close()


def _identity_request(values: np.ndarray, request_id: str = "") -> service_pb2.ModelInferRequest:
    tensor = service_pb2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=list(values.shape))
    return service_pb2.ModelInferRequest(
        model_name="id_fp32", id=request_id, inputs=[tensor], raw_input_contents=[values.tobytes()]
    )


def _call_raw(server: RunningServer, payload: bytes) -> bytes:
    with grpc.insecure_channel(server.grpc) as channel:
        result: bytes = channel.unary_unary(INFER)(payload, timeout=30)
    return result


def test_repeated_requests_keep_their_own_values_and_ids(grpc_client: tgrpc.InferenceServerClient) -> None:
    rng = np.random.default_rng(7)
    for i in range(6):  # the first is parsed and planned, the others take the wire path
        a, b, c, d = (rng.standard_normal((2, 4)).astype(np.float32) for _ in range(4))
        inputs = []
        for name, array in zip("abcd", (a, b, c, d), strict=True):
            tensor = tgrpc.InferInput(name, [2, 4], "FP32")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        result = grpc_client.infer("four", inputs, request_id=f"req-{i}" if i % 2 else "")
        np.testing.assert_allclose(result.as_numpy("sum"), a + b, rtol=1e-6)
        np.testing.assert_allclose(result.as_numpy("product"), c * d, rtol=1e-6)
        assert result.get_response().id == (f"req-{i}" if i % 2 else "")
        assert result.get_response().model_name == "four"


def test_a_model_unloaded_after_its_requests_were_planned_answers_unavailable(
    server: RunningServer, grpc_client: tgrpc.InferenceServerClient
) -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    for _ in range(3):
        reply = service_pb2.ModelInferResponse.FromString(
            _call_raw(server, _identity_request(values).SerializeToString())
        )
        assert reply.raw_output_contents[0] == values.tobytes()
    http = thttp.InferenceServerClient(server.http)
    http.unload_model("id_fp32")
    try:
        with pytest.raises(InferenceServerException) as exc:
            tensor = tgrpc.InferInput("x", [2, 3], "FP32")
            tensor.set_data_from_numpy(values)
            grpc_client.infer("id_fp32", [tensor])
        assert exc.value.status() == "StatusCode.UNAVAILABLE"
        assert "not ready" in exc.value.message()
    finally:
        http.load_model("id_fp32")
        http.close()
    reply = service_pb2.ModelInferResponse.FromString(_call_raw(server, _identity_request(values).SerializeToString()))
    assert reply.raw_output_contents[0] == values.tobytes()


def test_an_id_that_is_not_utf8_is_invalid_even_for_a_planned_request(server: RunningServer) -> None:
    values = np.ones((1, 2), dtype=np.float32)
    good = _identity_request(values, "ok").SerializeToString()
    _call_raw(server, good)
    _call_raw(server, good)
    bad = _identity_request(values).SerializeToString() + b"\x1a\x02\xff\xfe"  # id (field 3) = invalid UTF-8
    with pytest.raises(grpc.RpcError) as exc:
        _call_raw(server, bad)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ModelInferRequest" in str(exc.value.details())


@pytest.mark.parametrize(
    "payload", [b"\xff\xff\xff", b"\x0a\x80", b"\x3a\x05ab"], ids=["garbage", "truncated", "short"]
)
def test_malformed_messages_are_invalid_argument(server: RunningServer, payload: bytes) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        _call_raw(server, payload)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _call_raw(server, _identity_request(np.zeros((1, 1), dtype=np.float32)).SerializeToString())  # still serving


def test_a_message_over_the_size_limit_is_resource_exhausted(server: RunningServer) -> None:
    big = np.zeros((3 * 1024 * 1024,), dtype=np.float32)  # 12 MiB; the server runs with --max-body-mb 8
    options = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(server.grpc, options=options) as channel, pytest.raises(grpc.RpcError) as exc:
        channel.unary_unary(INFER)(_identity_request(big).SerializeToString(), timeout=60)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "over the limit" in str(exc.value.details())


def test_unknown_methods_are_unimplemented(server: RunningServer) -> None:
    with grpc.insecure_channel(server.grpc) as channel, pytest.raises(grpc.RpcError) as exc:
        channel.unary_unary("/inference.GRPCInferenceService/RepositoryIndex")(b"", timeout=30)
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_grpc_requests_are_counted_per_model(server: RunningServer) -> None:
    def infers() -> float:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        prefix = "model_server_requests_total{"
        wanted = ('model="id_fp32"', 'protocol="grpc"', 'endpoint="infer"', 'code="200"')
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(prefix) and all(w in line for w in wanted)
        )

    before = infers()
    for _ in range(5):
        _call_raw(server, _identity_request(np.zeros((1, 3), dtype=np.float32)).SerializeToString())
    assert infers() - before == 5

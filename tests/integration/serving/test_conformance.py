"""Open Inference Protocol conformance, driven by a third-party client (tritonclient), REST and gRPC.

Every endpoint on both transports, every datatype class in JSON, the binary tensor extension and
gRPC raw contents, typed gRPC contents (through tritonclient's own protobuf messages), requested
outputs, versions, the repository extension, and the status each error maps to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests import onnx_models
from tests.integration.serving.conftest import DATATYPES, RunningServer

pytestmark = pytest.mark.integration

FOUR_INPUTS = ("a", "b", "c", "d")


@pytest.fixture
def http(server: RunningServer) -> Iterator[thttp.InferenceServerClient]:
    client = thttp.InferenceServerClient(server.http, network_timeout=30)
    yield client
    client.close()


@pytest.fixture
def grpc_client(server: RunningServer) -> Iterator[tgrpc.InferenceServerClient]:
    client = tgrpc.InferenceServerClient(server.grpc)
    yield client
    client.close()


def _four_inputs(module: Any, batch: int = 3, binary: bool | None = None) -> tuple[list[Any], dict[str, np.ndarray]]:
    rng = np.random.default_rng(batch)
    arrays = {n: rng.standard_normal((batch, 4)).astype(np.float32) for n in FOUR_INPUTS}
    inputs = []
    for name, array in arrays.items():
        tensor = module.InferInput(name, list(array.shape), "FP32")
        if binary is None:
            tensor.set_data_from_numpy(array)
        else:
            tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs, arrays


def _same(datatype: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    if datatype == "BYTES":
        decoded = [v.decode() if isinstance(v, bytes) else v for v in got.reshape(-1)]
        assert decoded == list(want.reshape(-1))
    else:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


# ---- health and metadata -----------------------------------------------------------------------


def test_health_http(http: thttp.InferenceServerClient) -> None:
    assert http.is_server_live()
    assert http.is_server_ready()


def test_health_grpc(grpc_client: tgrpc.InferenceServerClient) -> None:
    assert grpc_client.is_server_live()
    assert grpc_client.is_server_ready()


def test_server_metadata_both(http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient) -> None:
    meta = http.get_server_metadata()
    assert meta["name"] == "odh-appliance-model-server"
    assert "binary_tensor_data" in meta["extensions"]
    gmeta = grpc_client.get_server_metadata(as_json=True)
    assert gmeta["name"] == meta["name"]
    assert gmeta["version"] == meta["version"]
    assert gmeta["extensions"] == meta["extensions"]


def test_model_metadata_from_the_graph(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient
) -> None:
    meta = http.get_model_metadata("four")
    assert meta["name"] == "four"
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": n, "datatype": "FP32", "shape": [-1, 4]} for n in FOUR_INPUTS]
    assert [o["name"] for o in meta["outputs"]] == ["sum", "product", "mixed"]
    gmeta = grpc_client.get_model_metadata("four", as_json=True)
    assert [i["name"] for i in gmeta["inputs"]] == list(FOUR_INPUTS)
    assert [int(d) for d in gmeta["inputs"][0]["shape"]] == [-1, 4]
    image = http.get_model_metadata("image")
    assert image["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [1, 3, 224, 224]}]


def test_model_ready_and_versions(http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient) -> None:
    assert http.is_model_ready("four")
    assert http.is_model_ready("four", "1")
    assert grpc_client.is_model_ready("four")
    assert grpc_client.is_model_ready("versioned", "2")
    meta = http.get_model_metadata("versioned", "2")
    assert meta["versions"] == ["1", "2"]
    assert [i["name"] for i in meta["inputs"]] == list(FOUR_INPUTS)  # version 2 is served
    with pytest.raises(InferenceServerException) as exc:
        http.get_model_metadata("versioned", "1")
    assert exc.value.status() == "404"
    assert not http.is_model_ready("versioned", "7")


def test_unknown_model_is_404_and_not_found(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient
) -> None:
    with pytest.raises(InferenceServerException) as exc:
        http.get_model_metadata("nope")
    assert exc.value.status() == "404"
    assert "nope" in exc.value.message()
    with pytest.raises(InferenceServerException) as gexc:
        grpc_client.get_model_metadata("nope")
    assert gexc.value.status() == "StatusCode.NOT_FOUND"


# ---- inference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_four_in_three_out_http(http: thttp.InferenceServerClient, binary: bool) -> None:
    inputs, arrays = _four_inputs(thttp, binary=binary)
    outputs = [thttp.InferRequestedOutput(n, binary_data=binary) for n in ("sum", "product", "mixed")]
    result = http.infer("four", inputs, outputs=outputs, request_id="req-1")
    want = onnx_models.four_in_three_out_reference(*arrays.values())
    for name, value in want.items():
        np.testing.assert_allclose(result.as_numpy(name), value, rtol=1e-5)
    assert result.get_response()["id"] == "req-1"
    assert result.get_response()["model_version"] == "1"


def test_four_in_three_out_grpc(grpc_client: tgrpc.InferenceServerClient) -> None:
    inputs, arrays = _four_inputs(tgrpc)
    result = grpc_client.infer("four", inputs, request_id="req-2")
    want = onnx_models.four_in_three_out_reference(*arrays.values())
    for name, value in want.items():
        np.testing.assert_allclose(result.as_numpy(name), value, rtol=1e-5)
    assert result.get_response().id == "req-2"


def test_requested_output_subset(http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient) -> None:
    inputs, _ = _four_inputs(thttp, batch=1)
    result = http.infer("four", inputs, outputs=[thttp.InferRequestedOutput("product", binary_data=False)])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["product"]
    assert result.as_numpy("sum") is None
    ginputs, _ = _four_inputs(tgrpc, batch=1)
    gresult = grpc_client.infer("four", ginputs, outputs=[tgrpc.InferRequestedOutput("mixed")])
    assert [o.name for o in gresult.get_response().outputs] == ["mixed"]


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_every_datatype_http(http: thttp.InferenceServerClient, datatype: str, binary: bool) -> None:
    array = onnx_models.sample(datatype, (2, 3))
    tensor = thttp.InferInput("x", [2, 3], datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    result = http.infer(
        f"id_{datatype.lower()}", [tensor], outputs=[thttp.InferRequestedOutput("y", binary_data=binary)]
    )
    assert result.get_output("y")["datatype"] == datatype
    _same(datatype, result.as_numpy("y"), array)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_every_datatype_grpc_raw(grpc_client: tgrpc.InferenceServerClient, datatype: str) -> None:
    array = onnx_models.sample(datatype, (3, 2), seed=1)
    tensor = tgrpc.InferInput("x", [3, 2], datatype)
    tensor.set_data_from_numpy(array)
    result = grpc_client.infer(f"id_{datatype.lower()}", [tensor])
    assert result.get_output("y").datatype == datatype
    _same(datatype, result.as_numpy("y"), array)


CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


@pytest.mark.parametrize("datatype", list(CONTENTS_FIELD))
def test_every_datatype_grpc_typed_contents(server: RunningServer, datatype: str) -> None:
    """Typed InferTensorContents, built with tritonclient's protobuf messages on a plain channel."""
    array = onnx_models.sample(datatype, (2, 2), seed=2)
    values = [v.encode() for v in array.reshape(-1)] if datatype == "BYTES" else array.reshape(-1).tolist()
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="x", datatype=datatype, shape=[2, 2])
    getattr(tensor.contents, CONTENTS_FIELD[datatype]).extend(values)
    request = service_pb2.ModelInferRequest(model_name=f"id_{datatype.lower()}", inputs=[tensor])
    with grpc.insecure_channel(server.grpc) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    result = tgrpc.InferResult(response)
    _same(datatype, result.as_numpy("y"), array)


def test_fp16_typed_contents_is_rejected_with_a_reason(server: RunningServer) -> None:
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="x", datatype="FP16", shape=[1, 1])
    request = service_pb2.ModelInferRequest(model_name="id_fp16", inputs=[tensor])
    with grpc.insecure_channel(server.grpc) as channel, pytest.raises(grpc.RpcError) as exc:
        service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw_input_contents" in exc.value.details()


def test_image_through_the_binary_extension(http: thttp.InferenceServerClient) -> None:
    image = np.random.default_rng(3).standard_normal((1, 3, 224, 224)).astype(np.float32)
    tensor = thttp.InferInput("x", [1, 3, 224, 224], "FP32")
    tensor.set_data_from_numpy(image, binary_data=True)
    result = http.infer("image", [tensor])  # no outputs given: tritonclient asks for binary_data_output
    assert result.as_numpy("y").shape == (1, 8)
    assert result.get_output("y")["parameters"]["binary_data_size"] == 32


# ---- errors and their statuses -----------------------------------------------------------------


def test_wrong_datatype_http_and_grpc(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient
) -> None:
    for module, client, code in ((thttp, http, "400"), (tgrpc, grpc_client, "StatusCode.INVALID_ARGUMENT")):
        tensor = module.InferInput("x", [1, 2], "FP64")
        tensor.set_data_from_numpy(np.zeros((1, 2), dtype=np.float64))
        with pytest.raises(InferenceServerException) as exc:
            client.infer("id_fp32", [tensor])
        assert exc.value.status() == code
        assert "datatype FP64 does not match" in exc.value.message()


def test_shape_mismatch_and_unknown_input(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient
) -> None:
    inputs, _ = _four_inputs(thttp, batch=1)
    inputs[0] = thttp.InferInput("a", [1, 5], "FP32")
    inputs[0].set_data_from_numpy(np.zeros((1, 5), dtype=np.float32))
    with pytest.raises(InferenceServerException) as exc:
        http.infer("four", inputs)
    assert exc.value.status() == "400"
    assert "expects [-1, 4]" in exc.value.message()
    ginputs, _ = _four_inputs(tgrpc, batch=1)
    ginputs[1] = tgrpc.InferInput("zzz", [1, 4], "FP32")
    ginputs[1].set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(InferenceServerException) as gexc:
        grpc_client.infer("four", ginputs)
    assert gexc.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "has no input 'zzz'" in gexc.value.message()


def test_missing_input(grpc_client: tgrpc.InferenceServerClient) -> None:
    inputs, _ = _four_inputs(tgrpc, batch=1)
    with pytest.raises(InferenceServerException) as exc:
        grpc_client.infer("four", inputs[:3])
    assert "'d'" in exc.value.message()


# ---- the repository extension and readiness ---------------------------------------------------


def test_unload_makes_a_model_unready_and_load_brings_it_back(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient
) -> None:
    index = {m["name"]: m for m in http.get_model_repository_index()}
    assert index["id_int8"]["state"] == "READY"
    http.unload_model("id_int8")
    try:
        assert not http.is_model_ready("id_int8")
        assert not grpc_client.is_model_ready("id_int8")
        assert not http.is_server_ready()
        tensor = thttp.InferInput("x", [1, 1], "INT8")
        tensor.set_data_from_numpy(np.zeros((1, 1), dtype=np.int8))
        with pytest.raises(InferenceServerException) as exc:
            http.infer("id_int8", [tensor])
        assert exc.value.status() == "503"
    finally:
        http.load_model("id_int8")
    assert http.is_model_ready("id_int8")
    assert http.is_server_ready()

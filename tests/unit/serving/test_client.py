"""The OIP client's pure parts: metadata, the try-it form's parsing, outputs for people, metrics."""

from __future__ import annotations

import pytest

from appliance.serving import client, errors

FOUR = client.TensorSpec("a", "FP32", (-1, 4))


def test_metadata_and_examples() -> None:
    meta = client.parse_metadata(
        {"name": "m", "platform": "onnxruntime_onnx", "versions": ["1"],
         "inputs": [{"name": "a", "datatype": "FP32", "shape": [-1, 4]}],
         "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}]}
    )  # fmt: skip
    assert meta.inputs == (FOUR,)
    assert meta.outputs[0].describe() == "y: INT64 [?]"
    assert client.example_text(FOUR) == "0, 0, 0, 0"
    assert client.example_text(client.TensorSpec("b", "BOOL", (2,))) == "false, false"
    assert client.example_text(client.TensorSpec("img", "FP32", (1, 3, 224, 224))).startswith("150528 values")


@pytest.mark.parametrize(
    ("spec", "text", "shape", "data"),
    [
        (FOUR, "1, 2, 3, 4", (1, 4), [1.0, 2.0, 3.0, 4.0]),
        (FOUR, "1 2 3 4 5 6 7 8", (2, 4), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
        (FOUR, "[[1, 2, 3, 4]]", (1, 4), [1.0, 2.0, 3.0, 4.0]),
        (FOUR, "[1, 2, 3, 4]", (1, 4), [1.0, 2.0, 3.0, 4.0]),
        (client.TensorSpec("x", "INT32", (-1, -1)), "7;8;9", (1, 3), [7, 8, 9]),
        (client.TensorSpec("x", "INT64", (3,)), "[1, 2.0, 3]", (3,), [1, 2, 3]),
        (client.TensorSpec("b", "BOOL", (-1,)), "true, 0, no", (3,), [True, False, False]),
        (client.TensorSpec("s", "BYTES", (-1,)), '["a b", "c"]', (2,), ["a b", "c"]),
        (client.TensorSpec("s", "BYTES", (-1,)), "hello", (1,), ["hello"]),
        (client.TensorSpec("v", "FP64", (1,)), "2.5", (1,), [2.5]),
    ],
)
def test_parse_tensor(spec: client.TensorSpec, text: str, shape: tuple[int, ...], data: list[object]) -> None:
    tensor = client.parse_tensor(spec, text)
    assert (tensor.shape, tensor.data) == (shape, data)
    assert tensor.as_request() == {"name": spec.name, "datatype": spec.datatype, "shape": list(shape), "data": data}


@pytest.mark.parametrize(
    ("spec", "text", "message"),
    [
        (FOUR, "", "a: no value given"),
        (FOUR, "1, 2, 3", "a: 3 values do not fill the shape [-1, 4]"),
        (FOUR, "abc", "a: 'abc' is not a FP32 value"),
        (FOUR, "[[1, 2], [3]]", "a: the nested array is ragged"),
        (FOUR, "[[1, 2, 3]]", "a: shape [1, 3] does not fit the model's [-1, 4]"),
        (client.TensorSpec("x", "INT8", (2,)), "1, 2, 3", "x: 3 values given, the model's shape [2] needs 2"),
        (client.TensorSpec("x", "INT8", (-1,)), "1.5", "x: 1.5 is not a INT8 value"),
        (client.TensorSpec("b", "BOOL", (-1,)), "maybe", "b: 'maybe' is not a BOOL value"),
    ],
)
def test_parse_tensor_errors_name_the_field(spec: client.TensorSpec, text: str, message: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        client.parse_tensor(spec, text)
    assert caught.value.message == message
    assert caught.value.hint


def test_format_tensor() -> None:
    assert client.format_tensor(client.Tensor("y", "FP32", (1, 2), [0.5, 1 / 3])) == "y FP32 [1, 2] = 0.5, 0.333333"
    long = client.format_tensor(client.Tensor("y", "INT8", (100,), list(range(100))), limit=3)
    assert long == "y INT8 [100] = 0, 1, 2, ... (100 values)"


METRICS = """
# TYPE model_server_requests counter
model_server_requests_total{code="200",endpoint="infer",model="m",protocol="rest"} N
model_server_requests_total{code="400",endpoint="infer",model="m",protocol="grpc"} 1.0
model_server_requests_total{code="200",endpoint="metadata",model="m",protocol="rest"} 50.0
model_server_requests_total{code="200",endpoint="index",model="",protocol="rest"} 3.0
# TYPE model_server_errors counter
model_server_errors_total{code="400",error="InvalidInput",model="m",protocol="grpc"} 1.0
# TYPE model_server_inference_duration_seconds histogram
model_server_inference_duration_seconds_bucket{le="+Inf",model="m",protocol="rest"} N
model_server_inference_duration_seconds_count{model="m",protocol="rest"} N
model_server_inference_duration_seconds_sum{model="m",protocol="rest"} S
"""


def scrape(n: int, seconds: float, at: float) -> client.Scrape:
    return client.parse_metrics(METRICS.replace(" N", f" {n}.0").replace(" S", f" {seconds}"), at)


def test_metrics_count_inferences_and_rates() -> None:
    first, second = scrape(9, 0.09, 10.0), scrape(29, 0.19, 12.0)
    assert first.models == {"m": client.ModelCounters(requests=10.0, errors=1.0, latency_sum=0.09, latency_count=9.0)}
    (rates,) = client.rates(first, second)
    assert rates.model == "m" and rates.requests_per_s == 10.0 and rates.errors_per_s == 0.0
    assert rates.mean_latency_ms == pytest.approx(5.0)
    assert rates.total_requests == 30.0
    (idle,) = client.rates(second, scrape(29, 0.19, 14.0))
    assert idle.requests_per_s == 0.0 and idle.mean_latency_ms is None

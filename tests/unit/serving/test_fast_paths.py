"""The REST fast path and the in-process metrics store give exactly what the general code gives.

`rest.float_feeds` may only accept a request that the full path (`decode_request`,
`dataplane.validate`) accepts, with the same arrays; everything else it must hand back (None) so the
full path answers with its precise error (gRPC's `raw_feeds`: tests/integration/serving/
test_grpc_fast_path.py). `metrics.Metrics` without
PROMETHEUS_MULTIPROC_DIR must expose what prometheus_client's own Counter and Histogram expose."""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import prometheus_client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.serving import dataplane, errors, metrics, model, repository, rest
from tests import onnx_models

MAX = 1000
ACCEPTED = {"nothing", "nested data", "an id", "an unknown extra key"}  # what the fast path must take


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> model.OnnxModel:
    root = tmp_path_factory.mktemp("models")
    onnx_models.four_in_three_out(root / "four" / "model.onnx")
    return repository.Repository(root).load("four")


def _doc(batch: int = 1) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": [batch, 4], "data": [float(i) / 3 for i in range(4 * batch)]}
            for n in "abcd"
        ]
    }


def _full_path(m: model.OnnxModel, doc: dict[str, Any]) -> dict[str, np.ndarray] | str:
    """The feeds the general path builds, or the message of the error it raises."""
    try:
        request = rest.decode_request(doc, None, MAX)
        feeds = dataplane.validate(m, request.inputs)
        dataplane.choose_outputs(m, request)
    except errors.ServingError as exc:
        return exc.message
    return feeds


def _mutations() -> list[tuple[str, Any]]:
    """(what, how) pairs: each breaks or bends one thing of a good request."""

    def at(i: int, key: str, value: Any) -> Any:
        def apply(doc: dict[str, Any]) -> None:
            doc["inputs"][i][key] = value

        return apply

    def drop(i: int, key: str) -> Any:
        return lambda doc: doc["inputs"][i].pop(key)

    return [
        ("nothing", lambda doc: None),
        ("integer data (accepted by the full path only)", at(0, "data", [1, 2, 3, 4])),
        ("nested data", at(1, "data", [[0.5, 1.5, 2.5, 3.5], [4.5, 5.5, 6.5, 7.5]])),
        ("nested data of the wrong size", at(1, "data", [[0.5, 1.5, 2.5, 3.5]])),
        ("too few values", at(0, "data", [0.5, 1.5])),
        ("a string value", at(0, "data", [0.5, "1.5", 2.5, 3.5])),
        ("a bool value", at(2, "data", [True, False, True, False])),
        ("a null value", at(0, "data", [0.5, None, 2.5, 3.5])),
        ("ragged data", at(0, "data", [[0.5], [1.5, 2.5, 3.5]])),
        ("out of FP32 range", at(3, "data", [1e300, 0.0, 0.0, 0.0])),
        ("wrong datatype", at(0, "datatype", "FP64")),
        ("unknown datatype", at(0, "datatype", "FLOAT")),
        ("datatype not a string", at(0, "datatype", 32)),
        ("wrong fixed dimension", at(0, "shape", [1, 5])),
        ("wrong rank", at(0, "shape", [4])),
        ("negative dimension", at(0, "shape", [-1, 4])),
        ("float dimension", at(0, "shape", [1.0, 4])),
        ("bool dimension", at(0, "shape", [True, 4])),
        ("shape not a list", at(0, "shape", "1,4")),
        ("too many elements", at(0, "shape", [1000, 4])),
        ("unknown input", at(0, "name", "e")),
        ("duplicate input", at(1, "name", "a")),
        ("name not a string", at(0, "name", 7)),
        ("no data", drop(0, "data")),
        ("no shape", drop(0, "shape")),
        ("binary_data_size parameter", at(0, "parameters", {"binary_data_size": 16})),
        ("an empty parameters object", at(0, "parameters", {})),
        ("a missing input", lambda doc: doc["inputs"].pop()),
        ("an extra input", lambda doc: doc["inputs"].append(copy.deepcopy(doc["inputs"][0]))),
        ("an input that is not an object", lambda doc: doc["inputs"].__setitem__(0, [1])),
        ("inputs not a list", lambda doc: doc.__setitem__("inputs", {"a": 1})),
        ("no inputs", lambda doc: doc.pop("inputs")),
        ("requested outputs", lambda doc: doc.__setitem__("outputs", [{"name": "sum"}])),
        ("request parameters", lambda doc: doc.__setitem__("parameters", {"binary_data_output": True})),
        ("an id", lambda doc: doc.__setitem__("id", "r-1")),
        ("an unknown extra key", at(0, "extra", 1)),
    ]


@pytest.mark.parametrize(("what", "mutate"), _mutations(), ids=[w for w, _ in _mutations()])
def test_the_fast_path_accepts_only_what_the_full_path_accepts_and_builds_the_same_arrays(
    four: model.OnnxModel, what: str, mutate: Any
) -> None:
    doc = _doc(batch=2)
    mutate(doc)
    assert four.float_inputs is not None
    with np.errstate(over="raise"):  # as the server runs
        fast = rest.float_feeds(four.float_inputs, copy.deepcopy(doc), MAX)
        full = _full_path(four, copy.deepcopy(doc))
    if what in ACCEPTED:
        assert fast is not None, f"{what}: the fast path should take this request"
    if fast is None:
        return  # declined: the full path decides (its answers are covered by the conformance tests)
    assert not isinstance(full, str), f"{what}: fast path accepted what the full path rejects: {full}"
    assert list(fast) == list(full)
    for name, array in fast.items():
        assert array.dtype == full[name].dtype and array.shape == full[name].shape
        np.testing.assert_array_equal(array, full[name])


@settings(max_examples=300, deadline=None)
@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
        lambda children: st.lists(children, max_size=5),
        max_leaves=12,
    ),
    shape=st.lists(st.integers(min_value=-2, max_value=6) | st.floats() | st.booleans(), max_size=3),
    datatype=st.sampled_from(["FP32", "FP64", "INT32", "BYTES", "x"]),
)
def test_the_fast_path_never_accepts_a_request_the_full_path_rejects(
    four: model.OnnxModel, data: Any, shape: Any, datatype: str
) -> None:
    doc = _doc()
    doc["inputs"][0].update(data=data, shape=shape, datatype=datatype)
    assert four.float_inputs is not None
    with np.errstate(over="raise"):
        fast = rest.float_feeds(four.float_inputs, copy.deepcopy(doc), MAX)
        full = _full_path(four, copy.deepcopy(doc))
    if fast is not None:
        assert not isinstance(full, str), full
        for name, array in fast.items():
            assert array.dtype == full[name].dtype
            np.testing.assert_array_equal(array, full[name])


def test_the_fast_reply_is_the_general_reply(four: model.OnnxModel) -> None:
    request = rest.decode_request(_doc(batch=3), None, MAX)
    feeds = dataplane.validate(four, request.inputs)
    results = four.run(feeds, four.output_names)
    outputs = [
        dataplane.OutputTensor(n, four.output_by_name[n].datatype, a.shape, a, False)
        for n, a in zip(four.output_names, results, strict=True)
    ]
    for request_id in (None, "r-1"):
        general = rest.encode_response(dataplane.InferResponse(four.name, four.version, request_id, outputs))
        assert rest.json_response(four, request_id, results) == general


def _families(text: str, *names: str) -> str:
    """The lines of these metric families, with the _created timestamps (time of first use) blanked."""
    lines = [line for line in text.splitlines() if any(name in line for name in names)]
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", "\n".join(lines))


def test_in_process_counts_expose_what_prometheus_client_exposes() -> None:
    fast = metrics.Metrics()
    registry = prometheus_client.CollectorRegistry()  # the reference: prometheus_client's own types
    requests = prometheus_client.Counter(
        metrics.REQUESTS, metrics.REQUESTS_HELP, metrics.REQUEST_LABELS, registry=registry
    )
    latency = prometheus_client.Histogram(
        metrics.LATENCY,
        metrics.LATENCY_HELP,
        metrics.LATENCY_LABELS,
        buckets=metrics.LATENCY_BUCKETS,
        registry=registry,
    )
    calls: list[tuple[str, str, str, int, float | None]] = [
        ("four", "rest", "infer", 200, s) for s in (0.0001, 0.0002, 0.0005, 0.0007, 0.003, 9.0, 20.0)
    ]
    calls += [
        ("four", "grpc", "infer", 200, 0.001),
        ("", "rest", "ready", 404, None),
        ("four", "rest", "infer", 400, None),
    ]
    for model_, protocol, endpoint, code, seconds in calls:
        fast.request(model_, protocol, endpoint, code, seconds)
        requests.labels(model_, protocol, endpoint, str(code)).inc()
        if seconds is not None:
            latency.labels(model_, protocol).observe(seconds)
    ours = _families(fast.render()[0].decode(), metrics.REQUESTS, metrics.LATENCY)
    assert "model_server_inference_duration_seconds_bucket" in ours
    assert ours == _families(prometheus_client.generate_latest(registry).decode(), metrics.REQUESTS, metrics.LATENCY)

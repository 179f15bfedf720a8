"""Malformed requests from property-based generators, over raw HTTP (http.client and sockets).

Each generator only produces requests that are wrong in one way (truncated JSON, NaN/Inf, huge or
negative shapes, unknown datatypes, element counts that do not match, mismatched binary sizes, a
wrong Content-Length); every one must get a 4xx with a JSON error, and the server must keep
serving. The session fixture also fails if the server ever logged a traceback.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.serving.conftest import RunningServer

pytestmark = pytest.mark.integration

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64"]


def valid_doc(batch: int = 1) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": [batch, 4], "data": [float(i) for i in range(4 * batch)]}
            for n in "abcd"
        ]
    }


def post(server: RunningServer, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        payload = response.read()
        return response.status, payload
    finally:
        conn.close()


def assert_rejected(status: int, payload: bytes) -> None:
    assert 400 <= status < 500, (status, payload[:300])
    assert isinstance(json.loads(payload)["error"], str)


def assert_still_serving(server: RunningServer) -> None:
    status, payload = post(server, "/v2/models/four/infer", json.dumps(valid_doc()).encode())
    assert status == 200, payload
    assert [o["name"] for o in json.loads(payload)["outputs"]] == ["sum", "product", "mixed"]


@SETTINGS
@given(cut=st.floats(0, 0.9999))
def test_truncated_json(server: RunningServer, cut: float) -> None:
    body = json.dumps(valid_doc(2)).encode()
    status, payload = post(server, "/v2/models/four/infer", body[: int(len(body) * cut)])
    assert_rejected(status, payload)


@SETTINGS
@given(
    token=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "nan", "inf"]), index=st.integers(0, 3)
)
def test_nan_and_infinity(server: RunningServer, token: str, index: int) -> None:
    doc = valid_doc()
    doc["inputs"][0]["data"][index] = "__X__"
    body = json.dumps(doc).replace('"__X__"', token).encode()
    status, payload = post(server, "/v2/models/four/infer", body)
    assert_rejected(status, payload)


@SETTINGS
@given(
    shape=st.one_of(
        st.lists(st.integers(-(2**63), -1), min_size=1, max_size=4).map(lambda s: [1, *s]),
        st.lists(st.integers(2**24, 2**62), min_size=2, max_size=4),
        st.lists(st.integers(0, 8), min_size=33, max_size=40),
        st.lists(
            st.one_of(st.floats(allow_nan=False), st.text(max_size=3), st.booleans(), st.none()), min_size=1, max_size=3
        ),
        st.one_of(
            st.integers(),
            st.text(max_size=5),
            st.none(),
            st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
        ),
    )
)
def test_huge_negative_or_malformed_shapes(server: RunningServer, shape: Any) -> None:
    doc = valid_doc()
    doc["inputs"][0]["shape"] = shape
    status, payload = post(server, "/v2/models/four/infer", json.dumps(doc).encode())
    assert_rejected(status, payload)


@SETTINGS
@given(datatype=st.one_of(st.text(max_size=12).filter(lambda t: t not in [*NAMES, "BYTES"]), st.integers(), st.none()))
def test_unknown_datatypes(server: RunningServer, datatype: Any) -> None:
    doc = valid_doc()
    doc["inputs"][1]["datatype"] = datatype
    status, payload = post(server, "/v2/models/four/infer", json.dumps(doc).encode())
    assert_rejected(status, payload)


@SETTINGS
@given(count=st.integers(0, 40).filter(lambda n: n != 8), nested=st.booleans())
def test_element_count_not_matching_shape(server: RunningServer, count: int, nested: bool) -> None:
    doc = valid_doc(2)
    data: Any = [1.0] * count
    if nested and count % 4 == 0 and count:
        data = [[1.0] * 4 for _ in range(count // 4)]
    doc["inputs"][2]["data"] = data
    status, payload = post(server, "/v2/models/four/infer", json.dumps(doc).encode())
    assert_rejected(status, payload)


@SETTINGS
@given(
    data=st.one_of(
        st.lists(st.text(max_size=3), min_size=4, max_size=4),
        st.lists(st.booleans(), min_size=4, max_size=4),
        st.lists(st.none(), min_size=4, max_size=4),
        st.just([[1.0, 2.0], [3.0]]),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
        st.text(max_size=5),
        st.integers(),
    )
)
def test_values_that_are_not_fp32(server: RunningServer, data: Any) -> None:
    doc = valid_doc()
    doc["inputs"][3]["data"] = data
    status, payload = post(server, "/v2/models/four/infer", json.dumps(doc).encode())
    assert_rejected(status, payload)


@SETTINGS
@given(value=st.one_of(st.integers(-(2**70), -129), st.integers(128, 2**70), st.floats(0.1, 0.9)))
def test_integers_out_of_range(server: RunningServer, value: Any) -> None:
    doc = {"inputs": [{"name": "x", "datatype": "INT8", "shape": [1, 2], "data": [1, value]}]}
    status, payload = post(server, "/v2/models/id_int8/infer", json.dumps(doc).encode())
    assert_rejected(status, payload)


@pytest.mark.parametrize(("model", "datatype", "value"), [("four", "FP32", 1e300), ("id_fp16", "FP16", 70000.0)])
def test_values_that_overflow_the_datatype(server: RunningServer, model: str, datatype: str, value: float) -> None:
    names = "abcd" if model == "four" else "x"
    doc = {
        "inputs": [{"name": n, "datatype": datatype, "shape": [1, 4], "data": [1.0, 2.0, 3.0, value]} for n in names]
    }
    status, payload = post(server, f"/v2/models/{model}/infer", json.dumps(doc).encode())
    assert status == 400
    assert f"out of range for {datatype}" in json.loads(payload)["error"]


def _binary_request(sizes: list[int], blob_lengths: list[int]) -> tuple[bytes, int]:
    doc = {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": size}}
            for n, size in zip("abcd", sizes, strict=True)
        ]
    }
    header = json.dumps(doc).encode()
    blob = b"".join(struct.pack(f"<{n // 4}f", *([1.0] * (n // 4))) + b"\0" * (n % 4) for n in blob_lengths)
    return header + blob, len(header)


@SETTINGS
@given(
    sizes=st.lists(st.integers(0, 40), min_size=4, max_size=4).filter(lambda s: s != [16] * 4), extra=st.integers(-8, 8)
)
def test_mismatched_binary_sizes(server: RunningServer, sizes: list[int], extra: int) -> None:
    blob_lengths = [max(0, s + (extra if i == 0 else 0)) for i, s in enumerate(sizes)]
    body, header_length = _binary_request(sizes, blob_lengths)
    status, payload = post(
        server, "/v2/models/four/infer", body, {"Inference-Header-Content-Length": str(header_length)}
    )
    assert_rejected(status, payload)


@SETTINGS
@given(header=st.one_of(st.integers(-(2**40), 2**40), st.text(alphabet="0123456789abc-+ .", min_size=1, max_size=8)))
def test_wrong_inference_header_content_length(server: RunningServer, header: Any) -> None:
    body, header_length = _binary_request([16] * 4, [16] * 4)
    if str(header).strip() == str(header_length):
        header = header_length + 1
    status, payload = post(server, "/v2/models/four/infer", body, {"Inference-Header-Content-Length": str(header)})
    assert_rejected(status, payload)


def test_body_over_the_size_limit(server: RunningServer) -> None:
    body = b'{"inputs": [' + b" " * (9 * 1024 * 1024) + b"]}"  # the server runs with --max-body-mb 8
    status, payload = post(server, "/v2/models/four/infer", body)
    assert status == 400
    assert "limit" in json.loads(payload)["error"]
    assert_still_serving(server)


def _raw_exchange(server: RunningServer, request: bytes, *, shutdown: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=15) as sock:
        sock.sendall(request)
        if shutdown:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b'"}' in b"".join(chunks):
                break
        return b"".join(chunks)


def test_content_length_shorter_than_the_body(server: RunningServer) -> None:
    body = json.dumps(valid_doc()).encode()
    request = (
        b"POST /v2/models/four/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body) // 2}\r\n\r\n".encode()
        + body
    )
    reply = _raw_exchange(server, request)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert_still_serving(server)


def test_content_length_longer_than_the_body(server: RunningServer) -> None:
    body = json.dumps(valid_doc()).encode()
    request = (
        b"POST /v2/models/four/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body) + 100}\r\n\r\n".encode()
        + body
    )
    reply = _raw_exchange(server, request)  # the server runs with --body-timeout 1
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"incomplete" in reply
    assert_still_serving(server)


def test_garbage_request_line(server: RunningServer) -> None:
    reply = _raw_exchange(server, b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply[:200]
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/models/four/infer", 405),
        ("POST", "/v2/health/live", 405),
        ("GET", "/v2/nothing/here", 404),
        ("GET", "/", 404),
        ("GET", "/v2/models/four/versions/9/ready", 404),
        ("POST", "/v2/models/nope/infer", 404),
    ],
)
def test_routes_and_methods(server: RunningServer, method: str, path: str, status: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None)
        response = conn.getresponse()
        assert response.status == status
        assert "error" in json.loads(response.read())
    finally:
        conn.close()


def test_server_survives_everything_above(server: RunningServer) -> None:
    assert_still_serving(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        conn.request("GET", "/v2/health/live")
        assert conn.getresponse().status == 200
    finally:
        conn.close()

"""Tensor codecs: JSON data, raw bytes, typed contents, and every check made before the model."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from appliance.serving import datatypes, errors, tensors
from tests import onnx_models

DT = datatypes.BY_NAME
BIG = 10**6


def test_parse_shape() -> None:
    assert tensors.parse_shape([2, 3], tensor="x", max_elements=BIG) == ((2, 3), 6)
    assert tensors.parse_shape([], tensor="x", max_elements=BIG) == ((), 1)
    for bad in ([-1, 2], [2.0], [True], ["2"], "2,3", None, {"a": 1}):
        with pytest.raises(errors.InvalidInput, match="input 'x'"):
            tensors.parse_shape(bad, tensor="x", max_elements=BIG)
    with pytest.raises(errors.PayloadTooLarge, match="elements"):
        tensors.parse_shape([2**40, 2**40], tensor="x", max_elements=BIG)
    with pytest.raises(errors.InvalidInput, match="dimensions"):
        tensors.parse_shape([1] * 40, tensor="x", max_elements=BIG)


@pytest.mark.parametrize("name", list(onnx_models.ONNX_TYPES))
def test_json_and_raw_round_trip_every_datatype(name: str) -> None:
    dt = DT[name]
    array = onnx_models.sample(name, (2, 3))
    data = tensors.to_json_data(array)
    listed = list(data) if name == "BYTES" else np.asarray(data).tolist()
    decoded = tensors.from_json(dt, (2, 3), listed, tensor="x")
    raw = tensors.from_raw(dt, (2, 3), tensors.to_raw(array), tensor="x")
    for got in (decoded, raw):
        assert got.shape == (2, 3)
        if name == "BYTES":
            assert got.tolist() == array.tolist()
        else:
            assert got.dtype == dt.dtype
            np.testing.assert_array_equal(got, array)


def test_nested_json_is_accepted_row_major() -> None:
    got = tensors.from_json(DT["FP32"], (2, 2), [[1, 2], [3, 4]], tensor="x")
    np.testing.assert_array_equal(got, np.array([[1, 2], [3, 4]], np.float32))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("FP32", [1.0, 2.0, 3.0], "needs 4 elements, got 3"),
        ("FP32", [[1.0, 2.0], [3.0]], "not a regular array"),
        ("FP32", ["1", "2", "3", "4"], "strings cannot be FP32"),
        ("FP32", [True, False, True, False], "booleans cannot be FP32"),
        ("FP32", [1e300, 0, 0, 0], "out of range for FP32"),
        ("FP16", [1e6, 0, 0, 0], "out of range for FP16"),
        ("INT8", [1, 2, 3, 300], "out of range for INT8"),
        ("UINT8", [1, 2, 3, -1], "out of range for UINT8"),
        ("INT32", [1.5, 2, 3, 4], "floating-point numbers cannot be INT32"),
        ("UINT64", [2**64, 0, 0, 0], "UINT64"),
        ("UINT64", [0.5, 2**64 - 1, 0, 0], "floating-point numbers cannot be UINT64"),
        ("INT64", [None, 1, 2, 3], "INT64"),
        ("BOOL", [1, 0, 1, 0], "integers cannot be BOOL"),
        ("BYTES", ["a", "b", 3, "d"], "BYTES data must be strings"),
        ("FP32", {"a": 1}, "must be a JSON array"),
        ("FP32", 5, "must be a JSON array"),
    ],
)
def test_json_rejections(name: str, data: object, message: str) -> None:
    with np.errstate(over=tensors.OVERFLOW), pytest.raises(errors.InvalidInput, match=message):
        tensors.from_json(DT[name], (2, 2), data, tensor="x")


def test_uint64_extremes_are_exact() -> None:
    got = tensors.from_json(DT["UINT64"], (2,), [0, 2**64 - 1], tensor="x")
    assert got.tolist() == [0, 2**64 - 1]


def test_raw_rejections() -> None:
    with pytest.raises(errors.InvalidInput, match="needs 16 bytes of binary data, got 15"):
        tensors.from_raw(DT["FP32"], (2, 2), b"\0" * 15, tensor="x")
    with pytest.raises(errors.InvalidInput, match="BOOL binary data must be bytes 0 or 1"):
        tensors.from_raw(DT["BOOL"], (2,), b"\x01\x02", tensor="x")
    with pytest.raises(errors.InvalidInput, match="runs past"):
        tensors.from_raw(DT["BYTES"], (1,), struct.pack("<I", 10) + b"abc", tensor="x")
    with pytest.raises(errors.InvalidInput, match="exactly 1 elements"):
        tensors.from_raw(DT["BYTES"], (1,), (struct.pack("<I", 1) + b"a") * 2, tensor="x")
    with pytest.raises(errors.InvalidInput, match="needs 2 elements, got 1"):
        tensors.from_raw(DT["BYTES"], (2,), struct.pack("<I", 1) + b"a", tensor="x")
    with pytest.raises(errors.InvalidInput, match="UTF-8"):
        tensors.from_raw(DT["BYTES"], (1,), struct.pack("<I", 1) + b"\xff", tensor="x")


def test_typed_contents() -> None:
    got = tensors.from_contents(DT["INT8"], (2,), [-128, 127], tensor="x")
    assert got.dtype == np.int8 and got.tolist() == [-128, 127]
    assert tensors.from_contents(DT["UINT64"], (1,), [2**64 - 1], tensor="x").tolist() == [2**64 - 1]
    assert tensors.from_contents(DT["BYTES"], (1,), [b"hi"], tensor="x").tolist() == ["hi"]
    with pytest.raises(errors.InvalidInput, match="out of range for INT8"):
        tensors.from_contents(DT["INT8"], (1,), [128], tensor="x")
    with pytest.raises(errors.InvalidInput, match="needs 2 elements"):
        tensors.from_contents(DT["FP32"], (2,), [1.0], tensor="x")

"""Tensor codecs: JSON data, the binary tensor extension / gRPC raw contents, and gRPC typed contents.

The transports call these to turn what a client sent into numpy arrays (and model outputs back into
JSON data or raw bytes). Every check that can be made without knowing the model lives here: a known
datatype, a well-formed shape, an element count that matches it, values that fit the datatype. The
work is done by numpy and orjson in C; only BYTES (length-prefixed strings) needs a per-element loop.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from appliance.serving import datatypes, errors

MAX_RANK = 32
# Casting JSON numbers (float64) to FP32/FP16 overflows for values beyond the narrower type's range.
# Rather than scan every array for inf afterwards (a microsecond per input, on every request), the
# server sets numpy's `over` error mode to OVERFLOW, so an overflowing cast raises FloatingPointError,
# which becomes InvalidInput. Callers outside the server get inf (and numpy's warning).
OVERFLOW: Literal["raise"] = "raise"
_LEN = struct.Struct("<I")


def plain_count(shape: object, rank: int, fixed: Sequence[tuple[int, int]], max_elements: int) -> int | None:
    """The element count of a fast-path input's shape (`rest.float_feeds`, `grpc_server.raw_feeds`):
    a list of `rank` non-negative ints, rank at most MAX_RANK, the model's size on every `fixed`
    (axis, size), at most `max_elements` elements. None for anything else: the general path answers it."""
    if type(shape) is not list or len(shape) != rank or rank > MAX_RANK:
        return None
    count = 1
    for d in shape:
        if type(d) is not int or d < 0:
            return None
        count *= d
    if count > max_elements:
        return None
    for axis, size in fixed:
        if shape[axis] != size:
            return None
    return count


Array = np.ndarray


def parse_shape(shape: object, *, tensor: str, max_elements: int) -> tuple[tuple[int, ...], int]:
    """A shape a client sent, checked (non-negative integers, a product within bounds), and its element count."""
    if type(shape) is not list and type(shape) is not tuple:
        raise errors.InvalidInput(f"input '{tensor}': shape must be a list of integers, got {shape!r:.100}")
    if len(shape) > MAX_RANK:
        raise errors.InvalidInput(f"input '{tensor}': shape has {len(shape)} dimensions; at most {MAX_RANK}")
    count = 1
    for d in shape:  # a handful of dimensions: a plain loop beats generator expressions here
        if type(d) is not int:
            raise errors.InvalidInput(f"input '{tensor}': shape must be a list of integers, got {shape!r:.100}")
        if d < 0:
            raise errors.InvalidInput(f"input '{tensor}': shape {list(shape)} has a negative dimension")
        count *= d
    if count > max_elements:
        raise errors.PayloadTooLarge(
            f"input '{tensor}': shape {list(shape)} has {count} elements; the limit is {max_elements}"
        )
    return tuple(shape), count


def _count_mismatch(tensor: str, shape: tuple[int, ...], got: int, unit: str = "elements") -> errors.InvalidInput:
    return errors.InvalidInput(f"input '{tensor}': shape {list(shape)} needs {math.prod(shape)} {unit}, got {got}")


def from_json(dt: datatypes.Datatype, shape: tuple[int, ...], data: object, *, tensor: str) -> Array:
    """Decode an OIP JSON `data` array (flat or nested, row-major) into an array of `shape`."""
    if not isinstance(data, list):
        raise errors.InvalidInput(f"input '{tensor}': data must be a JSON array, got {type(data).__name__}")
    if dt.name == "BYTES":
        return _bytes_from_json(data, shape, tensor)
    try:
        parsed = np.array(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise errors.InvalidInput(f"input '{tensor}': data is not a regular array of numbers ({exc})") from None
    if parsed.size != math.prod(shape):
        raise _count_mismatch(tensor, shape, parsed.size)
    if parsed.dtype.kind == "f" and dt.dtype.kind == "f":  # the common case, kept short
        try:
            return parsed.astype(dt.dtype, copy=False).reshape(shape)
        except FloatingPointError:  # see OVERFLOW below
            raise errors.InvalidInput(f"input '{tensor}': a value is out of range for {dt.name}") from None
    if parsed.size == 0:
        return np.empty(shape, dtype=dt.dtype)
    if dt.dtype.kind in "iu" and parsed.dtype.kind in "fO":
        # numpy widens [0, 2**64 - 1] to float64 (or object): convert exactly, then make sure no
        # element was a genuine fraction.
        return _exact_integers(dt, shape, data, parsed, tensor)
    if parsed.dtype.kind not in dt.json_kinds:
        raise errors.InvalidInput(f"input '{tensor}': {_describe_kind(parsed.dtype.kind)} cannot be {dt.name} data")
    if dt.dtype.kind in "iu":
        info = np.iinfo(dt.dtype)
        low, high = parsed.min(), parsed.max()
        if low < info.min or high > info.max:
            raise errors.InvalidInput(
                f"input '{tensor}': value {low if low < info.min else high} is out of range for {dt.name}"
            )
    try:
        return parsed.astype(dt.dtype, copy=False).reshape(shape)
    except FloatingPointError:
        raise errors.InvalidInput(f"input '{tensor}': a value is out of range for {dt.name}") from None


def _exact_integers(
    dt: datatypes.Datatype, shape: tuple[int, ...], data: list[Any], parsed: Array, tensor: str
) -> Array:
    try:
        exact = np.array(data, dtype=dt.dtype)
    except OverflowError as exc:
        raise errors.InvalidInput(f"input '{tensor}': {exc} ({dt.name})") from None
    except (ValueError, TypeError):
        raise errors.InvalidInput(f"input '{tensor}': {dt.name} data must be integers") from None
    if parsed.dtype.kind == "f" and not np.array_equal(exact.astype(np.float64), parsed):
        raise errors.InvalidInput(f"input '{tensor}': floating-point numbers cannot be {dt.name} data")
    if parsed.dtype.kind == "O" and not all(type(v) is int for v in parsed.reshape(-1)):
        raise errors.InvalidInput(f"input '{tensor}': {dt.name} data must be integers")
    return exact.reshape(shape)


def _describe_kind(kind: str) -> str:
    return {
        "b": "booleans",
        "f": "floating-point numbers",
        "i": "integers",
        "u": "integers",
        "U": "strings",
        "O": "mixed or out-of-range values",
    }.get(kind, f"values of kind {kind!r}")


def _bytes_from_json(data: list[Any], shape: tuple[int, ...], tensor: str) -> Array:
    try:
        parsed = np.array(data, dtype=object)
    except (ValueError, TypeError) as exc:
        raise errors.InvalidInput(f"input '{tensor}': data is not a regular array of strings ({exc})") from None
    if parsed.size != math.prod(shape):
        raise _count_mismatch(tensor, shape, parsed.size)
    flat = parsed.reshape(-1)
    for item in flat:
        if not isinstance(item, str):
            raise errors.InvalidInput(f"input '{tensor}': BYTES data must be strings, got {type(item).__name__}")
    return flat.reshape(shape)


def from_raw(dt: datatypes.Datatype, shape: tuple[int, ...], raw: bytes | memoryview, *, tensor: str) -> Array:
    """Decode raw little-endian, row-major bytes (binary extension, gRPC raw_input_contents)."""
    count = math.prod(shape)
    if dt.name == "BYTES":
        return _bytes_from_raw(raw, shape, count, tensor)
    expected = count * dt.itemsize
    if len(raw) != expected:
        raise errors.InvalidInput(
            f"input '{tensor}': {dt.name} shape {list(shape)} needs {expected} bytes of binary data, got {len(raw)}"
        )
    if dt.name == "BOOL":
        as_bytes = np.frombuffer(raw, dtype=np.uint8)
        if count and as_bytes.max() > 1:
            raise errors.InvalidInput(f"input '{tensor}': BOOL binary data must be bytes 0 or 1")
        return as_bytes.view(np.bool_).reshape(shape)
    return np.frombuffer(raw, dtype=dt.dtype.newbyteorder("<")).reshape(shape)


def _bytes_from_raw(raw: bytes | memoryview, shape: tuple[int, ...], count: int, tensor: str) -> Array:
    view = memoryview(raw)
    items: list[str] = []
    offset, end = 0, len(view)
    while offset < end:
        if offset + 4 > end or len(items) >= count:
            raise errors.InvalidInput(f"input '{tensor}': BYTES binary data does not hold exactly {count} elements")
        (length,) = _LEN.unpack_from(view, offset)
        offset += 4
        if offset + length > end:
            raise errors.InvalidInput(f"input '{tensor}': a BYTES element's length prefix runs past the data")
        try:
            items.append(str(view[offset : offset + length], "utf-8"))
        except UnicodeDecodeError:
            raise errors.InvalidInput(f"input '{tensor}': BYTES element is not UTF-8 text") from None
        offset += length
    if len(items) != count:
        raise _count_mismatch(tensor, shape, len(items))
    out = np.empty(count, dtype=object)
    out[:] = items
    return out.reshape(shape)


# The protobuf type of each InferTensorContents field (narrower datatypes travel widened).
_CONTENTS_DTYPE = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}


def from_contents(dt: datatypes.Datatype, shape: tuple[int, ...], values: Sequence[Any], *, tensor: str) -> Array:
    """Decode a gRPC InferTensorContents field (already the right typed field for `dt`)."""
    if len(values) != math.prod(shape):
        raise _count_mismatch(tensor, shape, len(values))
    if dt.name == "BYTES":
        try:
            items = [bytes(v).decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise errors.InvalidInput(f"input '{tensor}': BYTES element is not UTF-8 text") from None
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(shape)
    wide = _CONTENTS_DTYPE[dt.contents_field or ""]
    parsed = np.fromiter(values, dtype=wide, count=len(values))
    if dt.dtype.kind in "iu" and parsed.size:
        info = np.iinfo(dt.dtype)
        if parsed.min() < info.min or parsed.max() > info.max:
            raise errors.InvalidInput(f"input '{tensor}': a value is out of range for {dt.name}")
    return parsed.astype(dt.dtype, copy=False).reshape(shape)


def to_json_data(array: Array) -> Any:
    """An output's `data` for orjson (OPT_SERIALIZE_NUMPY): a flat numeric array, or a list of strings."""
    if array.dtype.kind in "OUS":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
    return array.reshape(-1)  # contiguous: a view of ONNX Runtime's output, or a contiguous copy


def to_raw(array: Array) -> bytes:
    """An output as raw little-endian row-major bytes; BYTES as 4-byte length-prefixed elements."""
    if array.dtype.kind in "OUS":
        parts: list[bytes] = []
        for v in array.reshape(-1):
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(_LEN.pack(len(b)))
            parts.append(b)
        return b"".join(parts)
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()

"""The datatype tables: Open Inference Protocol names <-> numpy dtypes <-> ONNX Runtime type strings.

Used by `model` (to describe a graph's inputs and outputs in OIP terms), by `tensors` (to decode JSON,
binary and gRPC contents into numpy arrays) and by `grpc_server` (which typed `contents` field holds
which datatype). Every OIP datatype that ONNX has is here; BF16 is not, since numpy has no bfloat16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.serving import errors


@dataclass(frozen=True)
class Datatype:
    name: str  # OIP name, e.g. "FP32"
    dtype: np.dtype  # numpy dtype; object for BYTES
    onnx: str  # ONNX Runtime's NodeArg.type, e.g. "tensor(float)"
    itemsize: int  # bytes per element in the binary encodings; 0 for BYTES (length-prefixed)
    contents_field: str | None  # gRPC InferTensorContents field; None when only raw content can carry it
    json_kinds: str  # numpy dtype kinds a JSON array may parse to and still be accepted


_ALL = (
    Datatype("BOOL", np.dtype(np.bool_), "tensor(bool)", 1, "bool_contents", "b"),
    Datatype("INT8", np.dtype(np.int8), "tensor(int8)", 1, "int_contents", "iu"),
    Datatype("INT16", np.dtype(np.int16), "tensor(int16)", 2, "int_contents", "iu"),
    Datatype("INT32", np.dtype(np.int32), "tensor(int32)", 4, "int_contents", "iu"),
    Datatype("INT64", np.dtype(np.int64), "tensor(int64)", 8, "int64_contents", "iu"),
    Datatype("UINT8", np.dtype(np.uint8), "tensor(uint8)", 1, "uint_contents", "iu"),
    Datatype("UINT16", np.dtype(np.uint16), "tensor(uint16)", 2, "uint_contents", "iu"),
    Datatype("UINT32", np.dtype(np.uint32), "tensor(uint32)", 4, "uint_contents", "iu"),
    Datatype("UINT64", np.dtype(np.uint64), "tensor(uint64)", 8, "uint64_contents", "iu"),
    Datatype("FP16", np.dtype(np.float16), "tensor(float16)", 2, None, "iuf"),
    Datatype("FP32", np.dtype(np.float32), "tensor(float)", 4, "fp32_contents", "iuf"),
    Datatype("FP64", np.dtype(np.float64), "tensor(double)", 8, "fp64_contents", "iuf"),
    Datatype("BYTES", np.dtype(object), "tensor(string)", 0, "bytes_contents", "US"),
)

BY_NAME: dict[str, Datatype] = {d.name: d for d in _ALL}
BY_ONNX: dict[str, Datatype] = {d.onnx: d for d in _ALL}
# numpy dtype -> Datatype for ONNX Runtime's outputs; string outputs come back as object or str arrays.
BY_DTYPE: dict[np.dtype, Datatype] = {d.dtype: d for d in _ALL}

NAMES = tuple(BY_NAME)


def from_name(name: object, *, tensor: str) -> Datatype:
    """The Datatype for an OIP name sent by a client; InvalidInput when it is not one we serve."""
    if not isinstance(name, str):
        raise errors.InvalidInput(f"input '{tensor}': datatype must be a string, got {type(name).__name__}")
    found = BY_NAME.get(name)
    if found is None:
        raise errors.InvalidInput(f"input '{tensor}': unknown datatype {name!r}; expected one of {', '.join(NAMES)}")
    return found


def from_onnx(onnx_type: str) -> Datatype | None:
    """The Datatype for an ONNX Runtime NodeArg type, or None for types OIP cannot carry (maps, sequences)."""
    return BY_ONNX.get(onnx_type)


def from_array(array: np.ndarray) -> Datatype:
    """The Datatype of an array ONNX Runtime returned."""
    found = BY_DTYPE.get(array.dtype)
    if found is not None:
        return found
    if array.dtype.kind in "US":
        return BY_NAME["BYTES"]
    raise errors.InferenceFailed(f"the model returned an array of dtype {array.dtype}, which OIP cannot carry")

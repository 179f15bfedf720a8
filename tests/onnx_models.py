"""Small ONNX models built at test time with onnx.helper (no downloads).

Used by the serving tests and by `benchmarks/serving/run.py`:
- `four_in_three_out`: inputs a, b, c, d FP32 [-1, 4]; outputs sum = a + b, product = c * d,
  mixed = (a + b) @ W + d (W a fixed 4x4 initializer) — the benchmark's 4-in/3-out model.
- `identity(datatype)`: one input `x` of the given OIP datatype and shape [-1, -1], echoed as `y`.
- `image`: x FP32 [1, 3, 224, 224] -> a 3x3 convolution to 8 channels, global average pool -> [1, 8].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime of the last years

ONNX_TYPES = {
    "BOOL": TensorProto.BOOL,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}
NUMPY_TYPES = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
W = np.arange(16, dtype=np.float32).reshape(4, 4) / 16.0


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def four_in_three_out(path: Path) -> Path:
    fp = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info(n, fp, ["batch", 4]) for n in "abcd"]
    outputs = [helper.make_tensor_value_info(n, fp, ["batch", 4]) for n in ("sum", "product", "mixed")]
    nodes = [
        helper.make_node("Add", ["a", "b"], ["sum"]),
        helper.make_node("Mul", ["c", "d"], ["product"]),
        helper.make_node("MatMul", ["sum", "W"], ["sw"]),
        helper.make_node("Add", ["sw", "d"], ["mixed"]),
    ]
    graph = helper.make_graph(nodes, "four_in_three_out", inputs, outputs, [numpy_helper.from_array(W, "W")])
    return _save(graph, path)


def four_in_three_out_reference(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> dict[str, np.ndarray]:
    return {"sum": a + b, "product": c * d, "mixed": (a + b) @ W + d}


def identity(datatype: str, path: Path) -> Path:
    kind = ONNX_TYPES[datatype]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        f"identity_{datatype.lower()}",
        [helper.make_tensor_value_info("x", kind, [None, None])],
        [helper.make_tensor_value_info("y", kind, [None, None])],
    )
    return _save(graph, path)


def image(path: Path) -> Path:
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "k"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("GlobalAveragePool", ["c"], ["g"]),
            helper.make_node("Flatten", ["g"], ["y"]),
        ],
        "image",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [numpy_helper.from_array(weights, "k")],
    )
    return _save(graph, path)


def sample(datatype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values that exercise a datatype's range (and its extremes), for round-trip tests."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape))
    if datatype == "BYTES":
        words = ["", "a", "héllo", "x" * 40, "tab\tand\nnewline", "日本語"]
        return np.array([words[i % len(words)] for i in range(count)], dtype=np.object_).reshape(shape)
    if datatype == "BOOL":
        return (rng.integers(0, 2, count) == 1).reshape(shape)
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, count, dtype=dtype, endpoint=True)
        values.flat[0] = info.min
        if count > 1:
            values.flat[1] = info.max
        return values.reshape(shape)
    return (rng.standard_normal(count) * 100).astype(dtype).reshape(shape)

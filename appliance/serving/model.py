"""One loaded ONNX model: its ONNX Runtime session, its OIP metadata read from the graph, and `run`.

`repository` creates these when it loads a model; `dataplane` reads their `inputs`/`outputs` to
validate requests and calls `run`. Metadata comes from the graph itself: names, OIP datatypes and
shapes, with -1 for every dynamic (symbolic or unknown) dimension.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from appliance.serving import datatypes, errors

# Kernel failures while running a validated request come from the data (shapes that do not broadcast,
# an index out of range), so they are the caller's to fix; anything else is ours.
_ORT_STATE = ort.capi.onnxruntime_pybind11_state
_INPUT_FAULTS = (_ORT_STATE.InvalidArgument, _ORT_STATE.RuntimeException, _ORT_STATE.Fail)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: datatypes.Datatype
    shape: tuple[int, ...]  # -1 marks a dynamic dimension
    fixed: tuple[tuple[int, int], ...] = field(init=False)  # (axis, size) of each fixed dimension

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed", tuple((a, n) for a, n in enumerate(self.shape) if n != -1))

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether a request's shape fits: same rank, same size on every fixed dimension."""
        if len(shape) != len(self.shape):
            return False
        for axis, size in self.fixed:  # noqa: SIM110 (per request: a loop is cheaper than all(<genexpr>))
            if shape[axis] != size:
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype.name, "shape": list(self.shape)}


DEFAULT_INTRA_OP_THREADS = 1


def session_options(intra_op_threads: int = DEFAULT_INTRA_OP_THREADS) -> Any:
    """Tuned for serving: all graph optimisations, sequential execution, and by default one intra-op
    thread. A server gets its parallelism from concurrent requests and worker processes; an intra-op
    pool only adds a hand-off to another thread on every run (measured here: a 4-in/3-out model under
    grpc.aio went from 5.2k to 1.9k requests/s with two threads), and spinning threads would burn the
    CPU the event loop needs. Raise it (--intra-op-threads) for a few large models at low concurrency."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = max(1, intra_op_threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def _dims(shape: Sequence[object]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)


def _specs(args: Sequence[Any], kind: str, path: Path) -> tuple[TensorSpec, ...]:
    specs = []
    for arg in args:
        dt = datatypes.from_onnx(arg.type)
        if dt is None:
            raise errors.ModelLoadError(
                f"{path}: {kind} '{arg.name}' has type {arg.type}, which the Open Inference Protocol cannot carry",
                hint="serve models whose inputs and outputs are plain tensors (no maps or sequences)",
            )
        specs.append(TensorSpec(arg.name, dt, _dims(arg.shape or [])))
    return tuple(specs)


class OnnxModel:
    """An ONNX model ready to run. Build it with `load`."""

    def __init__(self, name: str, version: str, path: Path, session: Any) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.session = session
        self.inputs = _specs(session.get_inputs(), "input", path)
        self.outputs = _specs(session.get_outputs(), "output", path)
        self.input_by_name = {s.name: s for s in self.inputs}
        self.output_by_name = {s.name: s for s in self.outputs}
        self.output_names = [s.name for s in self.outputs]
        # For `rest`'s fast path: each input's OIP datatype name, rank, fixed dimensions and numpy
        # dtype, when every input is a float tensor and every output numeric (else None: no fast path).
        self.float_inputs: dict[str, tuple[str, int, tuple[tuple[int, int], ...], np.dtype]] | None = None
        if all(s.datatype.dtype.kind == "f" for s in self.inputs) and all(
            s.datatype.name != "BYTES" for s in self.outputs
        ):
            self.float_inputs = {
                s.name: (s.datatype.name, len(s.shape), s.fixed, s.datatype.dtype) for s in self.inputs
            }
        self.output_datatypes = [s.datatype.name for s in self.outputs]
        # InferenceSession.run re-checks the input names (`dataplane.validate` already did) before it
        # calls the binding; call the binding directly when this onnxruntime has it (1.31: it does).
        binding = getattr(session, "_sess", None)
        self._run = binding.run if binding is not None and hasattr(binding, "run") else session.run
        self.mean_run_seconds = 0.0  # moving average; `dataplane` moves slow models off the event loop

    @classmethod
    def load(cls, name: str, version: str, path: Path, *, intra_op_threads: int | None = None) -> OnnxModel:
        threads = intra_op_threads or DEFAULT_INTRA_OP_THREADS
        try:
            session = ort.InferenceSession(
                str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own classes for every kind of bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise errors.ModelLoadError(
                f"{path}: not a loadable ONNX model ({first[:300]})",
                hint="check that the file is an ONNX model (export it with torch.onnx / skl2onnx / tf2onnx)",
            ) from exc
        return cls(name, version, path, session)

    def metadata(self, versions: Sequence[str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": list(versions),
            "platform": "onnxruntime_onnx",
            "inputs": [s.as_dict() for s in self.inputs],
            "outputs": [s.as_dict() for s in self.outputs],
        }

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> list[np.ndarray]:
        start = time.perf_counter()
        try:
            results: list[np.ndarray] = self._run(output_names, feeds, None)
        except _INPUT_FAULTS as exc:
            message = str(exc).strip().replace("\n", " ")
            raise errors.InvalidInput(f"model '{self.name}' cannot run on these inputs: {message[:500]}") from None
        except Exception as exc:
            raise errors.InferenceFailed(f"model '{self.name}' failed: {str(exc)[:500]}") from exc
        elapsed = time.perf_counter() - start
        self.mean_run_seconds += (elapsed - self.mean_run_seconds) * 0.1
        return results

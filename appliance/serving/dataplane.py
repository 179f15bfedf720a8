"""The transport-neutral data plane: health, metadata, readiness, load/unload and inference.

`rest` and `grpc_server` decode their wire formats into the request types here (with `tensors`),
call `DataPlane`, and encode what it returns; everything that must behave the same on both
transports — validation against the model's signature, choosing outputs, running the model —
happens here once. Fast models run inline on the transport's thread (REST: the event loop; gRPC: its
dispatch thread), because a thread hop costs more than they do; slow ones move to another thread so
health probes keep answering. `OnnxModel.run` may be called from several threads at once (ONNX
Runtime's `InferenceSession.run` is thread-safe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import appliance
from appliance.serving import datatypes, errors, metrics, model, repository

SERVER_NAME = "odh-appliance-model-server"
EXTENSIONS = ["binary_tensor_data", "model_repository", "metrics"]
INLINE_RUN_SECONDS = 0.002  # models whose mean run time is below this run on the event loop


@dataclass(slots=True)
class InputTensor:
    name: str
    datatype: datatypes.Datatype
    shape: tuple[int, ...]
    array: np.ndarray


@dataclass(slots=True)
class OutputRequest:
    name: str
    binary: bool | None = None  # REST only: the binary_data parameter; None = the request's default


@dataclass(slots=True)
class InferRequest:
    inputs: list[InputTensor]
    outputs: list[OutputRequest] | None = None  # None = every output of the model
    id: str | None = None
    binary_output: bool = False  # REST only: the request-level binary_data_output parameter


@dataclass(slots=True)
class OutputTensor:
    name: str
    datatype: datatypes.Datatype
    shape: tuple[int, ...]
    array: np.ndarray
    binary: bool


@dataclass(slots=True)
class InferResponse:
    model_name: str
    model_version: str
    id: str | None
    outputs: list[OutputTensor]


def validate(m: model.OnnxModel, inputs: Sequence[InputTensor]) -> dict[str, np.ndarray]:
    """The feeds for `m.run`, after checking every input against the model's signature."""
    feeds: dict[str, np.ndarray] = {}
    for tensor in inputs:
        spec = m.input_by_name.get(tensor.name)
        if spec is None:
            known = ", ".join(m.input_by_name)
            raise errors.InvalidInput(f"model '{m.name}' has no input '{tensor.name}'; its inputs are: {known}")
        if tensor.name in feeds:
            raise errors.InvalidInput(f"input '{tensor.name}' appears more than once")
        if tensor.datatype is not spec.datatype:
            raise errors.InvalidInput(
                f"input '{tensor.name}': datatype {tensor.datatype.name} does not match model '{m.name}', "
                f"which expects {spec.datatype.name}"
            )
        if not spec.accepts(tensor.shape):
            raise errors.InvalidInput(
                f"input '{spec.name}': shape {list(tensor.shape)} does not match model '{m.name}', "
                f"which expects {list(spec.shape)}"
            )
        feeds[tensor.name] = tensor.array
    if len(feeds) != len(m.inputs):
        missing = ", ".join(f"'{s.name}'" for s in m.inputs if s.name not in feeds)
        raise errors.InvalidInput(f"model '{m.name}' needs input(s) {missing}, which the request lacks")
    return feeds


def choose_outputs(m: model.OnnxModel, request: InferRequest) -> tuple[list[str], list[bool]]:
    """The output names to compute and, for each, whether REST should send it binary."""
    if request.outputs is None:
        return m.output_names, [request.binary_output] * len(m.output_names)
    names, binary = [], []
    for wanted in request.outputs:
        if wanted.name not in m.output_by_name:
            known = ", ".join(m.output_names)
            raise errors.InvalidInput(f"model '{m.name}' has no output '{wanted.name}'; its outputs are: {known}")
        if wanted.name in names:
            raise errors.InvalidInput(f"output '{wanted.name}' is requested more than once")
        names.append(wanted.name)
        binary.append(request.binary_output if wanted.binary is None else wanted.binary)
    return names, binary


class DataPlane:
    def __init__(self, repo: repository.Repository, meter: metrics.Metrics, *, max_elements: int) -> None:
        self.repository = repo
        self.metrics = meter
        self.max_elements = max_elements
        repo.on_change = self._model_changed
        for name in repo.names():
            meter.model_state(name, False)

    def _model_changed(self, entry: repository.Entry) -> None:
        self.metrics.model_state(entry.name, entry.state is repository.State.READY)

    # health and metadata
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.repository.all_ready()

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": appliance.__version__, "extensions": EXTENSIONS}

    def get_model(self, name: str, version: str | None = None) -> model.OnnxModel:
        return self.repository.get(name, version or None)

    def model_ready(self, name: str, version: str | None = None) -> bool:
        return self.repository.is_ready(name, version or None)

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        m = self.get_model(name, version)
        return m.metadata(list(self.repository.entry(name).versions))

    def metric_label(self, name: str) -> str:
        return name if name in self.repository.entries else metrics.UNKNOWN_MODEL

    # repository extension
    async def load(self, name: str) -> None:
        self.repository.entry(name)
        start = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, self.repository.load, name)
        self.metrics.model_state(name, True, time.perf_counter() - start)

    async def unload(self, name: str) -> None:
        self.repository.unload(name)

    # inference
    @staticmethod
    def runs_inline(m: model.OnnxModel) -> bool:
        """Whether `m` is fast enough to run on the transport's own thread (else it moves to another)."""
        return m.mean_run_seconds < INLINE_RUN_SECONDS

    async def run(self, m: model.OnnxModel, feeds: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
        """Run validated feeds: inline when the model is fast, else in a thread."""
        if self.runs_inline(m):
            return m.run(feeds, names)
        return await asyncio.get_running_loop().run_in_executor(None, m.run, feeds, names)

    @staticmethod
    def prepare(m: model.OnnxModel, request: InferRequest) -> tuple[dict[str, np.ndarray], list[str], list[bool]]:
        """The checked feeds, the output names to compute and, for each, whether REST sends it binary."""
        feeds = validate(m, request.inputs)
        names, binary = choose_outputs(m, request)
        return feeds, names, binary

    @staticmethod
    def response(
        m: model.OnnxModel, request: InferRequest, names: list[str], binary: list[bool], results: list[np.ndarray]
    ) -> InferResponse:
        specs = m.output_by_name
        outputs = [
            OutputTensor(name, specs[name].datatype, arr.shape, arr, bin_)
            for name, arr, bin_ in zip(names, results, binary, strict=True)
        ]
        return InferResponse(m.name, m.version, request.id, outputs)

    async def infer(self, m: model.OnnxModel, request: InferRequest) -> InferResponse:
        """`prepare`, `run` and `response` in one, for a transport on the event loop (REST)."""
        feeds, names, binary = self.prepare(m, request)
        results = await self.run(m, feeds, names)
        return self.response(m, request, names, binary, results)

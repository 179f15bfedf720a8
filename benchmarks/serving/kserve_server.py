"""KServe's Python ModelServer wrapping ONNX Runtime, the way KServe's docs show a custom V2 model.

Runs in benchmarks/.venvs/kserve (the `kserve` package pins clash with ours).
Usage: python kserve_server.py MODEL.onnx NAME HTTP_PORT GRPC_PORT
"""

from __future__ import annotations

import sys
from typing import Any

import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.utils.utils import generate_uuid


class OnnxModel(Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.session: Any = None
        self.load()

    def load(self) -> bool:
        self.session = ort.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> InferResponse:
        feeds = {i.name: i.as_numpy() for i in payload.inputs}
        names = [o.name for o in self.session.get_outputs()]
        results = self.session.run(names, feeds)
        outputs = []
        for name, result in zip(names, results, strict=True):
            out = InferOutput(name=name, shape=list(result.shape), datatype="FP32")
            out.set_data_from_numpy(result, binary_data=False)
            outputs.append(out)
        return InferResponse(response_id=payload.id or generate_uuid(), model_name=self.name, infer_outputs=outputs)


if __name__ == "__main__":
    path, name, http_port, grpc_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sys.argv = sys.argv[:1]  # kserve parses argv at import time and when the server starts
    model = OnnxModel(name, path)
    ModelServer(http_port=http_port, grpc_port=grpc_port, workers=1, enable_latency_logging=False).start([model])

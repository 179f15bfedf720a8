"""MLServer custom runtime wrapping ONNX Runtime, the way MLServer's docs show an MLModel.

Runs in benchmarks/.venvs/mlserver; run.py writes settings.json and model-settings.json next to a
copy of this file and starts `mlserver start DIR`.
"""

from __future__ import annotations

from typing import Any

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        uri = self.settings.parameters.uri if self.settings.parameters else None
        self._session: Any = ort.InferenceSession(uri, providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        names = [o.name for o in self._session.get_outputs()]
        results = self._session.run(names, feeds)
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(n, r) for n, r in zip(names, results, strict=True)],
        )

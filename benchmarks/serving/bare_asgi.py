"""The reference for our REST overhead: the least an ASGI app can do to serve an ONNX model over OIP JSON.

No routing, no validation, no metrics: parse the body with orjson, turn each input's data into a numpy
array, `session.run`, write the outputs with orjson. Same uvicorn (httptools, uvloop) and the same
ONNX Runtime session options as our server, so the difference between the two is our server's work.
Usage: python bare_asgi.py MODEL.onnx PORT [--tune-gc]   (--tune-gc: the same GC settings as our server)
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn

from appliance.serving import model as serving_model
from appliance.serving import server as serving_server

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


def build(path: str) -> Any:
    session = ort.InferenceSession(
        path, sess_options=serving_model.session_options(), providers=["CPUExecutionProvider"]
    )

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        doc = orjson.loads(body)
        feeds = {
            i["name"]: np.asarray(i["data"], dtype=DTYPES[i["datatype"]]).reshape(i["shape"]) for i in doc["inputs"]
        }
        names = [o.name for o in session.get_outputs()]
        results = session.run(names, feeds)
        out = orjson.dumps(
            {
                "model_name": "bare",
                "outputs": [
                    {"name": n, "datatype": "FP32", "shape": r.shape, "data": r.reshape(-1)}
                    for n, r in zip(names, results, strict=True)
                ],
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})

    return app


if __name__ == "__main__":
    app = build(sys.argv[1])
    if "--tune-gc" in sys.argv:
        serving_server.tune_gc()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )

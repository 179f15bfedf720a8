"""Repository layouts, metadata read from the graph, readiness, validation and inference — in process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from appliance.serving import dataplane, datatypes, errors, metrics, repository, rest
from tests import onnx_models

FP32 = datatypes.BY_NAME["FP32"]


def test_layouts(tmp_path: Path) -> None:
    single = onnx_models.identity("FP32", tmp_path / "a" / "model.onnx")
    assert repository.discover(single) == {"model": {"1": single}}
    assert repository.discover(single, "m") == {"m": {"1": single}}
    assert repository.discover(tmp_path / "a") == {"model": {"1": single}}
    v1 = onnx_models.identity("FP32", tmp_path / "v" / "1" / "model.onnx")
    v2 = onnx_models.identity("FP32", tmp_path / "v" / "2" / "other.onnx")
    onnx_models.identity("FP32", tmp_path / "v" / "10" / "nested" / "x.onnx")  # no .onnx directly in 10/: ignored
    assert repository.discover(tmp_path / "v") == {"v": {"1": v1, "2": v2}}
    found = repository.discover(tmp_path)
    assert set(found) == {"a", "v"}
    with pytest.raises(errors.StartupError, match="no such file"):
        repository.discover(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.StartupError, match="no ONNX model found"):
        repository.discover(tmp_path / "empty")
    with pytest.raises(errors.StartupError, match="--name"):
        repository.discover(tmp_path, "one-name")


def test_metadata_comes_from_the_graph(tmp_path: Path) -> None:
    onnx_models.four_in_three_out(tmp_path / "four" / "model.onnx")
    repo = repository.Repository(tmp_path / "four", "four")
    model = repo.load("four")
    meta = model.metadata(["1"])
    assert meta["inputs"] == [{"name": n, "datatype": "FP32", "shape": [-1, 4]} for n in "abcd"]
    assert [o["name"] for o in meta["outputs"]] == ["sum", "product", "mixed"]


def test_a_file_that_is_not_onnx_fails_to_load_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    repo = repository.Repository(tmp_path)
    with pytest.raises(errors.ModelLoadError) as exc:
        repo.load("model")
    assert exc.value.hint
    assert repo.entry("model").state is repository.State.FAILED
    with pytest.raises(errors.ModelNotReady, match="failed"):
        repo.get("model")


def _plane(tmp_path: Path) -> dataplane.DataPlane:
    onnx_models.four_in_three_out(tmp_path / "four" / "model.onnx")
    return dataplane.DataPlane(repository.Repository(tmp_path), metrics.Metrics(), max_elements=10**6)


def _inputs(batch: int = 2) -> list[dataplane.InputTensor]:
    rng = np.random.default_rng(0)
    return [
        dataplane.InputTensor(n, FP32, (batch, 4), rng.standard_normal((batch, 4)).astype(np.float32)) for n in "abcd"
    ]


def test_validation_messages(tmp_path: Path) -> None:
    plane = _plane(tmp_path)
    plane.repository.load_all()
    model = plane.get_model("four")
    inputs = _inputs()
    with pytest.raises(errors.InvalidInput, match="has no input 'e'; its inputs are: a, b, c, d"):
        dataplane.validate(model, [*inputs, dataplane.InputTensor("e", FP32, (2, 4), inputs[0].array)])
    with pytest.raises(errors.InvalidInput, match="appears more than once"):
        dataplane.validate(model, [*inputs, inputs[0]])
    with pytest.raises(errors.InvalidInput, match="needs input\\(s\\) 'd'"):
        dataplane.validate(model, inputs[:3])
    wrong = dataplane.InputTensor("a", datatypes.BY_NAME["FP64"], (2, 4), inputs[0].array.astype(np.float64))
    with pytest.raises(errors.InvalidInput, match="datatype FP64 does not match model 'four', which expects FP32"):
        dataplane.validate(model, [wrong, *inputs[1:]])
    for shape in ((2, 5), (2, 4, 1), (8,)):
        bad = dataplane.InputTensor("a", FP32, shape, np.zeros(shape, np.float32))
        with pytest.raises(errors.InvalidInput, match=r"expects \[-1, 4\]"):
            dataplane.validate(model, [bad, *inputs[1:]])
    with pytest.raises(errors.InvalidInput, match="no output 'zz'"):
        dataplane.choose_outputs(model, dataplane.InferRequest(inputs, [dataplane.OutputRequest("zz")]))


def test_batches_that_do_not_broadcast_are_the_callers_fault(tmp_path: Path) -> None:
    plane = _plane(tmp_path)
    plane.repository.load_all()
    inputs = _inputs(2)
    inputs[1] = dataplane.InputTensor("b", FP32, (3, 4), np.zeros((3, 4), np.float32))
    with pytest.raises(errors.InvalidInput, match="cannot run on these inputs"):
        asyncio.run(plane.infer(plane.get_model("four"), dataplane.InferRequest(inputs)))


def test_infer_computes_the_model(tmp_path: Path) -> None:
    plane = _plane(tmp_path)
    plane.repository.load_all()
    inputs = _inputs()
    response = asyncio.run(plane.infer(plane.get_model("four"), dataplane.InferRequest(inputs, id="r")))
    want = onnx_models.four_in_three_out_reference(*(t.array for t in inputs))
    assert response.id == "r" and response.model_version == "1"
    for out in response.outputs:
        np.testing.assert_allclose(out.array, want[out.name], rtol=1e-6)


def test_rest_readiness_is_false_until_the_model_loads(tmp_path: Path) -> None:
    plane = _plane(tmp_path)
    app = rest.RestApp(plane, max_body_bytes=1 << 20)

    async def probe() -> list[tuple[int, bytes]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            results = []
            for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/four/ready"):
                r = await client.get(path)
                results.append((r.status_code, r.content))
            plane.repository.entry("four").state = repository.State.LOADING
            r = await client.get("/v2/models/four/ready")
            results.append((r.status_code, r.content))
            plane.repository.load_all()
            for path in ("/v2/health/ready", "/v2/models/four/ready"):
                r = await client.get(path)
                results.append((r.status_code, r.content))
            r = await client.post("/v2/models/four/infer", content=b'{"inputs": [')
            results.append((r.status_code, r.content))
            return results

    results = asyncio.run(probe())
    assert [s for s, _ in results] == [200, 503, 503, 503, 200, 200, 400]
    assert orjson.loads(results[1][1]) == {"ready": False}
    assert orjson.loads(results[5][1]) == {"name": "four", "ready": True}
    assert "not valid JSON" in orjson.loads(results[6][1])["error"]


def test_rest_decode_binary_bookkeeping() -> None:
    doc = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}}]}
    with pytest.raises(errors.InvalidInput, match="no Inference-Header-Content-Length"):
        rest.decode_request(doc, None, 100)
    with pytest.raises(errors.InvalidInput, match="add up to 4"):
        rest.decode_request(doc, memoryview(b"\0" * 8), 100)
    with pytest.raises(errors.InvalidInput, match="runs past"):
        rest.decode_request(doc, memoryview(b"\0" * 2), 100)
    request = rest.decode_request(doc, memoryview(np.float32(2.5).tobytes()), 100)
    assert request.inputs[0].array.tolist() == [2.5]
    with pytest.raises(errors.InvalidInput, match="non-empty 'inputs'"):
        rest.decode_request({"inputs": []}, None, 100)


def test_rest_encode_binary_outputs() -> None:
    out = dataplane.OutputTensor("y", FP32, (2,), np.array([1, 2], np.float32), binary=True)
    status, ctype, body, headers = rest.encode_response(dataplane.InferResponse("m", "1", None, [out]))
    length = int(dict(headers)[b"inference-header-content-length"])
    head = orjson.loads(body[:length])
    assert status == 200 and ctype == b"application/octet-stream"
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert np.frombuffer(body[length:], np.float32).tolist() == [1.0, 2.0]

"""The one error table and the datatype tables."""

from __future__ import annotations

import inspect

import grpc
import numpy as np
import pytest

from appliance import errors as base_errors
from appliance.serving import datatypes, errors

SERVING_ERRORS = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.ServingError)]


def test_every_serving_error_has_its_own_row_and_a_common_base() -> None:
    assert len(SERVING_ERRORS) >= 10
    for cls in SERVING_ERRORS:
        assert cls in errors.STATUS, f"{cls.__name__} has no row in errors.STATUS"
        assert issubclass(cls, base_errors.ApplianceError)


@pytest.mark.parametrize("cls", SERVING_ERRORS, ids=lambda c: c.__name__)
def test_rows_are_valid_http_and_grpc_codes(cls: type[errors.ServingError]) -> None:
    status = errors.status_of(cls("x"))
    assert 400 <= status.http <= 599
    assert grpc.StatusCode[status.grpc] is not grpc.StatusCode.OK


def test_grpc_codes_are_grpcs_numbers() -> None:
    assert {code.name: code.value[0] for code in grpc.StatusCode} == errors.GRPC_CODES


def test_request_faults_are_4xx_and_ours_are_5xx() -> None:
    for cls in (errors.InvalidInput, errors.PayloadTooLarge, errors.RequestTimeout, errors.ModelNotFound):
        assert 400 <= errors.status_of(cls("x")).http < 500
    assert errors.status_of(errors.InvalidInput("x")) == errors.Status(400, "INVALID_ARGUMENT")
    assert errors.status_of(errors.ModelNotFound("x")) == errors.Status(404, "NOT_FOUND")
    assert errors.status_of(errors.ModelNotReady("x")) == errors.Status(503, "UNAVAILABLE")
    assert errors.status_of(errors.InferenceFailed("x")).http == 500
    assert errors.status_of(ValueError("a bug")) == errors.Status(500, "INTERNAL")


def test_subclass_without_a_row_inherits_its_parents() -> None:
    class Narrower(errors.InvalidInput):
        pass

    assert errors.status_of(Narrower("x")).http == 400


def test_datatype_tables_are_consistent() -> None:
    ints = {f"{sign}INT{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)}
    assert set(datatypes.NAMES) == {"BOOL", *ints, "FP16", "FP32", "FP64", "BYTES"}
    for name, dt in datatypes.BY_NAME.items():
        assert datatypes.from_onnx(dt.onnx) is dt
        assert datatypes.from_name(name, tensor="t") is dt
        if name != "BYTES":
            assert dt.itemsize == dt.dtype.itemsize
            assert datatypes.from_array(np.zeros(1, dt.dtype)) is dt
    assert datatypes.from_onnx("seq(tensor(float))") is None
    assert datatypes.from_array(np.array(["a"])).name == "BYTES"
    assert datatypes.BY_NAME["FP16"].contents_field is None


@pytest.mark.parametrize("bad", ["fp32", "BF16", "", None, 3, ["FP32"]])
def test_unknown_datatypes_are_invalid_input(bad: object) -> None:
    with pytest.raises(errors.InvalidInput, match="input 't'"):
        datatypes.from_name(bad, tensor="t")

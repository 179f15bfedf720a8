"""Serving errors and the one table that maps each of them to an HTTP status and a gRPC code.

Both transports (`rest`, `grpc_server`) raise and catch only these; `status_of` is the single place
where an error becomes a status, so REST and gRPC can never disagree. Startup failures (a missing
model file, a busy port) are `ServingError`s too, so `appliance serve` prints them as one line with a
hint, like every other `ApplianceError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance import errors

ApplianceError = errors.ApplianceError  # re-exported: serving modules import only this module


class ServingError(errors.ApplianceError):
    """The common base of every expected model-server failure."""


class InvalidInput(ServingError):
    """The request is malformed or does not match the model: bad JSON, datatype, shape, size, name."""


class PayloadTooLarge(InvalidInput):
    """The request body is over the server's size limit."""


class RequestTimeout(InvalidInput):
    """The request body did not arrive in time (a Content-Length larger than what was sent)."""


class ModelNotFound(ServingError):
    """No model (or model version) of that name is in the repository."""


class ModelNotReady(ServingError):
    """The model exists but is still loading, failed to load, or was unloaded."""


class RouteNotFound(ServingError):
    """A REST path the protocol does not define."""


class MethodNotAllowed(ServingError):
    """A REST path called with the wrong HTTP method."""


class ModelLoadError(ServingError):
    """A model file could not be loaded (not ONNX, unsupported inputs, unreadable)."""


class InferenceFailed(ServingError):
    """ONNX Runtime failed for a reason that is not the request's fault."""


class StartupError(ServingError):
    """The server could not start: a busy port, a model path that does not exist."""


class StorageError(ServingError):
    """The storage initializer could not download the model (credentials, bucket, endpoint)."""


@dataclass(frozen=True)
class Status:
    http: int
    grpc: str  # a grpc.StatusCode member name; kept as text so this module does not import grpc


# The one table. Looked up along the class hierarchy, so a subclass inherits its parent's status
# unless it has its own row.
STATUS: dict[type[ServingError], Status] = {
    ServingError: Status(500, "INTERNAL"),
    InvalidInput: Status(400, "INVALID_ARGUMENT"),
    PayloadTooLarge: Status(400, "RESOURCE_EXHAUSTED"),  # the issue asks 400 for every bad request body
    RequestTimeout: Status(408, "DEADLINE_EXCEEDED"),
    ModelNotFound: Status(404, "NOT_FOUND"),
    ModelNotReady: Status(503, "UNAVAILABLE"),
    RouteNotFound: Status(404, "NOT_FOUND"),
    MethodNotAllowed: Status(405, "UNIMPLEMENTED"),
    ModelLoadError: Status(400, "FAILED_PRECONDITION"),
    InferenceFailed: Status(500, "INTERNAL"),
    StartupError: Status(500, "INTERNAL"),
    StorageError: Status(502, "UNAVAILABLE"),
}

INTERNAL = Status(500, "INTERNAL")

# gRPC's status codes by name, as numbers on the wire (grpc.StatusCode's, without importing grpcio).
GRPC_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}  # fmt: skip


def status_of(exc: BaseException) -> Status:
    """The HTTP status and gRPC code for any exception; anything that is not a ServingError is a bug (500)."""
    if isinstance(exc, ServingError):
        for cls in type(exc).__mro__:
            status = STATUS.get(cls)
            if status is not None:
                return status
    return INTERNAL

"""TF Serving's error statuses: the gRPC code and message of a refused request, and the HTTP code REST gives it."""

from __future__ import annotations

import re

import grpc

# TensorFlow's error codes are the canonical gRPC codes, so a model's own errors keep their code over the wire.
GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}

# tensorflow_serving/model_servers/http_rest_api_handler's ToHTTPStatusCode.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# The graph context TensorFlow appends to an op's error ("\n\t [[{{node decode/DecodeJpeg}}]]", "[Op:...]").
_GRAPH_CONTEXT = re.compile(r"\s*\[\[\{\{.*?\}\}\]\]|\s*\[Op:[^\]]*\]( name: \S*)?")
# A picture decoder's failure on bytes that passed the JPEG/PNG signature check (truncated, corrupt).
_PICTURE_DECODE_FAILURE = re.compile(r"\{\{node [^}]*Decode(Jpeg|Png|Image)|Invalid (JPEG|PNG) data|jpeg::Uncompress")
PICTURE_DECODE_MESSAGE = "picture bytes are neither JPEG nor PNG, or are truncated or corrupt"


class ServingError(Exception):
    """A request TF Serving refuses: the gRPC status code and message it answers with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]


def model_error(code: int, message: str) -> ServingError:
    """A model's own error (a ``tf.errors.OpError``): its code, its message without TensorFlow's graph context.

    A picture that fails to decode is reported with :data:`PICTURE_DECODE_MESSAGE` first.
    """
    text = _GRAPH_CONTEXT.sub("", message).strip()
    if _PICTURE_DECODE_FAILURE.search(message) and "neither JPEG nor PNG" not in text:
        text = f"{PICTURE_DECODE_MESSAGE}: {text}"
    return ServingError(GRPC_CODES[code], text)


def servable_not_found(name: str, version: int | None = None) -> ServingError:
    request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")


def version_status_not_found(name: str, version: int | None = None) -> ServingError:
    if version is None:
        return ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}")


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)

"""TF Serving's REST API (``--rest_api_port``), served by tornado from the process that serves gRPC.

* ``GET /v1/models/NAME[/versions/N | /labels/L]``: the versions' status (GetModelStatus as JSON);
* ``GET /v1/models/NAME[/versions/N | /labels/L]/metadata``: the SignatureDefs (GetModelMetadata as JSON);
* ``POST /v1/models/NAME[/versions/N | /labels/L]:predict``: ``{"signature_name": ..., "instances": [...]}`` (row
  format, answered ``{"predictions": [...]}``) or ``{"inputs": ...}`` (columnar, answered ``{"outputs": ...}``).

Bytes travel as ``{"b64": "..."}``: in inputs, for any string tensor; in outputs, for string outputs whose alias
ends in ``_bytes`` (TF Serving's rule), and also for strings that are not UTF-8 (TF Serving writes those raw).
Errors are ``{"error": "message"}`` with TF Serving's HTTP status for the gRPC code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import tensorflow as tf
import tornado.httpserver
import tornado.netutil
import tornado.web
from google.protobuf import json_format
from google.protobuf.message import Message
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from tfcl.serving.models import ModelManager, ModelSpec
from tfcl.serving.servable import SIGNATURE_DEF_FIELD, ServableVersion, check_input_names
from tfcl.serving.status import ServingError, invalid_argument, version_status_not_found

# TF Serving's HttpRestApiHandler::kPathRegex, less classify/regress.
PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<method>predict)|/(?P<metadata>metadata))?"
)


def model_spec(name: str, version: str | None, label: str | None, signature_name: str = "") -> ModelSpec:
    spec = ModelSpec(name=name, signature_name=signature_name)
    if version is not None:
        spec.version.value = int(version)
    if label is not None:
        spec.version_label = label
    return spec


def _message_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True, including_default_value_fields=True)


def _string_leaves(value: Any, alias: str) -> Any:
    """JSON strings and ``{"b64": ...}`` objects, nested in lists, as bytes."""
    if isinstance(value, list):
        return [_string_leaves(item, alias) for item in value]
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and value.keys() == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError as error:
            raise invalid_argument(f"Input {alias!r}: invalid base64 ({error})") from None
    raise invalid_argument(f'Input {alias!r} expects strings or {{"b64": ...}} objects, got {json.dumps(value)[:80]}')


def _array(value: Any, alias: str, dtype: tf.DType) -> np.ndarray:
    """One input's JSON value as an array of the signature's dtype; a ragged or mistyped value is refused."""
    try:
        if dtype == tf.string:
            array = np.asarray(_string_leaves(value, alias), dtype=object)
            if not all(isinstance(item, bytes) for item in array.flat):  # lists left inside: ragged
                raise ValueError("the lists are ragged")
            return array
        return np.asarray(value, dtype=dtype.as_numpy_dtype)
    except (TypeError, ValueError) as error:
        raise invalid_argument(f"Input {alias!r} is not a rectangular array of {dtype.name}: {error}") from None


def request_arrays(body: dict[str, Any], servable: ServableVersion, signature_name: str) -> tuple[dict, bool]:
    """The inputs of a predict body (row or columnar format) as arrays; and whether it used the row format."""
    signature_def = servable.signature_def(signature_name, rest=True)
    aliases = sorted(signature_def.inputs)
    if ("instances" in body) == ("inputs" in body):
        raise invalid_argument("Request body must have exactly one of 'instances' (row format) or 'inputs' (columnar)")
    rows = "instances" in body
    if rows:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise invalid_argument("'instances' must be a non-empty list")
        if all(isinstance(instance, dict) and "b64" not in instance for instance in instances):
            names = set(instances[0])
            if any(set(instance) != names for instance in instances):
                raise invalid_argument("Every instance must have the same named inputs")
            columns = {name: [instance[name] for instance in instances] for name in names}
        elif len(aliases) == 1:
            columns = {aliases[0]: instances}
        else:
            raise invalid_argument(f"Signature {signature_name!r} has several inputs: send each instance as an object")
    else:
        inputs = body["inputs"]
        named = isinstance(inputs, dict) and "b64" not in inputs
        if not named and len(aliases) != 1:
            raise invalid_argument(f"Signature {signature_name!r} has several inputs: send 'inputs' as an object")
        columns = inputs if named else {aliases[0]: inputs}
    check_input_names(signature_name, signature_def, columns)
    arrays = {
        alias: _array(value, alias, tf.dtypes.as_dtype(signature_def.inputs[alias].dtype))
        for alias, value in columns.items()
    }
    return servable.check_inputs(signature_name, arrays), rows


def _json_value(array: np.ndarray, alias: str) -> Any:
    if array.dtype != object:
        return array.tolist()
    as_b64 = alias.endswith("_bytes")

    def encode(item: bytes) -> Any:
        if not as_b64:
            try:
                return item.decode()
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(item).decode()}

    return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else array.tolist()


def response_json(outputs: dict[str, np.ndarray], rows: bool) -> dict[str, Any]:
    """``{"predictions": [...]}`` (row format) or ``{"outputs": ...}`` (columnar), as TF Serving answers."""
    values = {alias: _json_value(array, alias) for alias, array in outputs.items()}
    if not rows:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{alias: value[index] for alias, value in values.items()} for index in range(count)]}


class RestApi:
    """The request handling behind the routes, run on worker threads (it blocks on the model)."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def status(self, name: str, version: str | None, label: str | None) -> dict[str, Any]:
        model = self._manager.models.get(name)
        number = int(version) if version is not None else None
        if model is None:
            raise version_status_not_found(name, number)
        if label is not None:
            number = model.config.version_labels.get(label)
            if number is None:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
        statuses = model.version_status(number)
        return _message_json(get_model_status_pb2.GetModelStatusResponse(model_version_status=statuses))

    def metadata(self, name: str, version: str | None, label: str | None) -> dict[str, Any]:
        with self._manager.serve(model_spec(name, version, label)) as servable:
            response = servable.metadata()
        signature_def_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_def_map)
        return {
            "model_spec": _message_json(response.model_spec),
            "metadata": {SIGNATURE_DEF_FIELD: _message_json(signature_def_map)},
        }

    def predict(self, name: str, version: str | None, label: str | None, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise invalid_argument(f"JSON Parse error: {error}") from None
        if not isinstance(request, dict):
            raise invalid_argument("JSON Value: the request body must be a JSON object")
        signature_name = request.get("signature_name") or tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
        with self._manager.serve(model_spec(name, version, label, signature_name)) as servable:
            arrays, rows = request_arrays(request, servable, signature_name)
            outputs = self._manager.run(servable, signature_name, arrays)
        return response_json(outputs, rows)


class _Handler(tornado.web.RequestHandler):
    def initialize(self, api: RestApi, executor: ThreadPoolExecutor) -> None:
        self.api = api
        self.executor = executor

    async def _answer(self, call: Callable[[], dict[str, Any]]) -> None:
        try:
            body, status = await asyncio.get_running_loop().run_in_executor(self.executor, call), 200
        except ServingError as error:
            body, status = {"error": str(error)}, error.http_status
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, ensure_ascii=False))

    def _route(self) -> re.Match:
        match = PATH.fullmatch(self.request.path)
        if match is None:
            raise tornado.web.HTTPError(404)
        return match

    async def get(self) -> None:
        match = self._route()
        if match["method"]:
            raise tornado.web.HTTPError(405)
        call = self.api.metadata if match["metadata"] else self.api.status
        await self._answer(lambda: call(match["name"], match["version"], match["label"]))

    async def post(self) -> None:
        match = self._route()
        if not match["method"]:
            raise tornado.web.HTTPError(405)
        body = self.request.body
        await self._answer(lambda: self.api.predict(match["name"], match["version"], match["label"], body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": self._reason}))


class RestServer:
    """The REST API on ``host:port`` (0: a free port), served from its own thread."""

    def __init__(self, manager: ModelManager, host: str, port: int, max_threads: int) -> None:
        self._sockets = tornado.netutil.bind_sockets(port, address=host)
        self.port = self._sockets[0].getsockname()[1]
        self._executor = ThreadPoolExecutor(max_threads, thread_name_prefix="tfcl-rest")
        self._app = tornado.web.Application(
            [(r"/v1/.*", _Handler, {"api": RestApi(manager), "executor": self._executor})]
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._thread = threading.Thread(target=self._serve, name="tfcl-rest-loop", daemon=True)
        self._started = threading.Event()

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = tornado.httpserver.HTTPServer(self._app, max_body_size=1 << 30)
        self._server.add_sockets(self._sockets)
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    def stop_listening(self) -> None:
        """Refuse new connections; the requests in flight carry on."""
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.stop)

    def close(self) -> None:
        """Stop the event loop (any request still running gets no answer) and its workers."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._executor.shutdown(wait=False, cancel_futures=True)

"""An embedded TF Serving: its gRPC PredictionService and ModelService, where ``tensorflow_model_server`` is missing.

It serves the models of a TF Serving ``ModelServerConfig`` (each a base directory of ``<version>/saved_model.pb``)
with TF Serving's protos and status codes, and its error text where TF Serving's source has one. A poll thread
watches the base directories: a new version is loaded fully before requests see it, and a version leaving the
model's version policy is unloaded only after the calls in flight on it have finished.
"""

import contextlib
import functools
import logging
import threading
from concurrent import futures
from pathlib import Path

import grpc
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the text ops that tfcl's text SavedModels use)
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

State = get_model_status_pb2.ModelVersionStatus.State
SIGNATURE_DEF_FIELD = "signature_def"
# TensorFlow's error codes are the canonical gRPC codes, so a model's own errors keep their code over the wire.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_UNLIMITED_MESSAGES = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]

log = logging.getLogger(__name__)


class ServingError(Exception):
    """A request TF Serving refuses: the gRPC status code and message it answers with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def read_model_config(path):
    """Parse a TF Serving ``--model_config_file``: a text-format ``ModelServerConfig`` with a ``model_config_list``."""
    config = text_format.Parse(Path(path).read_text(), model_server_config_pb2.ModelServerConfig())
    if not config.HasField("model_config_list"):
        raise ValueError(f"{path}: only a model_config_list is supported")
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{path}: model {model.name!r} has platform {model.model_platform!r}, not 'tensorflow'")
    return config


def single_model_config(name, base_path):
    """The config ``tensorflow_model_server --model_name=NAME --model_base_path=DIR`` serves."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=str(base_path), model_platform="tensorflow")
    return config


def complete_versions(base_path):
    """``{version: directory}`` of the versions under ``base_path`` that are ready to load.

    A version is a directory with a numeric name holding ``saved_model.pb`` and ``variables/``. Anything else is
    skipped: a temporary directory a pusher writes before renaming it into place, or a version directory that
    ``tf.saved_model.save`` is still filling (it writes ``saved_model.pb`` last).
    """
    base = Path(base_path)
    if not base.is_dir():
        return {}
    return {
        int(path.name): path
        for path in base.iterdir()
        if path.name.isascii()
        and path.name.isdigit()
        and (path / "saved_model.pb").is_file()
        and (path / "variables").is_dir()
    }


def select_versions(policy, versions):
    """The versions among ``versions`` that a ``model_version_policy`` serves (unset: the latest one)."""
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(versions)
    if choice == "specific":
        return set(versions) & set(policy.specific.versions)
    return set(sorted(versions)[-(policy.latest.num_versions or 1) :])


def _servable_not_found(name, version=None):
    request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")


def _requested_version(model_spec):
    return model_spec.version.value if model_spec.HasField("version") else None


def _version_status_not_found(name, version=None):
    if version is None:
        return ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}")


def _dtype_name(dtype_enum):
    return tf.dtypes.as_dtype(dtype_enum).name


def _braced(names):
    """Names as TF Serving lists them in messages: ``{a,b}``."""
    return "{" + ",".join(sorted(names)) + "}"


def _input_tensors(signature_name, signature_def, request_inputs):
    """The request's inputs as tensors, after checking names, dtypes and shapes against the signature."""
    expected, sent = set(signature_def.inputs), set(request_inputs)
    if sent != expected:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Request inputs {_braced(sent)} do not match the inputs of signature {signature_name!r} "
            f"{_braced(expected)}. Sent extra: {_braced(sent - expected)}. "
            f"Missing but required: {_braced(expected - sent)}.",
        )
    tensors = {}
    for alias, info in signature_def.inputs.items():
        proto = request_inputs[alias]
        if proto.dtype != info.dtype:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expects input {alias!r} to be {_dtype_name(info.dtype)} but {_dtype_name(proto.dtype)} is provided",
            )
        try:
            array = tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"tensor parsing error: {alias} ({error})") from error
        if array.ndim and array.shape[0] == 0:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT, f"Input {alias!r} is an empty batch: shape {array.shape}"
            )
        expected_shape = tf.TensorShape(info.tensor_shape)
        if not expected_shape.is_compatible_with(array.shape):
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Input {alias!r} has shape {array.shape}, incompatible with the signature's {expected_shape}",
            )
        tensors[alias] = tf.convert_to_tensor(array)
    return tensors


def _output_aliases(signature_def, output_filter):
    """The outputs to answer with: ``output_filter`` checked as TF Serving does, or every output."""
    if not output_filter:
        return list(signature_def.outputs)
    for index, alias in enumerate(output_filter):
        if alias not in signature_def.outputs:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {_braced(signature_def.outputs)}.",
            )
        if alias in output_filter[:index]:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"duplicate output tensor alias: {alias}")
    return list(output_filter)


class ServableVersion:
    """One loaded version of a model: its SignatureDefs, its signature functions and the calls in flight on it."""

    def __init__(self, name, version, path):
        self.name = name
        self.version = version
        saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        serving_graphs = [g for g in saved_model.meta_graphs if tf.saved_model.SERVING in g.meta_info_def.tags]
        if not serving_graphs:
            raise ValueError(f"{path} has no MetaGraph tagged {tf.saved_model.SERVING!r}")
        self.signature_defs = serving_graphs[0].signature_def
        # The loaded object owns the variables the signature functions read: keep it alive with them.
        self._saved_model = tf.saved_model.load(str(path), tags=[tf.saved_model.SERVING])
        self.in_flight = 0  # guarded by the lock of the ServedModel that routes calls here

    def predict(self, request):
        """Answer a ``PredictRequest`` as TF Serving does (inputs checked, ``output_filter`` applied)."""
        signature_name = request.model_spec.signature_name or tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
        if signature_name not in self._saved_model.signatures:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.'
            )
        signature_def = self.signature_defs[signature_name]
        inputs = _input_tensors(signature_name, signature_def, request.inputs)
        aliases = _output_aliases(signature_def, request.output_filter)
        try:
            outputs = self._saved_model.signatures[signature_name](**inputs)
        except tf.errors.OpError as error:  # e.g. an undecodable image: the model's own status reaches the client
            raise ServingError(_GRPC_CODES[error.error_code], error.message) from error
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = signature_name
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias].numpy()))
        return response

    def metadata(self):
        """The ``GetModelMetadataResponse``: every SignatureDef, packed as a ``SignatureDefMap``."""
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        signature_def_map = get_model_metadata_pb2.SignatureDefMap(signature_def=self.signature_defs)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_def_map)
        return response


class ServedModel:
    """One ``model_config`` entry: the versions loaded from its base path, their states, and request routing.

    Only the poll thread calls :meth:`refresh`; request threads call :meth:`serve` and :meth:`version_status`.
    """

    def __init__(self, config):
        self.config = config
        self._lock = threading.Condition()
        self._available = {}  # version -> ServableVersion, as requests see them
        self._states = {}  # version -> ModelVersionStatus, replaced (never mutated) on each change
        self._last_wanted = None  # to warn once when a model has no versions

    @property
    def name(self):
        return self.config.name

    def refresh(self):
        """Load the versions on disk that the version policy wants, then unload the ones it no longer wants.

        A version whose load failed is not retried while it stays on disk; removed and pushed again, it is.
        """
        on_disk = complete_versions(self.config.base_path)
        wanted = select_versions(self.config.model_version_policy, on_disk)
        if not wanted and self._last_wanted != wanted:
            log.warning("No versions of model %s found under %s", self.name, self.config.base_path)
        self._last_wanted = wanted
        with self._lock:
            failed = {v for v, status in self._states.items() if status.status.error_code}
            for version in failed - on_disk.keys():
                del self._states[version]
            to_load = wanted - self._available.keys() - failed
        for version in sorted(to_load, reverse=True):
            self._load(version, on_disk[version])
        with self._lock:
            to_unload = sorted(self._available.keys() - wanted)
            if wanted and not wanted & self._available.keys():
                # TF Serving's availability-preserving policy: until a wanted version loads, the newest other stays.
                to_unload = to_unload[:-1]
        for version in to_unload:
            self._unload(version)

    def _load(self, version, path):
        self._set_state(version, State.LOADING)
        try:
            servable = ServableVersion(self.name, version, path)
        except Exception as error:  # a broken version must not stop the server: it becomes that version's status
            log.error("Loading model %s version %d from %s failed: %s", self.name, version, path, error)
            self._set_state(version, State.END, error)
            return
        with self._lock:
            self._available[version] = servable
            self._set_state(version, State.AVAILABLE)
        log.info("Model %s version %d is available", self.name, version)

    def _unload(self, version):
        with self._lock:
            servable = self._available.pop(version)
            self._set_state(version, State.UNLOADING)
            self._lock.wait_for(lambda: servable.in_flight == 0)
            self._set_state(version, State.END)
        log.info("Model %s version %d is unloaded", self.name, version)

    def _set_state(self, version, state, error=None):
        status = get_model_status_pb2.ModelVersionStatus(version=version, state=state)
        if error is not None:
            status.status.error_code = getattr(error, "error_code", grpc.StatusCode.UNKNOWN.value[0])
            status.status.error_message = str(error)
        with self._lock:
            self._states[version] = status

    @contextlib.contextmanager
    def serve(self, model_spec):
        """Hold the version ``model_spec`` asks for (``version``, ``version_label`` or the latest) while in use."""
        with self._lock:
            servable = self._find(model_spec)
            servable.in_flight += 1
        try:
            yield servable
        finally:
            with self._lock:
                servable.in_flight -= 1
                self._lock.notify_all()

    def _find(self, model_spec):
        version = _requested_version(model_spec)
        if version is None and model_spec.version_label:
            version = self.config.version_labels.get(model_spec.version_label)
            if version is None:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {model_spec.version_label}"
                )
        if version is None:
            if not self._available:
                raise _servable_not_found(self.name)
            version = max(self._available)
        if version not in self._available:
            raise _servable_not_found(self.name, version)
        return self._available[version]

    def version_status(self, version=None):
        """GetModelStatus's ``ModelVersionStatus`` of ``version``, or of every version seen (newest first)."""
        with self._lock:
            if version is None:
                if not self._states:
                    raise _version_status_not_found(self.name)
                return [self._states[v] for v in sorted(self._states, reverse=True)]
            if version not in self._states:
                raise _version_status_not_found(self.name, version)
            return [self._states[version]]


def _answers_serving_errors(method):
    """Answer a :class:`ServingError` with its status code and message (rather than UNKNOWN)."""

    @functools.wraps(method)
    def answer(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, str(error))

    return answer


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's ``Predict`` and ``GetModelMetadata`` (Classify, Regress and MultiInference are UNIMPLEMENTED)."""

    def __init__(self, models):
        self._models = models

    def _serve(self, model_spec):
        model = self._models.get(model_spec.name)
        if model is None:
            raise _servable_not_found(model_spec.name, _requested_version(model_spec))
        return model.serve(model_spec)

    @_answers_serving_errors
    def Predict(self, request, context):
        with self._serve(request.model_spec) as servable:
            return servable.predict(request)

    @_answers_serving_errors
    def GetModelMetadata(self, request, context):
        if not request.HasField("model_spec"):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        if not request.metadata_field:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        with self._serve(request.model_spec) as servable:
            return servable.metadata()


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's ``GetModelStatus`` (HandleReloadConfigRequest is UNIMPLEMENTED)."""

    def __init__(self, models):
        self._models = models

    @_answers_serving_errors
    def GetModelStatus(self, request, context):
        if not request.HasField("model_spec"):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        name, version = request.model_spec.name, _requested_version(request.model_spec)
        if name not in self._models:
            raise _version_status_not_found(name, version)
        statuses = self._models[name].version_status(version)
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=statuses)


class ModelServer:
    """The embedded server: the models of ``config`` over TF Serving's gRPC API, reloaded as versions change.

    ``port=0`` picks a free port (see :attr:`address`). :meth:`start` loads the versions already on disk before
    it returns. Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with ModelServer(single_model_config("weibo_topics", "runs/serving/weibo_topics"), port=0) as server:
            outputs = ServingClient(server.address).predict("weibo_topics", {"texts": ["..."]})
    """

    def __init__(self, config, host="127.0.0.1", port=8500, poll_seconds=2.0, max_threads=16):
        self.models = {model.name: ServedModel(model) for model in config.model_config_list.config}
        self.poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="tfcl-serving-poll", daemon=True)
        # Refuse a port that another server holds, instead of sharing it through SO_REUSEPORT (gRPC's default).
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_threads, thread_name_prefix="tfcl-serving"),
            options=[("grpc.so_reuseport", 0), *_UNLIMITED_MESSAGES],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self.models), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.models), self._grpc)
        bracketed_host = f"[{host}]" if ":" in host else host
        self.port = self._grpc.add_insecure_port(f"{bracketed_host}:{port}")
        self.address = f"{bracketed_host}:{self.port}"

    def start(self):
        self._refresh()
        self._poller.start()
        self._grpc.start()
        return self

    def stop(self, grace=None):
        """Stop taking calls, let those in flight finish for up to ``grace`` seconds, and stop polling (a version
        still loading gets ``grace`` seconds too; the poller is a daemon thread, so it never holds up the exit)."""
        self._stopping.set()
        self._grpc.stop(grace).wait()
        if self._poller.is_alive():
            self._poller.join(grace)

    def wait(self):
        """Block until the server stops."""
        self._grpc.wait_for_termination()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _poll(self):
        while not self._stopping.wait(self.poll_seconds):
            self._refresh()

    def _refresh(self):
        for model in self.models.values():
            try:
                model.refresh()
            except Exception:  # one unreadable base path must not stop the others from updating
                log.exception("Polling model %s under %s failed", model.name, model.config.base_path)

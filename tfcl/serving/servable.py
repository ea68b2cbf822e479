"""One loaded version of a model: its SignatureDefs, input checks as TF Serving makes them, warm-up, and runs."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the text ops tfcl's text SavedModels use: NormalizeUTF8, ...)
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_log_pb2

from tfcl.serving.status import ServingError, invalid_argument, model_error

SIGNATURE_DEF_FIELD = "signature_def"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit
WARMUP_REQUEST_ITERATIONS = 2  # runs of each warm-up record (TF Serving's num_request_iterations)

log = logging.getLogger(__name__)


def _dtype_name(dtype_enum: int) -> str:
    return tf.dtypes.as_dtype(dtype_enum).name


def _braced(names: Iterable[str]) -> str:
    """Names as TF Serving lists them in messages: ``{a,b}``."""
    return "{" + ",".join(sorted(names)) + "}"


def _release_freed_memory() -> None:
    """Hand the heap pages freed by an unloaded version back to the system (glibc keeps them otherwise)."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


class ServableVersion:
    """A SavedModel version as the server runs it. Loading replays its warm-up requests, if it has any."""

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name = name
        self.version = version
        self.path = path
        saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        serving_graphs = [g for g in saved_model.meta_graphs if tf.saved_model.SERVING in g.meta_info_def.tags]
        if not serving_graphs:
            raise ValueError(f"{path} has no MetaGraph tagged {tf.saved_model.SERVING!r}")
        self.signature_defs: Mapping[str, meta_graph_pb2.SignatureDef] = serving_graphs[0].signature_def
        # The loaded object owns the variables the signature functions read: keep it alive with them.
        self._saved_model = tf.saved_model.load(str(path), tags=[tf.saved_model.SERVING])
        self._signatures = self._saved_model.signatures

    def signature_def(self, signature_name: str, rest: bool = False) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef, or TF Serving's error for an unknown name (its REST and gRPC messages differ)."""
        if signature_name not in self._signatures:
            if rest:
                raise invalid_argument(f'Serving signature name: "{signature_name}" not found in signature def')
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.'
            )
        return self.signature_defs[signature_name]

    def arrays_from_protos(
        self, signature_name: str, protos: Mapping[str, tensor_pb2.TensorProto]
    ) -> dict[str, np.ndarray]:
        """A gRPC request's tensors as arrays, checked against the signature (:meth:`check_inputs`)."""
        signature_def = self.signature_def(signature_name)
        check_input_names(signature_name, signature_def, protos)
        arrays = {}
        for alias, info in signature_def.inputs.items():
            proto = protos[alias]
            if proto.dtype != info.dtype:
                expected, provided = _dtype_name(info.dtype), _dtype_name(proto.dtype)
                raise invalid_argument(f"Expects input {alias!r} to be {expected} but {provided} is provided")
            try:
                arrays[alias] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as error:
                raise invalid_argument(f"tensor parsing error: {alias} ({error})") from error
        return self.check_inputs(signature_name, arrays)

    def check_inputs(self, signature_name: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inputs, once their names, batch, shapes and strings suit the signature; else INVALID_ARGUMENT.

        Beyond TF Serving's checks: an empty batch, a shape the signature does not allow and an empty or blank
        string (no post, no picture) are refused here rather than left to the model.
        """
        signature_def = self.signature_def(signature_name)
        check_input_names(signature_name, signature_def, arrays)
        for alias, info in signature_def.inputs.items():
            array = arrays[alias]
            if array.ndim and array.shape[0] == 0:
                raise invalid_argument(f"Input {alias!r} is an empty batch: shape {array.shape}")
            expected_shape = tf.TensorShape(info.tensor_shape)
            if not expected_shape.is_compatible_with(array.shape):
                raise invalid_argument(
                    f"Input {alias!r} has shape {array.shape}, incompatible with the signature's {expected_shape}"
                )
            if info.dtype == tf.string.as_datatype_enum:
                for index, item in enumerate(array.ravel()):
                    if not (item.decode("utf-8", "ignore") if isinstance(item, bytes) else str(item)).strip():
                        raise invalid_argument(f"Input {alias!r} item {index} is an empty or blank string")
        return dict(arrays)

    def output_aliases(self, signature_name: str, output_filter: Iterable[str] = ()) -> list[str]:
        """The outputs to answer with: ``output_filter`` checked as TF Serving does, or every output."""
        outputs = self.signature_defs[signature_name].outputs
        output_filter = list(output_filter)
        if not output_filter:
            return list(outputs)
        for index, alias in enumerate(output_filter):
            if alias not in outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} "
                    f"Outputs expected to be in the set {_braced(outputs)}."
                )
            if alias in output_filter[:index]:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
        return output_filter

    def run(self, signature_name: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a signature on checked inputs; the model's own errors keep their code (e.g. an undecodable picture)."""
        try:
            outputs = self._signatures[signature_name](**{alias: tf.constant(value) for alias, value in arrays.items()})
        except tf.errors.OpError as error:
            raise model_error(error.error_code, error.message) from error
        return {alias: tensor.numpy() for alias, tensor in outputs.items()}

    def warm_up(self) -> int:
        """Replay ``assets.extra/tf_serving_warmup_requests`` (PredictionLog records), as TF Serving does before
        a version becomes AVAILABLE; returns the number of records. A failing record fails the load.

        The records are read in full before any is run (the end of a TFRecord dataset slows the model call that
        follows it), and each is run :data:`WARMUP_REQUEST_ITERATIONS` times (TF Serving's
        ``num_request_iterations``): a signature's second call still costs more than later ones.
        """
        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        records = list(tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS + 1).as_numpy_iterator())
        if len(records) > MAX_WARMUP_RECORDS:
            raise ValueError(f"{path}: more than {MAX_WARMUP_RECORDS} warm-up records")
        requests = []
        for index, record in enumerate(records):
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            if entry.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"{path}: record {index} is a {entry.WhichOneof('log_type')}, not a predict_log")
            request = entry.predict_log.request
            signature_name = request.model_spec.signature_name or tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
            try:
                requests.append((signature_name, self.arrays_from_protos(signature_name, request.inputs)))
            except ServingError as error:
                raise ValueError(f"{path}: warm-up record {index} failed: {error}") from error
        for _ in range(WARMUP_REQUEST_ITERATIONS):
            for index, (signature_name, arrays) in enumerate(requests):
                try:
                    self.run(signature_name, arrays)
                except ServingError as error:
                    raise ValueError(f"{path}: warm-up record {index} failed: {error}") from error
        return len(requests)

    def metadata(self) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """The ``GetModelMetadataResponse``: every SignatureDef, packed as a ``SignatureDefMap``."""
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        signature_def_map = get_model_metadata_pb2.SignatureDefMap(signature_def=self.signature_defs)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_def_map)
        return response

    def release(self) -> None:
        """Drop the loaded SavedModel (once no call holds this version) and return its memory."""
        self._signatures = {}
        self._saved_model = None
        _release_freed_memory()


def check_input_names(signature_name: str, signature_def: meta_graph_pb2.SignatureDef, sent: Iterable[str]) -> None:
    """TF Serving's check that a request sends exactly the signature's inputs."""
    expected, sent = set(signature_def.inputs), set(sent)
    if sent != expected:
        raise invalid_argument(
            f"Request inputs {_braced(sent)} do not match the inputs of signature {signature_name!r} "
            f"{_braced(expected)}. Sent extra: {_braced(sent - expected)}. "
            f"Missing but required: {_braced(expected - sent)}."
        )

"""A gRPC client for TF Serving's PredictionService and ModelService: ``tensorflow_model_server`` or ``tfcl serve``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf.meta_graph_pb2 import SignatureDef
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

State = get_model_status_pb2.ModelVersionStatus.State


def _set_model_spec(
    model_spec: model_pb2.ModelSpec,
    name: str,
    version: int | None = None,
    version_label: str | None = None,
    signature_name: str | None = None,
) -> None:
    model_spec.name = name
    if version is not None:
        model_spec.version.value = version
    if version_label is not None:
        model_spec.version_label = version_label
    if signature_name is not None:
        model_spec.signature_name = signature_name


class ServingClient:
    """Predict, GetModelMetadata and GetModelStatus over one channel to ``address`` (``host:port``).

    Failed calls raise ``grpc.RpcError`` with TF Serving's status code (``error.code()``) and message
    (``error.details()``). A client may be shared by threads; for N separate connections (a load test with N
    clients) make N clients: each has its own channel and its own connection.
    """

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            address,
            # Own subchannel pool: without it, channels to one address share a connection.
            options=[("grpc.max_receive_message_length", -1), ("grpc.use_local_subchannel_pool", 1)],
        )
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def predict(self, model_name: str, inputs: Mapping[str, Any], **options: Any) -> dict[str, np.ndarray]:
        """Run a signature: ``{input: array-like}`` in, ``{output: numpy array}`` out.

        ``options`` are those of :meth:`predict_response`.
        """
        response = self.predict_response(model_name, inputs, **options)
        return {alias: tf.make_ndarray(tensor) for alias, tensor in response.outputs.items()}

    def predict_response(
        self,
        model_name: str,
        inputs: Mapping[str, Any],
        signature_name: str | None = None,
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Iterable[str] = (),
        timeout: float | None = None,
    ) -> predict_pb2.PredictResponse:
        """The ``PredictResponse`` itself; its ``model_spec`` names the version that answered.

        ``inputs`` values are numpy arrays, lists, strings or bytes (converted with ``tf.make_tensor_proto``) or
        ready ``TensorProto``s. ``signature_name`` defaults to the server's ``serving_default``; ``version`` or
        ``version_label`` pick a version (default: the latest); ``output_filter`` limits the outputs returned.
        """
        request = predict_pb2.PredictRequest(output_filter=output_filter)
        _set_model_spec(request.model_spec, model_name, version, version_label, signature_name)
        for alias, value in inputs.items():
            tensor = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
            request.inputs[alias].CopyFrom(tensor)
        return self._predictions.Predict(request, timeout=self._timeout(timeout))

    def signature_defs(
        self, model_name: str, version: int | None = None, timeout: float | None = None
    ) -> dict[str, SignatureDef]:
        """GetModelMetadata: ``{signature name: SignatureDef}`` of the model's latest (or given) version."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        _set_model_spec(request.model_spec, model_name, version)
        response = self._predictions.GetModelMetadata(request, timeout=self._timeout(timeout))
        signature_def_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_def_map)
        return dict(signature_def_map.signature_def)

    def model_status(self, model_name: str, version: int | None = None, timeout: float | None = None) -> dict[int, str]:
        """GetModelStatus: ``{version: state name}``, e.g. ``{2: "AVAILABLE", 1: "END"}``."""
        response = self.model_status_response(model_name, version, timeout)
        return {status.version: State.Name(status.state) for status in response.model_version_status}

    def model_status_response(
        self, model_name: str, version: int | None = None, timeout: float | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """The ``GetModelStatusResponse`` itself: each version's state, and its load error if any."""
        request = get_model_status_pb2.GetModelStatusRequest()
        _set_model_spec(request.model_spec, model_name, version)
        return self._models.GetModelStatus(request, timeout=self._timeout(timeout))

    def wait_until_available(
        self, model_name: str, version: int | None = None, timeout: float = 60.0, poll_seconds: float = 0.2
    ) -> list[int]:
        """Block until ``version`` (default: any version) of the model is AVAILABLE; returns the available versions.

        Waits through a server that is still starting (UNAVAILABLE) or has not found the model yet (NOT_FOUND).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = self.model_status(model_name)
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
                    raise
                states = {}
            available = sorted(v for v, state in states.items() if state == "AVAILABLE")
            if available and (version is None or version in available):
                return available
            if time.monotonic() > deadline:
                wanted = "a version" if version is None else f"version {version}"
                raise TimeoutError(
                    f"{wanted} of {model_name} not AVAILABLE at {self.address} after {timeout} s: {states}"
                )
            time.sleep(poll_seconds)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

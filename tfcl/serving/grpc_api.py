"""TF Serving's gRPC API: ``PredictionService`` (Predict, GetModelMetadata) and ``ModelService`` (GetModelStatus,
HandleReloadConfigRequest). Classify, Regress and MultiInference answer UNIMPLEMENTED."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfcl.serving.config import check_model_config
from tfcl.serving.models import ModelManager, requested_version
from tfcl.serving.servable import SIGNATURE_DEF_FIELD
from tfcl.serving.status import ServingError, invalid_argument, version_status_not_found

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _answers_serving_errors(method: _Method) -> _Method:
    """Answer a :class:`ServingError` with its status code and message (rather than UNKNOWN)."""

    @functools.wraps(method)
    def answer(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, str(error))

    return answer  # type: ignore[return-value]


def signature_name_of(model_spec: model_pb2.ModelSpec) -> str:
    return model_spec.signature_name or tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's ``Predict`` and ``GetModelMetadata``."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    @_answers_serving_errors
    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        signature_name = signature_name_of(request.model_spec)
        with self._manager.serve(request.model_spec) as servable:
            arrays = servable.arrays_from_protos(signature_name, request.inputs)
            aliases = servable.output_aliases(signature_name, request.output_filter)
            outputs = self._manager.run(servable, signature_name, arrays)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias]))
        return response

    @_answers_serving_errors
    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        with self._manager.serve(request.model_spec) as servable:
            return servable.metadata()


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's ``GetModelStatus`` and ``HandleReloadConfigRequest``."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    @_answers_serving_errors
    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        name, version = request.model_spec.name, requested_version(request.model_spec)
        model = self._manager.models.get(name)
        if model is None:
            raise version_status_not_found(name, version)
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=model.version_status(version))

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        """Serve ``request.config`` (a ``model_config_list``); the status says why a config was refused."""
        response = model_management_pb2.ReloadConfigResponse()
        if not request.config.HasField("model_config_list"):
            response.status.error_code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            response.status.error_message = "only a model_config_list is supported"
            return response
        try:
            check_model_config(request.config)
        except ValueError as error:
            response.status.error_code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            response.status.error_message = str(error)
            return response
        self._manager.reload_config(request.config)
        return response

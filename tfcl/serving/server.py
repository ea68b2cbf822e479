"""An embedded TF Serving: its gRPC and REST APIs, batching, config reloads, where ``tensorflow_model_server`` is
missing.

It serves the models of a TF Serving ``ModelServerConfig`` (each a base directory of ``<version>/saved_model.pb``)
with TF Serving's protos, status codes and error text where TF Serving's source has one. A poll thread watches
the base directories (and the ``--model_config_file``, when given): a new version is loaded and warmed up fully
before requests see it, and a version leaving the model's version policy is unloaded only after the calls in
flight on it have finished.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tfcl.serving.config import (
    BatchingOptions,
    ModelServerConfig,
    complete_versions,
    read_model_config,
    single_model_config,
)
from tfcl.serving.grpc_api import ModelService, PredictionService
from tfcl.serving.models import LoadRetries, ModelManager, ServedModel
from tfcl.serving.rest import RestServer
from tfcl.serving.status import ServingError

__all__ = [
    "ModelServer",
    "ServingError",
    "complete_versions",
    "read_model_config",
    "single_model_config",
]

_UNLIMITED_MESSAGES = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]

log = logging.getLogger(__name__)


class ModelServer:
    """The embedded server: the models of ``config`` over TF Serving's gRPC API (and REST, given ``rest_api_port``).

    ``port=0`` (or ``rest_api_port=0``) picks a free port (see :attr:`address`, :attr:`rest_address`).
    :meth:`start` loads the versions already on disk before it returns, and refuses a base path that holds a
    SavedModel without a version folder. ``model_config_file``: re-read every ``config_poll_seconds`` (when > 0)
    and served as it changes. Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with ModelServer(single_model_config("weibo_topics", "runs/serving/weibo_topics"), port=0) as server:
            outputs = ServingClient(server.address).predict("weibo_topics", {"texts": ["..."]})
    """

    def __init__(
        self,
        config: ModelServerConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 8500,
        rest_api_port: int | None = None,
        poll_seconds: float = 2.0,
        max_threads: int = 64,
        batching: BatchingOptions | None = None,
        model_config_file: str | os.PathLike | None = None,
        config_poll_seconds: float = 0.0,
        load_retries: LoadRetries | None = None,
    ) -> None:
        if (config is None) == (model_config_file is None):
            raise ValueError("give a config or a model_config_file, not both")
        self.model_config_file = Path(model_config_file) if model_config_file else None
        self._config_text = self.model_config_file.read_text() if self.model_config_file else None
        if config is None:
            config = read_model_config(self.model_config_file)
        self.manager = ModelManager(config, batching, load_retries)
        self.poll_seconds = poll_seconds
        self.config_poll_seconds = config_poll_seconds
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="tfcl-serving-poll", daemon=True)
        # Refuse a port that another server holds, instead of sharing it through SO_REUSEPORT (gRPC's default).
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_threads, thread_name_prefix="tfcl-serving"),
            options=[("grpc.so_reuseport", 0), *_UNLIMITED_MESSAGES],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self.manager), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.manager), self._grpc)
        bracketed_host = f"[{host}]" if ":" in host else host
        self.port = self._grpc.add_insecure_port(f"{bracketed_host}:{port}")
        self.address = f"{bracketed_host}:{self.port}"
        self._rest = RestServer(self.manager, host, rest_api_port, max_threads) if rest_api_port is not None else None
        self.rest_address = f"http://{bracketed_host}:{self._rest.port}" if self._rest else None

    @property
    def models(self) -> dict[str, ServedModel]:
        """``{name: ServedModel}`` as served now."""
        return self.manager.models

    def start(self) -> ModelServer:
        errors = self.manager.layout_errors()
        if errors:
            raise ValueError("; ".join(errors))
        self.manager.refresh()
        self._poller.start()
        self._grpc.start()
        if self._rest:
            self._rest.start()
        return self

    def stop(self, grace: float | None = None) -> bool:
        """Stop taking calls, let those in flight finish for up to ``grace`` seconds (None: as long as they take),
        then cancel the rest. Returns whether every call finished in time.

        A call cut off by ``grace`` is answered CANCELLED over gRPC and not at all over REST; its model run is not
        interrupted (TensorFlow cannot stop a running op), so a caller exiting the process should not wait for it.
        """
        self._stopping.set()
        deadline = None if grace is None else time.monotonic() + grace
        if self._rest:
            self._rest.stop_listening()
        self.manager.stop()
        stopped = self._grpc.stop(grace)
        drained = self.manager.wait_idle(grace)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        stopped.wait(remaining)
        if self._rest:
            self._rest.close()
        if self._poller.is_alive():
            self._poller.join(remaining)
        return drained

    def wait(self) -> None:
        """Block until the server stops."""
        self._grpc.wait_for_termination()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _poll(self) -> None:
        """Refresh the versions every ``poll_seconds`` and re-read the config file every ``config_poll_seconds``."""
        periods = {"versions": self.poll_seconds, "config": self.config_poll_seconds if self.model_config_file else 0}
        periods = {task: seconds for task, seconds in periods.items() if seconds > 0}
        if not periods:
            return
        due = {task: time.monotonic() + seconds for task, seconds in periods.items()}
        while not self._stopping.wait(max(0.0, min(due.values()) - time.monotonic())):
            now = time.monotonic()
            if "config" in due and now >= due["config"]:
                self._reload_config_file()
                due["config"] = now + periods["config"]
            if "versions" in due and now >= due["versions"]:
                self.manager.refresh()
                due["versions"] = now + periods["versions"]

    def _reload_config_file(self) -> None:
        """Serve the model config file anew if it changed; a file that does not parse keeps the current config."""
        try:
            text = self.model_config_file.read_text()
            if text == self._config_text:
                return
            self._config_text = text  # a broken file is reported once, not at every poll
            config = read_model_config(self.model_config_file)
        except (OSError, ValueError) as error:
            log.error("Model config %s not reloaded, the current one stays: %s", self.model_config_file, error)
            return
        self.manager.reload_config(config)

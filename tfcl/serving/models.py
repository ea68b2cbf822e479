"""The models a server serves: each version's lifecycle (load, warm up, retry, unload) and request routing.

A :class:`ServedModel` is one ``model_config`` entry; the :class:`ModelManager` holds them all, applies a new
config (``--model_config_file`` polling, ``HandleReloadConfigRequest``) and runs requests, through the batch
scheduler when batching is on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from tfcl.serving.batching import BatchScheduler
from tfcl.serving.config import (
    BatchingOptions,
    ModelConfig,
    ModelServerConfig,
    check_model_config,
    complete_versions,
    layout_error,
    select_versions,
)
from tfcl.serving.servable import WARMUP_REQUEST_ITERATIONS, ServableVersion
from tfcl.serving.status import invalid_argument, servable_not_found, version_status_not_found

State = get_model_status_pb2.ModelVersionStatus.State
ModelSpec = model_pb2.ModelSpec

log = logging.getLogger(__name__)


def requested_version(model_spec: ModelSpec) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


class LoadRetries:
    """TF Serving's ``--max_num_load_retries`` and ``--load_retry_interval_micros``: a version that fails to load
    is tried again ``max_retries`` times, ``interval_s`` apart (e.g. a version copied in place non-atomically)."""

    def __init__(self, max_retries: int = 5, interval_s: float = 60.0) -> None:
        if max_retries < 0 or interval_s < 0:
            raise ValueError("load retries and their interval must be >= 0")
        self.max_retries = max_retries
        self.interval_s = interval_s


class ServedModel:
    """One ``model_config`` entry: the versions loaded from its base path, their states, and request routing.

    Only the manager's poll (or reload) calls :meth:`refresh` and :meth:`unload_all`; request threads call
    :meth:`serve` and :meth:`version_status`.
    """

    def __init__(self, config: ModelConfig, retries: LoadRetries | None = None) -> None:
        self.config = config
        self.retries = retries or LoadRetries()
        self._lock = threading.Condition()
        self._available: dict[int, ServableVersion] = {}  # as requests see them
        self._in_flight: dict[int, int] = {}  # version -> calls holding it
        self._states: dict[int, get_model_status_pb2.ModelVersionStatus] = {}  # replaced, never mutated
        self._failures: dict[int, tuple[int, float]] = {}  # version -> (failed attempts, time of the last one)
        self._reported: str | None = None  # the last "nothing to serve" message logged, to log each once

    @property
    def name(self) -> str:
        return self.config.name

    def layout_error(self) -> str | None:
        return layout_error(self.name, self.config.base_path)

    def refresh(self) -> None:
        """Load the versions on disk that the version policy wants, then unload the ones it no longer wants.

        A version that failed to load is retried ``retries.max_retries`` times, ``retries.interval_s`` apart;
        after that only when it is removed and pushed again.
        """
        on_disk = complete_versions(self.config.base_path)
        wanted = select_versions(self.config.model_version_policy, on_disk)
        self._report_nothing_to_serve(wanted)
        now = time.monotonic()
        with self._lock:
            for version in self._failures.keys() - on_disk.keys():
                del self._failures[version]
                self._states.pop(version, None)
            to_load = [
                version
                for version in wanted - self._available.keys()
                if version not in self._failures
                or (
                    self._failures[version][0] <= self.retries.max_retries
                    and now - self._failures[version][1] >= self.retries.interval_s
                )
            ]
        for version in sorted(to_load, reverse=True):
            self._load(version, on_disk[version])
        with self._lock:
            to_unload = sorted(self._available.keys() - wanted)
            if wanted and not wanted & self._available.keys():
                # TF Serving's availability-preserving policy: until a wanted version loads, the newest other stays.
                to_unload = to_unload[:-1]
        for version in to_unload:
            self._unload(version)

    def unload_all(self) -> None:
        """Unload every version (the model left the config), each once the calls on it have finished."""
        with self._lock:
            versions = sorted(self._available)
        for version in versions:
            self._unload(version)

    def _report_nothing_to_serve(self, wanted: set[int]) -> None:
        """Log, once each time it changes, why the model has nothing to serve: a wrong layout, or no versions yet."""
        layout = self.layout_error() if not wanted else None
        message = layout or (
            f"No versions of model {self.name} found under {self.config.base_path}" if not wanted else None
        )
        if message and message != self._reported:
            log.log(logging.ERROR if layout else logging.WARNING, message)
        self._reported = message

    def _load(self, version: int, path: Path) -> None:
        self._set_state(version, State.LOADING)
        try:
            servable = ServableVersion(self.name, version, path)
            warmed = servable.warm_up()
        except Exception as error:  # a broken version must not stop the server: it becomes that version's status
            with self._lock:
                attempts = self._failures.get(version, (0, 0.0))[0] + 1
                self._failures[version] = (attempts, time.monotonic())
            retry = (
                f"; retrying in {self.retries.interval_s:g} s ({attempts} of {self.retries.max_retries + 1} attempts)"
                if attempts <= self.retries.max_retries
                else f"; not retried ({attempts} attempts): push it again to retry"
            )
            log.error("Loading model %s version %d from %s failed: %s%s", self.name, version, path, error, retry)
            self._set_state(version, State.END, error)
            return
        with self._lock:
            self._failures.pop(version, None)
            self._available[version] = servable
            self._in_flight[version] = 0
            self._set_state(version, State.AVAILABLE)
        log.info(
            "Model %s version %d is available (%d warm-up requests replayed %d times each)",
            self.name,
            version,
            warmed,
            WARMUP_REQUEST_ITERATIONS,
        )

    def _unload(self, version: int) -> None:
        with self._lock:
            servable = self._available.pop(version)
            self._set_state(version, State.UNLOADING)
            self._lock.wait_for(lambda: self._in_flight[version] == 0)
            del self._in_flight[version]
        servable.release()
        self._set_state(version, State.END)
        log.info("Model %s version %d is unloaded", self.name, version)

    def _set_state(self, version: int, state: int, error: Exception | None = None) -> None:
        status = get_model_status_pb2.ModelVersionStatus(version=version, state=state)
        status.status.SetInParent()  # TF Serving always sends a status: OK unless the version failed
        if error is not None:
            status.status.error_code = getattr(error, "error_code", grpc.StatusCode.UNKNOWN.value[0])
            status.status.error_message = str(error)
        with self._lock:
            self._states[version] = status

    @contextlib.contextmanager
    def serve(self, model_spec: ModelSpec) -> Iterator[ServableVersion]:
        """Hold the version ``model_spec`` asks for (``version``, ``version_label`` or the latest) while in use."""
        with self._lock:
            servable = self._find(model_spec)
            self._in_flight[servable.version] += 1
        try:
            yield servable
        finally:
            with self._lock:
                self._in_flight[servable.version] -= 1
                self._lock.notify_all()

    def _find(self, model_spec: ModelSpec) -> ServableVersion:
        version = requested_version(model_spec)
        if version is None and model_spec.version_label:
            version = self.config.version_labels.get(model_spec.version_label)
            if version is None:
                raise invalid_argument(f"Unrecognized servable version label: {model_spec.version_label}")
        if version is None:
            if not self._available:
                raise servable_not_found(self.name)
            version = max(self._available)
        if version not in self._available:
            raise servable_not_found(self.name, version)
        return self._available[version]

    def version_status(self, version: int | None = None) -> list[get_model_status_pb2.ModelVersionStatus]:
        """GetModelStatus's ``ModelVersionStatus`` of ``version``, or of every version seen (newest first)."""
        with self._lock:
            if version is None:
                if not self._states:
                    raise version_status_not_found(self.name)
                return [self._states[v] for v in sorted(self._states, reverse=True)]
            if version not in self._states:
                raise version_status_not_found(self.name, version)
            return [self._states[version]]


class ModelManager:
    """The served models of a ``ModelServerConfig``, kept in step with their base paths and with config reloads."""

    def __init__(
        self,
        config: ModelServerConfig,
        batching: BatchingOptions | None = None,
        retries: LoadRetries | None = None,
    ) -> None:
        check_model_config(config)
        self.retries = retries or LoadRetries()
        self.models: dict[str, ServedModel] = {
            model.name: ServedModel(model, self.retries) for model in config.model_config_list.config
        }
        self.batcher = BatchScheduler(batching) if batching else None
        self._update_lock = threading.RLock()  # one refresh or reload at a time
        self._calls = threading.Condition()
        self._in_flight = 0

    def layout_errors(self) -> list[str]:
        """Models whose base path can never be served as laid out (see :func:`tfcl.serving.config.layout_error`)."""
        return [error for model in self.models.values() if (error := model.layout_error())]

    def refresh(self) -> None:
        """Poll every model's base path (one unreadable base path does not stop the others from updating)."""
        with self._update_lock:
            for model in list(self.models.values()):
                try:
                    model.refresh()
                except Exception:
                    log.exception("Polling model %s under %s failed", model.name, model.config.base_path)

    def reload_config(self, config: ModelServerConfig) -> None:
        """Serve ``config`` from now on: new models are loaded before they are routed to, models no longer in it are
        unloaded once their calls finish, and the others take their new version policy and labels."""
        check_model_config(config)
        with self._update_lock:
            new = {model.name: model for model in config.model_config_list.config}
            kept = {
                name: served
                for name, served in self.models.items()
                if name in new and new[name].base_path == served.config.base_path
            }
            models = {name: kept.get(name) or ServedModel(new[name], self.retries) for name in new}
            for name, served in models.items():
                served.config = new[name]
                served.refresh()
            removed = [served for name, served in self.models.items() if kept.get(name) is not served]
            self.models = models
            for served in removed:
                served.unload_all()
            log.info("Model config reloaded: serving %s", ", ".join(models) or "no models")

    def model(self, name: str, version: int | None = None) -> ServedModel:
        model = self.models.get(name)
        if model is None:
            raise servable_not_found(name, version)
        return model

    @contextlib.contextmanager
    def serve(self, model_spec: ModelSpec) -> Iterator[ServableVersion]:
        """Hold the version a request asks for while it runs (an unload waits for it)."""
        model = self.model(model_spec.name, requested_version(model_spec))
        with self._calls:
            self._in_flight += 1
        try:
            with model.serve(model_spec) as servable:
                yield servable
        finally:
            with self._calls:
                self._in_flight -= 1
                self._calls.notify_all()

    def run(self, servable: ServableVersion, signature_name: str, arrays: Mapping[str, np.ndarray]) -> dict:
        """Run checked inputs, merged with concurrent requests when batching is on."""
        if self.batcher is None:
            return servable.run(signature_name, arrays)
        key = (servable, signature_name, tuple((alias, a.shape[1:], a.dtype.str) for alias, a in arrays.items()))
        return self.batcher.submit(key, lambda merged: servable.run(signature_name, merged), arrays).result()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for the calls in flight to finish; whether they did."""
        with self._calls:
            return self._calls.wait_for(lambda: self._in_flight == 0, timeout)

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()

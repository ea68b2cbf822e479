"""Training callbacks: collapse guard and periodic frozen-encoder evaluation."""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any

import keras
import numpy as np

from tfcl.eval.protocols import evaluate_encoder


class CollapseGuard(keras.callbacks.Callback):
    """Warns when the per-dimension std of normalised embeddings falls below ``fraction`` of the healthy
    1/sqrt(d) (or the effective rank below ``min_effective_rank``), and stops training if ``stop`` is set."""

    def __init__(
        self, embedding_dim: int, fraction: float = 0.2, min_effective_rank: float = 1.5, stop: bool = False
    ) -> None:
        super().__init__()
        self.threshold = fraction / math.sqrt(embedding_dim)
        self.min_effective_rank = min_effective_rank
        self.stop = stop
        self.collapsed_at = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        std, rank = logs.get("embedding_std"), logs.get("effective_rank")
        if std is None or rank is None:
            raise ValueError("CollapseGuard needs a model that logs embedding_std and effective_rank.")
        if std < self.threshold or rank < self.min_effective_rank:
            self.collapsed_at = epoch
            warnings.warn(
                f"Representation collapse at epoch {epoch + 1}: embedding_std {std:.4f} "
                f"(threshold {self.threshold:.4f}), effective_rank {rank:.2f}.",
                RuntimeWarning,
                stacklevel=2,
            )
            if self.stop:
                self.model.stop_training = True


class EncoderEvaluation(keras.callbacks.Callback):
    """Evaluates the frozen encoder with a protocol (``knn`` or ``linear``) every ``every`` epochs and adds
    ``<protocol>_top1`` to the epoch logs (so TensorBoard, CSVLogger and checkpoints see it)."""

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray],
        protocol: str = "knn",
        every: int = 1,
        **protocol_kwargs,
    ) -> None:
        super().__init__()
        self.train, self.test = train, test
        self.protocol, self.every, self.protocol_kwargs = protocol, every, protocol_kwargs
        self.history = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        result = evaluate_encoder(self.model.encoder, self.train, self.test, self.protocol, **self.protocol_kwargs)
        self.history.append((epoch + 1, result))
        if logs is not None:
            logs[f"{self.protocol}_top1"] = result.top1
        print(f"\nepoch {epoch + 1}: {result}")


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the first epoch that finishes after ``seconds`` of training time.

    Logs ``train_seconds`` (wall clock) and ``train_cpu_seconds`` (this process's CPU time divided by the number
    of cores). ``clock="cpu"`` budgets the latter: on a machine shared with other jobs it is the wall time the
    same work takes with every core to itself (or more, when the work does not keep every core busy).
    """

    def __init__(self, seconds: float, clock: str = "wall") -> None:
        super().__init__()
        if clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', not {clock!r}.")
        self.seconds, self.clock = seconds, clock
        self.elapsed = {"wall": 0.0, "cpu": 0.0}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = {"wall": time.perf_counter(), "cpu": cpu_seconds()}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.elapsed["wall"] += time.perf_counter() - self._start["wall"]
        self.elapsed["cpu"] += cpu_seconds() - self._start["cpu"]
        if logs is not None:
            logs["train_seconds"], logs["train_cpu_seconds"] = self.elapsed["wall"], self.elapsed["cpu"]
        if self.elapsed[self.clock] >= self.seconds:
            self.model.stop_training = True


def cpu_seconds() -> float:
    """CPU time of this process (all threads) divided by the number of cores it may run on."""
    return time.process_time() / len(os.sched_getaffinity(0))

"""Request batching as TF Serving's batching layer does it: concurrent requests merged into one model call.

Requests for the same model version, signature and input shape (all but the batch dimension) share a queue. A
queue's open batch takes requests until the next one would exceed ``max_batch_size`` rows; it is run when full,
when ``batch_timeout_micros`` have passed since its first request, or at once when that timeout is 0 and a batch
thread is free. ``num_batch_threads`` threads run batches, the oldest ready one first. A queue holding
``max_enqueued_batches`` batches refuses new requests with UNAVAILABLE, as TF Serving does.

The merged inputs are concatenated along the batch dimension and the outputs split back by rows. When the merged
call fails (one bad item fails its whole batch, as in TF Serving), each request in it is run again alone, so that
only the requests with bad items get the error.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future

import grpc
import numpy as np

from tfcl.serving.config import BatchingOptions
from tfcl.serving.status import ServingError, invalid_argument

Arrays = Mapping[str, np.ndarray]
RunBatch = Callable[[Arrays], dict[str, np.ndarray]]


class _Task:
    def __init__(self, arrays: Arrays) -> None:
        self.arrays = arrays
        self.rows = len(next(iter(arrays.values())))
        self.future: Future = Future()


class _Batch:
    def __init__(self, run: RunBatch) -> None:
        self.run = run
        self.tasks: list[_Task] = []
        self.rows = 0
        self.opened = time.monotonic()


class BatchScheduler:
    """Merges concurrent :meth:`submit` calls per queue key and runs them on ``options.num_batch_threads`` threads."""

    def __init__(self, options: BatchingOptions) -> None:
        self.options = options
        self._timeout = options.batch_timeout_micros / 1e6
        self._queues: dict[Hashable, collections.deque[_Batch]] = {}
        self._condition = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"tfcl-batch-{index}", daemon=True)
            for index in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: Hashable, run: RunBatch, arrays: Arrays) -> Future:
        """Queue one request's inputs (all with the same number of rows) for ``run``; its outputs come back in the
        future. ``key`` names the queue: requests only share a batch when their keys are equal."""
        task = _Task(arrays)
        if task.rows > self.options.max_batch_size:
            raise invalid_argument(
                f"Task size {task.rows} is larger than maximum input batch size {self.options.max_batch_size}"
            )
        with self._condition:
            if self._stopping:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "The server is stopping")
            queue = self._queues.setdefault(key, collections.deque())
            if not queue or queue[-1].rows + task.rows > self.options.max_batch_size:
                if len(queue) >= self.options.max_enqueued_batches:
                    raise ServingError(
                        grpc.StatusCode.UNAVAILABLE,
                        "The batch scheduling queue to which this task was submitted is full",
                    )
                queue.append(_Batch(run))
            batch = queue[-1]
            batch.tasks.append(task)
            batch.rows += task.rows
            self._condition.notify()
        return task.future

    def stop(self) -> None:
        """Refuse new requests; the batches already queued still run."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    def _ready(self, queue: collections.deque[_Batch], now: float) -> bool:
        head = queue[0]
        return (
            len(queue) > 1
            or head.rows >= self.options.max_batch_size
            or now - head.opened >= self._timeout
            or self._stopping
        )

    def _next_batch(self) -> _Batch | None:
        with self._condition:
            while True:
                now = time.monotonic()
                ready = [(queue[0].opened, key) for key, queue in self._queues.items() if self._ready(queue, now)]
                if ready:
                    key = min(ready)[1]
                    queue = self._queues[key]
                    batch = queue.popleft()
                    if not queue:
                        del self._queues[key]  # a queue keeps its model version alive: drop it once empty
                    return batch
                if self._stopping and not self._queues:
                    return None
                waits = [queue[0].opened + self._timeout - now for queue in self._queues.values()]
                self._condition.wait(min(waits) if waits else None)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            _run_batch(batch)


def _run_batch(batch: _Batch) -> None:
    tasks = [task for task in batch.tasks if task.future.set_running_or_notify_cancel()]
    if len(tasks) == 1:
        _run_alone(batch.run, tasks[0])
        return
    try:
        merged = {alias: np.concatenate([task.arrays[alias] for task in tasks]) for alias in tasks[0].arrays}
        outputs = batch.run(merged)
        ends = np.cumsum([task.rows for task in tasks])
        rows = sum(task.rows for task in tasks)
        for alias, value in outputs.items():
            if np.ndim(value) == 0 or len(value) != rows:
                raise ServingError(
                    grpc.StatusCode.INTERNAL, f"Batched output {alias!r} has shape {np.shape(value)}, not {rows} rows"
                )
        for task, start, end in zip(tasks, ends - [task.rows for task in tasks], ends):
            task.future.set_result({alias: value[start:end] for alias, value in outputs.items()})
    except Exception:  # one bad item fails the merged call: run each request alone, so only its own request fails
        for task in tasks:
            _run_alone(batch.run, task)


def _run_alone(run: RunBatch, task: _Task) -> None:
    try:
        task.future.set_result(run(task.arrays))
    except Exception as error:  # the request's own error, answered to it
        task.future.set_exception(error)

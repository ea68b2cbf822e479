"""Request batching: the scheduler's merging, timeout, limits and back-pressure, and batched answers over gRPC."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from serving_models import MODEL_NAME, png, push

from tfcl.serving import BatchingOptions, ModelServer, ServingClient, ServingError, single_model_config
from tfcl.serving import batching as batching_module
from tfcl.serving.batching import BatchScheduler


class RecordingModel:
    """A 'model' doubling its input, recording the batch sizes it ran; a row of -1 is a bad item."""

    def __init__(self, gate=None):
        self.batch_sizes = []
        self.gate = gate

    def __call__(self, arrays):
        if self.gate is not None:
            self.gate.wait(30)
        self.batch_sizes.append(len(arrays["x"]))
        if (arrays["x"] == -1).any():
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "bad item")
        return {"y": arrays["x"] * 2}


def submit_together(scheduler, model, values):
    """Submit one request per value from as many threads at once; their futures."""
    barrier = threading.Barrier(len(values))

    def submit(value):
        barrier.wait()
        return scheduler.submit("queue", model, {"x": np.array([value])})

    with ThreadPoolExecutor(len(values)) as pool:
        return list(pool.map(submit, values))


def test_concurrent_requests_are_merged_up_to_max_batch_size_and_split_back():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, batch_timeout_micros=2_000_000, num_batch_threads=1))
    model = RecordingModel()
    futures = submit_together(scheduler, model, list(range(8)))
    assert [future.result(30)["y"].tolist() for future in futures] == [[2 * value] for value in range(8)]
    assert model.batch_sizes == [4, 4]  # full batches run without waiting for the 2 s timeout
    scheduler.stop()


def test_a_batch_that_is_not_full_runs_after_the_timeout():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=100, batch_timeout_micros=200_000, num_batch_threads=1))
    model = RecordingModel()
    started = time.monotonic()
    assert scheduler.submit("queue", model, {"x": np.array([3, 4])}).result(30)["y"].tolist() == [6, 8]
    assert time.monotonic() - started >= 0.2 and model.batch_sizes == [2]
    scheduler.stop()


def test_a_request_larger_than_max_batch_size_is_invalid_argument():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=2))
    with pytest.raises(ServingError) as raised:
        scheduler.submit("queue", RecordingModel(), {"x": np.arange(3)})
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(raised.value) == "Task size 3 is larger than maximum input batch size 2"
    scheduler.stop()


def test_a_full_queue_answers_unavailable():
    gate = threading.Event()
    options = BatchingOptions(max_batch_size=1, num_batch_threads=1, max_enqueued_batches=1)
    scheduler = BatchScheduler(options)
    model = RecordingModel(gate)
    running = scheduler.submit("queue", model, {"x": np.array([1])})
    deadline = time.monotonic() + 30
    while running.running() is False and time.monotonic() < deadline:  # the only thread holds it
        time.sleep(0.01)
    queued = scheduler.submit("queue", model, {"x": np.array([2])})
    with pytest.raises(ServingError) as raised:
        scheduler.submit("queue", model, {"x": np.array([3])})
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert "queue to which this task was submitted is full" in str(raised.value)
    gate.set()
    assert running.result(30)["y"].tolist() == [2] and queued.result(30)["y"].tolist() == [4]
    scheduler.stop()


def test_one_bad_item_fails_only_its_own_request():
    """The merged call fails on the bad item; each request is then run alone, so the others still get answers."""
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=3, batch_timeout_micros=2_000_000, num_batch_threads=1))
    model = RecordingModel()
    good, bad, other = submit_together(scheduler, model, [5, -1, 7])
    assert good.result(30)["y"].tolist() == [10] and other.result(30)["y"].tolist() == [14]
    with pytest.raises(ServingError, match="bad item"):
        bad.result(30)
    assert model.batch_sizes[0] == 3 and sorted(model.batch_sizes[1:]) == [1, 1, 1]
    scheduler.stop()


def test_requests_with_different_queue_keys_are_not_merged():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, batch_timeout_micros=100_000, num_batch_threads=2))
    model = RecordingModel()
    first = scheduler.submit("a", model, {"x": np.array([1])})
    second = scheduler.submit("b", model, {"x": np.array([2])})
    assert first.result(30)["y"].tolist() == [2] and second.result(30)["y"].tolist() == [4]
    assert model.batch_sizes == [1, 1]
    scheduler.stop()


BATCHING_FILE = """
max_batch_size { value: 16 }
batch_timeout_micros { value: 5000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 100 }
"""


def test_batching_parameters_file_is_tf_servings_text_proto(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text(BATCHING_FILE)
    assert BatchingOptions.read(path) == BatchingOptions(16, 5000, 2, 100)
    path.write_text("max_batch_size { value: 0 }")
    with pytest.raises(ValueError, match="max_batch_size must be at least 1"):
        BatchingOptions.read(path)
    path.write_text("pad_variable_length_inputs: true")
    with pytest.raises(ValueError, match="pad_variable_length_inputs not supported"):
        BatchingOptions.read(path)


REQUESTS = (
    [
        ("predict_topics", {"texts": np.array(texts, dtype=object)})
        for texts in (["猫 狗"], ["足球 电影 音乐", "没有 这些 词"], ["电影"], ["猫", "狗 狗", "音乐 足球"])
    ]
    + [("score", {"features": np.arange(4 * rows, dtype=np.float32).reshape(rows, 4) / 7}) for rows in (1, 2, 3)]
    + [("image_size", {"images": np.array([png(5, 7), png(3, 2)], dtype=object)})]
)


def test_batched_answers_equal_unbatched_answers(tmp_path, monkeypatch):
    """Strings and integers are identical; floats equal to float32 rounding: a merged batch goes through kernels
    chosen for its size, which may sum in another order (seen on a loaded machine: one value 1 ulp apart), as with
    TF Serving's own batching."""
    merged = []  # the number of requests in each batch run
    run_batch = batching_module._run_batch
    monkeypatch.setattr(
        batching_module, "_run_batch", lambda batch: merged.append(len(batch.tasks)) or run_batch(batch)
    )
    push(tmp_path / MODEL_NAME, 1)
    config = single_model_config(MODEL_NAME, tmp_path / MODEL_NAME)
    batching = BatchingOptions(max_batch_size=16, batch_timeout_micros=20_000, num_batch_threads=2)
    with ModelServer(config, port=0) as plain, ModelServer(config, port=0, batching=batching) as batched:
        with ServingClient(plain.address) as client:
            expected = [client.predict(MODEL_NAME, inputs, signature_name=name) for name, inputs in REQUESTS * 2]

        def call(index):
            name, inputs = (REQUESTS * 2)[index]
            with ServingClient(batched.address) as client:
                return client.predict(MODEL_NAME, inputs, signature_name=name)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(len(expected))))
    assert max(merged) > 1 and sum(merged) == len(expected)  # requests were merged, and each ran once
    for answer, reference in zip(answers, expected, strict=True):
        assert answer.keys() == reference.keys()
        for alias, value in answer.items():
            assert value.dtype == reference[alias].dtype and value.shape == reference[alias].shape
            if value.dtype.kind == "f":
                np.testing.assert_allclose(value, reference[alias], rtol=1e-6, atol=1e-7, err_msg=alias)
            else:
                assert value.tolist() == reference[alias].tolist()

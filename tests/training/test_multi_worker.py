"""Two real workers on 127.0.0.1 under ``MultiWorkerMirroredStrategy`` train as one worker does with the same global
batch (negatives gathered across workers, synchronised batch norm), and a cluster that lost a worker resumes.

Each task is tests/training/multi_worker_task.py in its own process, started by
:func:`tfcl.cli.launch.start_workers` with its ``TF_CONFIG``; every wait is bounded.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfcl.cli.launch import start_workers, stop, wait_for_workers

TASK = str(Path(__file__).with_name("multi_worker_task.py"))
ROOT = str(Path(__file__).parents[2])
TIMEOUT = 600  # seconds for one run of a task; on 2 shared cores a run takes about a minute
EPOCHS, STEPS_PER_EPOCH, BATCH_SIZE = 3, 2, 32
# Two replicas sum gradients, gather embeddings and synchronise batch-norm moments in a different order than one
# device computes them; AdamW's normalised steps carry those last-bit differences into the weights. So the final
# weights are compared relative to how far training moved them: |w_2 - w_1| <= UPDATE_TOLERANCE |w_1 - w_0|.
LOSS_TOLERANCE, UPDATE_TOLERANCE = 1e-3, 0.01

pytestmark = pytest.mark.slow


def environment():
    return {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}


def task_command(data_dir, out_dir, *methods, epochs=EPOCHS):
    return [
        sys.executable,
        TASK,
        "--data",
        str(data_dir),
        "--out",
        str(out_dir),
        "--methods",
        *methods,
        "--epochs",
        str(epochs),
        "--steps-per-epoch",
        str(STEPS_PER_EPOCH),
        "--batch-size",
        str(BATCH_SIZE),
    ]


def run_workers(command, workers, log_dir):
    """Run ``command`` as a cluster of ``workers`` (each with its TF_CONFIG); fails with the logs unless all succeed.

    The one-worker reference is a cluster of one: Keras' ``fit`` under any ``tf.distribute`` strategy first draws a
    batch from a pass over the data it then discards, so a reshuffling data set (CD-TOM's) starts in the order of
    its second pass, and a run on the default strategy would see other batches.
    """
    processes = start_workers(command, workers, log_dir=log_dir, env=environment())
    codes = wait_for_workers(processes, TIMEOUT)
    logs = {index: read_log(log_dir, index) for index in range(workers)}
    assert codes == [0] * workers, f"exit codes {codes}:\n" + "\n".join(log[-3000:] for log in logs.values())
    return logs


def read_log(log_dir, index):
    return (Path(log_dir) / f"worker-{index}.log").read_text()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Pre-augmented SimCLR views of MNIST digits, and CD-TOM TFRecords and vocabulary from the sample corpus."""
    import tensorflow as tf

    from tfcl.data import weibo, weibo_ingest
    from tfcl.data.images import image_splits
    from tfcl.data.weibo_sample import write_sample
    from tfcl.registry import get_recipe

    data = tmp_path_factory.mktemp("multi_worker_data")
    images = image_splits("mnist_5k")[0][0][: STEPS_PER_EPOCH * BATCH_SIZE]  # one pass per epoch
    augment = get_recipe("simclr").views(images.shape[1], images.shape[-1])
    view_1, view_2 = (np.asarray(view) for view in augment(tf.image.convert_image_dtype(images, tf.float32)))
    np.savez(data / "simclr_views.npz", view_1=view_1, view_2=view_2)

    write_sample(data / "sample.jsonl", posts=400)
    posts = list({post.id: post for post in weibo.read_posts(data / "sample.jsonl", dead_letters=[])}.values())
    with tf.io.TFRecordWriter(str(data / "cdtom_train.tfrecord.gz"), "GZIP") as writer:
        for post in posts:
            writer.write(weibo.to_example(post).SerializeToString())
    counts = collections.Counter(topic for post in posts for topic in post.topics)
    _, vocabulary = weibo_ingest.topic_tables([(topic, (n, 0)) for topic, n in counts.items()], min_count=2)
    (data / "topic_vocab.tsv").write_text(vocabulary)
    return data


@pytest.fixture(scope="module")
def one_worker(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("one_worker")
    run_workers(task_command(data_dir, out, "simclr", "cdtom"), 1, out / "logs")
    return out


@pytest.fixture(scope="module")
def two_workers(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("two_workers")
    logs = run_workers(task_command(data_dir, out, "simclr", "cdtom"), 2, out / "logs")
    return out, logs


def history(out_dir):
    return json.loads((Path(out_dir) / "history.json").read_text())


def weights(out_dir, name="weights"):
    """The weights a task saved, as one flat vector: ``weights`` (final) or ``initial``."""
    with np.load(Path(out_dir) / f"{name}.npz") as arrays:
        return np.concatenate([arrays[f"arr_{index}"].ravel() for index in range(len(arrays.files))])


def assert_same_training(run_dir, reference_dir):
    """Same start, and final weights within UPDATE_TOLERANCE of the reference's distance travelled."""
    start, reference = weights(reference_dir, "initial"), weights(reference_dir)
    np.testing.assert_array_equal(weights(run_dir, "initial"), start)
    travelled = np.linalg.norm(reference - start)
    assert travelled > 0
    assert np.linalg.norm(weights(run_dir) - reference) <= UPDATE_TOLERANCE * travelled


@pytest.mark.parametrize("method", ["simclr", "cdtom"])
def test_two_workers_train_as_one_worker_with_the_same_global_batch(method, one_worker, two_workers):
    out, _ = two_workers
    reference, distributed = history(one_worker / method), history(out / method)
    assert len(distributed["loss"]) == len(reference["loss"]) == EPOCHS
    np.testing.assert_allclose(distributed["loss"], reference["loss"], rtol=LOSS_TOLERANCE)
    assert_same_training(out / method, one_worker / method)


def test_only_the_chief_writes_into_the_run_folder(two_workers):
    out, logs = two_workers
    for method in ("simclr", "cdtom"):
        chief_dir = logs[0].split(f"worker 0 trains {method} into ")[1].splitlines()[0]
        worker_dir = logs[1].split(f"worker 1 trains {method} into ")[1].splitlines()[0]
        assert chief_dir == str(out / method)
        assert not worker_dir.startswith(str(out)) and not os.path.exists(worker_dir)  # a temporary folder, gone
        assert {"model.keras", "history.json", "weights.npz", "logs"} <= set(os.listdir(out / method))
        assert not (out / method / "backup").exists()  # BackupAndRestore removes it after a finished run


def test_a_cluster_that_lost_a_worker_resumes_from_the_last_checkpoint(data_dir, two_workers, tmp_path):
    out, _ = two_workers
    command = task_command(data_dir, tmp_path, "simclr")
    metadata = tmp_path / "simclr" / "backup" / "latest" / "state.json"  # tfcl.checkpoint.RunBackup's newest
    workers = start_workers(command, 2, log_dir=tmp_path / "logs-first", env=environment())
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 1):
            assert all(worker.poll() is None for worker in workers), read_log(tmp_path / "logs-first", 0)[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within the timeout"
            time.sleep(0.1)
        workers[1].kill()
    finally:
        stop(workers)
    resumed_from = json.loads(metadata.read_text())["epoch"]
    assert 1 <= resumed_from < EPOCHS
    assert not (tmp_path / "simclr" / "history.json").exists()  # the first run did not finish

    run_workers(command, 2, tmp_path / "logs-again")
    # One pass over the data per epoch: the resumed epochs see the batches the uninterrupted run saw.
    assert len(history(tmp_path / "simclr")["loss"]) == EPOCHS - resumed_from
    np.testing.assert_allclose(
        history(tmp_path / "simclr")["loss"], history(out / "simclr")["loss"][resumed_from:], rtol=LOSS_TOLERANCE
    )
    np.testing.assert_allclose(weights(tmp_path / "simclr"), weights(out / "simclr"), rtol=0, atol=1e-6)

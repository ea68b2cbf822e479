"""``tf.distribute`` strategies by name, for the CLI and the TFX Trainer, and the multi-worker plumbing: each
worker's ``TF_CONFIG`` and where each worker writes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str = "default", tpu: str | None = None) -> Any:
    """``default`` (one device), ``mirrored`` (all local GPUs, or CPU), ``multi_worker`` (reads TF_CONFIG, see
    :func:`tf_configs`), ``tpu`` (``tpu`` is the TPU name/address; empty means the local TPU VM)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return multi_worker_strategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}.")


def multi_worker_strategy() -> Any:
    """``MultiWorkerMirroredStrategy`` (cluster from ``TF_CONFIG``) on which replicas train on exactly the global
    batches one device would, and which Keras 3's ``fit`` can drive.

    * Data: every worker reads the same stream of global batches and keeps its replicas' rows of each (replica
      ``r`` of ``R``: rows ``[r B/R, (r+1) B/R)``), so gathered negatives come in the one-device order. TF's
      auto-sharding instead splits elements or files before batching (e.g. before a ``flat_map``), so the
      global batches differ from a one-device run. The cost: each worker prepares every batch, as under
      ``AutoShardPolicy.DATA``. Global batches must have a size divisible by ``R`` (``drop_remainder``).
    * Keras 3.12's ``fit`` (keras-team/keras#20585) reduces one distributed batch, a tuple of views, to build the
      model and averages each step's scalar logs along ``axis=0``: ``reduce`` takes nested values and reduces a
      scalar along no axis.
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def experimental_distribute_dataset(
            self, dataset: tf.data.Dataset, options: tf.distribute.InputOptions | None = None
        ) -> tf.distribute.DistributedDataset:
            replicas = self.num_replicas_in_sync
            sizes = {spec.shape[0] for spec in tf.nest.flatten(dataset.element_spec)} - {None}
            if len(sizes) > 1 or any(size % replicas for size in sizes):
                raise ValueError(
                    f"{replicas} replicas need global batches of one size divisible by {replicas} "
                    f"(batch with drop_remainder=True); the data set yields {dataset.element_spec}"
                )

            def replica_batches(context: tf.distribute.InputContext) -> tf.data.Dataset:
                local = replicas // context.num_input_pipelines
                first = context.input_pipeline_id * local

                def rows_of_local_replicas(*element: tf.Tensor) -> Any:
                    element = element[0] if len(element) == 1 else element
                    return tf.nest.map_structure(
                        lambda t: tf.reshape(t, tf.concat([[replicas, -1], tf.shape(t)[1:]], 0))[first : first + local],
                        element,
                    )

                return dataset.map(rows_of_local_replicas).unbatch()

            return self.distribute_datasets_from_function(replica_batches, options)

        def reduce(self, reduce_op: tf.distribute.ReduceOp | str, value: Any, axis: int | None) -> Any:
            def reduce_one(one: Any) -> Any:
                scalar = self.experimental_local_results(one)[0].shape.rank == 0
                return super(MultiWorkerMirroredStrategy, self).reduce(reduce_op, one, None if scalar else axis)

            return tf.nest.map_structure(reduce_one, value)

    return MultiWorkerMirroredStrategy()


def tf_configs(addresses: list[str]) -> list[dict]:
    """The ``TF_CONFIG`` of each worker of a cluster of ``addresses`` (``host:port``); worker 0 is the chief."""
    if not addresses:
        raise ValueError("a cluster needs at least one worker address")
    cluster = {"worker": list(addresses)}
    return [{"cluster": cluster, "task": {"type": "worker", "index": index}} for index in range(len(addresses))]


def is_chief(strategy: Any) -> bool:
    """Whether this task keeps what it writes: the chief (worker 0) of a multi-worker cluster, or a lone task."""
    return strategy.extended.should_checkpoint


@contextlib.contextmanager
def task_out_dir(out_dir: str | os.PathLike, strategy: Any) -> Iterator[str]:
    """The folder this task trains into: ``out_dir`` on the chief; on the other workers a local temporary folder,
    deleted afterwards.

    Under ``MultiWorkerMirroredStrategy`` every worker runs the same callbacks and saves (saving is collective), so
    each needs a folder of its own. A worker's folder starts with a copy of the chief's ``backup/`` (``out_dir`` must
    be on a file system every worker sees): a cluster started again after a failure resumes every worker from the
    chief's last finished epoch.
    """
    if is_chief(strategy):
        yield str(out_dir)
        return
    import tensorflow as tf

    from tfcl.checkpoint import BACKUP_DIR, backup_dir

    with tempfile.TemporaryDirectory(prefix=f"tfcl-worker{task_index()}-") as scratch:
        chief_backup = os.path.join(out_dir, BACKUP_DIR)
        for folder, _, files in tf.io.gfile.walk(chief_backup):  # local, or a shared file system such as gs://
            target = backup_dir(scratch) / os.path.relpath(folder, chief_backup)
            target.mkdir(parents=True, exist_ok=True)
            for name in files:
                tf.io.gfile.copy(os.path.join(folder, name), str(target / name))
        yield scratch


def task_index() -> int:
    """This worker's index in ``TF_CONFIG`` (0 without one)."""
    return int(json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {}).get("index", 0))

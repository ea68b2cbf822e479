"""Cross-replica helpers: the same code runs on one device and inside ``tf.distribute`` replica contexts."""

from __future__ import annotations

import tensorflow as tf


def _replica_context() -> tf.distribute.ReplicaContext | None:
    """The active replica context, or None outside ``strategy.run`` / on the default strategy."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return None
    return ctx


def num_replicas() -> int:
    ctx = _replica_context()
    return 1 if ctx is None else ctx.num_replicas_in_sync


def replica_id() -> tf.Tensor:
    """This replica's index as an int32 tensor (0 on one device)."""
    ctx = _replica_context()
    return tf.constant(0, tf.int32) if ctx is None else tf.cast(ctx.replica_id_in_sync_group, tf.int32)


def gather(x: tf.Tensor) -> tf.Tensor:
    """Concatenate ``x`` from every replica along axis 0, keeping gradients (identity on one device).

    ``ReplicaContext.all_gather`` is differentiable: each replica receives the slice of the summed upstream
    gradient that belongs to its own input, so negatives gathered here train every replica's encoder.
    """
    ctx = _replica_context()
    # ``tf.identity`` places ``x`` on this replica's device: MultiWorkerMirroredStrategy gathers to the input's
    # device, which a tensor straight from the data set (e.g. CD-TOM's topic ids) does not have.
    return x if ctx is None else ctx.all_gather(tf.identity(x), axis=0)


def all_reduce_sum(x: tf.Tensor) -> tf.Tensor:
    """Sum ``x`` over replicas (identity on one device)."""
    ctx = _replica_context()
    return x if ctx is None else ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def global_indices(local_batch_size: int | tf.Tensor) -> tf.Tensor:
    """Indices of this replica's rows inside the gathered (global) batch."""
    start = replica_id() * local_batch_size
    return start + tf.range(local_batch_size)

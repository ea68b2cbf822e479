"""MoCo v2: queries from the online network, keys from the momentum target, negatives from a queue of keys."""
import keras
import tensorflow as tf

from tfcl import distributed
from tfcl.losses import moco_info_nce
from tfcl.models.momentum import MomentumContrastiveModel


def _unit_rows(shape, dtype=None):
    return tf.math.l2_normalize(keras.random.normal(shape, dtype=dtype), axis=-1)


@keras.saving.register_keras_serializable(package="tfcl")
class MoCo(MomentumContrastiveModel):
    """He et al. 2020, Chen et al. 2020 (v2: MLP head, τ 0.2, blur augmentation).

    q = online(view 1), k = target(view 2); the keys of the whole global batch (gathered across replicas) are
    enqueued after the loss, oldest keys dropping out (FIFO). The queue is a non-trainable variable of the
    model, saved and restored with it. Batch-norm leakage in the key encoder is handled by synchronised batch
    norm, not shuffle-BN: build the encoder and projector with ``synchronized`` batch norm under a strategy;
    the target copies that configuration.
    """

    def __init__(self, encoder, projector, temperature=0.2, queue_size=65536, base_momentum=0.99,
                 total_steps=None, **kwargs):
        super().__init__(encoder, projector, base_momentum=base_momentum, total_steps=total_steps, **kwargs)
        self.temperature = temperature
        self.queue_size = queue_size

    def build(self, input_shape):
        super().build(input_shape)
        dim = self.projection_shape(input_shape)[-1]
        self.queue = self.add_weight(shape=(self.queue_size, dim), initializer=_unit_rows, trainable=False,
                                     dtype="float32", autocast=False, name="queue")

    def compute_contrastive_loss(self, views, training):
        queries = tf.math.l2_normalize(tf.cast(self.project(views[0], training=training), tf.float32), axis=-1)
        keys = tf.math.l2_normalize(tf.cast(self.target_project(views[1], training=training), tf.float32), axis=-1)
        loss = moco_info_nce(queries, keys, self.queue, self.temperature)
        if training:
            newest_first = tf.concat([distributed.gather(keys), self.queue], axis=0)
            self.queue.assign(newest_first[:self.queue_size])
        return loss, (queries, keys)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "queue_size": self.queue_size}

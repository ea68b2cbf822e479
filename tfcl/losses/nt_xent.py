"""NT-Xent (SimCLR): 2N views, each anchor's positive is its pair, negatives are all other views."""

from __future__ import annotations

import tensorflow as tf

from tfcl import distributed
from tfcl.losses.info_nce import info_nce


def nt_xent(z1: tf.Tensor, z2: tf.Tensor, temperature: float = 0.5) -> tf.Tensor:
    """NT-Xent over the global batch; ``z1``/``z2`` are this replica's L2-normalised views [n, d].

    Candidates are both views of every image on every replica (gathered with gradient), so each anchor
    has 1 positive and 2N-2 negatives for a global batch of N images.
    """
    n = tf.shape(z1)[0]
    all_z1, all_z2 = distributed.gather(z1), distributed.gather(z2)
    global_n = tf.shape(all_z1)[0]
    candidates = tf.concat([all_z1, all_z2], axis=0)
    own = distributed.global_indices(n)
    anchors = tf.concat([z1, z2], axis=0)
    positive_ids = tf.concat([own + global_n, own], axis=0)
    self_ids = tf.concat([own, own + global_n], axis=0)
    exclude = tf.one_hot(self_ids, 2 * global_n, on_value=True, off_value=False)
    return info_nce(anchors, candidates, positive_ids, temperature, exclude=exclude)

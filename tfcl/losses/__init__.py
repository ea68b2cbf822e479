"""Losses as pure functions of embeddings (one loss per file)."""

from tfcl.losses.barlow_twins import barlow_twins
from tfcl.losses.byol import negative_cosine
from tfcl.losses.clip import clip_loss
from tfcl.losses.cosent import cosent_loss
from tfcl.losses.info_nce import info_nce
from tfcl.losses.moco import moco_info_nce
from tfcl.losses.nt_xent import nt_xent
from tfcl.losses.simcse import simcse_loss
from tfcl.losses.swav import sinkhorn, swapped_prediction
from tfcl.losses.symmetric_info_nce import symmetric_info_nce
from tfcl.losses.wenlan import wenlan_loss

__all__ = [
    "barlow_twins",
    "clip_loss",
    "cosent_loss",
    "info_nce",
    "moco_info_nce",
    "negative_cosine",
    "nt_xent",
    "simcse_loss",
    "sinkhorn",
    "swapped_prediction",
    "symmetric_info_nce",
    "wenlan_loss",
]

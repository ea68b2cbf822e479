"""Losses as pure functions of embeddings (one loss per file)."""
from tfcl.losses.info_nce import info_nce
from tfcl.losses.nt_xent import nt_xent

__all__ = ["info_nce", "nt_xent"]

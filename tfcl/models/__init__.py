"""Contrastive methods: one file per method over the base classes in ``base.py``."""
from tfcl.models.base import ContrastiveModel
from tfcl.models.simclr import SimCLR

__all__ = ["ContrastiveModel", "SimCLR"]

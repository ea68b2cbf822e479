"""Contrastive methods: one file per method over the base classes in ``base.py``."""

from tfcl import heads  # noqa: F401  (registers MLPHead, which saved models reference)
from tfcl.models.barlow_twins import BarlowTwins
from tfcl.models.base import ContrastiveModel
from tfcl.models.byol import BYOL
from tfcl.models.cdtom import CDTOM
from tfcl.models.clip import CLIP
from tfcl.models.cosent import CoSENT
from tfcl.models.image_text import ImageTextModel
from tfcl.models.moco import MoCo
from tfcl.models.momentum import MomentumContrastiveModel
from tfcl.models.simclr import SimCLR
from tfcl.models.simcse import SimCSE
from tfcl.models.simsiam import SimSiam
from tfcl.models.swav import SwAV
from tfcl.models.wenlan import WenLan

__all__ = [
    "BYOL",
    "BarlowTwins",
    "CDTOM",
    "CLIP",
    "CoSENT",
    "ContrastiveModel",
    "ImageTextModel",
    "MoCo",
    "MomentumContrastiveModel",
    "SimCLR",
    "SimCSE",
    "SimSiam",
    "SwAV",
    "WenLan",
]

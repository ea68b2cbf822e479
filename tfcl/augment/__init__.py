"""View generation: augmentation presets made of keras-cv layers."""

from tfcl.augment.image import MultiView, byol_augmentation, simclr_augmentation, view_dataset, view_pipeline
from tfcl.augment.multicrop import multicrop_augmentation

__all__ = ["MultiView", "byol_augmentation", "simclr_augmentation", "view_dataset", "view_pipeline"]
__all__ += ["multicrop_augmentation"]

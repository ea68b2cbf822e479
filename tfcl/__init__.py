"""tfcl: one contrastive system, many methods (Keras 3 on TensorFlow).

Importing ``tfcl`` is cheap: it imports neither TFX nor Apache Beam, and submodules load on first use.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# tfcl and keras-cv need ``tf.keras`` to be Keras 3. tensorflow_transform (imported with TFX) sets
# TF_USE_LEGACY_KERAS=1, which makes ``tf.keras`` Keras 2 in processes started after it (a CLI call, a worker);
# with 0 it keeps working, using the tf_keras package for itself.
os.environ["TF_USE_LEGACY_KERAS"] = "0"

__version__ = "0.1.0"

_SUBMODULES = (
    "apps",
    "augment",
    "data",
    "encoders",
    "eval",
    "heads",
    "losses",
    "metrics",
    "models",
    "export",
    "recipes",
    "serving",
    "text",
)


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"tfcl.{name}")
    raise AttributeError(f"module 'tfcl' has no attribute {name!r}")

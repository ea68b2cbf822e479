"""tfcl: one contrastive system, many methods (Keras 3 on TensorFlow).

Importing ``tfcl`` is cheap: it imports neither TFX nor Apache Beam, and submodules load on first use.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("augment", "data", "encoders", "eval", "heads", "losses", "metrics", "models", "export", "recipes", "serving", "text")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"tfcl.{name}")
    raise AttributeError(f"module 'tfcl' has no attribute {name!r}")

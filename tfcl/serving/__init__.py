"""TF Serving for tfcl's SavedModels: an embedded server (gRPC and REST APIs, batching, config reloads, warm-up)
for machines without ``tensorflow_model_server``, and a gRPC client for both.

Importing this package imports TensorFlow, gRPC and tornado; ``import tfcl`` alone does not.
"""

from tfcl.serving.client import ServingClient
from tfcl.serving.config import BatchingOptions, read_model_config, single_model_config
from tfcl.serving.models import LoadRetries
from tfcl.serving.server import ModelServer
from tfcl.serving.status import ServingError

__all__ = [
    "BatchingOptions",
    "LoadRetries",
    "ModelServer",
    "ServingClient",
    "ServingError",
    "read_model_config",
    "single_model_config",
]

"""TF Serving over gRPC: an embedded server for machines without ``tensorflow_model_server``, and a client for both.

Importing this package imports TensorFlow and gRPC; ``import tfcl`` alone does not.
"""

from tfcl.serving.client import ServingClient
from tfcl.serving.server import ModelServer, ServingError, read_model_config, single_model_config

__all__ = ["ModelServer", "ServingClient", "ServingError", "read_model_config", "single_model_config"]

"""Data sets (fetched into a local cache) and loaders returning ``tf.data`` pipelines."""
from tfcl.data.cache import DatasetNotFoundError, data_dir, dataset_dir

__all__ = ["DatasetNotFoundError", "data_dir", "dataset_dir"]

"""Representation-quality metrics measured while training."""

from tfcl.metrics.collapse import alignment, collapse_metrics, effective_rank, embedding_std, uniformity

__all__ = ["alignment", "collapse_metrics", "effective_rank", "embedding_std", "uniformity"]

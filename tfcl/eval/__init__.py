"""Evaluation of frozen encoders (kNN, linear probe) and of text/retrieval models."""

from tfcl.eval.protocols import PROTOCOLS, EvalResult, evaluate_encoder, extract_features, knn, linear_probe

__all__ = ["PROTOCOLS", "EvalResult", "evaluate_encoder", "extract_features", "knn", "linear_probe"]

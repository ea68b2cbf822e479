"""Applications of trained models: Weibo topic prediction and similar-post search (:mod:`tfcl.apps.weibo`)."""
from tfcl.apps.weibo import SimilarPosts, TopicPredictor, export_weibo_model

__all__ = ["SimilarPosts", "TopicPredictor", "export_weibo_model"]

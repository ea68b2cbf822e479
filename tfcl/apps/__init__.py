"""Applications of trained models: Weibo topic prediction and similar-post search (:mod:`tfcl.apps.weibo`), post ↔
picture retrieval (:mod:`tfcl.apps.pictures`)."""

from tfcl.apps.pictures import PicturesForPost, PostsForPicture, export_picture_model
from tfcl.apps.weibo import SimilarPosts, TopicPredictor, export_weibo_model

__all__ = [
    "PicturesForPost",
    "PostsForPicture",
    "SimilarPosts",
    "TopicPredictor",
    "export_picture_model",
    "export_weibo_model",
]

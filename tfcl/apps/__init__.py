"""Applications of trained models: Weibo topic prediction and similar-post search (:mod:`tfcl.apps.weibo`), post ↔
picture retrieval (:mod:`tfcl.apps.pictures`)."""

from tfcl.apps.pictures import (
    PicturesForPost,
    PostsForPicture,
    export_image_text,
    export_picture_model,
    export_wclip,
)
from tfcl.apps.weibo import SimilarPosts, TopicPredictor, export_cdtom, export_topic_vocabulary, export_weibo_model

__all__ = [
    "PicturesForPost",
    "PostsForPicture",
    "SimilarPosts",
    "TopicPredictor",
    "export_cdtom",
    "export_image_text",
    "export_picture_model",
    "export_topic_vocabulary",
    "export_wclip",
    "export_weibo_model",
]

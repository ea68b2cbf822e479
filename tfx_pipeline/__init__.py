"""The TFX pipeline that trains CD-TOM on Weibo exports and pushes it to a TF Serving model base.

``pipeline.create_pipeline`` builds it, ``runner`` runs it locally (``LocalDagRunner``, SQLite ML Metadata) or
compiles it for Kubeflow Pipelines / Vertex AI, ``components`` holds its own components and ``trainer_module`` the
Trainer's ``run_fn``. ``tfcl run`` is the main job built on it. Importing this package imports nothing heavy.
"""

"""tfcl: contrastive representation learning for Weibo-style posts, topics and pictures."""
from setuptools import find_packages, setup

setup(
    name="tfcl",
    version="0.1.0",
    description="Contrastive representation learning on Keras 3 / TensorFlow, with a TFX pipeline and TF Serving.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["tfcl", "tfcl.*", "tfx_pipeline", "tfx_pipeline.*", "serving", "serving.*"]),
    install_requires=[
        "tensorflow>=2.16,<2.17",
        "keras>=3.5,<4",
        "keras-cv==0.9.0",
        "keras-hub>=0.25,<0.26",
        "keras-nlp>=0.25,<0.26",
        "tensorflow-text>=2.16,<2.17",
        "numpy<2",
        "scikit-learn",
        "scipy",
    ],
    extras_require={
        "pipeline": ["tfx==1.16.0", "apache-beam", "dill", "kfp-pipeline-spec==0.2.2"],
        "serving": ["tensorflow-serving-api>=2.16,<2.17", "grpcio"],
        "bench": ["matplotlib"],
        "test": ["pytest", "pytest-timeout"],
    },
    entry_points={"console_scripts": ["tfcl=tfcl.cli:main"]},
)

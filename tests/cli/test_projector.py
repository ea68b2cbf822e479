"""TensorBoard projector files: vectors, metadata and a sprite the projector plugin reads."""

import numpy as np
import pytest
from PIL import Image

from tfcl.cli.projector import SPRITE_CELL, write_projector


def test_projector_files_match_the_sample(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(5, 3))
    images = np.zeros((5, 28, 28, 1), np.uint8)
    rows = [[label, f"第{label}条\t博文\n"] for label in range(5)]
    config = write_projector(tmp_path, vectors, ["label", "text"], rows, images)
    text = config.read_text()
    assert 'tensor_path: "projector/vectors.tsv"' in text and 'image_path: "projector/sprite.png"' in text
    assert np.allclose(np.loadtxt(tmp_path / "projector" / "vectors.tsv"), vectors, atol=1e-5)
    metadata = (tmp_path / "projector" / "metadata.tsv").read_text().splitlines()
    assert metadata[0] == "label\ttext" and metadata[1] == "0\t第0条 博文" and len(metadata) == 6
    assert Image.open(tmp_path / "projector" / "sprite.png").size == (3 * SPRITE_CELL, 3 * SPRITE_CELL)


def test_mismatched_sample_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must match"):
        write_projector(tmp_path, np.zeros((3, 2)), ["label"], [[0], [1]])

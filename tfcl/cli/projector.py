"""TensorBoard's embedding projector files for a sample of a trained model's evaluation set.

``LOG_DIR/projector_config.pbtxt`` points the projector at ``projector/vectors.tsv`` (one embedding a line),
``projector/metadata.tsv`` (a header, then the label / topic and text of each) and, for pictures,
``projector/sprite.png`` (every picture in one grid, row by row). ``tensorboard --logdir LOG_DIR``, tab Projector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_SIZE = 500
SPRITE_CELL = 32  # pixels per picture in the sprite


def tsv_cell(value: Any) -> str:
    """A metadata cell: tabs and line breaks would break the TSV, so they become spaces."""
    return " ".join(str(value).split())


def sprite(images: np.ndarray, cell: int = SPRITE_CELL) -> Any:
    """uint8 ``[n, h, w, c]`` pictures as one square PIL grid of ``cell``-pixel squares, row by row."""
    from PIL import Image

    side = math.ceil(math.sqrt(len(images)))
    grid = Image.new("RGB", (side * cell, side * cell), "white")
    for index, image in enumerate(images):
        picture = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).convert("RGB")
        grid.paste(picture.resize((cell, cell)), ((index % side) * cell, (index // side) * cell))
    return grid


def write_projector(
    log_dir: str | Path,
    vectors: np.ndarray,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    images: np.ndarray | None = None,
) -> Path:
    """Write the projector files of ``vectors`` (``[n, d]``) with metadata ``rows`` under ``header`` and, if given,
    a sprite of ``images`` (uint8 ``[n, h, w, c]``, in the same order); returns the config's path."""
    if len(vectors) != len(rows) or (images is not None and len(images) != len(rows)):
        raise ValueError(f"{len(vectors)} vectors, {len(rows)} metadata rows and pictures must match")
    log_dir = Path(log_dir)
    folder = log_dir / "projector"
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "vectors.tsv", np.asarray(vectors, np.float32), delimiter="\t", fmt="%.5f")
    lines = ["\t".join(header)] + ["\t".join(tsv_cell(value) for value in row) for row in rows]
    (folder / "metadata.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = [
        "embeddings {",
        '  tensor_name: "evaluation sample"',
        '  tensor_path: "projector/vectors.tsv"',
        '  metadata_path: "projector/metadata.tsv"',
    ]
    if images is not None:
        sprite(images).save(folder / "sprite.png")
        config += [
            "  sprite {",
            '    image_path: "projector/sprite.png"',
            f"    single_image_dim: {SPRITE_CELL}",
            f"    single_image_dim: {SPRITE_CELL}",
            "  }",
        ]
    path = log_dir / "projector_config.pbtxt"
    path.write_text("\n".join(config + ["}"]) + "\n")
    return path

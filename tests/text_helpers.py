"""Shared pieces of the text tests: real data (skipped when not fetched) and a tiny text tower."""

import pytest

from tfcl.data import DatasetNotFoundError
from tfcl.text import TextEncoder


def require(loader, *args):
    """``loader(*args)``, or skip the test when its data set has not been fetched (``tfcl data fetch``)."""
    try:
        return loader(*args)
    except DatasetNotFoundError as error:
        pytest.skip(str(error))


def tiny_text_encoder(vocabulary, **overrides):
    """A one-layer, 16-wide random BERT over ``vocabulary`` with sequence length 16."""
    config = dict(sequence_length=16, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32)
    return TextEncoder.from_vocabulary(vocabulary, **{**config, **overrides})

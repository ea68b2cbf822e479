"""Shared pieces of the text tests: real data (skipped when not fetched), a tiny text tower, and a tiny CD-TOM on a
few posts with their topics."""

import keras
import pytest

from tfcl.data import DatasetNotFoundError
from tfcl.models.cdtom import CDTOM
from tfcl.text import TextEncoder
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS, WEIBO_TOKENS


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


POSTS = [  # (document, topics)
    ("今天投篮三分，球队赢了比赛", ("篮球比赛",)),
    ("早睡早起多喝水，注意饮食清淡", ("春季养生",)),
    ("火箭发射成功，卫星进入轨道", ("航天探索", "周末愉快")),
    ("猫咪撒娇打呼，铲屎官好幸福", ("萌宠日常",)),
    ("扣篮加时，主场球迷沸腾", ("篮球比赛",)),
    ("泡脚散步，作息规律", ("春季养生", "每日打卡")),
    ("空间站宇航员返回", ("航天探索",)),
    ("狗狗遛弯，毛孩子可爱", ("萌宠日常", "周末愉快")),
]
TOPICS = ["篮球比赛", "春季养生", "航天探索", "萌宠日常", "周末愉快", "每日打卡"]


def character_vocabulary(texts):
    """A WordPiece vocabulary of the BERT and Weibo reserved tokens and every character of ``texts``."""
    return [*BERT_SPECIAL_TOKENS, *WEIBO_TOKENS, *sorted(set("".join(texts)))]


VOCABULARY = character_vocabulary([document for document, _ in POSTS] + TOPICS)


def tiny_cdtom(shared=False, dropout=0.0, temperature=0.1):
    encoder = tiny_text_encoder(VOCABULARY, dropout=dropout)
    if shared:
        return CDTOM(encoder, keras.layers.Dense(8), temperature=temperature)
    return CDTOM(
        encoder,
        keras.layers.Dense(8),
        tiny_text_encoder(VOCABULARY, sequence_length=8, dropout=dropout),
        keras.layers.Dense(8),
        temperature=temperature,
    )

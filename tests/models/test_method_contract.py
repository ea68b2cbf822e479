"""The contract every registered method keeps (:mod:`tfcl.registry`), on small models and batches: one train step
with a finite loss, a ``.keras`` round trip with identical outputs and weights, and two replicas equal to one
device. A method added to the registry is tested here without a line of this file changing: its batch is made
from its ``inputs`` kind and its model by its own ``build_model``."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from reference import assert_distributed_equivalence

import tfcl.models  # noqa: F401  (registers the model classes for loading)
from tfcl.registry import RECIPES, method_names
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS, WEIBO_TOKENS

SIZE, BATCH = 16, 8
TEXTS = [
    "猫咪在窗台上晒太阳",
    "今天的咖啡很好喝",
    "地铁又晚点了",
    "樱花开了",
    "周末去爬山",
    "新手机到了",
    "下雨天读书",
    "晚饭吃火锅",
]
TOPICS = ["萌宠", "咖啡", "通勤", "春天", "户外", "数码", "阅读", "美食"]
VOCABULARY = [*BERT_SPECIAL_TOKENS, *WEIBO_TOKENS, *sorted(set("".join(TEXTS + TOPICS)))]
# Small versions of each kind of method (dropout off: per-replica dropout masks differ by design).
SMALL = {
    "images": dict(stem_filters=8, stage_filters=(8,), stage_blocks=(1,)),
    **dict.fromkeys(
        ("texts", "text_triplets", "scored_text_pairs"),
        dict(sequence_length=16, num_layers=1, hidden_dim=16, intermediate_dim=32, dropout=0.0),
    ),
    "picture_texts": dict(
        image_size=SIZE,
        text_length=12,
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
        projection_dim=8,
        queue_size=16,
    ),
    "document_topics": dict(
        document_length=16,
        topic_length=8,
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
        projection_dim=8,
    ),
}
SYNCHRONIZED_BN = {"images", "picture_texts"}  # the kinds whose builders take synchronized_bn (batch norm)
# Barlow's loss on 8 samples is in the hundreds, so one SGD(lr=1) step moves weights by up to ~10³ and float32 sums
# in another order across replicas differ in proportion to the step (seen on CI: 0.47 on a step of 1268, 3.7e-4 of it).
STEP_TOLERANCE = {"barlow": 2e-3}
SLOW = {"byol", "swav", "wenlan"}  # two momentum copies / prototypes: over a few seconds each on 2 CPU cores
# Entries whose small model here is another entry's (their options choose data, not layers; checked below): their
# cases run in the slow suite only.
SAME_MODEL_AS = {"wclip": "clip", "simcse-weibo": "simcse", "simcse-sup-paraphrase": "simcse-sup"}
# Entries whose two replicas another file checks in the default suite, on tiny models too: SimCLR in test_simclr.py,
# SimCSE (unsupervised and supervised) in test_simcse.py, CLIP in test_image_text.py, CD-TOM (shared and separate
# towers) in test_cdtom.py.
TWO_REPLICAS_ELSEWHERE = {"simclr", "simcse", "simcse-sup", "clip", "cdtom"}


def small_model(recipe, synchronized_bn=False):
    options = dict(SMALL[recipe.inputs])
    if recipe.inputs in SYNCHRONIZED_BN:
        options["synchronized_bn"] = synchronized_bn
    first = 1 if recipe.inputs == "images" else VOCABULARY  # channels, or the text vocabulary
    return recipe.build_model(first, **options)


def tokens(tokenize, texts):
    return {name: value.numpy() for name, value in tokenize(tf.constant(texts)).items()}


def small_batch(recipe, model):
    """What a training batch of ``recipe``'s kind holds, as NumPy (so that a strategy can split it)."""
    rng = np.random.default_rng(0)
    if recipe.inputs == "images":
        images = rng.random((BATCH, SIZE, SIZE, 1), dtype=np.float32)
        return tuple(np.asarray(view) for view in recipe.views(SIZE, 1)(tf.constant(images)))
    if recipe.inputs == "texts":
        return (tokens(model.encoder.tokenize, TEXTS),)
    if recipe.inputs == "text_triplets":  # (anchor, positive, hard negative)
        return tuple(tokens(model.encoder.tokenize, TEXTS[k:] + TEXTS[:k]) for k in range(3))
    if recipe.inputs == "scored_text_pairs":  # (first, second, score 0–5)
        scores = rng.uniform(0, 5, BATCH).astype(np.float32)
        return tokens(model.encoder.tokenize, TEXTS), tokens(model.encoder.tokenize, TEXTS[1:] + TEXTS[:1]), scores
    if recipe.inputs == "picture_texts":
        return rng.integers(0, 256, (BATCH, SIZE, SIZE, 3), dtype=np.uint8), tokens(model.text_encoder.tokenize, TEXTS)
    topic_ids = np.stack([np.arange(BATCH), -np.ones(BATCH, int)], axis=1).astype(np.int32)
    return tokens(model.encoder.tokenize, TEXTS), tokens(model.topic_tower.tokenize, TOPICS), topic_ids


def methods(slow=SLOW):
    slow = set(slow) | set(SAME_MODEL_AS)
    return [pytest.param(name, marks=pytest.mark.slow) if name in slow else name for name in method_names()]


def test_every_kind_of_method_has_a_small_batch():
    assert {recipe.inputs for recipe in RECIPES.values()} <= set(SMALL)
    assert {"simclr", "moco", "swav", "byol", "simsiam", "barlow", "simcse", "clip", "wenlan", "cdtom", "wclip"} <= set(
        RECIPES
    )
    assert {"simcse-weibo", "simcse-sup", "cosent"} <= set(RECIPES)


def without_names(config):
    """A Keras config with every layer's ``name`` left out (names are numbered in the order layers are made)."""
    if isinstance(config, dict):
        return {key: without_names(value) for key, value in config.items() if key != "name"}
    if isinstance(config, list):
        return [without_names(value) for value in config]
    return config


@pytest.mark.parametrize("name, twin", SAME_MODEL_AS.items())
def test_an_entry_left_to_the_slow_suite_builds_the_same_small_model_as_its_twin(name, twin):
    models = [small_model(RECIPES[entry]) for entry in (name, twin)]
    assert RECIPES[name].inputs == RECIPES[twin].inputs and type(models[0]) is type(models[1])
    assert without_names(models[0].get_config()) == without_names(models[1].get_config())


# WenLan's round trip after training steps (queues, momentum towers): tests/models/test_image_text.py, default suite.
@pytest.mark.parametrize("name", methods(slow={"wenlan"}))
def test_one_step_has_a_finite_loss_and_the_saved_model_gives_the_same_outputs(name, tmp_path):
    recipe = RECIPES[name]
    keras.utils.set_random_seed(0)
    model = small_model(recipe)
    batch = small_batch(recipe, model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]), history
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert type(restored) is type(model)
    np.testing.assert_array_equal(restored(batch[0]).numpy(), model(batch[0]).numpy())
    assert len(restored.weights) == len(model.weights)
    for saved, kept in zip(restored.weights, model.weights):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(kept), err_msg=kept.path)


@pytest.mark.parametrize("name", methods(slow=SLOW | TWO_REPLICAS_ELSEWHERE))
def test_two_replicas_equal_one_device(name):
    """One SGD step on the same global batch from the same weights: loss and every variable after it."""
    recipe = RECIPES[name]
    keras.utils.set_random_seed(0)
    batch = small_batch(recipe, small_model(recipe))
    assert_distributed_equivalence(
        lambda: small_model(recipe, synchronized_bn=True), batch, atol=1e-4, step_tolerance=STEP_TOLERANCE.get(name)
    )

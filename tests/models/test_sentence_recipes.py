"""The SimCSE-family recipes (tfcl/recipes/simcse.py) on tiny shared-data files written here in the real formats:
the NLI triplet and STS-B pair pipelines, Weibo post documents, preset towers, and supervised and CoSENT runs
through ``tfcl train``."""

import gzip
import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from text_helpers import require

from tfcl import registry
from tfcl.cli import main
from tfcl.data.text import bert_chinese_vocab_path
from tfcl.models import CoSENT, SimCSE
from tfcl.recipes.base import NotEnoughData
from tfcl.recipes.simcse import build_simcse, training_columns, weibo_documents
from tfcl.text import NgramEncoder, TextEncoder

TINY = {
    **{"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32, "sequence_length": 16},
    **{"ngram_buckets": 1024, "ngram_dim": 16, "max_ngrams": 32},
}
PREMISES = ["今天下午北京下了大雨", "他在超市买了三斤苹果", "小猫在沙发上睡着了", "会议推迟到下周一举行"]
STS_TRAIN = [
    ("一个男人在弹吉他", "一个人在弹吉他", 4.2),
    ("一只狗在草地上跑", "一只狗在奔跑", 3.8),
    ("女人在切洋葱", "一个男人在游泳", 0.0),
    ("飞机正在起飞", "一架飞机起飞了", 5.0),
    ("孩子们在踢足球", "两个孩子在玩球", 3.0),
    ("他在看书", "市场价格上涨", 0.4),
    ("猫在喝牛奶", "一只猫在喝水", 2.6),
    ("火车进站了", "列车到达车站", 4.6),
]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """Tiny OCNLI / CMNLI / CSNLI, STS-B train and Weibo day files under $TFCL_SHARED_DATA."""
    root = tmp_path / "shared"
    monkeypatch.setenv("TFCL_SHARED_DATA", str(root))
    ocnli = [
        {"sentence1": premise, "sentence2": f"{premise[:4]}{label}", "label": label}
        for premise in PREMISES[:3]
        for label in ("entailment", "contradiction", "neutral")
    ]
    write(root / "zh_text/nli/ocnli_train_10k.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ocnli))
    write(
        root / "zh_text/nli/cmnli_dev.tsv",
        f"{PREMISES[3]}\t会议改期了\tentailment\n{PREMISES[0]}\t北京下雨\tentailment\n",
    )
    write(root / "zh_text/nli/csnli_dev.tsv", f"{PREMISES[3]}\t会议照常举行\tcontradiction\n")
    write(root / "zh_text/sts_b/train.tsv", "".join(f"{a}\t{b}\t{score}\n" for a, b, score in STS_TRAIN))
    write(root / "zh_text/paraphrase/afqmc_train.tsv", "借呗怎么还款\t借呗如何还钱\t1\n花呗违约\t花呗额度\t0\n")
    write(root / "zh_text/paraphrase/atec_train.tsv", "1\t怎么更改手机号\t手机号怎么改\t1\n")
    days = {
        "2020-01-19": [
            "#冠状病毒# 春节出入公共场所请尽量戴口罩",
            "#冠状病毒# 春节出入公共场所请尽量戴口罩",
            "#冠状病毒#",
        ],
        "2020-01-20": ["口罩不好买，先买个防毒面具顶一下", '"未闭合的引号', "武汉加油 #武汉加油# 一起挺过去", "好"],
        "2020-01-21": ["今天在家看了一整天书", "医护人员辛苦了，向你们致敬", "超市的蔬菜又涨价了"],
    }
    (root / "weibo/covid_days").mkdir(parents=True)
    for day, texts in days.items():
        rows = "user,text\n" + "".join(f"u{k},{text}\n" for k, text in enumerate(texts))
        with gzip.open(root / f"weibo/covid_days/weibo_covid_{day}.csv.gz", "wt", encoding="utf-8") as file:
            file.write(rows)
    return root


def test_weibo_documents_are_distinct_hashtag_free_and_shared_out_by_day(shared, caplog):
    documents = weibo_documents()
    assert documents == [
        "春节出入公共场所请尽量戴口罩",  # its repost and the hashtag-only post are left out
        "口罩不好买，先买个防毒面具顶一下",
        "武汉加油 一起挺过去",  # the hashtag removed; "好" is under min_chars
        "今天在家看了一整天书",
        "医护人员辛苦了，向你们致敬",
        "超市的蔬菜又涨价了",
    ]
    assert "Skipped 1 malformed Weibo records: {'bad_csv_row': 1}" in caplog.text  # the unterminated quote
    assert weibo_documents(max_texts=3) == [documents[0], documents[1], documents[3]]  # one a day
    assert "好" in weibo_documents(min_chars=1)


def test_triplet_batches_keep_each_anchor_with_its_entailment_and_contradiction(shared):
    # Premise 0 has two entailments (OCNLI, CMNLI) and one contradiction; 1, 2 and 3 one of each: 5 triplets.
    expected = {(premise, f"{premise[:4]}entailment", f"{premise[:4]}contradiction") for premise in PREMISES[:3]} | {
        (PREMISES[0], "北京下雨", f"{PREMISES[0][:4]}contradiction"),
        (PREMISES[3], "会议改期了", "会议照常举行"),
    }
    model, dataset = build_simcse({**TINY, "objective": "nli", "batch_size": 5})
    assert isinstance(model, SimCSE) and model.supervised and model.projector.units == 16
    assert dataset.cardinality().numpy() == 1
    texts = sorted({text for row in expected for text in row})
    text_of = dict(zip(map(tuple, model.encoder.tokenize(texts)["token_ids"].numpy()), texts))
    batch = next(iter(dataset))
    for view in batch:
        assert {name: value.shape for name, value in view.items()} == {
            name: (5, 16) for name in ("token_ids", "segment_ids", "padding_mask")
        }
    rows = zip(*([text_of[tuple(ids)] for ids in view["token_ids"].numpy()] for view in batch))
    assert sorted(rows) == sorted(expected)
    assert np.isfinite(model.compute_contrastive_loss(batch, training=True)[0].numpy())


def test_scored_pair_batches_carry_float_scores_and_too_few_rows_are_refused(shared):
    model, dataset = build_simcse({**TINY, "objective": "cosent", "batch_size": 4})
    assert isinstance(model, CoSENT) and model.scale == 20.0 and isinstance(model.projector, keras.layers.Identity)
    first, second, scores = next(iter(dataset))
    assert first["token_ids"].shape == second["token_ids"].shape == (4, 16)
    assert scores.dtype == tf.float32 and set(scores.numpy()) <= {np.float32(score) for *_, score in STS_TRAIN}
    assert build_simcse({**TINY, "objective": "cosent", "max_texts": 4, "batch_size": 4})[1].cardinality() == 1
    with pytest.raises(NotEnoughData, match="8 training rows do not fill one batch of 16"):
        build_simcse({**TINY, "objective": "cosent", "batch_size": 16})
    with pytest.raises(ValueError, match="objective must be one of"):
        build_simcse({"objective": "supervised"})
    with pytest.raises(ValueError, match="tower must be one of"):
        build_simcse({"tower": "lstm"})


def test_a_preset_tower_is_loaded_and_fine_tuned_at_the_preset_learning_rate(shared, tmp_path):
    vocab_path = require(bert_chinese_vocab_path)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=21128, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=32
    )
    backbone.save_to_preset(str(tmp_path / "preset"))
    keras_hub.models.BertTokenizer(vocab_path, lowercase=True).save_to_preset(str(tmp_path / "preset"))
    args = {"objective": "unsup", "corpus": "weibo", "batch_size": 2, "sequence_length": 16}
    model, dataset = build_simcse({**args, "preset": str(tmp_path / "preset"), "preset_learning_rate": 2e-5})
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-5)
    for loaded, saved in zip(model.encoder.backbone.weights, backbone.weights):
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(saved))
    assert next(iter(dataset))["token_ids"].shape == (2, 16)
    assert float(build_simcse(args)[0].optimizer.learning_rate) == pytest.approx(3e-4)  # random init


def test_the_ngram_tower_is_adapted_to_the_training_texts_and_tokenised_in_tf_data(shared):
    model, dataset = build_simcse({**TINY, "objective": "nli", "tower": "ngram", "batch_size": 5})
    assert isinstance(model.encoder, NgramEncoder) and model.encoder.output_dim == 16
    weights = model.encoder.weights_per_bucket.embeddings.numpy()
    assert len(np.unique(weights)) > 2  # inverse document frequencies: unseen, common and rare n-grams differ
    batch = next(iter(dataset))
    assert [{name: tuple(value.shape) for name, value in view.items()} for view in batch] == [
        {"ngram_ids": (5, 32)}
    ] * 3
    assert np.isfinite(model.compute_contrastive_loss(batch, training=True)[0].numpy())
    with pytest.raises(ValueError, match="n-gram tower starts from none"):
        build_simcse({**TINY, "tower": "ngram", "preset": "some/bert"})


def test_paraphrase_pairs_join_the_nli_triplets_with_contradictions_as_hard_negatives(shared):
    nli = {"objective": "nli", "tower": "ngram", "batch_size": 2, **TINY}
    triplets = set(zip(*training_columns(nli)))
    with_paraphrases = set(zip(*training_columns({**nli, "paraphrases": True})))
    contradictions = {negative for _, _, negative in triplets}
    added = with_paraphrases - triplets
    # AFQMC's and ATEC's pairs labelled 1 and STS-B train's pairs scored 4 or more (4.2, 5.0, 4.6)
    assert {(anchor, positive) for anchor, positive, _ in added} == {
        ("借呗怎么还款", "借呗如何还钱"),
        ("怎么更改手机号", "手机号怎么改"),
        *((a, b) for a, b, score in STS_TRAIN if score >= 4),
    }
    assert triplets <= with_paraphrases and {negative for *_, negative in added} <= contradictions
    with pytest.raises(ValueError, match="positives of the 'nli' objective"):
        training_columns({"objective": "cosent", "paraphrases": True})


def test_each_tower_gets_its_own_optimiser_and_projector_unless_told(shared):
    ngram, _ = build_simcse({**TINY, "objective": "nli", "tower": "ngram", "batch_size": 5})
    assert isinstance(ngram.projector, keras.layers.Identity) and ngram.encoder.orders == (1, 2)
    assert float(ngram.optimizer.learning_rate) == pytest.approx(1e-3) and ngram.optimizer.weight_decay == 0.0
    bert, _ = build_simcse({**TINY, "objective": "nli", "batch_size": 5, "vocabulary": "learned"})
    assert isinstance(bert.projector, keras.layers.Dense) and bert.projector.activation.__name__ == "tanh"
    assert float(bert.optimizer.learning_rate) == pytest.approx(3e-4) and bert.optimizer.weight_decay == 0.01
    told, _ = build_simcse({**TINY, "objective": "nli", "tower": "ngram", "batch_size": 5, "projector": "tanh"})
    assert isinstance(told.projector, keras.layers.Dense)
    with pytest.raises(ValueError, match="projector must be one of"):
        build_simcse({**TINY, "objective": "nli", "projector": "mlp"})


@pytest.fixture
def tiny_entries():
    """Tiny-tower versions of the supervised and CoSENT entries, removed after the test."""
    entries = [
        registry.register(registry.sentence_recipe(name, "tiny", inputs, objective=objective, **TINY))
        for name, inputs, objective in (
            ("tiny-sup", "text_triplets", "nli"),
            ("tiny-cosent", "scored_text_pairs", "cosent"),
        )
    ]
    yield entries
    for entry in entries:
        del registry.RECIPES[entry.name]


# Each objective and each tower in the default suite: the supervised BERT run (the slowest) in the slow suite only.
@pytest.mark.parametrize(
    "name, tower",
    [pytest.param("tiny-sup", "bert", marks=pytest.mark.slow), ("tiny-cosent", "bert"), ("tiny-sup", "ngram")],
)
def test_supervised_and_cosent_train_through_the_cli_and_serve_texts(
    shared, tiny_entries, tmp_path, capsys, name, tower
):
    require(bert_chinese_vocab_path)
    out = tmp_path / "run"
    arguments = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--learning-rate", "1e-3"]
    assert main(["train", name, *arguments, "--text-tower", tower, "--out", str(out)]) == 0
    assert f"saved {out}/model.keras and the SavedModel {out}/encoder" in capsys.readouterr().out
    model = keras.saving.load_model(out / "model.keras")
    assert isinstance(model, CoSENT if name == "tiny-cosent" else SimCSE) and int(model.optimizer.iterations) == 2
    assert isinstance(model.encoder, NgramEncoder if tower == "ngram" else TextEncoder)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert np.isfinite(json.loads((out / "history.json").read_text())["loss"]).all()
    texts = tf.constant(["一个男人在弹吉他", "会议推迟了"])
    served = tf.saved_model.load(str(out / "encoder")).signatures["serving_default"](texts=texts)["embedding"]
    np.testing.assert_allclose(served.numpy(), tf.math.l2_normalize(model(texts), axis=-1).numpy(), atol=1e-5)


def test_cli_names_missing_shared_data_and_a_preset_for_the_ngram_tower(tiny_entries, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("TFCL_SHARED_DATA", str(tmp_path / "nowhere"))
    assert main(["train", "tiny-sup", "--out", str(tmp_path / "run")]) == 2
    assert "TFCL_SHARED_DATA" in capfd.readouterr().err
    arguments = ["--text-tower", "ngram", "--text-preset", str(tmp_path), "--out", str(tmp_path / "run")]
    assert main(["train", "tiny-sup", *arguments]) == 2
    assert "--text-tower ngram takes none" in capfd.readouterr().err
    assert (
        main(["train", "tiny-sup", "--text-preset", str(tmp_path / "no_preset"), "--out", str(tmp_path / "run")]) == 2
    )
    assert "is not a folder" in capfd.readouterr().err

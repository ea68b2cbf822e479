"""The Chinese text suite (tfcl/eval/text_zh.py) on hand-checked cases and on tiny files written in the real formats,
and `tfcl eval text` on a tiny saved SimCSE model."""

import csv
import io
import json

import keras
import numpy as np
import pytest
from scipy import sparse
from text_helpers import character_vocabulary, tiny_text_encoder

from tfcl.cli import main
from tfcl.data.zh_text import ScoredPair
from tfcl.eval.text_similarity import PROBE_CS, encoder_embed, probe_classifier
from tfcl.eval.text_zh import (
    METRICS,
    CharTfidf,
    evaluate_text,
    pair_metric,
    same_topic_precision,
    topic_posts,
    why_bad,
)
from tfcl.models.simcse import SimCSE

LONG = "长" * 100_000
BAD_TEXTS = ["", "😂😂😂", "http://t.cn/A6x9kq http://www.example.com/a?b=1", LONG]

# Fabricated suite: the same pairs for STS-B (score = 5, 2.5, 0) and the 0/1 sets (1, 1, 0), chosen so that
# TF-IDF's cosine orders them exactly: identical > sharing characters > disjoint.
PAIRS = [
    ("今天天气很好", "今天天气很好", 5.0),
    ("我喜欢吃苹果", "我喜欢吃香蕉", 2.5),
    ("火车开得快", "小猫睡觉了", 0.0),
] * 2
EMOTIONS = {"happy": "开心快乐哈哈", "sad": "难过伤心哭泣"}
TOPICS = {"篮球比赛": "球队投篮扣篮得分", "春季养生": "早睡喝水散步泡脚"}


def angle_embed(cosines):
    """An embed that puts "q" at [1, 0] and text ``"p{i}"`` at cosine ``cosines[i]`` from it."""
    vectors = {"q": [1.0, 0.0], **{f"p{i}": [c, np.sqrt(1 - c * c)] for i, c in enumerate(cosines)}}
    return lambda texts: np.array([vectors[text] for text in texts])


def test_pair_metrics_match_hand_computed_spearman_and_auc():
    cosines = [0.9, 0.8, 0.3, 0.1]
    embed = angle_embed(cosines)
    scored = [ScoredPair("q", f"p{i}", score) for i, score in enumerate([5.0, 3.0, 4.0, 0.0])]
    # ranks of cosine 4 3 2 1, of score 4 2 3 1: Σd² = 2, ρ = 1 − 6·2 / (4·15) = 0.8
    assert pair_metric(embed, scored, "spearman") == pytest.approx(0.8)
    labelled = [ScoredPair("q", f"p{i}", label) for i, label in enumerate([1.0, 0.0, 1.0, 0.0])]
    # positive–negative pairs ordered right: (0.9 > 0.8), (0.9 > 0.1), (0.3 > 0.1); wrong: (0.3 < 0.8) → 3/4
    assert pair_metric(embed, labelled, "auc") == pytest.approx(0.75)


def test_probe_separates_dense_and_sparse_features_and_chooses_c_on_training_data_only():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    dense = rng.normal(size=(60, 4)) * 0.1 + labels[:, None] * [50.0, 0, 0, 0]  # separable along a large-scale axis
    probe = probe_classifier(dense, labels, C=None)
    assert probe.named_steps["classify"].C in PROBE_CS
    assert type(probe.named_steps["scale"]).__name__ == "StandardScaler"
    assert probe.score(dense, labels) == 1.0
    tfidf_like = sparse.csr_matrix(np.eye(2)[labels] + rng.random((60, 2)) * 0.1)
    probe = probe_classifier(tfidf_like, labels, C=1.0)
    assert probe.named_steps["scale"] == "passthrough" and probe.score(tfidf_like, labels) == 1.0
    probe = probe_classifier(dense, labels, C=None, choices=(0.5,))
    assert probe.named_steps["classify"].C == 0.5  # not in PROBE_CS: the grid given is the grid searched


def test_topic_precision_counts_neighbours_and_never_a_duplicate_of_the_query():
    texts = ["a1", "a2", "a3", "b1", "b1"]
    topics = ["A", "A", "A", "B", "B"]
    features = np.array([[1, 0], [1, 0.1], [1, 0.2], [0, 1], [0, 1]])
    # k=2: each "a" finds the two other a's (1.0 each); a "b1" may not find its twin, so finds a3, a2 (0.0 each)
    assert same_topic_precision(features, texts, topics, k=2, chunk=2) == pytest.approx(3 / 5)
    assert same_topic_precision(sparse.csr_matrix(features), texts, topics, k=2) == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), (" \n", "empty"), ("😂😂", "no_word"), ("http://t.cn/Ab3 。", "no_word"), (LONG, "oversize")],
)
def test_bad_texts_are_named(text, reason):
    assert why_bad(text) == reason


def test_good_texts_pass_even_with_a_url_running_into_chinese():
    assert why_bad("http://www.example.com/也有手工制作的") is None and why_bad("[哈哈]") is None


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def csv_text(rows):
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def write_suite(folder, bad=()):
    """Every file the suite reads, tiny, in its real format; ``bad`` texts are added once to each set."""
    bad = list(bad)
    sts = [*PAIRS, *((text, "好", 1.0) for text in bad)]
    write(folder / "zh_text/sts_b/dev.tsv", "".join(f"{a}\t{b}\t{s:g}\n" for a, b, s in sts))
    flags = [(a, b, int(s > 1)) for a, b, s in sts]
    write(folder / "zh_text/paraphrase/lcqmc_dev.tsv", "".join(f"{a}\t{b}\t{y}\n" for a, b, y in flags))
    write(folder / "zh_text/paraphrase/afqmc_dev.tsv", "".join(f"{a}\t{b}\t{y}\n" for a, b, y in flags))
    write(folder / "zh_text/paraphrase/bq_dev.csv", csv_text([("sentence1", "sentence2", "label"), *flags]))
    write(
        folder / "zh_text/paraphrase/pawsx_dev.tsv",
        "id\tsentence1\tsentence2\tlabel\n" + "".join(f"{i}\t{a}\t{b}\t{y}\n" for i, (a, b, y) in enumerate(flags)),
    )
    emotion = [(f"{words}{i}", label) for i in range(12) for label, words in EMOTIONS.items()]
    header = ("数据编号", "文本", "情绪标签")
    write(
        folder / "weibo/emotion_smp2020/usual_train.csv",
        csv_text([header, *((i, t, y) for i, (t, y) in enumerate(emotion[:16] + [(b, "sad") for b in bad]))]),
    )
    write(
        folder / "weibo/emotion_smp2020/usual_eval_labeled.csv",
        csv_text([header, *((i, t, y) for i, (t, y) in enumerate(emotion[16:]))]),
    )
    senti = [{"text": text, "label": int(label == "happy")} for text, label in emotion + [(b, "sad") for b in bad]]
    write(
        folder / "weibo/sentiment_100k_part/weibo_senti_train.jsonl",
        "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in senti),
    )
    posts = [(f"u{i}", f"#{topic}# {words}第{i}次") for i in range(20) for topic, words in TOPICS.items()]
    posts += [
        ("u0", "#篮球比赛# 球队投篮扣篮得分第0次"),  # a repost: the same document, not a second post
        ("u1", "#篮球比赛##春季养生# 两个话题的博文"),  # two hashtags: not in the set
        ("u2", "#篮球比赛# 短"),  # body under 5 characters
        *((f"u{i}", f"#冷门话题# 只有几条的话题{i}") for i in range(5)),  # a topic with fewer than 20 posts
    ]
    broken = 'u3,"#篮球比赛# 引号没有结束\n'  # an unterminated quote: the reader sets it aside, counted
    write(folder / "weibo/weibo_covid_2020-03-18.csv", csv_text([("user", "text"), *posts]) + broken)


@pytest.fixture
def shared(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    monkeypatch.setenv("TFCL_SHARED_DATA", str(folder))
    return folder


def test_topic_set_keeps_single_hashtag_posts_of_frequent_topics_once(shared):
    write_suite(shared)
    documents, topics, skipped = topic_posts()
    assert sorted(set(topics)) == sorted(TOPICS) and len(documents) == len(set(documents)) == 40
    assert skipped == {"bad_csv_row": 1}
    sample, sample_topics, _ = topic_posts(limit=15, seed=1)
    assert len(sample) == 15 and set(sample) <= set(documents) and set(sample_topics) == set(TOPICS)
    with pytest.raises(ValueError, match="topic set has 10 posts"):
        evaluate_text(CharTfidf(), tasks=["weibo_topic"], limit=10)


def test_tfidf_row_orders_fabricated_pairs_perfectly_and_reads_the_probe_labels(shared):
    write_suite(shared)
    result = evaluate_text(CharTfidf())
    assert set(METRICS) <= set(result)
    for key in METRICS:
        assert result[key] == pytest.approx(1.0), key
    assert result["examples"]["stsb_dev"] == len(PAIRS) and result["examples"]["smp2020_probe"] == 8
    assert result["examples"]["weibo_topic"] == 40 and result["skipped"] == {"weibo_topic": {"bad_csv_row": 1}}
    assert set(result["probe_C"]) == {"smp2020_probe", "senti_probe"} and set(result["probe_C"].values()) <= set(
        PROBE_CS
    )
    assert evaluate_text(CharTfidf(), tasks=["stsb_dev"], limit=3)["examples"] == {"stsb_dev": 3}


def test_bad_texts_in_every_set_are_skipped_and_counted_before_the_encoder_sees_them(shared):
    write_suite(shared, bad=BAD_TEXTS)

    def embed(texts):
        assert not [text for text in texts if why_bad(text)], "a bad text reached the encoder"
        return np.array([[text.count(c) for c in "今天我喜欢吃火车开心难过球队早睡"] for text in texts], float) + 0.01

    result = evaluate_text(embed, probe_C=1.0)
    expected = {"empty": 1, "no_word": 2, "oversize": 1}
    for task in ("stsb_dev", "lcqmc_dev", "bq_dev", "pawsx_dev", "afqmc_dev", "smp2020_probe", "senti_probe"):
        assert result["skipped"][task] == expected, task
    assert result["examples"]["stsb_dev"] == len(PAIRS) and result["examples"]["senti_probe"] == 4


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="Unknown tasks"):
        evaluate_text(CharTfidf(), tasks=["stsb_test"])


def test_cli_evaluates_a_saved_text_model_and_the_tfidf_baseline(shared, tmp_path, capsys):
    write_suite(shared)
    texts = [a + b for a, b, _ in PAIRS] + [*EMOTIONS.values(), *TOPICS, *TOPICS.values(), "第次0123456789"]
    encoder = tiny_text_encoder(character_vocabulary(texts), dropout=0.0)
    model = SimCSE(encoder, keras.layers.Dense(8, activation="tanh"))
    model.save(tmp_path / "model.keras")

    tasks = "stsb_dev,smp2020_probe,weibo_topic"
    assert main(["eval", "text", "--model", str(tmp_path / "model.keras"), "--tasks", tasks, "--probe-c", "1"]) == 0
    written = json.loads((tmp_path / "eval_text.json").read_text())
    assert {"stsb_dev_spearman", "smp2020_probe_acc", "smp2020_probe_macro_f1", "weibo_topic_p10"} <= set(written)
    assert -1 <= written["stsb_dev_spearman"] <= 1 and written["examples"]["weibo_topic"] == 40
    expected = evaluate_text(encoder_embed(encoder), ["stsb_dev"])["stsb_dev_spearman"]
    assert written["stsb_dev_spearman"] == pytest.approx(expected, abs=1e-5)
    output = capsys.readouterr().out
    assert "stsb_dev_spearman" in output and "skipped in weibo_topic: 1 bad_csv_row" in output

    out = tmp_path / "tfidf.json"
    assert main(["eval", "text", "--tfidf", "--tasks", "lcqmc_dev", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["lcqmc_dev_auc"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tfidf", "--model", "m.keras"], "--model PATH or --tfidf"),
        (["--tfidf", "--tasks", "stsb_test"], "unknown ['stsb_test']"),
        (["--model", "missing.keras"], "expected a model.keras file"),
        (["--tfidf", "--limit", "10"], "--limit must be at least 11"),
    ],
)
def test_cli_user_errors_are_one_line(arguments, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the log goes beside --model
    assert main(["eval", "text", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_loader_reads_a_savedmodel_export_and_a_keras_hub_preset_like_the_encoder(tmp_path):
    import keras_hub

    from tfcl.cli.eval import load_text_embed
    from tfcl.export import TEXT_INPUT, export_encoder

    vocabulary = character_vocabulary([a + b for a, b, _ in PAIRS])
    encoder = tiny_text_encoder(vocabulary, dropout=0.0)
    texts = ["今天天气很好", "小猫睡觉了"]
    reference = encoder_embed(encoder)(texts)
    export_encoder(encoder, tmp_path / "export", TEXT_INPUT)
    normalised = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(load_text_embed(str(tmp_path / "export"))(texts), normalised, atol=1e-5)

    preset = tmp_path / "preset"
    encoder.backbone.save_to_preset(str(preset))
    keras_hub.tokenizers.BertTokenizer(vocabulary=vocabulary).save_to_preset(str(preset))
    np.testing.assert_allclose(load_text_embed(str(preset))(texts), reference, atol=1e-5)

"""The temporal Weibo benchmark's protocol (benchmarks/weibo_topics.py --days) on tiny generated posts."""

import numpy as np
import pytest

from benchmarks import weibo_topics as bench
from tfcl.data.weibo import WeiboPost


def dated(day, document, *topics):
    return day, WeiboPost(id=document, text=document, document=document, topics=topics)


DATED = [
    dated("2020-03-01", "篮球比赛今天开打了", "篮球"),
    dated("2020-03-02", "篮球比赛今天开打了", "体育"),  # a repost: its hashtags join the first copy's
    dated("2020-03-02", "短", "早有"),  # too short to be a post, but its topic is no longer new
    dated("2020-03-03", "春天养生要早睡早起", "养生"),
    dated("2020-03-04", "春天养生要早睡早起", "养生"),  # in training already: not an evaluation post
    dated("2020-03-04", "火箭发射成功卫星入轨", "航天", "早有"),
    dated("2020-03-05", "火箭发射成功卫星入轨", "航天"),
    dated("2020-03-05", "空间站宇航员顺利返回", "航天", "篮球"),
    dated("2020-03-06", "这条太晚了不在窗口里", "航天"),
]


def test_temporal_split_deduplicates_reposts_and_keeps_training_documents_out_of_evaluation():
    split = bench.temporal_split(DATED, "2020-03-03", "2020-03-05", seen_min=1, new_min=2)
    assert split.train == [
        bench.DayPost("2020-03-01", "篮球比赛今天开打了", ("篮球", "体育")),
        bench.DayPost("2020-03-03", "春天养生要早睡早起", ("养生",)),
    ]
    assert split.evaluation == [
        bench.DayPost("2020-03-04", "火箭发射成功卫星入轨", ("航天", "早有")),
        bench.DayPost("2020-03-05", "空间站宇航员顺利返回", ("航天", "篮球")),
    ]
    assert split.seen == ["体育", "养生", "篮球"]
    assert split.new == ["航天"]  # "早有" was in a training-day post; "航天" has 2 distinct posts
    assert bench.temporal_split(DATED, "2020-03-03", "2020-03-05", seen_min=1, new_min=3).new == []
    assert bench.temporal_split(DATED, "2020-03-03", "2020-03-05", seen_min=2).seen == []


def generated_split(topics=6, posts_per_topic=24, seed=0):
    """3 seen and 3 new topics whose posts share their own characters (and the name's); train ≤ 03-10, where a
    post of a 4th seen topic has every character (TF-IDF knows no other)."""
    rng = np.random.default_rng(seed)
    posts = [
        dated(f"2020-03-0{day}", str(day) + "".join(chr(0x4E00 + i) for i in range(40 * topics)), "杂谈")
        for day in (1, 2)
    ]
    for t in range(topics):
        alphabet = [chr(0x4E00 + 40 * t + i) for i in range(40)]
        name = "".join(alphabet[:3])
        for i in range(posts_per_topic):
            text = name[: 1 + i % 3] + "".join(rng.choice(alphabet, 10))
            if t < 3:  # seen: posted on 03-09 … 03-12
                posts.append(dated(f"2020-03-{9 + i % 4:02d}", text, f"话题{name}"))
            else:  # new: on 03-11 and 03-12 only
                posts.append(dated(f"2020-03-{11 + i % 2:02d}", text, name))
    return bench.temporal_split(posts, "2020-03-10", "2020-03-12", seen_min=2, new_min=4)


def test_tasks_sample_under_caps_and_never_query_a_few_shot_key():
    split = generated_split()
    caps = {"seen": 5, "new": 7, "similar": 4}
    tasks = bench.build_tasks(split, caps, fewshot=2, seed=1)
    assert len(tasks.seen_queries) == 5 and len(tasks.new_queries) == 7 and len(tasks.similar_queries) == 4
    assert set(tasks.fewshot_keys) == set(split.new) and all(len(p) == 2 for p in tasks.fewshot_keys.values())
    keys = {post.document for posts in tasks.fewshot_keys.values() for post in posts}
    assert not keys & {post.document for post in tasks.new_queries}
    assert all(set(post.topics) & set(split.seen) for post in tasks.seen_queries)
    assert tasks == bench.build_tasks(split, caps, fewshot=2, seed=1)  # seeded
    uncapped = bench.build_tasks(split, dict.fromkeys(caps), fewshot=2)
    assert len(uncapped.similar_queries) == len(uncapped.similar_index) == len(split.evaluation)


def test_ranked_counts_ties_against_the_true_topic_and_splits_hit5_by_day():
    queries = [bench.DayPost("d1", "a", ("x",)), bench.DayPost("d2", "b", ("y", "z")), bench.DayPost("d2", "c", ("z",))]
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.1, 0.2], [0.5, 0.5, 0.5]])  # columns x, y, z
    result = bench.ranked(scores, queries, ["x", "y", "z"])
    ranks = np.array([1, 1, 3])  # b: z best of its topics; c: tied with all: last
    assert result["hit1"] == pytest.approx(np.mean(ranks <= 1)) and result["hit5"] == 1.0
    assert result["mrr"] == pytest.approx(np.mean(1 / ranks))
    assert result["hit5_by_day"] == {"d1": 1.0, "d2": 1.0}


def test_same_topic_shares_match_a_brute_force_reference():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(30, 4))
    topic_lists = [(f"t{i % 3}",) + ((f"t{i % 5}",) if i % 2 else ()) for i in range(30)]
    queries = [0, 3, 7, 29]
    expected = []
    for q in queries:
        similarities = embeddings @ embeddings[q]
        similarities[q] = -np.inf
        nearest = np.argsort(-similarities)[:3]
        expected.append(np.mean([bool(set(topic_lists[q]) & set(topic_lists[n])) for n in nearest]))
    assert np.mean(bench.same_topic_shares(embeddings, topic_lists, queries, k=3, batch=3)) == pytest.approx(
        np.mean(expected)
    )


def test_tfidf_separates_generated_topics_and_chance_does_not():
    split = generated_split()
    tasks = bench.build_tasks(split, dict.fromkeys(("seen", "new", "similar")), fewshot=2)
    tfidf = bench.evaluate_days(bench.tfidf_embedder([post.document for post in split.train]), split, tasks)
    chance = bench.evaluate_days(bench.random_embedder(), split, tasks)
    assert len(split.seen) == 4 and len(split.new) == 3
    for key in ("seen_hit1", "new_hit1", "fewshot_hit1", "similar_p10"):
        assert tfidf[key] > 0.9 > chance[key] + 0.3, key
    assert tfidf["seen_posts"] == len(tasks.seen_queries) and tfidf["new_posts"] == len(tasks.new_queries)
    row = bench.compared(chance, tfidf["per_query"])
    assert "per_query" not in row and set(row["vs_tfidf"]) == set(bench.PAIRED)
    for key, paired in row["vs_tfidf"].items():
        assert paired["difference"] == pytest.approx(chance[key] - tfidf[key]), key
    assert row["vs_tfidf"]["seen_hit5"]["better"] == row["vs_tfidf"]["seen_hit5"]["worse"] == 0  # 4 topics: all top 5
    for key in ("new_hit1", "similar_p10"):  # chance is below TF-IDF query by query, not only on average
        paired = row["vs_tfidf"][key]
        assert paired["ci95"][1] < 0 and paired["worse"] > paired["better"], key


def test_paired_difference_counts_queries_and_brackets_the_mean():
    values = np.array([1, 1, 0, 1, 0, 1, 1, 0], float)
    baseline = np.array([1, 0, 0, 0, 1, 1, 0, 0], float)
    paired = bench.paired_difference(values, baseline, draws=500)
    assert paired["difference"] == pytest.approx(2 / 8)  # per query: 0, 1, 0, 1, −1, 0, 1, 0
    assert (paired["better"], paired["worse"]) == (3, 1)
    low, high = paired["ci95"]
    assert -1 <= low < 0.25 < high <= 1
    assert bench.paired_difference(values, values) == {"difference": 0.0, "ci95": [0.0, 0.0], "better": 0, "worse": 0}


def test_hybrid_cosine_is_the_weighted_sum_of_the_two_cosines():
    texts = ["篮球比赛", "春天养生早睡", "篮球明星", "卫星发射"]
    tfidf = bench.tfidf_embedder(texts)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, 3))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dense = bench.Embedder(*[lambda t: vectors[[texts.index(x) for x in t]]] * 2)
    hybrid = bench.hybrid_embedder(dense, tfidf, weight=0.3).documents(texts)
    expected = 0.3 * vectors @ vectors.T + 0.7 * bench.dense(tfidf.documents(texts) @ tfidf.documents(texts).T)
    np.testing.assert_allclose(bench.dense(hybrid @ hybrid.T), expected, atol=1e-6)

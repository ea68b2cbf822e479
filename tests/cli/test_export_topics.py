"""``tfcl export topics``: a trained CD-TOM re-exported for a new topic vocabulary as the next serving version."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
from text_helpers import POSTS, TOPICS, tiny_cdtom

from tfcl.apps import export_weibo_model
from tfcl.cli import main
from tfcl.serving import ModelServer, ServingClient, single_model_config
from tfcl.serving.config import complete_versions

NEW_TOPICS = ["宠物猫狗", "火箭卫星", "喝水养生", "篮球比赛"]
QUERIES = ["猫咪撒娇", "卫星发射"]
POST_IDS = [f"448000000000{index:04d}" for index in range(len(POSTS))]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as `tfcl train cdtom --out RUN` leaves it: model.keras and the Weibo SavedModel, which is
    also version 1 of a serving base path."""
    run = tmp_path_factory.mktemp("run")
    model = tiny_cdtom()
    model.embed_documents(tf.constant(QUERIES))
    model.embed_topics(tf.constant(TOPICS))
    model.save(run / "model.keras")
    export_weibo_model(model, TOPICS, POST_IDS, [document for document, _ in POSTS], str(run / "weibo_model"), k=3)
    shutil.copytree(run / "weibo_model", run / "serving" / "weibo_topics" / "1")
    return run, model


@pytest.mark.slow  # two exports, served and loaded: minutes on the 2 shared cores
def test_export_topics_writes_the_next_version_ranking_the_new_vocabulary(run_dir, tmp_path):
    run, model = run_dir
    topics_file = tmp_path / "topic_vocab.tsv"  # the ingestion's format; a blank line and a repeat are skipped
    topics_file.write_text(
        "".join(f"{topic}\t{9 - rank}\n" for rank, topic in enumerate(NEW_TOPICS)) + "\n篮球比赛\t1\n"
    )
    base = run / "serving" / "weibo_topics"
    with ModelServer(single_model_config("weibo_topics", base), port=0, poll_seconds=0.2) as server:
        assert main(["export", "topics", "--model", str(run), "--topics", str(topics_file), "--k", "3"]) == 0
        with ServingClient(server.address, timeout=120) as client:
            client.wait_until_available(
                "weibo_topics", 2, timeout=300
            )  # the server watching the base path loads the version
            served = client.predict("weibo_topics", {"texts": QUERIES}, signature_name="predict_topics", version=2)
    assert sorted(complete_versions(base)) == [1, 2]
    assert [path.name for path in base.iterdir() if not path.name.isdigit()] == []  # no staging folder left
    exported = tf.saved_model.load(str(base / "2"))
    texts = tf.constant(QUERIES)
    answer = exported.signatures["predict_topics"](texts=texts)
    cosines = model.embed_documents(texts).numpy() @ model.embed_topics(tf.constant(NEW_TOPICS)).numpy().T
    ranking = np.argsort(-cosines, axis=1)[:, :3]
    np.testing.assert_array_equal(answer["topics"].numpy(), np.array([t.encode() for t in NEW_TOPICS])[ranking])
    np.testing.assert_allclose(answer["scores"].numpy(), np.take_along_axis(cosines, ranking, axis=1), atol=1e-5)
    np.testing.assert_array_equal(served["topics"], answer["topics"].numpy())
    before = tf.saved_model.load(str(base / "1")).signatures["similar_posts"](texts=texts)
    after = exported.signatures["similar_posts"](texts=texts)
    np.testing.assert_array_equal(after["post_ids"].numpy(), before["post_ids"].numpy())  # the post index is kept
    np.testing.assert_allclose(after["scores"].numpy(), before["scores"].numpy(), atol=1e-6)
    assert "rank_topics" in exported.signatures


@pytest.mark.parametrize(
    "contents, message", [(None, "no such file"), ("", "no topics in it"), ("\n \n\t3\n", "no topics in it")]
)
def test_a_missing_or_empty_topics_file_is_a_one_line_error(tmp_path, capsys, contents, message):
    run = tmp_path / "run"  # the topics are read before the model is loaded: its files only need to be there
    (run / "weibo_model").mkdir(parents=True)
    (run / "model.keras").touch()
    (run / "weibo_model" / "saved_model.pb").touch()
    topics_file = tmp_path / "topics.txt"
    if contents is not None:
        topics_file.write_text(contents)
    out = tmp_path / "base"
    assert main(["export", "topics", "--model", str(run), "--topics", str(topics_file), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"tfcl export: error: --topics {topics_file}: {message}" + (
        "" if contents is None else " (one per line, or `topic<TAB>count` lines)"
    )
    assert not out.exists()


def test_a_run_folder_without_a_model_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "topics.txt").write_text("篮球比赛\n")
    assert main(["export", "topics", "--model", str(tmp_path), "--topics", str(tmp_path / "topics.txt")]) == 2
    assert "no model.keras in it" in capsys.readouterr().err

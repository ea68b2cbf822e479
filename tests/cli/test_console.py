"""The console: a command's own lines on the console, every other tool's output in its log, and a user's error as
one line naming the fix with exit code 2 (a traceback only under ``-v``)."""

import os
import warnings

import pytest
import tensorflow as tf

import tfcl
from tfcl.cli import main
from tfcl.cli.console import console_to
from tfcl.data.weibo_ingest import TOPIC_VOCAB_FILE


def error_line(capfd, argv):
    """The exit code of ``tfcl ARGV`` and its console error output, which must be one line without a traceback."""
    code = main(argv)
    err = capfd.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return code, err


def test_other_tools_output_goes_to_the_log_and_the_command_s_own_to_the_console(tmp_path, capfd):
    log = tmp_path / "run" / "tfcl.log"
    with console_to(log):
        print("the answer")
        os.write(1, b"pip: Looking in indexes\n")  # a subprocess or C++ logger writing to the descriptors
        os.write(2, b"I tensorflow/core: oneDNN custom operations are on\n")
        warnings.warn_explicit("a library's deprecation", UserWarning, "/elsewhere/lib.py", 1)
        warnings.warn_explicit("collapse", RuntimeWarning, f"{os.path.dirname(tfcl.__file__)}/callbacks.py", 1)
        import logging

        logging.getLogger("absl").warning("TFX: component started")
        logging.getLogger("tfcl.checkpoint").warning("latest backup unreadable; resuming from previous")
    captured = capfd.readouterr()
    assert captured.out == "the answer\nwarning: collapse\n"
    assert captured.err == "tfcl: WARNING: latest backup unreadable; resuming from previous\n"
    logged = log.read_text()
    for noise in ("Looking in indexes", "oneDNN", "a library's deprecation", "component started"):
        assert noise in logged
    print("after")  # everything is restored on exit
    assert capfd.readouterr().out == "after\n"


def test_unknown_method_is_one_line_and_exit_2(tmp_path, capfd):
    code, err = error_line(capfd, ["train", "nosuch", "--out", str(tmp_path)])
    assert code == 2 and "unknown method 'nosuch'" in err and "simclr" in err


def test_verbose_shows_the_traceback(tmp_path, capfd):
    assert main(["train", "nosuch", "--out", str(tmp_path), "-v"]) == 2
    assert "Traceback" in capfd.readouterr().err


def test_weibo_methods_need_ingested_posts(tmp_path, capfd):
    code, err = error_line(capfd, ["train", "cdtom", "--out", str(tmp_path / "run")])
    assert code == 2 and "--weibo DIR" in err
    code, err = error_line(capfd, ["train", "cdtom", "--weibo", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert code == 2 and "tfcl ingest weibo" in err


def test_missing_data_set_names_the_fetch(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("TFCL_DATA_DIR", str(tmp_path / "empty-cache"))
    code, err = error_line(capfd, ["train", "simclr", "--data", "mnist_5k", "--out", str(tmp_path / "run")])
    assert code == 2 and "tfcl data fetch mnist_5k" in err


def test_empty_input_says_how_much_there_is(tmp_path, capfd):
    ingested = tmp_path / "ingested"
    (ingested / "train").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(ingested / "train" / "part-0.tfrecord.gz"), "GZIP"):
        pass
    (ingested / TOPIC_VOCAB_FILE).write_text("猫\t9\n")
    code, err = error_line(capfd, ["train", "cdtom", "--weibo", str(ingested), "--out", str(tmp_path / "run")])
    assert code == 2 and "0 (post, topic) training pairs" in err and "--batch-size" in err


def test_wclip_without_picture_root_names_the_flag(tmp_path, capfd):
    """Posts whose pictures are relative paths: without --picture-root none is found."""
    import json

    from tfcl.data import weibo_ingest

    posts = [
        {"id": str(1000 + n), "text": f"#猫咪# 第{n}只猫晒太阳", "pics": [f"pictures/cat_{n}.jpg"]} for n in range(40)
    ]
    (tmp_path / "posts.jsonl").write_text("".join(json.dumps(post, ensure_ascii=False) + "\n" for post in posts))
    ingested = tmp_path / "ingested"
    weibo_ingest.run_ingestion([str(tmp_path / "posts.jsonl")], ingested, min_topic_count=3, num_shards=1)
    capfd.readouterr()
    argv = ["train", "clip", "--weibo", str(ingested), "--out", str(tmp_path / "run"), "--epochs", "1"]
    code, err = error_line(capfd, argv)
    assert code == 2 and "--picture-root DIR" in err and "not_found" in err


@pytest.mark.parametrize("content", [None, b""], ids=["no file", "empty file"])
def test_run_with_unusable_input(tmp_path, capfd, content):
    path = tmp_path / "exports.jsonl"
    if content is not None:
        path.write_bytes(content)
    code, err = error_line(capfd, ["run", "--input", str(path), "--work-dir", str(tmp_path / "run")])
    assert code == 2 and "--input" in err


def test_report_of_a_folder_without_a_run(tmp_path, capfd):
    code, err = error_line(capfd, ["report", str(tmp_path)])
    assert code == 2 and "tfcl run" in err


def test_validation_batches_are_counted_so_keras_does_not_run_out_of_data():
    """Filtered data has no known size: Keras learns it by running out on the first pass, with a warning
    ("Your input ran out of data") that ``tfcl train cdtom`` and ``tfcl run`` printed; counted, it does not."""
    import keras
    import numpy as np

    from tfcl.recipes.cdtom import counted_batches

    pairs = tf.data.Dataset.from_tensor_slices((np.ones((20, 2), "float32"), np.ones((20, 1), "float32")))
    validation = pairs.filter(lambda x, y: True).batch(4)
    assert int(validation.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    counted = counted_batches(validation)
    assert int(counted.cardinality()) == 5 and len(list(counted)) == 5
    assert counted_batches(pairs.take(0).batch(4)) is None
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(pairs.batch(4).repeat(), steps_per_epoch=5, epochs=2, validation_data=counted, verbose=0)
    assert not [warning for warning in caught if "ran out of data" in str(warning.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(pairs.batch(4).repeat(), steps_per_epoch=5, epochs=2, validation_data=validation, verbose=0)
    assert [warning for warning in caught if "ran out of data" in str(warning.message)], "the cause, uncounted"

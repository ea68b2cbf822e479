"""``tfcl pretrain``: MLM pretraining on day files, its keras-hub preset, and resuming a killed run."""

import json

import keras_hub
import numpy as np
import pytest
from text_helpers import character_vocabulary
from training_helpers import Interrupt
from weibo_days import chinese_texts, write_day_file

import tfcl.cli
from tfcl.data.weibo_corpus import WeiboCorpus
from tfcl.recipes.pretrain import PRESET_DIR, RUN_FILE, PretrainConfig, pretrain
from tfcl.text import TextEncoder

TEXTS = chinese_texts(160, length=20)
VOCABULARY = character_vocabulary(TEXTS)
CONFIG = PretrainConfig(
    sequence_length=16,
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    epochs=2,
    steps_per_epoch=3,
    batch_size=8,
    held_out_texts=16,
)


class RecordingCorpus(WeiboCorpus):
    """A corpus that notes where each training stream it opens starts."""

    starts = []

    def training_texts(self, start=0, counts=None):
        self.starts.append(start)
        return super().training_texts(start, counts)


@pytest.fixture
def corpus(tmp_path):
    files = (
        write_day_file(tmp_path / "days" / "weibo_covid_2020-02-01.csv.gz", ["", "😀", *TEXTS[:2], *TEXTS[:100]]),
        write_day_file(tmp_path / "days" / "weibo_covid_2020-02-02.csv.gz", TEXTS[100:]),
    )
    RecordingCorpus.starts = []
    return RecordingCorpus(files, held_out_every=5, shuffle_block=32)


@pytest.fixture(autouse=True)
def day_folder(tmp_path):
    (tmp_path / "days").mkdir()


def test_the_preset_loads_in_tfcl_and_keras_hub_with_the_trained_weights(corpus, tmp_path):
    model, run = pretrain(corpus, VOCABULARY, tmp_path / "run", CONFIG, verbose=0)
    preset = tmp_path / "run" / PRESET_DIR
    assert run["preset"] == str(preset)
    for name in ("config.json", "model.weights.h5", "tokenizer.json", "assets/tokenizer/vocabulary.txt"):
        assert (preset / name).is_file(), name
    encoder = TextEncoder.from_preset(str(preset), sequence_length=CONFIG.sequence_length)
    backbone = keras_hub.models.BertBackbone.from_preset(str(preset))
    inputs = encoder.tokenize(TEXTS[:4])
    trained = model.backbone(inputs)["sequence_output"]
    np.testing.assert_allclose(encoder.backbone(inputs)["sequence_output"], trained, atol=1e-6)
    np.testing.assert_allclose(backbone(inputs)["sequence_output"], trained, atol=1e-6)
    assert encoder.tokenizer.get_vocabulary() == VOCABULARY
    assert keras_hub.models.BertTokenizer.from_preset(str(preset)).get_vocabulary() == VOCABULARY
    epochs = run["epochs"]
    assert [epoch["data_position"] for epoch in epochs] == [24, 48]
    for epoch in epochs:
        assert 0 <= epoch["val_accuracy"] <= 1 and epoch["val_perplexity"] == pytest.approx(
            np.exp(epoch["val_cross_entropy"])
        )
        assert epoch["tokens_per_second"] > 0 and 0 < epoch["matmul_peak_fraction"]
    for read in run["corpus"].values():
        assert read["skipped"] == {"no_text": 1, "no_words": 1, "duplicate": 2}
    assert run["corpus"]["held_out_read"]["held_out"] == 16
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["optimizer_steps"] == 6


def test_a_killed_run_resumes_at_its_step_count_and_data_position(corpus, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        pretrain(corpus, VOCABULARY, tmp_path / "killed", CONFIG, callbacks=[Interrupt(1)], verbose=0)
    model, resumed = pretrain(corpus, VOCABULARY, tmp_path / "killed", CONFIG, verbose=0)
    texts_per_epoch = CONFIG.steps_per_epoch * CONFIG.batch_size
    # Each run checks that there is a text to train on (a stream from 0), then fit opens its stream: the resumed
    # run's starts where epoch 1 stopped.
    assert corpus.starts == [0, 0, 0, texts_per_epoch]
    assert resumed["resumed_from_epoch"] == 1 and resumed["stream_start"] == texts_per_epoch
    assert [(epoch["epoch"], epoch["data_position"]) for epoch in resumed["epochs"]] == [(2, 2 * texts_per_epoch)]
    # What the uninterrupted run of the test above reaches.
    assert resumed["optimizer_steps"] == CONFIG.epochs * CONFIG.steps_per_epoch == 6
    assert resumed["data_position"] == 48


def test_cli_pretrains_into_out_preset(tmp_path):
    days = tmp_path / "days"
    write_day_file(days / "weibo_covid_2020-02-01.csv.gz", TEXTS)
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    sizes = ["--num-layers", "1", "--hidden-dim", "16", "--num-heads", "2", "--intermediate-dim", "32"]
    data = ["--input", str(days), "--vocabulary", str(vocabulary), "--held-out-every", "5", "--held-out-texts", "8"]
    steps = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--sequence-length", "16"]
    assert tfcl.cli.main(["pretrain", "--out", str(out), *data, *sizes, *steps]) == 0
    run = json.loads((out / RUN_FILE).read_text())
    assert run["optimizer_steps"] == 2 and run["held_out_texts"] == 8
    assert TextEncoder.from_preset(str(out / PRESET_DIR), sequence_length=16).output_dim == 16


def test_cli_names_missing_input(tmp_path, capsys):
    assert tfcl.cli.main(["pretrain", "--out", str(tmp_path / "run"), "--input", str(tmp_path / "none")]) == 2
    assert "no day files" in capsys.readouterr().err

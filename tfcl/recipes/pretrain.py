"""Masked-language-model pretraining of the BERT text tower on Weibo day files (``tfcl pretrain``).

keras-hub's ``BertMaskedLM`` over the backbone of a :class:`tfcl.text.TextEncoder` (its :class:`WeiboTokenizer`),
trained on the stream of :class:`tfcl.data.weibo_corpus.WeiboCorpus`. Masking happens in ``tf.data``
(``BertMaskedLMPreprocessor``: ``MaskedLMMaskGenerator`` selects 15% of the tokens, never the special ones —
``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]`` and the Weibo reserved tokens; 80% of them become
``[MASK]``, 10% a random token).

The run folder gets ``backup/`` (:class:`tfcl.checkpoint.RunBackup`: a killed run started again with the same
arguments resumes from its last finished epoch, with its optimizer step count, and its data stream continues at
``epoch × steps_per_epoch × batch_size`` texts, where the interrupted run's stopped), ``logs/`` (TensorBoard),
``history.json``, ``pretrain.json`` (:data:`RUN_FILE`: corpus counts, sizes, throughput, held-out scores per epoch)
and ``preset/``: a keras-hub preset (``config.json``, ``model.weights.h5``, ``tokenizer.json``,
``assets/tokenizer/vocabulary.txt``) that :meth:`tfcl.text.TextEncoder.from_preset` and
``keras_hub.models.BertBackbone.from_preset`` load.

Each epoch is scored on held-out texts (:meth:`WeiboCorpus.held_out_texts`, masked once, the same masks every
epoch): ``val_accuracy`` (of the masked tokens) and ``val_perplexity`` (exp of their mean cross-entropy).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import keras_hub
import tensorflow as tf

from tfcl.checkpoint import RunBackup
from tfcl.data.weibo_corpus import CorpusCounts, NoTrainingTexts, WeiboCorpus
from tfcl.recipes.base import NotEnoughData
from tfcl.text import TextEncoder
from tfcl.training import cosine_adamw

RUN_FILE = "pretrain.json"
PRESET_DIR = "preset"
MASK_RATE = 0.15
FLOPS_ESTIMATE = (
    "6 × transformer-layer parameters × tokens + 12 × layers × sequence length × hidden × tokens (attention) "
    "+ 6 × vocabulary × hidden × masked positions (output projection); tokens = batch × sequence length"
)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run: the model's sizes, the optimisation and the data it reads per epoch."""

    sequence_length: int = 64
    num_layers: int = 2
    num_heads: int = 2
    hidden_dim: int = 128
    intermediate_dim: int = 512
    dropout: float = 0.1
    epochs: int = 3
    steps_per_epoch: int = 200
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    held_out_texts: int = 512
    seed: int = 0

    @property
    def texts_per_epoch(self) -> int:
        return self.steps_per_epoch * self.batch_size

    @property
    def masked_per_text(self) -> int:
        """Most masked tokens of one text: 15% of the positions, rounded up."""
        return math.ceil(MASK_RATE * self.sequence_length)


def masked_lm(vocabulary: Sequence[str] | str, config: PretrainConfig) -> tuple[keras_hub.models.BertMaskedLM, Any]:
    """``(model, preprocessor)``: a random-init ``BertMaskedLM`` (no preprocessor of its own) over a
    :class:`TextEncoder` of ``config``'s sizes, and the ``BertMaskedLMPreprocessor`` that masks its batches."""
    keras.utils.set_random_seed(config.seed)
    encoder = TextEncoder.from_vocabulary(
        vocabulary,
        sequence_length=config.sequence_length,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        dropout=config.dropout,
    )
    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        encoder.tokenizer,
        sequence_length=config.sequence_length,
        mask_selection_rate=MASK_RATE,
        mask_selection_length=config.masked_per_text,
    )
    return keras_hub.models.BertMaskedLM(encoder.backbone, preprocessor=None), preprocessor


def masked_batches(texts: tf.data.Dataset, preprocessor: Any, batch_size: int) -> tf.data.Dataset:
    """``(inputs, masked token ids, mask weights)`` batches of a dataset of strings (last partial batch dropped)."""
    return (
        texts.batch(batch_size, drop_remainder=True)
        .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def matmul_peak_flops(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of this machine's best fp32 ``size × size`` matmul (2·size³ FLOPs), timed ``repeats`` times after a
    warm-up: the peak the training step's throughput is compared with."""
    a = tf.random.uniform((size, size), dtype=tf.float32)
    b = tf.random.uniform((size, size), dtype=tf.float32)
    tf.matmul(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def training_flops_per_step(model: keras_hub.models.BertMaskedLM, config: PretrainConfig) -> float:
    """Estimated FLOPs of one training step, :data:`FLOPS_ESTIMATE` (forward + backward = 3 × forward, 2 FLOPs a
    multiply-add; padding counts, as it is computed; embedding lookups and layer norms are left out)."""
    backbone = model.backbone
    tokens = config.batch_size * config.sequence_length
    layer_parameters = sum(layer.count_params() for layer in backbone.transformer_layers)
    attention = 12 * config.num_layers * config.sequence_length * config.hidden_dim
    output = 6 * backbone.vocabulary_size * config.hidden_dim * config.batch_size * config.masked_per_text
    return (6 * layer_parameters + attention) * tokens + output


class StreamPosition(keras.callbacks.Callback):
    """Where a run's training stream starts: ``texts_per_epoch`` × the epoch :class:`RunBackup` restored (so it
    must come after it). The stream reads :attr:`start` when ``fit`` opens its iterator; each epoch logs
    ``data_position``: that start plus the texts this run has consumed since."""

    def __init__(self, texts_per_epoch: int) -> None:
        super().__init__()
        self.texts_per_epoch = texts_per_epoch
        self.start: int | None = None
        self.initial_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.initial_epoch = self.model._initial_epoch or 0  # set by RunBackup as keras' BackupAndRestore does
        self.start = self.initial_epoch * self.texts_per_epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["data_position"] = self.stream_start() + (epoch + 1 - self.initial_epoch) * self.texts_per_epoch

    def stream_start(self) -> int:
        if self.start is None:
            raise RuntimeError("the training stream was opened before fit began: its start is not known yet")
        return self.start


class HeldOutPerplexity(keras.callbacks.Callback):
    """Adds ``val_perplexity``, exp of the held-out masked tokens' mean cross-entropy, to the epoch logs."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and "val_cross_entropy" in logs:
            logs["val_perplexity"] = math.exp(min(logs["val_cross_entropy"], 700.0))


class Throughput(keras.callbacks.Callback):
    """Tokens per second of the training steps and the fraction of ``peak_flops`` they reach (``flops_per_step`` /
    step time), timed from the end of each epoch's first step (so tracing and validation are left out): in the
    batch logs (the progress bar) and the epoch logs; the epoch's line is printed with its held-out scores."""

    def __init__(self, tokens_per_step: int, flops_per_step: float, peak_flops: float, verbose: int = 1) -> None:
        super().__init__()
        self.tokens_per_step = tokens_per_step
        self.flops_per_step = flops_per_step
        self.peak_flops = peak_flops
        self.verbose = verbose
        self.timed_steps, self.started, self.elapsed = -1, 0.0, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.timed_steps = -1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.timed_steps += 1
        if not self.timed_steps:
            self.started = time.perf_counter()
            return
        self.elapsed = time.perf_counter() - self.started
        if logs is not None:
            logs["tokens_per_second"] = self.timed_steps * self.tokens_per_step / self.elapsed

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or self.timed_steps < 1:
            return
        step_time = self.elapsed / self.timed_steps
        logs["tokens_per_second"] = self.tokens_per_step / step_time
        logs["matmul_peak_fraction"] = self.flops_per_step / step_time / self.peak_flops
        if self.verbose:
            print(  # on a line of its own: the progress bar finishes its line after this
                f"\nepoch {epoch + 1}: {logs['tokens_per_second']:,.0f} tokens/s "
                f"({logs['matmul_peak_fraction']:.1%} of the fp32 matmul peak), held-out masked-token accuracy "
                f"{logs.get('val_accuracy', math.nan):.4f}, perplexity {logs.get('val_perplexity', math.nan):.1f}"
            )


def save_preset(model: keras_hub.models.BertMaskedLM, tokenizer: Any, preset_dir: str | Path) -> Path:
    """Write ``model``'s backbone and a plain keras-hub ``BertTokenizer`` with ``tokenizer``'s vocabulary and casing
    (loadable without tfcl) as a keras-hub preset folder."""
    preset_dir = Path(preset_dir)
    preset_dir.mkdir(parents=True, exist_ok=True)
    model.backbone.save_to_preset(str(preset_dir))
    plain = keras_hub.models.BertTokenizer(
        tokenizer.get_vocabulary(), lowercase=tokenizer.lowercase, strip_accents=tokenizer.strip_accents
    )
    plain.save_to_preset(str(preset_dir))
    return preset_dir


def pretrain(
    corpus: WeiboCorpus,
    vocabulary: Sequence[str] | str,
    out_dir: str | Path,
    config: PretrainConfig = PretrainConfig(),
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 1,
) -> tuple[keras_hub.models.BertMaskedLM, dict[str, Any]]:
    """Pretrain on ``corpus`` into ``out_dir`` (see the module docstring); returns the trained model and what it
    writes to :data:`RUN_FILE`. Raises :class:`NotEnoughData` when the held-out texts do not fill one batch or
    there is no text to train on."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, preprocessor = masked_lm(vocabulary, config)
    held_out_counts = CorpusCounts()
    held_out = corpus.held_out_texts(config.held_out_texts, held_out_counts)
    if len(held_out) < config.batch_size:
        raise NotEnoughData(
            f"{len(held_out)} held-out texts do not fill one batch of {config.batch_size}: give more day files or "
            f"lower --batch-size ({held_out_counts.as_dict()})"
        )
    try:
        next(corpus.training_texts())
    except NoTrainingTexts as error:
        raise NotEnoughData(str(error)) from None
    # Masked once, eagerly: the same masks every epoch.
    validation = tf.data.Dataset.from_tensor_slices(preprocessor(tf.constant(held_out))).batch(config.batch_size)
    position = StreamPosition(config.texts_per_epoch)
    stream_counts = CorpusCounts()
    texts = tf.data.Dataset.from_generator(
        lambda: corpus.training_texts(position.stream_start(), stream_counts),
        output_signature=tf.TensorSpec((), tf.string),
    )
    model.compile(
        optimizer=cosine_adamw(config.learning_rate, config.epochs * config.steps_per_epoch, config.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[
            keras.metrics.SparseCategoricalAccuracy("accuracy"),
            keras.metrics.SparseCategoricalCrossentropy("cross_entropy", from_logits=True),
        ],
    )
    peak_flops = matmul_peak_flops()
    flops_per_step = training_flops_per_step(model, config)
    history = model.fit(
        masked_batches(texts, preprocessor, config.batch_size),
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        validation_data=validation,
        callbacks=[
            RunBackup(out_dir),
            position,
            HeldOutPerplexity(),
            Throughput(config.batch_size * config.sequence_length, flops_per_step, peak_flops, verbose),
            keras.callbacks.TensorBoard(str(out_dir / "logs"), update_freq="epoch"),
            *callbacks,
        ],
        verbose=verbose,
    )
    preset = save_preset(model, preprocessor.tokenizer, out_dir / PRESET_DIR)
    (out_dir / "history.json").write_text(json.dumps(history.history, indent=1, default=float))
    run = {
        "config": dataclasses.asdict(config),
        "files": [str(file) for file in corpus.files],
        "held_out_texts": len(held_out),
        "corpus": {"held_out_read": held_out_counts.as_dict(), "training_stream_read": stream_counts.as_dict()},
        "resumed_from_epoch": position.initial_epoch,
        "stream_start": position.start,
        "data_position": position.stream_start() + len(history.epoch) * config.texts_per_epoch,
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
        "parameters": model.count_params(),
        "matmul_peak_flops": peak_flops,
        "flops_per_step": flops_per_step,
        "flops_estimate": FLOPS_ESTIMATE,
        "epochs": [
            {"epoch": epoch + 1, **{key: float(values[index]) for key, values in history.history.items()}}
            for index, epoch in enumerate(history.epoch)
        ],
        "preset": str(preset),
    }
    (out_dir / RUN_FILE).write_text(json.dumps(run, indent=1, ensure_ascii=False))
    return model, run

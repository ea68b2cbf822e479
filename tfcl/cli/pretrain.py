"""``tfcl pretrain``: masked-language-model pretraining of the BERT text tower on Weibo day files, written as a
keras-hub preset (``OUT/preset``) that ``tfcl train METHOD --text-preset OUT/preset`` starts from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tfcl.cli.console import LOG_FILE, UserError


def register(subparsers: Any) -> None:
    """Add ``tfcl pretrain`` to the ``tfcl`` sub-command parsers."""
    from tfcl.data.weibo_corpus import HELD_OUT_EVERY
    from tfcl.recipes.pretrain import PretrainConfig

    defaults = PretrainConfig()
    parser = subparsers.add_parser(
        "pretrain",
        help="masked-language-model pretraining of the BERT text tower on Weibo posts (resumes after an interruption)",
        description="Pretrain the BERT text tower (BertMaskedLM, 15% masking) on the texts of Weibo day files and "
        "write a keras-hub preset to OUT/preset. A run started again with the same arguments resumes from its last "
        "finished epoch, at the same data position.",
    )
    parser.add_argument("--out", required=True, help="run folder: backup, TensorBoard logs, pretrain.json, preset/")
    parser.add_argument(
        "--input",
        nargs="+",
        metavar="GLOB_OR_DIR",
        help="day files (CSV `user,text`, gzip if *.gz): files, folders or glob patterns (default: the 48 days "
        "under $TFCL_SHARED_DATA/weibo)",
    )
    parser.add_argument("--vocabulary", help="WordPiece vocab.txt (default: the cached bert-base-chinese one)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=defaults.steps_per_epoch)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="peak, AdamW + cosine")
    parser.add_argument("--sequence-length", type=int, default=defaults.sequence_length)
    parser.add_argument("--num-layers", type=int, default=defaults.num_layers)
    parser.add_argument("--num-heads", type=int, default=defaults.num_heads)
    parser.add_argument("--hidden-dim", type=int, default=defaults.hidden_dim)
    parser.add_argument("--intermediate-dim", type=int, default=defaults.intermediate_dim)
    parser.add_argument("--held-out-texts", type=int, default=defaults.held_out_texts, help="held-out set size")
    parser.add_argument(
        "--held-out-every",
        type=int,
        default=HELD_OUT_EVERY,
        help="hold out every Nth unique text, chosen by its hash (default %(default)s)",
    )
    parser.add_argument("--max-texts", type=int, help="a pass over the data ends after this many training texts")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="weights and shuffling")
    parser.set_defaults(run=run, log_file=lambda args: f"{args.out}/{LOG_FILE}")


def run(args: argparse.Namespace) -> None:
    from tfcl.data.weibo_corpus import WeiboCorpus, day_files
    from tfcl.data.zh_text import weibo_day_files
    from tfcl.recipes.base import NotEnoughData
    from tfcl.recipes.pretrain import PretrainConfig, pretrain

    for flag in ("epochs", "steps_per_epoch", "batch_size", "sequence_length", "num_layers", "held_out_texts"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.max_texts is not None and args.max_texts < 1:
        raise UserError("--max-texts must be at least 1")
    if args.held_out_every < 2:
        raise UserError("--held-out-every must be at least 2")
    try:
        files = day_files(args.input) if args.input else weibo_day_files()
    except FileNotFoundError as error:  # SharedDataNotFoundError too
        raise UserError(f"{error}; give the day files with --input") from None
    if args.vocabulary:
        vocabulary = args.vocabulary
    else:
        from tfcl.data.text import bert_chinese_vocab_path

        vocabulary = bert_chinese_vocab_path()
    config = PretrainConfig(
        sequence_length=args.sequence_length,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=args.intermediate_dim,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        held_out_texts=args.held_out_texts,
        seed=args.seed,
    )
    print(f"tfcl pretrain: {len(files)} day files, {config.texts_per_epoch:,} texts an epoch")
    try:
        corpus = WeiboCorpus(tuple(files), held_out_every=args.held_out_every, max_texts=args.max_texts, seed=args.seed)
        _, summary = pretrain(corpus, vocabulary, args.out, config)
    except NotEnoughData as error:
        raise UserError(str(error)) from None
    for name, counts in summary["corpus"].items():
        print(f"{name.replace('_', ' ')}: {json.dumps(counts, ensure_ascii=False)}")
    print(f"saved the preset {summary['preset']} and {args.out}/pretrain.json")

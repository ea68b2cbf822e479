"""The Chinese sentence-pair, NLI and Weibo label sets under the shared data folder (see its READMEs).

They are for development, tests and benchmarks and are never copied into a package: they are read from
``$TFCL_SHARED_DATA`` (default: the first ``shared/data`` folder found beside the working directory or this
checkout). Every loader raises :class:`SharedDataNotFoundError` naming the file and the variable when it is absent.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

PAIR_SETS = {  # name → (file under zh_text/, columns of s1, s2, label, header rows)
    "lcqmc_dev": ("paraphrase/lcqmc_dev.tsv", (0, 1, 2), 0),
    "bq_dev": ("paraphrase/bq_dev.csv", (0, 1, 2), 1),
    "pawsx_dev": ("paraphrase/pawsx_dev.tsv", (1, 2, 3), 1),
    "afqmc_dev": ("paraphrase/afqmc_dev.tsv", (0, 1, 2), 0),
    "afqmc_train": ("paraphrase/afqmc_train.tsv", (0, 1, 2), 0),
    "atec_train": ("paraphrase/atec_train.tsv", (1, 2, 3), 0),
}
EMOTIONS = ("angry", "happy", "neutral", "sad", "fear", "surprise")


class SharedDataNotFoundError(FileNotFoundError):
    """A file of the shared development data is missing; the message says where it was looked for."""


class ScoredPair(NamedTuple):
    """Two sentences and their label: an STS score (0–5) or a paraphrase flag (0/1)."""

    first: str
    second: str
    label: float


class Triplet(NamedTuple):
    """An NLI premise with one entailed and one contradicting hypothesis (supervised SimCSE's training unit)."""

    anchor: str
    positive: str
    hard_negative: str


def shared_data_dir() -> Path:
    """``$TFCL_SHARED_DATA``, else the first existing ``shared/data`` beside the working directory or this
    checkout; raises :class:`SharedDataNotFoundError` if there is none."""
    if "TFCL_SHARED_DATA" in os.environ:
        candidates = [Path(os.environ["TFCL_SHARED_DATA"]).expanduser()]
    else:
        candidates = [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SharedDataNotFoundError(
        f"The shared development data is not at {' or '.join(map(str, candidates))}; "
        "set TFCL_SHARED_DATA to the folder that holds zh_text/ and weibo/."
    )


def shared_file(relative: str) -> Path:
    """``shared_data_dir() / relative``, or :class:`SharedDataNotFoundError` naming it."""
    path = shared_data_dir() / relative
    if not path.is_file():
        raise SharedDataNotFoundError(f"{path} is missing from the shared data (set TFCL_SHARED_DATA to move it).")
    return path


def tsv_rows(path: Path, skip: int = 0) -> Iterator[list[str]]:
    """Rows of a tab-separated file (no quoting), after ``skip`` header rows; stray BOMs are removed."""
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file):
            if number >= skip and line.strip():
                yield line.rstrip("\n").replace("\ufeff", "").split("\t")


def sts_b(split: str) -> list[ScoredPair]:
    """Chinese STS-B ``"train"`` or ``"dev"``: pairs with a similarity score from 0 to 5."""
    if split not in ("train", "dev"):
        raise ValueError(f"STS-B has 'train' and 'dev' here, not {split!r}")
    return [ScoredPair(a, b, float(score)) for a, b, score in tsv_rows(shared_file(f"zh_text/sts_b/{split}.tsv"))]


def paraphrase_pairs(name: str) -> list[ScoredPair]:
    """One of :data:`PAIR_SETS` (LCQMC, BQ, PAWS-X, AFQMC dev; AFQMC, ATEC train): pairs labelled 1 (same
    meaning) or 0."""
    if name not in PAIR_SETS:
        raise ValueError(f"Unknown pair set {name!r}; known: {sorted(PAIR_SETS)}")
    relative, (a, b, label), skip = PAIR_SETS[name]
    path = shared_file(f"zh_text/{relative}")
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as file:
            rows = [row for row in csv.reader(file) if row][skip:]
    else:
        rows = list(tsv_rows(path, skip))
    return [ScoredPair(row[a], row[b], float(row[label])) for row in rows]


def nli_triplets() -> list[Triplet]:
    """(premise, entailment, contradiction) triplets of OCNLI train and the CMNLI and CSNLI dev sets: one per
    pairing of an entailed and a contradicting hypothesis of the same premise (premises lacking either give none)."""
    labelled: list[tuple[str, str, str]] = []
    with shared_file("zh_text/nli/ocnli_train_10k.jsonl").open(encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            labelled.append((record["sentence1"], record["sentence2"], record["label"]))
    for name in ("cmnli_dev", "csnli_dev"):
        labelled += [(row[0], row[1], row[2]) for row in tsv_rows(shared_file(f"zh_text/nli/{name}.tsv"))]
    hypotheses: dict[str, dict[str, list[str]]] = {}
    for premise, hypothesis, label in labelled:
        hypotheses.setdefault(premise, {}).setdefault(label, []).append(hypothesis)
    return [
        Triplet(premise, positive, negative)
        for premise, by_label in hypotheses.items()
        for positive in by_label.get("entailment", ())
        for negative in by_label.get("contradiction", ())
    ]


def positive_pairs(min_sts_score: float = 4.0) -> list[tuple[str, str]]:
    """Sentence pairs of the training splits that mean the same: AFQMC and ATEC train pairs labelled 1 and
    STS-B train pairs scored at least ``min_sts_score``."""
    pairs = [pair for name in ("afqmc_train", "atec_train") for pair in paraphrase_pairs(name) if pair.label == 1]
    pairs += [pair for pair in sts_b("train") if pair.label >= min_sts_score]
    return [(pair.first, pair.second) for pair in pairs]


def smp2020_emotion(split: str) -> tuple[list[str], list[str]]:
    """SMP2020-EWECT "usual" Weibo posts ``"train"`` (27,768) or ``"eval"`` (2,000, labelled): (texts, emotions)."""
    files = {"train": "usual_train.csv", "eval": "usual_eval_labeled.csv"}
    if split not in files:
        raise ValueError(f"SMP2020-EWECT has {sorted(files)} here, not {split!r}")
    with shared_file(f"weibo/emotion_smp2020/{files[split]}").open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))[1:]
    return [row[1] for row in rows], [row[2] for row in rows]


def weibo_sentiment() -> tuple[list[str], list[int]]:
    """The 31,273 weibo_senti posts: (texts, labels) with 1 positive and 0 negative."""
    texts, labels = [], []
    with shared_file("weibo/sentiment_100k_part/weibo_senti_train.jsonl").open(encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            texts.append(record["text"])
            labels.append(int(record["label"]))
    return texts, labels


def weibo_day_files() -> list[Path]:
    """The 48 real Weibo day files in date order: the 47 gzip CSVs of ``covid_days/`` and the 2020-03-18 CSV."""
    folder = shared_data_dir() / "weibo"
    files = sorted([*folder.glob("covid_days/weibo_covid_*.csv.gz"), *folder.glob("weibo_covid_*.csv")], key=day_of)
    if not files:
        raise SharedDataNotFoundError(f"No weibo_covid_*.csv[.gz] day files under {folder}.")
    return files


def day_of(path: Path) -> str:
    """The ``YYYY-MM-DD`` date in a day file's name."""
    return path.name.removeprefix("weibo_covid_").split(".")[0]

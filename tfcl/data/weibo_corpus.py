"""A streaming corpus of Weibo post texts for language-model pretraining, read from day files, never all in memory.

Day files are CSV (``user,text``; gzip when named ``*.gz``) as in ``$TFCL_SHARED_DATA/weibo`` (see
:func:`tfcl.data.zh_text.weibo_day_files`); records are read with the strict CSV reader and parser of
:mod:`tfcl.data.weibo`. A post's text is its ``document``: the text with its hashtags removed, normalised as for
CD-TOM and serving (:func:`tfcl.data.weibo.normalize_text`: ``@user`` placeholders, URLs and lost-emoji marks
dropped). What is not trained on is counted by reason (:class:`CorpusCounts`):

* the parser's reasons: ``bad_encoding`` (not UTF-8), ``bad_csv_row``, ``no_text``, ``oversize`` (longer than
  ``max_chars``, 10,000 by default: skipped, not truncated — the longest post of the real 2020-03-18 day has 2,045
  characters, so a longer record is a crawl or CSV accident and its first characters are not a post either);
* ``no_words``: nothing but emoji, emoticon codes, URLs, ``@user`` s, hashtags or punctuation;
* ``duplicate``: a repost of a text already read in this pass (same document; 64 bits of its SHA-1 are kept);
* ``unreadable_file``: a file that cannot be read on (a truncated gzip): its records up to the break count.

About one unique text in ``held_out_every`` is held out (those whose key is divisible by it, so the same texts
whatever the files' order): never trained on; the first of them are the evaluation set
(:meth:`WeiboCorpus.held_out_texts`). Only the 64-bit keys of a pass's texts are kept in memory, never the texts.

The training stream (:meth:`WeiboCorpus.training_texts`) is deterministic: passes over the files in order (each
pass de-duplicates anew), texts shuffled within blocks of ``shuffle_block`` by a seed of (``seed``, pass, block).
Its position is the number of texts it has yielded; ``training_texts(start=n)`` yields what the stream yields
after its first ``n`` texts, so a resumed run continues where the interrupted one stopped. To get there it reads
and parses the records before (not tokenising or shuffling them).
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import re
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tfcl.data import weibo

MAX_CHARS = 10_000
HELD_OUT_EVERY = 50
SHUFFLE_BLOCK = 4096
SKIP_REASONS = (*weibo.REASONS, "no_words", "duplicate", "unreadable_file")

_NOT_WORDS = re.compile(r"@user|\[\w{1,8}\]")  # the mention placeholder and emoticon codes carry no text
_WORD = re.compile(r"[^\W_]")


@dataclasses.dataclass
class CorpusCounts:
    """What a reader of the corpus has read: records, texts kept (for training or held out), and skipped by reason."""

    records: int = 0
    training: int = 0
    held_out: int = 0
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def as_dict(self) -> dict[str, int | dict[str, int]]:
        return {
            "records": self.records,
            "training": self.training,
            "held_out": self.held_out,
            "skipped": {reason: self.skipped[reason] for reason in SKIP_REASONS if self.skipped[reason]},
        }


class NoTrainingTexts(ValueError):
    """The files hold no text to train on; the message gives the counts."""


def has_words(document: str) -> bool:
    """Whether a normalised document has a letter or digit outside ``@user`` placeholders and emoticon codes."""
    return bool(_WORD.search(_NOT_WORDS.sub(" ", document)))


def text_key(document: str) -> int:
    """64 bits of the SHA-1 of a document: what de-duplication and the held-out choice look at."""
    return int.from_bytes(hashlib.sha1(document.encode("utf-8")).digest()[:8], "big")


@dataclasses.dataclass(frozen=True)
class WeiboCorpus:
    """The texts of Weibo day ``files`` (see the module docstring for what is kept and how the stream runs);
    ``max_texts``: a pass of the training stream ends after that many texts."""

    files: tuple[Path, ...]
    held_out_every: int = HELD_OUT_EVERY
    max_chars: int = MAX_CHARS
    shuffle_block: int = SHUFFLE_BLOCK
    max_texts: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(Path(file) for file in self.files))
        if not self.files:
            raise ValueError("a WeiboCorpus needs at least one day file")
        if self.held_out_every < 2 or self.shuffle_block < 1 or (self.max_texts is not None and self.max_texts < 1):
            raise ValueError("held_out_every must be at least 2, shuffle_block and max_texts at least 1")

    def documents(self, counts: CorpusCounts | None = None) -> Iterator[tuple[str, bool]]:
        """One pass: ``(document, held_out)`` for each unique text worth training on, in file order."""
        counts = CorpusCounts() if counts is None else counts
        seen: set[int] = set()
        for path in self.files:
            for document in self._file_documents(path, counts):
                key = text_key(document)
                if key in seen:
                    counts.skip("duplicate")
                    continue
                seen.add(key)
                yield document, key % self.held_out_every == 0

    def training_texts(self, start: int = 0, counts: CorpusCounts | None = None) -> Iterator[str]:
        """The training stream from position ``start``, endless (see the module docstring)."""
        counts = CorpusCounts() if counts is None else counts
        position, pass_number = 0, 0
        while True:
            yielded_in_pass = 0
            for block_number, block in enumerate(self._blocks(counts)):
                if position + len(block) <= start:  # skipped whole: no need to shuffle it
                    position += len(block)
                    yielded_in_pass += len(block)
                    continue
                order = np.random.default_rng((self.seed, pass_number, block_number)).permutation(len(block))
                for index in order[max(0, start - position) :]:
                    counts.training += 1
                    yield block[index]
                position += len(block)
                yielded_in_pass += len(block)
            if not yielded_in_pass:
                raise NoTrainingTexts(f"{len(self.files)} day files hold no text to train on: {counts.as_dict()}")
            pass_number += 1

    def held_out_texts(self, size: int, counts: CorpusCounts | None = None) -> list[str]:
        """The first ``size`` held-out texts (fewer if the files hold fewer)."""
        counts = CorpusCounts() if counts is None else counts
        texts = []
        for document, held_out in self.documents(counts):
            if held_out:
                texts.append(document)
                counts.held_out += 1
                if len(texts) == size:
                    break
        return texts

    def _blocks(self, counts: CorpusCounts) -> Iterator[list[str]]:
        block: list[str] = []
        documents = (document for document, held_out in self.documents(counts) if not held_out)
        for number, document in enumerate(documents, 1):
            block.append(document)
            if len(block) == self.shuffle_block:
                yield block
                block = []
            if number == self.max_texts:
                break
        if block:
            yield block

    def _file_documents(self, path: Path, counts: CorpusCounts) -> Iterator[str]:
        """The documents of one file's records that have words; the rest counted by reason."""
        try:
            with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as file:
                parser, records = weibo.open_records(file, "csv", source=str(path))
                parser = dataclasses.replace(parser, max_chars=self.max_chars)
                for source, raw in records:
                    counts.records += 1
                    post = parser.parse_or_dead_letter(source, raw)
                    if isinstance(post, weibo.DeadLetter):
                        counts.skip(post.reason)
                    elif not has_words(post.document):
                        counts.skip("no_words")
                    else:
                        yield post.document
        except (OSError, EOFError, zlib.error, weibo.InputError):
            counts.skip("unreadable_file")


def day_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Day files named by ``inputs``: files, folders (their ``*.csv`` and ``*.csv.gz``) or glob patterns, sorted
    by name within each input; ``FileNotFoundError`` naming an input that matches none."""
    files: list[Path] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            matches = sorted([*path.glob("*.csv"), *path.glob("*.csv.gz")])
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(match) for match in glob.glob(str(given)) if Path(match).is_file())
        if not matches:
            raise FileNotFoundError(f"{given}: no day files (*.csv or *.csv.gz) there")
        files += matches
    return files

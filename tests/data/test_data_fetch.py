"""How ``tfcl data fetch`` extracts, indexes, verifies and marks data sets, on small archives built here."""

import argparse
import dataclasses
import io
import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tfcl.cli import data as data_cli
from tfcl.data import fetch as fetching
from tfcl.data.cache import COMPLETE_MARKER, dataset_dir
from tfcl.data.fetch import DataSet, FetchError, Package


def write_files(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_package_destination():
    package = Package(
        "apt",
        "stamps",
        {"usr/share/stamps/": "stamps/", "usr/share/doc/copyright": "LICENSE"},
        suffixes=(".png", ".txt"),
    )
    assert package.destination("./usr/share/stamps/animals/cat.png") == "stamps/animals/cat.png"
    assert package.destination("usr/share/stamps/animals/cat.txt") == "stamps/animals/cat.txt"
    assert package.destination("./usr/share/stamps/animals/cat.ogg") is None
    assert package.destination("./usr/share/doc/copyright") == "LICENSE"
    assert package.destination("./usr/share/doc/changelog.gz") is None
    with pytest.raises(FetchError, match="leaves the data set folder"):
        package.destination("usr/share/stamps/../../etc/passwd.txt")


def test_parse_stamp_caption():
    text = "A red kangaroo.\nde.utf8=Ein rotes Känguru.\nzh_CN.utf8=一只红色的袋鼠。\nzh_TW.utf8=一隻紅色的袋鼠。\n"
    assert fetching.parse_stamp_caption(text) == ("A red kangaroo.", "一只红色的袋鼠。")
    assert fetching.parse_stamp_caption("A frog.\nfr.utf8=Une grenouille.") == ("A frog.", "")


def test_index_emoji_joins_on_code_points_without_fe0f(tmp_path):
    emoji = [
        {"unified": "2764-FE0F", "image": "2764-fe0f.png", "category": "Smileys & Emotion", "subcategory": "heart"},
        {"unified": "1F600", "image": "1f600.png", "category": "Smileys & Emotion", "subcategory": "face-smiling"},
        {"unified": "1F9D1", "image": "1f9d1.png", "category": "People & Body", "subcategory": "person"},
    ]
    labels = {
        "zh": [
            {"hexcode": "2764", "emoji": "❤", "label": "红心", "tags": ["爱", "心"]},
            {"hexcode": "1F600", "emoji": "😀", "label": "嘿嘿", "tags": ["笑脸"]},
        ],
        "en": [
            {"hexcode": "2764", "emoji": "❤", "label": "red heart", "tags": ["heart", "love"]},
            {"hexcode": "1F600", "emoji": "😀", "label": "grinning face", "tags": ["smile"]},
            {"hexcode": "1F9D1", "emoji": "🧑", "label": "person"},
        ],
    }
    images = ("2764-fe0f.png", "1f600.png", "1f9d1.png", "1f9d1-1f3fb.png")
    write_files(
        tmp_path,
        {
            "emoji.json": json.dumps(emoji),
            "zh/data.json": json.dumps(labels["zh"]),
            "en/data.json": json.dumps(labels["en"]),
            **{f"img/{name}": "png" for name in images},
        },
    )
    fetching.index_emoji(tmp_path)
    rows = fetching.read_index(tmp_path / fetching.INDEX_FILE)
    assert [(row["code"], row["label_zh"], row["label_en"]) for row in rows] == [
        ("2764-FE0F", "红心", "red heart"),
        ("1F600", "嘿嘿", "grinning face"),
    ]
    assert rows[0]["tags_zh"] == ["爱", "心"] and rows[0]["subcategory"] == "heart"
    assert sorted(path.name for path in (tmp_path / "img").iterdir()) == ["1f600.png", "2764-fe0f.png"]
    assert fetching.count_emoji(tmp_path) == {"emoji": 2, "images": 2, "categories": 1, "subcategories": 2}


def test_index_tuxpaint_prefers_png_and_drops_uncaptioned_files(tmp_path):
    write_files(
        tmp_path / "stamps",
        {
            "animals/kangaroo.png": "png",
            "animals/kangaroo.svg": "svg",
            "animals/kangaroo.txt": "A red kangaroo.\nzh_CN.utf8=一只红色的袋鼠。",
            "animals/kangaroo_mirror.png": "png",
            "food/apple.svg": "svg",
            "food/apple.txt": "An apple.",
            "seasonal/gift.txt": "A gift.",
        },
    )
    fetching.index_tuxpaint(tmp_path)
    rows = fetching.read_index(tmp_path / fetching.INDEX_FILE)
    assert rows == [
        {
            "image": "stamps/animals/kangaroo.png",
            "caption_en": "A red kangaroo.",
            "caption_zh": "一只红色的袋鼠。",
            "category": "animals",
        },
        {"image": "stamps/food/apple.svg", "caption_en": "An apple.", "caption_zh": "", "category": "food"},
    ]
    left = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert left == [
        "index.jsonl",
        "stamps/animals/kangaroo.png",
        "stamps/animals/kangaroo.txt",
        "stamps/food/apple.svg",
        "stamps/food/apple.txt",
    ]
    assert not (tmp_path / "stamps" / "seasonal").exists()


def build_tarball(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def build_wheel(path, files):
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)


def build_deb(path, files, tmp_path):
    root = tmp_path / "deb-root"
    write_files(
        root,
        {
            "DEBIAN/control": "Package: toy\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n"
            "Description: toy package\n",
            **files,
        },
    )
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(path)], check=True, capture_output=True)


LINES = "first\nsecond\nthird\n"


@pytest.fixture
def toy_data_set(tmp_path, monkeypatch):
    """Registers a data set 'toy' made of an npm tarball, a wheel and a .deb served by a fake download; yields the
    list of downloaded specs."""
    monkeypatch.setenv("TFCL_DATA_DIR", str(tmp_path / "cache"))
    archives = tmp_path / "archives"
    archives.mkdir()
    build_tarball(archives / "toy-1.0.tgz", {"package/lines.txt": LINES, "package/LICENSE": "MIT"})
    build_wheel(archives / "toy-1.0-py3-none-any.whl", {"toy/data/more.txt": "fourth\n", "toy/code.py": ""})
    build_deb(archives / "toy_1.0_all.deb", {"usr/share/toy/deb.txt": "fifth\n"}, tmp_path)
    packages = (
        Package("npm", "toy-1.0.tgz", {"package/lines.txt": "lines.txt", "package/LICENSE": "LICENSE"}),
        Package("pip", "toy-1.0-py3-none-any.whl", {"toy/data/": "more/"}, suffixes=(".txt",)),
        Package("apt", "toy_1.0_all.deb", {"usr/share/toy/deb.txt": "deb.txt"}),
    )
    downloads = []

    def download(package, folder):
        downloads.append(package.spec)
        return Path(shutil.copy(archives / package.spec, folder))

    monkeypatch.setattr(fetching, "download", download)
    monkeypatch.setitem(
        fetching.DATASETS,
        "toy",
        DataSet(
            "toy",
            "a toy data set",
            packages=packages,
            count=lambda folder: {"lines": fetching.count_lines(folder / "lines.txt")},
            expected={"lines": 3},
        ),
    )
    return downloads


def change_toy(monkeypatch, **changes):
    monkeypatch.setitem(fetching.DATASETS, "toy", dataclasses.replace(fetching.DATASETS["toy"], **changes))


def test_fetch_extracts_verifies_and_marks_complete(toy_data_set):
    log = []
    folder = fetching.fetch("toy", log=log.append)
    assert folder == dataset_dir("toy")
    assert (folder / "lines.txt").read_text() == LINES and (folder / "LICENSE").read_text() == "MIT"
    assert (folder / "more" / "more.txt").read_text() == "fourth\n" and not (folder / "more" / "code.py").exists()
    assert (folder / "deb.txt").read_text() == "fifth\n"
    marker = json.loads((folder / COMPLETE_MARKER).read_text())
    assert marker == {"sources": ["toy-1.0.tgz", "toy-1.0-py3-none-any.whl", "toy_1.0_all.deb"], "counts": {"lines": 3}}
    assert any("verified: lines 3" in line for line in log)
    assert [path.name for path in folder.parent.iterdir()] == ["toy"]  # no staging folder left


def test_fetch_skips_complete_data_sets_unless_forced(toy_data_set):
    fetching.fetch("toy", log=lambda line: None)
    fetching.fetch("toy", log=lambda line: None)
    assert len(toy_data_set) == 3
    fetching.fetch("toy", force=True, log=lambda line: None)
    assert len(toy_data_set) == 6


def test_fetch_fails_verification_and_leaves_nothing(toy_data_set, monkeypatch):
    change_toy(monkeypatch, expected={"lines": 4})
    with pytest.raises(FetchError, match="expected lines 4 but found lines 3"):
        fetching.fetch("toy", log=lambda line: None)
    cache = dataset_dir("toy", must_exist=False).parent
    assert list(cache.iterdir()) == []


def test_fetch_fails_when_an_archive_lacks_a_kept_file(toy_data_set, monkeypatch):
    lacking = Package("npm", "toy-1.0.tgz", {"package/lines.txt": "lines.txt", "package/README.md": "README.md"})
    change_toy(monkeypatch, packages=(lacking,))
    with pytest.raises(FetchError, match="toy-1.0.tgz does not have package/README.md"):
        fetching.fetch("toy", log=lambda line: None)


@pytest.mark.parametrize("archive", ["toy-1.0.tgz", "toy-1.0-py3-none-any.whl", "toy_1.0_all.deb"])
def test_fetch_reports_unreadable_archives(archive, toy_data_set, tmp_path, monkeypatch):
    (tmp_path / "archives" / archive).write_bytes(b"not an archive")
    with pytest.raises(FetchError, match=f"read {archive}"):
        fetching.fetch("toy", log=lambda line: None)


def test_apt_failure_says_to_update_the_package_lists(tmp_path):
    with pytest.raises(FetchError, match="run `apt-get update`"):
        fetching.download(Package("apt", "tfcl-no-such-package", {}), tmp_path)


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="tfcl")
    data_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *argv])
    return args.run(args)


def test_cli_fetch_rejects_unknown_names(capsys):
    assert run_cli("fetch", "emoji", "weibo") == 2
    assert "unknown data set weibo" in capsys.readouterr().err


def test_cli_fetch_reports_fetch_errors_cleanly(toy_data_set, monkeypatch, capsys):
    change_toy(monkeypatch, expected={"lines": 9})
    assert run_cli("fetch", "toy") == 1
    assert "tfcl data fetch: error: toy: verification failed" in capsys.readouterr().err

"""The pretraining corpus: what it skips and why, de-duplication, the held-out texts, a resumable stream."""

import gzip
from itertools import islice

import pytest
from weibo_days import chinese_texts, csv_row, write_day_file

from tfcl.data.weibo_corpus import CorpusCounts, WeiboCorpus, day_files, has_words


@pytest.fixture
def bad_day(tmp_path):
    """A gzip day file with 5 good texts among every kind of bad record, and a truncated second day."""
    good = chinese_texts(5)
    rows = [
        good[0],
        "",  # no_text
        "😀😷🙏",  # no_words: emoji only
        "?? [哈哈] [心]",  # no_words: lost emoji marks and emoticon codes
        "http://t.cn/A6abc https://weibo.com/x",  # no_words: URLs only
        "@人民日报 @央视新闻 #武汉加油#",  # no_words: mentions and a hashtag
        good[1],
        "长" * 100_000,  # oversize
        csv_row("u2", good[0]),  # duplicate: a repost by another user
        b"u3," + "坏的".encode() + b"\xff\xfe" + "编码".encode() + b"\n",  # bad_encoding
        "#话题# " + good[1] + " http://t.cn/xyz",  # duplicate: same document once hashtag and URL go
        good[2],
        good[3],
        good[4],
    ]
    first = write_day_file(tmp_path / "weibo_covid_2020-01-01.csv.gz", rows)
    whole = gzip.compress(b"user,text\n" + b"".join(csv_row("u", text) for text in chinese_texts(50, seed=1)))
    second = tmp_path / "weibo_covid_2020-01-02.csv.gz"
    second.write_bytes(whole[: len(whole) // 2])
    return first, second, good


def test_bad_records_are_counted_by_reason_and_reading_goes_on(bad_day):
    first, second, good = bad_day
    corpus = WeiboCorpus((first, second), held_out_every=10**9)  # nothing held out in practice
    counts = CorpusCounts()
    documents = list(corpus.documents(counts))
    assert [document for document, _ in documents][:5] == good
    assert counts.skipped == {
        "no_text": 1,
        "no_words": 4,
        "oversize": 1,
        "duplicate": 2,
        "bad_encoding": 1,
        "unreadable_file": 1,
    }
    assert counts.records == 14 + len(documents) - 5  # the second file's records up to the break count too
    assert 0 < len(documents) - 5 < 50


@pytest.mark.parametrize("text, expected", [("好", True), ("a1", True), ("@user [哈哈] 😀 ！", False), ("", False)])
def test_has_words(text, expected):
    assert has_words(text) is expected


@pytest.fixture
def days(tmp_path):
    texts = chinese_texts(120)
    return [
        write_day_file(tmp_path / "weibo_covid_2020-02-01.csv.gz", texts[:70]),
        write_day_file(tmp_path / "weibo_covid_2020-02-02.csv", texts[70:] + texts[:10]),  # reposts of day one
    ], texts


def test_held_out_texts_are_never_trained_on_and_each_pass_trains_on_the_rest(days):
    files, texts = days
    corpus = WeiboCorpus(tuple(files), held_out_every=5, shuffle_block=16)
    held_out = corpus.held_out_texts(1000)
    one_pass = list(islice(corpus.training_texts(), len(texts) - len(held_out)))
    assert 0 < len(held_out) < len(texts)
    assert sorted(one_pass + held_out) == sorted(texts)
    second_pass = list(islice(corpus.training_texts(), len(one_pass), 2 * len(one_pass)))
    assert sorted(second_pass) == sorted(one_pass) and second_pass != one_pass  # shuffled anew
    assert corpus.held_out_texts(3) == held_out[:3]


@pytest.mark.parametrize("start", [0, 1, 15, 16, 17, 100, 250])
def test_the_stream_resumes_at_its_position(days, start):
    corpus = WeiboCorpus(tuple(days[0]), held_out_every=5, shuffle_block=16)
    reference = list(islice(corpus.training_texts(), 300))
    assert list(islice(corpus.training_texts(start=start), 300 - start)) == reference[start:]


def test_max_texts_ends_a_pass(days):
    corpus = WeiboCorpus(tuple(days[0]), held_out_every=5, max_texts=7)
    stream = list(islice(corpus.training_texts(), 21))
    assert stream[:7] != stream[7:14] and sorted(stream[:7]) == sorted(stream[7:14]) == sorted(stream[14:])


def test_day_files_from_folders_globs_and_files(days, tmp_path):
    files, _ = days
    assert day_files([tmp_path]) == sorted(files)
    assert day_files([str(tmp_path / "*.gz"), files[1]]) == [files[0], files[1]]
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        day_files([tmp_path / "nothing-here"])

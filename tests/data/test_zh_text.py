"""The shared Chinese data loaders, on small files written in each set's own format."""

import gzip
import json

import pytest

from tfcl.data import zh_text


@pytest.fixture
def shared(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCL_SHARED_DATA", str(tmp_path))
    return tmp_path


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_pair_sets_read_their_columns_headers_and_stray_boms(shared):
    write(shared / "zh_text/sts_b/dev.tsv", "一架飞机要起飞了。\t一架飞机正在起飞。\t5\n")
    write(shared / "zh_text/paraphrase/bq_dev.csv", 'sentence1,sentence2,label\n"借,款",取消借款,0\n')
    write(shared / "zh_text/paraphrase/pawsx_dev.tsv", "id\tsentence1\tsentence2\tlabel\n4\t甲\t乙\t1\n")
    write(shared / "zh_text/paraphrase/atec_train.tsv", "1\t\ufeff怎么更改\t怎么改\t1\n")

    assert zh_text.sts_b("dev") == [("一架飞机要起飞了。", "一架飞机正在起飞。", 5.0)]
    assert zh_text.paraphrase_pairs("bq_dev") == [("借,款", "取消借款", 0.0)]
    assert zh_text.paraphrase_pairs("pawsx_dev") == [("甲", "乙", 1.0)]
    assert zh_text.paraphrase_pairs("atec_train") == [("怎么更改", "怎么改", 1.0)]


def test_positive_pairs_are_the_training_paraphrases_and_high_scoring_sts_pairs(shared):
    write(shared / "zh_text/paraphrase/afqmc_train.tsv", "借呗还款\t怎么还借呗\t1\n花呗违约\t花呗额度\t0\n")
    write(shared / "zh_text/paraphrase/atec_train.tsv", "1\t怎么更改\t怎么改\t1\n2\t开不了\t付款\t0\n")
    write(shared / "zh_text/sts_b/train.tsv", "飞机起飞\t一架飞机起飞了\t5\n狗在跑\t狗在奔跑\t4\n猫\t狗\t3.8\n")

    expected = [
        ("借呗还款", "怎么还借呗"),
        ("怎么更改", "怎么改"),
        ("飞机起飞", "一架飞机起飞了"),
        ("狗在跑", "狗在奔跑"),
    ]
    assert zh_text.positive_pairs() == expected
    assert zh_text.positive_pairs(min_sts_score=4.5) == expected[:3]


def test_nli_triplets_pair_every_entailment_with_every_contradiction_of_a_premise(shared):
    ocnli = [
        {"sentence1": "P", "sentence2": "e1", "label": "entailment"},
        {"sentence1": "P", "sentence2": "c1", "label": "contradiction"},
        {"sentence1": "P", "sentence2": "n1", "label": "neutral"},
        {"sentence1": "Q", "sentence2": "e2", "label": "entailment"},  # no contradiction: no triplet
    ]
    write(shared / "zh_text/nli/ocnli_train_10k.jsonl", "".join(json.dumps(r) + "\n" for r in ocnli))
    write(shared / "zh_text/nli/cmnli_dev.tsv", "P\te3\tentailment\n")
    write(shared / "zh_text/nli/csnli_dev.tsv", "R\tc4\tcontradiction\n")

    assert sorted(zh_text.nli_triplets()) == [("P", "e1", "c1"), ("P", "e3", "c1")]


def test_day_files_come_in_date_order_and_a_missing_folder_is_named(shared):
    write(shared / "weibo/weibo_covid_2020-03-18.csv", "user,text\n")
    (shared / "weibo/covid_days").mkdir()
    for day in ("2020-04-01", "2020-01-19"):
        with gzip.open(shared / f"weibo/covid_days/weibo_covid_{day}.csv.gz", "wt") as file:
            file.write("user,text\n")
    assert [zh_text.day_of(path) for path in zh_text.weibo_day_files()] == ["2020-01-19", "2020-03-18", "2020-04-01"]

    with pytest.raises(zh_text.SharedDataNotFoundError, match="smp2020"):
        zh_text.smp2020_emotion("eval")
    with pytest.raises(ValueError, match="'test'"):
        zh_text.sts_b("test")

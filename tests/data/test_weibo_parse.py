"""Weibo record parsing: hashtag forms, text normalisation, the JSON and CSV schemas, malformed records."""

import csv
import json
import re
from pathlib import Path

import pytest

from tfcl.data import weibo, weibo_sample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "weibo"
REAL_FILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "weibo" / "weibo_covid_2020-03-18.csv"


@pytest.mark.parametrize(
    "text, topics, rest",
    [
        ("#话题一#正文#话题二#", ("话题一", "话题二"), " 正文 "),
        ("#话题一##话题二#正文", ("话题一", "话题二"), "  正文"),
        ("＃全角＃正文＃混用#", ("全角", "混用"), " 正文 "),
        ("# 两边空格 #正文", ("两边空格",), " 正文"),
        ("#吴尊友  输入性病例#正文", ("吴尊友 输入性病例",), " 正文"),
        ("正文 #没有闭合", (), "正文 #没有闭合"),
        ("正文 ## 中间", (), "正文   中间"),
        ("正文 #?# 中间", (), "正文   中间"),
        ("#重复#一次#重复#两次", ("重复",), " 一次 两次"),
        ("【#外交部回应#：#中方反制#】今天", ("外交部回应", "中方反制"), "【 ： 】今天"),
        ("第一行#不是\n话题#第二行", (), "第一行#不是\n话题#第二行"),
        ("#ＮＢＡ#球赛", ("NBA",), " 球赛"),
        ("说得对//@新闻哥:#早睡早起# 作息", ("早睡早起",), "说得对//@新闻哥:  作息"),
    ],
)
def test_split_hashtags(text, topics, rest):
    assert weibo.split_hashtags(text) == (topics, rest)


def test_a_hashtag_longer_than_the_limit_is_text_and_its_closing_mark_may_open_the_next():
    text = "#" + "长" * 10 + "#短话题#"
    assert weibo.split_hashtags(text, max_topic_chars=8) == (("短话题",), "#" + "长" * 10 + " ")
    assert weibo.split_hashtags(text, max_topic_chars=10)[0] == ("长" * 10,)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("【 ： 】正文在这里 L某某新闻的微博视频 收起全文d", "正文在这里"),
        ("看 L人民视频的秒拍视频 ? L人民视频的微博视频 收起全文d", "看"),
        ("我们加油 ? ??? 2武汉 ?", "我们加油"),
        ("正文 2上饶·婺源县", "正文"),
        ("2月18日的消息", "2月18日的消息"),
        ("详情 O网页链接 见", "详情 见"),
        ("链接http://t.cn/A6zlA2hu 结束", "链接 结束"),
        ("来自@央视新闻http://t.cn/A6zlA2hu", "来自@user"),
        ("写信给 abc@mail.com 吧", "写信给 abc@mail.com 吧"),
        ("转发//@小鹿_同学:好的", "转发//@user:好的"),
        ("\ue627隐藏\u200b字符\u3000与　空白\n换行", "隐藏字符 与 空白 换行"),
        ("笑死[哈哈][哈哈]", "笑死[哈哈][哈哈]"),
    ],
)
def test_normalize_text_defaults(text, expected):
    assert weibo.normalize_text(text) == expected


@pytest.mark.parametrize(
    "options, expected",
    [
        (dict(mentions="keep"), "@小鹿 说 [哈哈] 看 ?"),
        (dict(mentions="drop"), "说 [哈哈] 看 ?"),
        (dict(urls="keep"), "@user 说 [哈哈] 看 http://t.cn/Ab1 ?"),
        (dict(urls="placeholder"), "@user 说 [哈哈] 看 <url> ?"),
        (dict(emoticons="drop"), "@user 说 看 ?"),
        (dict(emoticons="placeholder"), "@user 说 <emoticon> 看 ?"),
        (dict(lost_emoji_mark="?"), "@user 说 [哈哈] 看"),
    ],
)
def test_normalization_options(options, expected):
    text = "@小鹿 说 [哈哈] 看 http://t.cn/Ab1 ?"
    normalization = weibo.Normalization(**{"lost_emoji_mark": None, **options})
    assert weibo.normalize_text(text, normalization) == expected


def test_card_residue_is_kept_when_asked():
    text = "正文 L某某的微博视频 收起全文d"
    assert weibo.normalize_text(text, weibo.Normalization(strip_card_residue=False)) == text


def test_a_bad_policy_is_a_clear_error():
    with pytest.raises(ValueError, match="mentions must be one of"):
        weibo.Normalization(mentions="mask")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Wed Mar 18 10:20:30 +0800 2020", "2020-03-18T10:20:30+08:00"),
        ("2020-03-18T02:20:30Z", "2020-03-18T02:20:30+00:00"),
        ("2020-03-18 10:20", "2020-03-18T10:20:00"),
        ("", ""),
    ],
)
def test_parse_created_at(value, expected):
    assert weibo.parse_created_at(value) == expected


def test_an_unreadable_time_is_malformed():
    with pytest.raises(weibo.MalformedRecord) as error:
        weibo.parse_created_at("3分钟前")
    assert error.value.reason == "bad_created_at"


def _posts(name, **options):
    dead_letters = []
    posts = list(weibo.read_posts(FIXTURES / name, dead_letters=dead_letters, **options))
    return posts, dead_letters


def test_api_statuses():
    posts, _ = _posts("statuses.jsonl", max_chars=500)
    first, repost, card, long_post, iso = posts[:5]
    assert first.id == "4483090981812345" and first.user_id == "1700000001"
    assert first.topics == ("春日赏花", "周末愉快")
    assert first.document == "公园的樱花开了[心] @user 一起去看"
    assert first.created_at == "2020-03-18T10:20:30+08:00"
    assert first.pictures == (
        "http://wx1.sinaimg.cn/thumbnail/006abc1ly1gcxyz01.jpg",
        "http://wx1.sinaimg.cn/thumbnail/006abc1ly1gcxyz02.jpg",
    )
    assert repost.topics == ("早睡早起",)  # from the chain in its own text, not from retweeted_status
    assert repost.repost_of_id == "4483090981800001" and "#健康生活#" in repost.repost_of_text
    assert card.text == "#萌宠日常#猫咪今天 & 狗狗打架了[哈哈]\n明天再拍"  # the m.weibo.cn HTML, as plain text
    assert card.pictures == ("https://wx1.sinaimg.cn/large/006pic1ly1gcxyz03.jpg",) and card.user_id == "1700000003"
    assert long_post.text == "＃篮球比赛＃ 今晚加时赛太精彩了，最后一秒三分绝杀！"  # longText over text_raw
    assert long_post.pictures == ("https://wx2.sinaimg.cn/large/006ajax1ly1gcxyz04.jpg",)
    assert iso.id == "4483090981812700" and iso.user_id == "1700000005" and iso.topics == ("航天探索", "卫星")
    assert iso.pictures == ("pictures/rocket.png", "emoji:1f680") and iso.document == "火箭发射成功 入轨"


def test_malformed_statuses_are_dead_lettered_with_their_reason_and_line():
    posts, dead_letters = _posts("statuses.jsonl", max_chars=500)
    assert len(posts) == 7
    assert [(letter.source.rsplit(":", 1)[1], letter.reason) for letter in dead_letters] == [
        ("8", "bad_encoding"),
        ("9", "bad_json"),
        ("10", "bad_json"),
        ("11", "bad_json"),
        ("12", "no_text"),
        ("13", "no_text"),
        ("14", "no_id"),
        ("15", "bad_created_at"),
        ("16", "oversize"),
    ]
    assert "\\x" in dead_letters[0].raw  # undecodable bytes kept, escaped
    assert all(json.loads(letter.to_json())["reason"] == letter.reason for letter in dead_letters)


def test_without_a_dead_letter_list_the_first_malformed_record_raises_with_its_line():
    with pytest.raises(weibo.MalformedRecord, match=r"statuses.jsonl:8: not utf-8"):
        list(weibo.read_posts(FIXTURES / "statuses.jsonl"))


def test_csv_export():
    posts, dead_letters = _posts("export.csv")
    assert [post.id for post in posts] == [
        "4483090981820001",
        "4483090981820002",
        "4483090981820003",
        "4483090981820001",
    ]
    assert posts[0].pictures == ("http://wx1.sinaimg.cn/large/a1.jpg", "http://wx1.sinaimg.cn/large/a2.jpg")
    assert posts[1].text == '#天气预报#\n明天降温，"记得"带伞, 多穿点'  # a quoted field over two lines
    assert posts[1].created_at == "2020-03-18T08:00:00+08:00"
    assert posts[2].document == "新手机续航不错"
    assert [(letter.source.rsplit(":", 1)[1], letter.reason) for letter in dead_letters] == [
        ("7", "no_id"),
        ("8", "bad_csv_row"),
    ]


def test_weibo_crawler_csv_with_chinese_header():
    posts, dead_letters = _posts("crawler.csv")
    assert not dead_letters
    original, repost = posts
    assert original.id == "4483090981830001" and original.topics == ("健身打卡",)
    assert original.created_at == "2020-03-18T07:15:00"
    assert original.pictures == ("https://wx3.sinaimg.cn/large/c1.jpg",)
    assert repost.topics == () and repost.repost_of_id == "4483090981800002"
    assert repost.repost_of_text == "#电影推荐# 这部电影结局太好哭了"


def test_user_text_csv_gets_ids_derived_from_user_and_text():
    posts, dead_letters = _posts("user_text.csv")
    assert not dead_letters
    assert all(post.id.startswith(weibo.DERIVED_ID_PREFIX) for post in posts)
    assert posts[0].id == posts[3].id  # same user, same text
    assert posts[1].id != posts[2].id  # same text, another user
    assert posts[0].id == weibo.derived_id("a1b2c3d4e5f6", posts[0].text)
    assert posts[0].topics == ("话题一", "话题二") and posts[0].document == "正文在这里"
    assert posts[4].topics == () and posts[4].document == "只有一个#号的帖子 和"


def test_csv_record_boundaries_follow_quotes_not_lines():
    lines = [b"id,text\n", b'1,"a\n', b'b, ""c""",x\n', b"2,plain\n", b'3,"unterminated\n']
    assert list(weibo.iter_csv_records(lines)) == [
        (1, b"id,text"),
        (2, b'1,"a\nb, ""c""",x'),
        (4, b"2,plain"),
        (5, b'3,"unterminated'),
    ]


def test_parser_rejects_a_csv_header_without_text_and_an_unknown_format():
    with pytest.raises(ValueError, match="no text column"):
        weibo.RecordParser("csv", ("id", "user"))
    with pytest.raises(ValueError, match="format must be one of"):
        weibo.RecordParser("xml")


def test_detect_format():
    assert weibo.detect_format("posts.jsonl.gz") == "jsonl"
    assert weibo.detect_format("export.CSV") == "csv"
    assert weibo.detect_format("dump.txt", b'\xef\xbb\xbf{"id": 1}') == "jsonl"
    assert weibo.detect_format("dump.txt", b"user,text\n") == "csv"


def test_sample_corpus_is_deterministic_and_labelled_generated():
    lines, manifest = weibo_sample.sample_lines(300, seed=3)
    assert weibo_sample.sample_lines(300, seed=3) == (lines, manifest)
    assert weibo_sample.sample_lines(300, seed=4)[0] != lines
    decoded = []
    for line in lines:
        try:
            decoded.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
    assert decoded and all(record["generated"] is True for record in decoded)
    assert "not Weibo" in manifest["generated"]


def test_sample_corpus_parses_as_its_manifest_says(tmp_path):
    path = tmp_path / "sample.jsonl"
    manifest = weibo_sample.write_sample(path, posts=400, seed=1)
    dead_letters = []
    posts = list(weibo.read_posts(path, dead_letters=dead_letters))
    reasons = {reason: sum(letter.reason == reason for letter in dead_letters) for reason in manifest["malformed"]}
    assert reasons == manifest["malformed"]
    assert len({post.id for post in posts}) == manifest["posts"]
    assert len(posts) - len({post.id for post in posts}) == manifest["duplicates"]
    topics = {topic for post in posts for topic in post.topics}
    assert {name for name, _, _ in weibo_sample.TOPICS} <= topics
    assert sum(len(post.topics) > 1 for post in posts) > 0 and sum(bool(post.pictures) for post in posts) > 0
    assert sum(bool(post.repost_of_id) for post in posts) > 0


@pytest.mark.skipif(not REAL_FILE.exists(), reason=f"the real Weibo file is not here ({REAL_FILE})")
def test_the_real_files_first_rows_parse():
    with open(REAL_FILE, encoding="utf-8", newline="") as file:
        rows = [row for _, row in zip(range(300), csv.DictReader(file))]
    dead_letters = []
    posts = [post for _, post in zip(range(300), weibo.read_posts(REAL_FILE, dead_letters=dead_letters))]
    assert not dead_letters and len(posts) == len(rows)
    for row, post in zip(rows, posts):
        assert post.text == row["text"] and post.user_id == row["user"]
        assert post.id == weibo.derived_id(row["user"], row["text"])
        if re.search(r"#[^#\s]{2,20}#", row["text"]):
            assert post.topics, row["text"]
        for residue in ("微博视频", "收起全文d", "?"):
            assert residue not in post.document, post.document
        assert not any("#" in topic for topic in post.topics)


UNTERMINATED_QUOTE_CSV = (
    'id,text\n1001,#话题# 第一条\n1002,#话题# 第二条\n1003,"#话题# 第三条 引号没有结束\n1004,#话题# 第四条\n'
)


def test_an_unterminated_quote_is_dead_lettered_and_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / "unterminated.csv"
    path.write_text(UNTERMINATED_QUOTE_CSV, encoding="utf-8")
    dead_letters = []
    posts = list(weibo.read_posts(path, dead_letters=dead_letters))
    assert [post.id for post in posts] == ["1001", "1002", "1004"]
    assert posts[-1].text == "#话题# 第四条"
    assert [(letter.source, letter.reason) for letter in dead_letters] == [(f"{path}:4", "bad_csv_row")]
    assert "unterminated" in dead_letters[0].detail and dead_letters[0].raw == '1003,"#话题# 第三条 引号没有结束'


def test_a_quote_followed_by_text_is_dead_lettered_and_reading_resumes_at_the_next_line():
    lines = [b"id,text\n", b'1,"a\n', b'b" oops,x\n', b"2,plain\n", b'3,"ok\n', b'still ok"\n']
    assert list(weibo.iter_csv_records(lines)) == [
        (1, b"id,text"),
        (2, b'1,"a'),
        (3, b'b" oops,x'),
        (4, b"2,plain"),
        (5, b'3,"ok\nstill ok"'),
    ]
    parser = weibo.RecordParser("csv", ("id", "text"))
    assert parser.parse_or_dead_letter("f:2", b'1,"a').reason == "bad_csv_row"
    assert parser.parse(b'3,"ok\nstill ok"').text == "ok\nstill ok"

"""A generated corpus in Weibo's JSON-lines schema, for tests, the demo and the topics benchmark.

GENERATED, NOT WEIBO DATA. Every record carries ``"generated": true``; the texts are strung together from the short
word lists below, written for this module, and come from no real post (the brands and products are made up).
Picture references are names only (``emoji:<code point>`` for the Noto emoji set, ``tuxpaint:<stamp path>`` for the
Tux Paint stamps): nothing here needs those data sets.

It is built to be as hard to read as real Weibo rather than separable by vocabulary:

* 31 topics in 8 domains (three car launches, four phone launches, ...): a topic's posts draw mostly on its
  domain's shared words and on chatter common to every topic, and name at most a few of the topic's own words
  (a quarter of the posts none at all, so that only the domain can be told);
* topics are unequally popular (weights ``1/√rank``); a fifth of the posts are short (two or three words);
* many words have rarer surface forms (synonyms, paraphrases: ``猫咪/喵星人/主子``): held-out posts may use a
  form seen a few times in training or not at all;
* noisy hashtags: some posts carry another topic's hashtag instead of their own (users riding a trending topic),
  some add a trending tag unrelated to any text (``周末愉快``), some are about two topics and carry both.

Besides: the hashtag in all the forms users write it (``#话题#``, ``＃话题＃``, ``# 话题 #``, ``【#话题#】``), reposts
(with the chain in the text, or a bare ``转发微博`` over a ``retweeted_status``), pictures, mentions, t.cn links,
``[表情]`` codes, the API's different id/user/time/picture fields, repeated records (same id) and a few malformed
lines. The same ``seed`` gives the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

# domain: (words its topics share, picture references). "a/b/c": one word, its usual form first, then rarer ones.
DOMAINS = {
    "汽车": (
        "汽车 车型 续航 试驾 配置 车主 底盘 新能源 充电桩 价格 上市 发布会 提车 油耗/油钱 性价比 颜值",
        "emoji:1f697 tuxpaint:vehicles/auto/sedan.png",
    ),
    "手机": ("手机 屏幕 电池 处理器 摄像头 系统 像素 跑分 发布会 快充 价格 新机 旗舰 性能/体验 颜值", "emoji:1f4f1"),
    "体育": ("比赛 球队 球迷 教练 赛季 主场 比分 冠军 训练 球员 转会 直播 加油 精彩", "emoji:1f3c6"),
    "美食": (
        "好吃 味道 排队 餐厅 老板 招牌 口味 食材 推荐/安利 外卖 探店 下单 甜品",
        "emoji:1f372 tuxpaint:food/pizza.png",
    ),
    "学习": ("复习 考试 刷题 分数 老师 背书 图书馆 英语 数学 倒计时 冲刺 学校 开学 加油", "emoji:1f4da"),
    "疫情": ("口罩 体温 医院 隔离 防护 消毒 检测 病例 确诊 出行 小区 社区 防控 安全", "emoji:1f637"),
    "娱乐": ("电影 演员 导演 剧情 追剧 热播 粉丝 主演 口碑 官宣 上映 片段 好看 演技", "emoji:1f3ac"),
    "生活": (
        "春天 天气 出门 周末 公园 拍照 心情 阳光 阳台 散步 晚上 早上 舒服",
        "emoji:1f338 tuxpaint:plants/flowers/rose.png",
    ),
}
# (hashtag, domain, the topic's own words): the only words that tell a topic from its domain's others
TOPICS = (
    ("星河S7上市", "汽车", "星河S7 轿跑 智能驾驶/智驾/辅助驾驶 零百加速"),
    ("远航X5发布", "汽车", "远航X5 七座/大七座 后备箱 越野"),
    ("青云EV降价", "汽车", "青云EV 降价/优惠/补贴 续航里程 代步"),
    ("麒蓝Pro发布会", "手机", "麒蓝Pro 潜望式/长焦 夜景 影像/拍照"),
    ("橙果12开箱", "手机", "橙果12 开箱/上手 手感 配色"),
    ("米粒Note评测", "手机", "米粒Note 千元机/入门机 大电池 评测/测评"),
    ("折叠屏新机", "手机", "折叠屏 铰链 折痕 展开"),
    ("篮球联赛复赛", "体育", "篮球 三分/三分球 篮板 扣篮"),
    ("足球联赛延期", "体育", "足球 射门/破门 进球 门将"),
    ("奥运会延期", "体育", "奥运会/奥运 延期 火炬 运动员"),
    ("马拉松取消", "体育", "马拉松 跑者/跑友 取消 报名"),
    ("火锅探店", "美食", "火锅/涮锅 麻辣 毛肚 锅底"),
    ("奶茶新品", "美食", "奶茶 芝士 珍珠 新品/上新"),
    ("烤鸭推荐", "美食", "烤鸭 片皮 甜面酱 荷叶饼"),
    ("宅家做饭", "美食", "做饭/下厨 凉皮 蛋糕 面粉"),
    ("考研上岸", "学习", "考研/研究生考试 复试 导师 调剂"),
    ("高考加油", "学习", "高考 志愿 考生 班主任/班任"),
    ("四六级成绩", "学习", "四六级 听力 单词 查分/出成绩"),
    ("网课日常", "学习", "网课/线上课 直播课 钉钉 签到/打卡"),
    ("复工复产", "疫情", "复工/开工/返岗 工厂 通勤 企业"),
    ("致敬医护", "疫情", "医护/医护人员 白衣天使 援鄂 病房"),
    ("疫苗研发进展", "疫情", "疫苗 临床 研发 试验"),
    ("境外输入", "疫情", "境外 入境 航班 输入"),
    ("方舱医院休舱", "疫情", "方舱 休舱 患者 出院"),
    ("新剧开播", "娱乐", "开播/首播 大结局/结局 弹幕 集数"),
    ("电影定档", "娱乐", "定档 预告片/预告 档期 票房"),
    ("综艺回归", "娱乐", "综艺 嘉宾 回归 录制"),
    ("春日赏花", "生活", "樱花 花期 赏花 盛开"),
    ("降温预警", "生活", "降温/变冷 寒潮 冷空气 大风"),
    ("萌宠日常", "生活", "猫咪/喵星人/主子 狗狗/汪星人 铲屎官 撒娇"),
    ("居家健身", "生活", "健身/锻炼 跳绳 瑜伽 减脂/减肥"),
)
# Popularity 1/√rank, the ranks a fixed shuffle (7 · index mod 31) so that every domain has popular and rare topics.
WEIGHTS = tuple(1 / math.sqrt(1 + 7 * index % len(TOPICS)) for index in range(len(TOPICS)))
TRENDING = ("周末愉快", "今日热搜", "每日打卡")  # tags users attach whatever they write about
CHATTER = (
    "今天 真的 感觉 大家 一起 还是 已经 非常 我们 就是 有点 终于 明天 朋友 哈哈哈 其实 不过 好像 希望 "
    "太难了 真香 绝了 冲鸭 期待 开心 无语 羡慕 安排 支持 求推荐"
).split()  # common to every topic
EMOTICONS = ("[哈哈]", "[赞]", "[泪]", "[doge]", "[心]")
NAMES = ("小鹿同学", "阿花爱吃饭", "晴天娃娃", "老王在路上", "momo_酱", "橘子汽水")
HASHTAG_FORMS = ("#{}#", "#{}#", "#{}#", "＃{}＃", "# {} #")  # the plain form three times as often
MALFORMED = ("bad_json", "no_text", "bad_encoding", "no_id", "oversize")  # one of each per 200 posts
RATES = dict(
    short=0.2,
    rare_form=0.15,
    off_topic=0.1,
    second_topic=0.12,
    same_domain=0.5,
    trending=0.12,
    repost=0.12,
    pictures=0.25,
    mention=0.15,
    url=0.1,
    emoticon=0.2,
    bracket=0.15,
    duplicate=0.02,
)
FIRST_MID = 4480000000000000
START = datetime(2020, 3, 18, tzinfo=timezone(timedelta(hours=8)))


def write_sample(path: str | os.PathLike[str], posts: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Write the corpus to ``path``; returns its manifest (what the lines hold, for checking the ingestion)."""
    lines, manifest = sample_lines(posts, seed)
    with open(path, "wb") as file:
        file.writelines(line + b"\n" for line in lines)
    return manifest


def sample_lines(posts: int, seed: int = 0) -> tuple[list[bytes], dict[str, Any]]:
    """``(lines, manifest)``: ``posts`` distinct well-formed posts, repeats of some of them, malformed lines."""
    if posts < 1:
        raise ValueError(f"posts must be at least 1, got {posts}")
    rng = random.Random(seed)
    records = [_record(rng, index) for index in range(posts)]
    repeats = [
        dict(record, reposts_count=record["reposts_count"] + 1)
        for record in rng.sample(records, round(posts * RATES["duplicate"]))
    ]
    lines = [_json_line(record) for record in records + repeats]
    per_kind = max(1, posts // 200)
    malformed = [_malformed_line(rng, kind, posts + index) for index, kind in enumerate(MALFORMED * per_kind)]
    lines += malformed
    rng.shuffle(lines)
    manifest = {
        "generated": "generated by tfcl.data.weibo_sample, not Weibo data",
        "seed": seed,
        "lines": len(lines),
        "posts": posts,
        "duplicates": len(repeats),
        "malformed": {kind: per_kind for kind in MALFORMED},
    }
    return lines, manifest


def _record(rng: random.Random, index: int) -> dict[str, Any]:
    """One well-formed status, in one of the API's shapes."""
    topic = rng.choices(range(len(TOPICS)), WEIGHTS)[0]
    short = rng.random() < RATES["short"]
    words = _words(rng, topic, short)
    tag = topic
    if rng.random() < RATES["off_topic"]:  # riding another topic's hashtag
        tag = rng.choice([other for other in range(len(TOPICS)) if other != topic])
    tags = [TOPICS[tag][0]]
    if rng.random() < RATES["second_topic"]:
        other = _second_topic(rng, topic)
        tags.append(TOPICS[other][0])
        words += _words(rng, other, short=True)
    if rng.random() < RATES["trending"]:
        tags.append(rng.choice(TRENDING))
    record = {"generated": True, **_id_fields(rng, index), **_user_fields(rng), "created_at": _time(rng)}
    body = _sentence(rng, words, chatter=1 if short else rng.randint(2, 4))
    text = _text(rng, body, list(dict.fromkeys(tags)))
    if rng.random() < RATES["repost"]:
        original = {"idstr": str(FIRST_MID - 1 - index), "text": text, "user": {"idstr": _user_id(rng)}}
        chain = rng.random() < 0.5
        text = f"{_sentence(rng, [], chatter=3)} //@{rng.choice(NAMES)}:{text}" if chain else "转发微博"
        record["retweeted_status"] = original
    record["text"] = text
    if rng.random() < RATES["pictures"]:
        refs = DOMAINS[TOPICS[topic][1]][1].split()
        chosen = rng.sample(refs, rng.randint(1, len(refs)))
        record["pics"] = (
            chosen if rng.random() < 0.5 else [{"pid": f"gen{index}p{n}", "url": ref} for n, ref in enumerate(chosen)]
        )
    record.update(
        reposts_count=rng.randrange(100), comments_count=rng.randrange(100), attitudes_count=rng.randrange(1000)
    )
    return record


def _second_topic(rng: random.Random, topic: int) -> int:
    """Another topic, of the same domain with probability ``RATES["same_domain"]``."""
    same = rng.random() < RATES["same_domain"]
    return rng.choice(
        [
            other
            for other, (_, domain, _) in enumerate(TOPICS)
            if other != topic and (domain == TOPICS[topic][1]) == same
        ]
    )


def _words(rng: random.Random, topic: int, short: bool = False) -> list[str]:
    """A few of the topic's own words (often none) and of its domain's, each in one of its surface forms."""
    _, domain, own = TOPICS[topic]
    own_count = rng.choice((0, 1)) if short else rng.choice((0, 1, 1, 2, 2, 3))
    shared_count = 1 if short else rng.randint(2, 5)
    words = rng.sample(own.split(), own_count) + rng.sample(DOMAINS[domain][0].split(), shared_count)
    return [_surface(rng, word) for word in words]


def _surface(rng: random.Random, word: str) -> str:
    forms = word.split("/")
    return rng.choice(forms[1:]) if len(forms) > 1 and rng.random() < RATES["rare_form"] else forms[0]


def _sentence(rng: random.Random, words: Iterable[str], chatter: int) -> str:
    words = list(words) + rng.sample(CHATTER, chatter)
    rng.shuffle(words)
    clauses = ["".join(words[start : start + 3]) for start in range(0, len(words), 3)]
    return "，".join(clauses) + rng.choice("。！～")


def _text(rng: random.Random, body: str, tags: list[str]) -> str:
    if rng.random() < RATES["mention"]:
        body += f"@{rng.choice(NAMES)} "
    if rng.random() < RATES["emoticon"]:
        body += rng.choice(EMOTICONS)
    if rng.random() < RATES["url"]:
        body += f" http://t.cn/A6{rng.randrange(36**6):06x}"
    hashtags = [rng.choice(HASHTAG_FORMS).format(tag) for tag in tags]
    if rng.random() < RATES["bracket"]:
        return f"【{hashtags[0]}】{body}{''.join(hashtags[1:])}"
    if rng.random() < 0.5:
        return "".join(hashtags) + body
    return f"{body} {' '.join(hashtags)}"


def _id_fields(rng: random.Random, index: int) -> dict[str, Any]:
    mid = FIRST_MID + index
    return rng.choice(({"idstr": str(mid), "mid": str(mid)}, {"id": mid}, {"mid": str(mid)}))


def _user_fields(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"user": {"idstr": _user_id(rng), "screen_name": rng.choice(NAMES)}}
    return {"user_id": _user_id(rng)}


def _user_id(rng: random.Random) -> str:
    return str(1000000000 + 37 * rng.randrange(300))


def _time(rng: random.Random) -> str:
    moment = START + timedelta(minutes=rng.randrange(24 * 60))
    return moment.isoformat() if rng.random() < 0.2 else moment.strftime("%a %b %d %H:%M:%S %z %Y")


def _json_line(record: dict[str, Any], encoding: str = "utf-8") -> bytes:
    return json.dumps(record, ensure_ascii=False).encode(encoding)


def _malformed_line(rng: random.Random, kind: str, index: int) -> bytes:
    """A line the ingestion must set aside for ``kind`` (one of :data:`MALFORMED`)."""
    record = {
        "generated": True,
        **_id_fields(rng, index),
        "user_id": _user_id(rng),
        "created_at": _time(rng),
        "text": _text(rng, _sentence(rng, _words(rng, 0), chatter=2), [TOPICS[0][0]]),
    }
    if kind == "bad_json":
        return json.dumps(record, ensure_ascii=False)[:-9].encode("utf-8")  # cut short
    if kind == "no_text":
        return _json_line(dict(record, text=""))
    if kind == "bad_encoding":
        return _json_line(record, encoding="gb18030")
    if kind == "no_id":
        return _json_line({key: value for key, value in record.items() if key not in ("id", "idstr", "mid")})
    return _json_line(dict(record, text="".join(rng.choices(CHATTER, k=3000))))  # oversize: 6,000+ characters

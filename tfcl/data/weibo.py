"""Weibo posts: read the forms Weibo data comes in, split off the ``#话题#`` hashtags, normalise the text.

Pure Python: importing this module imports neither TensorFlow nor Apache Beam (the Beam job is
:mod:`tfcl.data.weibo_ingest`; the TFRecord helpers at the bottom import TensorFlow when called).

Input forms (one record each):

* **JSON lines** — one status object per line as the Weibo APIs return it: ``idstr``/``mid``/``id``; the text in
  ``longText.longTextContent``, ``text_raw`` or ``text`` (m.weibo.cn's HTML ``text`` is turned into plain text);
  ``created_at`` as ``"Wed Mar 18 10:20:30 +0800 2020"`` or ISO 8601; a ``user`` object or ``user_id``/``uid``;
  pictures as ``pics`` (objects or strings), ``pic_infos``, ``pic_urls``, ``pic_ids``, ``original_pic`` or
  ``images``; a nested ``retweeted_status``. A card wrapper ``{"mblog": {...}}`` is unwrapped.
* **CSV exports** with a header row: English columns (``mid,text,created_at,user_id,pics``, or just
  ``user,text``) or weibo-crawler's Chinese ones (``id,正文,原始图片url,日期,源微博id,源微博正文``...). Quoted fields
  may span lines; a record with an unterminated quote is set aside (``bad_csv_row``) and reading resumes at the
  line after its first. A CSV without any id column gets *derived* ids: ``sha1:`` + 16 hex digits of SHA-1 over
  user, ``\\x1f``, text — so the same text posted twice by one user is one post.

Hashtag rules (:func:`split_hashtags`): ``#`` and the full-width ``＃`` open and close a hashtag; the name is NFKC-
normalised, its lost-emoji marks dropped, its whitespace collapsed and stripped (``# 话题 #`` is ``话题``). A pair
with nothing but spaces or punctuation between (``##``, ``# #``) is not a topic and is removed from the text. A
``#`` with no partner, or whose partner is past a line break or more than ``max_topic_chars`` characters away,
is not a hashtag and stays text. Hashtags in the reposted chain that the post's own text carries
(``//@user: ... #话题#``) count: the reposter published them. Hashtags of ``retweeted_status`` (a different
post, by someone else) do not; its text is kept in ``repost_of_text``.

The document is the text with every hashtag removed and :class:`Normalization` applied (defaults: mentions become
``@user``, URLs and video/link-card residue are dropped, ``[表情]`` codes are kept, ASCII ``?`` is dropped as a lost
emoji, whitespace is collapsed).
"""

from __future__ import annotations

import codecs
import collections
import csv
import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import tensorflow as tf

FORMATS = ("jsonl", "csv")
# Why a record is set aside, in the order the checks run.
REASONS = ("bad_encoding", "bad_json", "bad_csv_row", "no_text", "oversize", "no_id", "bad_created_at")
MAX_CHARS = 5000  # the longest post of the real 2020-03-18 file has 2,045 characters
MAX_TOPIC_CHARS = 64  # the longest hashtag of that file has 45
DERIVED_ID_PREFIX = "sha1:"

# Field names, in order of preference, across the Weibo APIs and CSV exports ("a.b" looks inside an object).
ID_FIELDS = ("idstr", "mid", "id")
TEXT_FIELDS = ("longText.longTextContent", "text_raw", "raw_text", "text", "正文", "微博正文")
USER_FIELDS = ("user.idstr", "user.id", "user_id", "uid", "user", "用户id")
CREATED_AT_FIELDS = ("created_at", "完整日期", "日期", "发布时间")
PICTURE_FIELDS = ("pics", "pic_infos", "pic_urls", "pic_ids", "original_pic", "images", "原始图片url")
REPOST_ID_FIELDS = ("retweeted_status.idstr", "retweeted_status.mid", "retweeted_status.id", "源微博id")
REPOST_TEXT_FIELDS = tuple(f"retweeted_status.{name}" for name in TEXT_FIELDS) + ("源微博正文",)

WEIBO_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"
POLICIES = ("keep", "placeholder", "drop")
PLACEHOLDERS = {"mentions": "@user", "urls": "<url>", "emoticons": "<emoticon>"}

_HTML_TAG = re.compile(r"<(?:a|span|img|br|div|p)\b[^>]*>", re.IGNORECASE)
_URL = re.compile(r"https?://[A-Za-z0-9./?=&%#_~+:;,\-]+")
_MENTION = re.compile(r"(?<![A-Za-z0-9_.])@[\w\-]{1,30}?(?=https?://|[^\w\-]|$)")
_EMOTICON = re.compile(r"\[\w{1,8}\]")
_PATTERNS = {"mentions": _MENTION, "urls": _URL, "emoticons": _EMOTICON}
# What crawled pages leave of video cards, link cards and the "show less" button.
_CARD_RESIDUE = re.compile(r"L\S{1,40}?的(?:微博|秒拍|优酷|快手)视频|收起全文d|展开全文c|O网页链接")
_TRAILING_LOCATION = re.compile(r"\s2[^\s\d?]{1,40}$")  # the location card at the end: " 2东莞", " 2上饶·婺源县"
_EMPTY_BRACKETS = re.compile(r"【\W*】")
_HASH_MARKS = str.maketrans("＃", "#")


class MalformedRecord(ValueError):
    """A record that cannot become a post; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Normalization:
    """How the document is cleaned; every step is deterministic.

    ``mentions``, ``urls``, ``emoticons``: ``"keep"``, ``"placeholder"`` (see :data:`PLACEHOLDERS`) or ``"drop"``.
    ``lost_emoji_mark``: the character a lossy encoding left for each emoji (``"?"`` in GBK crawls); ``None`` keeps it.
    ``strip_card_residue``: drop ``L<name>的微博视频``, ``收起全文d``, ``O网页链接`` and a trailing ``2<place>``.
    """

    mentions: str = "placeholder"
    urls: str = "drop"
    emoticons: str = "keep"
    lost_emoji_mark: str | None = "?"
    strip_card_residue: bool = True

    def __post_init__(self) -> None:
        for kind in PLACEHOLDERS:
            if getattr(self, kind) not in POLICIES:
                raise ValueError(f"Normalization.{kind} must be one of {POLICIES}, got {getattr(self, kind)!r}")


@dataclasses.dataclass(frozen=True)
class WeiboPost:
    """One post. ``text`` is the plain text as published; ``document`` is it without hashtags, normalised."""

    id: str
    text: str
    document: str
    topics: tuple[str, ...] = ()
    created_at: str = ""  # ISO 8601; with an offset when the source gave one
    user_id: str = ""
    pictures: tuple[str, ...] = ()  # URLs, picture ids or file names, as the source gave them
    repost_of_id: str = ""
    repost_of_text: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A record set aside: where it came from, why, and the record itself (undecodable bytes as ``\\x..``)."""

    source: str
    reason: str
    detail: str
    raw: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """A record dropped because another with its id was kept: where each came from, and the dropped post whole."""

    source: str
    kept_id: str
    kept_source: str
    post: WeiboPost

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


class InputError(ValueError):
    """Inputs that cannot be ingested at all: missing, empty, without a usable CSV header, of mixed formats."""


def topic_name(body: str, lost_emoji_mark: str | None = "?") -> str:
    """The topic a hashtag body names: NFKC, lost-emoji marks dropped, whitespace collapsed; "" if it has no word."""
    name = unicodedata.normalize("NFKC", body)
    if lost_emoji_mark:
        name = name.replace(lost_emoji_mark, "")
    name = " ".join(name.split())
    return name if re.search(r"\w", name) else ""


def split_hashtags(
    text: str, max_topic_chars: int = MAX_TOPIC_CHARS, lost_emoji_mark: str | None = "?"
) -> tuple[tuple[str, ...], str]:
    """``(topics, rest)``: the topics in order of first appearance, and the text with each hashtag made a space."""
    marks = text.translate(_HASH_MARKS)
    topics, pieces, kept_from = [], [], 0
    opening = marks.find("#")
    while opening != -1:
        closing = marks.find("#", opening + 1)
        if closing == -1:
            break
        body = marks[opening + 1 : closing]
        if "\n" in body or len(body.strip()) > max_topic_chars:
            opening = closing  # not a hashtag: this "#" stays text, the next one may open a hashtag
            continue
        name = topic_name(body, lost_emoji_mark)
        if name and name not in topics:
            topics.append(name)
        pieces += [text[kept_from:opening], " "]
        kept_from = closing + 1
        opening = marks.find("#", kept_from)
    return tuple(topics), "".join(pieces) + text[kept_from:]


def normalize_text(text: str, normalization: Normalization = Normalization()) -> str:
    """Apply ``normalization`` to a text whose hashtags are already removed."""
    text = "".join(char for char in text if unicodedata.category(char) not in ("Co", "Cf"))
    if normalization.strip_card_residue:
        text = _CARD_RESIDUE.sub(" ", text)
    for kind in ("urls", "mentions", "emoticons"):  # URLs first: a mention may run into one ("@央视新闻http://...")
        policy = getattr(normalization, kind)
        if policy != "keep":
            text = _PATTERNS[kind].sub(PLACEHOLDERS[kind] if policy == "placeholder" else " ", text)
    if normalization.lost_emoji_mark:
        text = text.replace(normalization.lost_emoji_mark, " ")
    text = " ".join(text.split())
    if normalization.strip_card_residue:
        text = _TRAILING_LOCATION.sub("", " " + text).strip()
    return " ".join(_EMPTY_BRACKETS.sub(" ", text).split())


def parse_created_at(value: Any) -> str:
    """Weibo's ``"Wed Mar 18 10:20:30 +0800 2020"`` or ISO 8601 → ISO 8601; "" stays ""."""
    value = str(value).strip()
    if not value:
        return ""
    try:
        return datetime.strptime(value, WEIBO_TIME_FORMAT).isoformat()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise MalformedRecord("bad_created_at", f"unrecognised time {value!r}") from None


def derived_id(user_id: str, text: str) -> str:
    """The id of a post from a source without ids: a hash of its user and text."""
    return DERIVED_ID_PREFIX + hashlib.sha1(f"{user_id}\x1f{text}".encode()).hexdigest()[:16]


def html_to_text(text: str) -> str:
    """Plain text of m.weibo.cn's HTML post text; a text without Weibo's tags is returned as it is."""
    if not _HTML_TAG.search(text):
        return text
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


class _HtmlText(HTMLParser):
    """Tags dropped, entities decoded, ``<br>`` a newline, emoticon ``<img alt="[哈哈]">`` its code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "img":
            self.parts.append(dict(attrs).get("alt") or "")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def parse_post(
    record: dict[str, Any],
    *,
    derive_id: bool = False,
    max_chars: int = MAX_CHARS,
    normalization: Normalization = Normalization(),
    max_topic_chars: int = MAX_TOPIC_CHARS,
) -> WeiboPost:
    """A :class:`WeiboPost` from one decoded record (a status object or a CSV row as a dict).

    Raises :class:`MalformedRecord` when it has no text, is longer than ``max_chars``, has no id (unless
    ``derive_id``) or has an unreadable ``created_at``.
    """
    record = record.get("mblog", record)
    text = html_to_text(_text_value(_first(record, TEXT_FIELDS)))
    if not text.strip():
        raise MalformedRecord("no_text", "the record has no text")
    if len(text) > max_chars:
        raise MalformedRecord("oversize", f"{len(text)} characters > max_chars={max_chars}")
    user_id = _text_value(_first(record, USER_FIELDS))
    post_id = _text_value(_first(record, ID_FIELDS))
    if not post_id:
        if not derive_id:
            raise MalformedRecord("no_id", f"none of the fields {ID_FIELDS}")
        post_id = derived_id(user_id, text)
    topics, rest = split_hashtags(text, max_topic_chars, normalization.lost_emoji_mark)
    return WeiboPost(
        id=post_id,
        text=text,
        document=normalize_text(rest, normalization),
        topics=topics,
        created_at=parse_created_at(_first(record, CREATED_AT_FIELDS) or ""),
        user_id=user_id,
        pictures=_picture_refs(_first(record, PICTURE_FIELDS)),
        repost_of_id=_text_value(_first(record, REPOST_ID_FIELDS)),
        repost_of_text=html_to_text(_text_value(_first(record, REPOST_TEXT_FIELDS))),
    )


@dataclasses.dataclass(frozen=True)
class RecordParser:
    """Raw records (bytes of a JSON line, or of a CSV record under ``csv_columns``) → :class:`WeiboPost`."""

    fmt: str
    csv_columns: tuple[str, ...] = ()
    encoding: str = "utf-8"
    max_chars: int = MAX_CHARS
    max_topic_chars: int = MAX_TOPIC_CHARS
    normalization: Normalization = Normalization()

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.fmt!r}")
        if (self.fmt == "csv") != bool(self.csv_columns):
            raise ValueError("csv_columns (the CSV header) is needed for CSV records, and only for them")
        if self.fmt == "csv" and not set(self.csv_columns) & set(TEXT_FIELDS):
            raise ValueError(f"the CSV header {list(self.csv_columns)} has no text column (one of {TEXT_FIELDS})")
        codecs.lookup(self.encoding)

    @property
    def derives_ids(self) -> bool:
        """A CSV without an id column: ids are derived from user and text (see :func:`derived_id`)."""
        return self.fmt == "csv" and not set(self.csv_columns) & set(ID_FIELDS)

    def parse(self, raw: bytes | str) -> WeiboPost:
        """The post in ``raw`` (bytes or str); raises :class:`MalformedRecord`."""
        line = _decode(raw, self.encoding) if isinstance(raw, bytes) else raw
        record = _json_object(line) if self.fmt == "jsonl" else self._csv_row(line)
        return parse_post(
            record,
            derive_id=self.derives_ids,
            max_chars=self.max_chars,
            normalization=self.normalization,
            max_topic_chars=self.max_topic_chars,
        )

    def parse_or_dead_letter(self, source: str, raw: bytes | str) -> WeiboPost | DeadLetter:
        try:
            return self.parse(raw)
        except MalformedRecord as error:
            raw_text = raw.decode(self.encoding, "backslashreplace") if isinstance(raw, bytes) else raw
            return DeadLetter(source, error.reason, error.detail, raw_text)

    def _csv_row(self, line: str) -> dict[str, str]:
        try:
            row = next(csv.reader(io.StringIO(line, newline=""), strict=True), [])
        except csv.Error as error:
            detail = "unterminated quoted field" if "unexpected end of data" in str(error) else str(error)
            raise MalformedRecord("bad_csv_row", detail) from None
        if len(row) != len(self.csv_columns):
            raise MalformedRecord("bad_csv_row", f"{len(row)} fields, the header has {len(self.csv_columns)}")
        return dict(zip(self.csv_columns, row))


def detect_format(path: str | os.PathLike[str], head: bytes = b"") -> str:
    """``"jsonl"`` or ``"csv"`` from the file name, else from its first bytes (``head``): ``{`` means JSON lines."""
    name = str(path).lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"


def csv_columns(header: bytes | str, encoding: str = "utf-8") -> tuple[str, ...]:
    """The column names of a CSV header record (bytes), stripped and lower-cased."""
    line = _decode(header, encoding) if isinstance(header, bytes) else header
    return tuple(name.strip().lower() for name in next(csv.reader(io.StringIO(line, newline=""))))


def iter_csv_records(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Group a CSV file's physical lines (bytes) into records; yields ``(first line number, record bytes)``.

    Quoted fields may span lines. A record the strict CSV grammar rejects (an unterminated quote that runs to the end
    of the file, a quote followed by text) does not swallow what follows: its first line is yielded alone (the parser
    then sets it aside as ``bad_csv_row``) and grouping starts again at the next line.

    Boundaries are found on a Latin-1 view of the bytes: in UTF-8 and GB18030 the bytes of ``"``, ``,`` and line
    breaks never occur inside a multi-byte character, so records are split right before anything is decoded.
    """
    lines = iter(lines)
    pending, consumed = collections.deque(), []  # lines to read again after a rejected record; the record's lines

    def latin1_lines() -> Iterator[str]:
        while pending or (line := next(lines, None)) is not None:
            line = pending.popleft() if pending else line
            consumed.append(line)
            yield line.decode("latin-1").replace("\0", " ")

    first_line = 1
    while True:
        try:
            for _ in csv.reader(latin1_lines(), strict=True):
                yield first_line, b"".join(consumed).rstrip(b"\r\n")
                first_line += len(consumed)
                consumed.clear()
            return
        except csv.Error:
            yield first_line, consumed[0].rstrip(b"\r\n")
            pending.extendleft(reversed(consumed[1:]))
            first_line += 1
            consumed.clear()


def open_records(
    file: BinaryIO, fmt: str, encoding: str = "utf-8", source: str = ""
) -> tuple[RecordParser, Iterator[tuple[str, bytes]]]:
    """``(parser, records)`` of an open binary file: records yields ``(f"{source}:{line number}", raw bytes)``.

    For CSV the header row is read here (it makes the parser) and is not one of the records.
    """
    lines = iter(file.readline, b"")
    if fmt == "jsonl":
        records = ((f"{source}:{number}", line.rstrip(b"\r\n")) for number, line in enumerate(lines, 1))
        return RecordParser("jsonl", encoding=encoding), records
    csv_records = iter_csv_records(lines)
    _, header = next(csv_records, (0, b""))
    if not header.strip():
        raise InputError(f"{source}: no CSV header row")
    try:
        parser = RecordParser("csv", csv_columns(header, encoding), encoding=encoding)
    except ValueError as error:  # MalformedRecord included: an undecodable header
        raise InputError(f"{source}: unusable CSV header: {error}") from None
    return parser, ((f"{source}:{number}", record) for number, record in csv_records)


def read_posts(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    encoding: str = "utf-8",
    dead_letters: list[DeadLetter] | None = None,
    **parser_options: Any,
) -> Iterator[WeiboPost]:
    """The posts of a local JSON-lines or CSV file (``.gz`` too), in file order; the format is detected unless given.

    A malformed record raises :class:`MalformedRecord` naming its line, unless ``dead_letters`` is a list: then a
    :class:`DeadLetter` is appended to it and reading goes on. ``parser_options`` go to :class:`RecordParser`.
    """
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as file:
        fmt = fmt or detect_format(path, file.peek(64))
        parser, records = open_records(file, fmt, encoding, source=str(path))
        parser = dataclasses.replace(parser, **parser_options)
        for source, raw in records:
            result = parser.parse_or_dead_letter(source, raw)
            if isinstance(result, WeiboPost):
                yield result
            elif dead_letters is None:
                raise MalformedRecord(result.reason, f"{source}: {result.detail}")
            else:
                dead_letters.append(result)


def read_topic_counts(path: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """``[(topic, count), ...]`` from a ``topic<TAB>count`` file written by the ingestion job."""
    with open(path, encoding="utf-8") as file:
        return [(topic, int(count)) for topic, count in (line.rstrip("\n").split("\t")[:2] for line in file)]


# --- tf.Example form, shared by the ingestion job and the trainers (TensorFlow is imported on call) ---

LIST_FEATURES = ("topics", "pictures")
FEATURES = tuple(field.name for field in dataclasses.fields(WeiboPost))


def feature_spec() -> dict[str, tf.io.RaggedFeature | tf.io.FixedLenFeature]:
    """The ``tf.io.parse_example`` spec of the ingested TFRecords: lists are ragged, the rest scalar strings."""
    import tensorflow as tf

    return {
        name: tf.io.RaggedFeature(tf.string) if name in LIST_FEATURES else tf.io.FixedLenFeature([], tf.string)
        for name in FEATURES
    }


def to_example(post: WeiboPost) -> tf.train.Example:
    """``post`` as a ``tf.train.Example`` with the features of :func:`feature_spec`."""
    import tensorflow as tf

    def values(name: str) -> list[bytes]:
        value = getattr(post, name)
        return [item.encode("utf-8") for item in (value if name in LIST_FEATURES else [value])]

    return tf.train.Example(
        features=tf.train.Features(
            feature={name: tf.train.Feature(bytes_list=tf.train.BytesList(value=values(name))) for name in FEATURES}
        )
    )


def from_example(features: Mapping[str, tf.Tensor]) -> WeiboPost:
    """A :class:`WeiboPost` from one example parsed with :func:`feature_spec` (eager tensors)."""

    def decode(name: str) -> str | tuple[str, ...]:
        value = features[name].numpy()
        return tuple(item.decode("utf-8") for item in value) if name in LIST_FEATURES else value.decode("utf-8")

    return WeiboPost(**{name: decode(name) for name in FEATURES})


def load_split(out_dir: str | os.PathLike[str], split: str) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of parsed examples from ``<out_dir>/<split>/*.tfrecord.gz`` (as the ingestion writes)."""
    import tensorflow as tf

    files = tf.io.gfile.glob(f"{out_dir}/{split}/*.tfrecord.gz")
    if not files:
        raise FileNotFoundError(f"no TFRecords in {out_dir}/{split}: run `tfcl ingest weibo ... --out {out_dir}`")
    spec = feature_spec()
    return tf.data.TFRecordDataset(sorted(files), compression_type="GZIP").map(
        lambda record: tf.io.parse_single_example(record, spec)
    )


def _first(record: Any, fields: Iterable[str]) -> Any:
    """The first field of ``fields`` with a value (not None, "" or empty)."""
    for field in fields:
        value = record
        for key in field.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, "", [], {}):
            return value
    return None


def _text_value(value: Any) -> str:
    return "" if value is None or isinstance(value, (dict, list)) else str(value).strip()


def _picture_refs(value: Any) -> tuple[str, ...]:
    """Picture references from any of Weibo's picture fields: a list, a ``{pid: info}`` dict or a joined string."""
    if isinstance(value, str):  # a CSV cell: "u1,u2", "u1 u2" or '["u1", "u2"]'
        return tuple(ref for ref in re.split(r"[\s,;\[\]\"']+", value) if ref)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return tuple(ref for ref in map(_picture_ref, items) if ref)


def _picture_ref(item: Any) -> str:
    if not isinstance(item, dict):
        return _text_value(item)
    for field in ("large.url", "url", "thumbnail_pic", "pid", "pic_id"):
        ref = _first(item, (field,))
        if isinstance(ref, str):
            return ref
    return ""


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise MalformedRecord("bad_encoding", f"not {encoding}: {error.reason} at byte {error.start}") from None


def _json_object(line: str) -> dict[str, Any]:
    if not line.strip():
        raise MalformedRecord("bad_json", "blank line")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise MalformedRecord("bad_json", str(error)) from None
    if not isinstance(record, dict):
        raise MalformedRecord("bad_json", f"a JSON {type(record).__name__}, not an object")
    return record

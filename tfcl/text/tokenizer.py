"""In-graph tokenisation of raw Weibo-style UTF-8 text: normalisation, BERT WordPiece, reserved tokens.

``WeiboTokenizer`` is keras-hub's ``BertTokenizer`` (tensorflow-text FastWordpiece; Chinese split per character,
as BERT-Chinese does) with a normalisation step in front, all TensorFlow ops, so a SavedModel takes raw strings:

1. Inputs that are not valid UTF-8 fail with ``tf.errors.InvalidArgumentError`` giving their batch positions.
2. NFKC: full-width letters, digits and punctuation become ASCII (``ＡＢＣ！`` → ``ABC!``), ``…`` → ``...``.
   Curly quotes become straight ones and long dashes ``-`` (the 21,128-entry BERT-Chinese vocabulary lacks them).
3. Weibo markup becomes reserved tokens: ``[表情]`` codes → ``[EMOTICON]`` followed by the code's name
   (``[哈哈]`` → ``[EMOTICON] 哈哈``: the name keeps the sentiment); URLs → ``[URL]``; ``@user`` → ``[USER]``.
   Any short bracketed code counts as an emoticon, so text cannot smuggle in ``[CLS]`` or ``[SEP]``.
4. Emoji: skin-tone modifiers, variation selectors and the keycap mark are dropped and every symbol becomes its
   own word, so an emoji the vocabulary lacks costs one ``[UNK]`` instead of turning its neighbour into ``[UNK]``.

Reserved tokens missing from a vocabulary take over its first ``[unusedN]`` slots, so ids of a pretrained
vocabulary are unchanged. :func:`learn_vocabulary` learns a vocabulary with the same normalisation and splitting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.tokenizers.word_piece_tokenizer import get_special_tokens_pattern, pretokenize
from keras_hub.src.utils.tensor_utils import preprocessing_function
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

URL_TOKEN = "[URL]"
USER_TOKEN = "[USER]"
EMOTICON_TOKEN = "[EMOTICON]"
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
WEIBO_TOKENS = (URL_TOKEN, USER_TOKEN, EMOTICON_TOKEN)

# (pattern, replacement) applied in order after NFKC; RE2 syntax.
_REWRITES = (
    (r"[“”„‟]", '"'),
    (r"[‘’‛]", "'"),
    (r"[‐‑‒–—―]+", "-"),
    # Emoticon codes first: the reserved tokens inserted below are bracketed too.
    (r"\[([\p{L}\p{N}]{1,8})\]", f" {EMOTICON_TOKEN} \\1 "),
    (r"(?i)(?:https?://|www\.)[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+", f" {URL_TOKEN} "),
    (r"(^|[^\p{L}\p{N}_])@[\p{L}\p{N}_\-]+", f"\\1 {USER_TOKEN} "),
    (r"[\x{1F3FB}-\x{1F3FF}\x{FE00}-\x{FE0F}\x{20E3}]", ""),
    (r"(\p{So})", " \\1 "),
)


def validate_utf8(texts: tf.Tensor) -> tf.Tensor:
    """Return ``texts`` unchanged, or fail with ``InvalidArgumentError`` if any string is not valid UTF-8.

    The error names the positions of the bad strings and shows their start with U+FFFD for the bad bytes (raw
    bytes in an error message would break TensorFlow's own error reporting).
    """
    repaired = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    valid = tf.equal(tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="ignore"), texts)
    invalid = tf.logical_not(valid)
    check = tf.debugging.Assert(
        tf.reduce_all(valid),
        [
            "WeiboTokenizer expects UTF-8 text, but the inputs at positions",
            tf.where(invalid),
            "are not valid UTF-8 (decode bytes first, e.g. raw.decode('utf-8', errors='replace')). They start:",
            tf.strings.substr(tf.boolean_mask(repaired, invalid), 0, 40, unit="UTF8_CHAR"),
        ],
        summarize=3,
    )
    with tf.control_dependencies([check]):
        return tf.identity(texts)


def normalize_weibo_text(texts: tf.Tensor | Sequence[str] | str) -> tf.Tensor:
    """Steps 1–4 of the module docstring on a string tensor of any shape."""
    texts = tf_text.normalize_utf8(validate_utf8(tf.convert_to_tensor(texts, tf.string)), "NFKC")
    for pattern, replacement in _REWRITES:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    return texts


@keras.saving.register_keras_serializable(package="tfcl")
class WeiboTokenizer(keras_hub.tokenizers.BertTokenizer):
    """BERT WordPiece tokenizer for raw Weibo-style text (see the module docstring for the normalisation).

    Args:
      vocabulary: list of tokens or path of a ``vocab.txt`` (e.g. the 21,128-entry BERT-Chinese one); must hold
        the BERT special tokens, and either the Weibo reserved tokens or enough ``[unusedN]`` slots for them.
      lowercase: lowercase and strip accents (BERT-Chinese and other uncased vocabularies).
    """

    def __init__(self, vocabulary: Sequence[str] | str | None = None, lowercase: bool = True, **kwargs) -> None:
        self._add_special_token(URL_TOKEN, "url_token")
        self._add_special_token(USER_TOKEN, "user_token")
        self._add_special_token(EMOTICON_TOKEN, "emoticon_token")
        super().__init__(
            vocabulary=vocabulary,
            lowercase=lowercase,
            strip_accents=lowercase,
            special_tokens_in_strings=True,
            **kwargs,
        )

    def set_vocabulary(self, vocabulary: Sequence[str] | str | None) -> None:
        if isinstance(vocabulary, str):
            with open(vocabulary, encoding="utf-8") as file:
                vocabulary = [line.rstrip("\n") for line in file]
        if vocabulary is not None:
            vocabulary = with_reserved_tokens(vocabulary)
        super().set_vocabulary(vocabulary)

    def split_words(self, texts: tf.Tensor | Sequence[str]) -> tf.RaggedTensor:
        """Normalised text split into the words WordPiece sees (reserved tokens kept whole)."""
        return pretokenize(
            normalize_weibo_text(texts),
            self.lowercase,
            self.strip_accents,
            special_tokens_pattern=get_special_tokens_pattern(self.special_tokens),
        )

    @preprocessing_function
    def tokenize(self, inputs: tf.Tensor | Sequence[str]) -> tf.Tensor | tf.RaggedTensor:
        return super().tokenize(normalize_weibo_text(inputs))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for fixed in ("strip_accents", "special_tokens_in_strings", "special_tokens"):
            config.pop(fixed)
        return config


def with_reserved_tokens(vocabulary: Iterable[str]) -> list[str]:
    """``vocabulary`` with each missing Weibo reserved token written over the next ``[unusedN]`` slot."""
    vocabulary = list(vocabulary)
    missing = [token for token in WEIBO_TOKENS if token not in vocabulary]
    unused = [i for i, token in enumerate(vocabulary) if token.startswith("[unused")]
    if len(unused) < len(missing):
        raise ValueError(
            f"The vocabulary lacks {missing} and has only {len(unused)} [unusedN] slots to hold them; "
            f"add the tokens to the vocabulary."
        )
    for slot, token in zip(unused, missing):
        vocabulary[slot] = token
    return vocabulary


def learn_vocabulary(
    texts: Iterable[str], vocabulary_size: int, lowercase: bool = True, batch_size: int = 1024
) -> list[str]:
    """Learn a WordPiece vocabulary of at most ``vocabulary_size`` tokens from raw texts.

    Uses tensorflow-text's WordPiece learner (the one behind ``bert_vocab_from_dataset``) on words split exactly
    as :class:`WeiboTokenizer` splits them, since a learned vocabulary only fits the splitting it was learned on.
    The alphabet may take half the vocabulary (the learner's default of 1,000 characters is too few for
    Chinese); the BERT special tokens and the Weibo reserved tokens come first.
    """
    reserved = [*BERT_SPECIAL_TOKENS, *WEIBO_TOKENS]
    splitter = WeiboTokenizer(vocabulary=reserved, lowercase=lowercase)
    is_reserved = get_special_tokens_pattern(reserved)

    def words(batch: tf.Tensor) -> tf.RaggedTensor:
        split = splitter.split_words(batch)
        return tf.ragged.boolean_mask(split, tf.logical_not(tf.strings.regex_full_match(split, is_reserved)))

    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).batch(batch_size).map(words)
    vocabulary = learner.learn(
        learner.count_words(dataset), vocabulary_size, reserved, max_unique_chars=vocabulary_size // 2
    )
    return vocabulary[:vocabulary_size]

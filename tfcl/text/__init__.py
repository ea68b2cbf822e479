"""Text towers: raw strings → in-graph tokenisation → BERT → pooled embedding (reused by every text method)."""

from tfcl.text.encoder import TextEncoder
from tfcl.text.ngram import NgramEncoder
from tfcl.text.tokenizer import WeiboTokenizer, learn_vocabulary, normalize_weibo_text

__all__ = ["NgramEncoder", "TextEncoder", "WeiboTokenizer", "learn_vocabulary", "normalize_weibo_text"]

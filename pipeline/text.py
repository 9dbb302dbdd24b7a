"""Small text helpers shared by the stages: spacing, folding for comparison, scripts written
without spaces, Chinese in one script."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, Japanese kana and
# Chinese characters. Two of their characters count as a word.
UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff"
                      r"\u3400-\u9fff\uf900-\ufaff]")
_SPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")


def squash(text: str) -> str:
    """Runs of white space as one space, trimmed."""
    return _SPACE.sub(" ", text).strip()


def visible(text: str) -> str:
    """`text` in Unicode NFC without the characters that print nothing (soft hyphens,
    zero-width spaces and joiners, byte-order marks, controls), spacing squashed."""
    text = squash(text)  # line breaks and tabs are not printable: gone first, as they are many
    if not text.isprintable():
        text = squash("".join(c for c in text if c.isprintable() or c.isspace()))
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-cased words separated by single spaces: punctuation and spacing do not count."""
    return _NON_WORD.sub(" ", text).strip().casefold()


def word_count(text: str) -> int:
    """Words, counting two characters of a script written without spaces (Chinese, Japanese,
    Thai...) as one."""
    return len(UNSPACED.findall(text)) // 2 + len(UNSPACED.sub(" ", text).split())


def simplified(text: str) -> str:
    """`text` with traditional Chinese characters in their simplified forms (OpenCC t2s), so
    that one list of Chinese terms finds both scripts; text without Chinese is returned as it
    is."""
    return _t2s().convert(text) if CJK.search(text) else text


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")

"""Small text helpers shared by the stages: spacing, folding for comparison, Chinese script."""

from __future__ import annotations

import re
import unicodedata

CJK = re.compile(r"[\u3400-\u9fff]")
_SPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")


def squash(text: str) -> str:
    """Runs of white space as one space, trimmed."""
    return _SPACE.sub(" ", text).strip()


def visible(text: str) -> str:
    """`text` in Unicode NFC without the characters that print nothing (soft hyphens,
    zero-width spaces and joiners, byte-order marks, controls), spacing squashed."""
    if not text.isprintable():
        text = "".join(c for c in text if c.isprintable() or c.isspace())
    return squash(unicodedata.normalize("NFC", text))


def fold(text: str) -> str:
    """Lower-cased words separated by single spaces: punctuation and spacing do not count."""
    return _NON_WORD.sub(" ", text).strip().casefold()


def word_count(text: str) -> int:
    """Words, counting two Chinese characters as one."""
    return len(CJK.findall(text)) // 2 + len(CJK.sub(" ", text).split())

"""MinHash signatures and LSH band tokens for near-duplicate lookup at corpus scale.

A text is folded (case, punctuation, spacing), cut into shingles of consecutive tokens (words;
each Chinese character is a token), and summarised by `permutations` minimum hash values; the signature is split into
`bands` bands whose hashes become keyword tokens stored on the document. Two texts share a band
token with a probability that rises steeply with their Jaccard similarity, so one `terms` query
on a new text's tokens finds its near-copies whatever the corpus size; the fraction of equal
signature values then estimates the Jaccard similarity that confirms them.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from pipeline.settings import ConfigError, load_yaml

_PRIME = (1 << 31) - 1
_CHUNK = 4096  # shingles hashed at once
_WORDS = re.compile(r"[\u3400-\u9fff]|[^\W_]+")


@dataclass(frozen=True)
class MinHasher:
    shingle_size: int  # tokens per shingle: words, and single Chinese characters
    permutations: int
    bands: int
    threshold: float  # estimated Jaccard similarity at or above which a text is a copy
    seed: int

    @classmethod
    def load(cls, path: Path) -> MinHasher:
        raw = load_yaml(path).get("near_duplicates") or {}
        keys = {"shingle_size", "permutations", "bands", "threshold", "seed"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected keys {sorted(keys)}, got {sorted(raw)}")
        hasher = cls(**{key: raw[key] for key in keys})
        if hasher.permutations % hasher.bands:
            raise ConfigError(f"{path}: permutations must be a multiple of bands")
        return hasher

    @cached_property
    def _coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        a = rng.integers(1, _PRIME, size=self.permutations, dtype=np.uint64)
        b = rng.integers(0, _PRIME, size=self.permutations, dtype=np.uint64)
        return a, b

    def shingles(self, text: str) -> set[int]:
        """Hashes of the text's shingles (at least one shingle for any non-empty text)."""
        # One shingle size for every script, so that a copy of a mixed-script text is cut the
        # same way as its original.
        words = _WORDS.findall(unicodedata.normalize("NFKC", text).casefold())
        size = self.shingle_size
        if len(words) <= size:
            return {zlib.crc32(" ".join(words).encode())} if words else set()
        return {zlib.crc32(" ".join(words[i:i + size]).encode())
                for i in range(len(words) - size + 1)}

    def signature(self, text: str) -> list[int]:
        """`permutations` minimum hash values of the text's shingles."""
        shingles = self.shingles(text)
        if not shingles:
            return [_PRIME] * self.permutations
        a, b = self._coefficients
        x = np.fromiter(shingles, dtype=np.uint64, count=len(shingles)) % np.uint64(_PRIME)
        minima = np.full(self.permutations, _PRIME, dtype=np.uint64)
        # In chunks, so that a page of megabytes of text never needs a permutations x shingles
        # matrix at once (128 x 800,000 values would be 800 MB).
        for start in range(0, len(x), _CHUNK):
            part = x[start:start + _CHUNK]
            hashed = (a[:, None] * part[None, :] + b[:, None]) % np.uint64(_PRIME)
            np.minimum(minima, hashed.min(axis=1), out=minima)
        return [int(v) for v in minima]

    def band_tokens(self, signature: list[int]) -> list[str]:
        """One keyword per band: the band's number and the hash of its rows."""
        rows = self.permutations // self.bands
        return [
            f"{band}:{zlib.crc32(np.asarray(signature[band * rows:(band + 1) * rows], dtype=np.uint64).tobytes()):08x}"
            for band in range(self.bands)
        ]

    @staticmethod
    def similarity(first: list[int], second: list[int]) -> float:
        """Estimated Jaccard similarity: the share of equal signature values."""
        if not first or len(first) != len(second):
            return 0.0
        return sum(x == y for x, y in zip(first, second, strict=True)) / len(first)

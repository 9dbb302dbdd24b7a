"""MinHash signatures and LSH band tokens for near-duplicate lookup at corpus scale.

A text is folded (case, punctuation, spacing), cut into shingles of consecutive tokens (words;
each Chinese character is a token), and summarised by `permutations` minimum hash values; the signature is split into
`bands` bands whose hashes become keyword tokens stored on the document. Two texts share a band
token with a probability that rises steeply with their Jaccard similarity, so one `terms` query
on a new text's tokens finds its near-copies whatever the corpus size; the fraction of equal
signature values then estimates the Jaccard similarity that confirms them.

A copy that keeps only part of its original (a wire story cut to its first paragraphs) has a
Jaccard similarity below the threshold while nearly all of it is in the original: so the
signatures also estimate each text's number of shingles (the minima of n uniform hashes average
about 1/(n+1) of the range) and from those and the Jaccard estimate the containment of the
shorter text in the longer. Either one reaching its threshold makes a copy, when the two claim
publication times within `window_days` of each other, or one claims none: wire copy travels
within days, and a text that comes back months later with a word changed is a template filled
anew (a book's edition in another language announced in the same words, a monthly release), a
new article.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import timedelta
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
    fine_bands: int  # a second, finer banding that finds partial copies as candidates
    threshold: float  # estimated Jaccard similarity at or above which a text is a copy
    containment: float  # estimated share of the shorter text in the longer that makes a copy
    min_shingles: int  # ...when the shorter text has at least this many shingles
    window_days: float  # ...and the two were published within this many days of each other
    seed: int

    @classmethod
    def load(cls, path: Path) -> MinHasher:
        raw = load_yaml(path).get("near_duplicates") or {}
        keys = {"shingle_size", "permutations", "bands", "fine_bands", "threshold", "containment",
                "min_shingles", "window_days", "seed"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected keys {sorted(keys)}, got {sorted(raw)}")
        hasher = cls(**{key: raw[key] for key in keys})
        if hasher.permutations % hasher.bands or hasher.permutations % hasher.fine_bands:
            raise ConfigError(f"{path}: permutations must be a multiple of bands and fine_bands")
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
        """One keyword per band: the band's number and the hash of its rows; then one per band
        of the finer banding, marked "f" (fewer rows a band: a text sharing a third of its
        shingles with another, a copy cut to its first paragraphs, still shares some)."""
        return [*self._bands(signature, self.bands, ""),
                *self._bands(signature, self.fine_bands, "f")]

    def _bands(self, signature: list[int], bands: int, mark: str) -> list[str]:
        rows = self.permutations // bands
        return [
            f"{mark}{band}:{zlib.crc32(np.asarray(signature[band * rows:(band + 1) * rows], dtype=np.uint64).tobytes()):08x}"
            for band in range(bands)
        ]

    @staticmethod
    def similarity(first: list[int], second: list[int]) -> float:
        """Estimated Jaccard similarity: the share of equal signature values."""
        if not first or len(first) != len(second):
            return 0.0
        return sum(x == y for x, y in zip(first, second, strict=True)) / len(first)

    def size(self, signature: tuple[int, ...] | list[int]) -> float:
        """Estimated number of distinct shingles behind a signature: k minima of n uniform
        values in [0, 1) sum to about k / (n + 1); (k - 1) / sum is the unbiased estimate."""
        total = sum(v / _PRIME for v in signature)
        return (len(signature) - 1) / total if total > 0 else float("inf")

    def containment_of(self, first: tuple[int, ...] | list[int],
                       second: tuple[int, ...] | list[int]) -> float:
        """Estimated share of the smaller text's shingles that are in the other text, from the
        Jaccard estimate J and the sizes: shared = J (|A| + |B|) / (1 + J)."""
        jaccard = self.similarity(list(first), list(second))
        a, b = self.size(first), self.size(second)
        if not jaccard or min(a, b) <= 0 or max(a, b) == float("inf"):
            return 0.0
        return min(1.0, jaccard * (a + b) / (1 + jaccard) / min(a, b))

    def copy_similarity(self, first: tuple[int, ...] | list[int],
                        second: tuple[int, ...] | list[int],
                        apart: timedelta | None = None) -> float:
        """How strongly one text is a copy of the other: the Jaccard estimate when it reaches
        the threshold, else the containment of the shorter one when that reaches its own (and
        the shorter text is long enough to tell); 0 when neither does, or when the two were
        published further `apart` than `window_days` (None: a time is not known)."""
        if apart is not None and abs(apart) > timedelta(days=self.window_days):
            return 0.0
        jaccard = self.similarity(list(first), list(second))
        if jaccard >= self.threshold:
            return jaccard
        if min(self.size(first), self.size(second)) >= self.min_shingles:
            contained = self.containment_of(first, second)
            if contained >= self.containment:
                return contained
        return 0.0

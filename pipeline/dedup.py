"""dedup: is this article already in the corpus?

First version: exact duplicates only. The same canonical URL is the same document (its id is
the URL's hash); the same normalised text under another URL is a copy of the document that
has it. Near-copies (MinHash / LSH) come later, see DESIGN.md.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.urls import url_id

_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class DuplicateOf:
    """The indexed document an article duplicates, and how we know."""

    doc_id: str
    url: str
    match: str  # same_url | same_text


def content_hash(text: str) -> str:
    """Fingerprint of text with case, accents-as-written, punctuation and spacing folded."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _NON_WORD.sub(" ", folded).strip()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


class Deduplicator:
    """Checks articles against the index and against those accepted earlier in the same batch
    (not yet visible to search). One per batch."""

    def __init__(self, es: Elasticsearch, alias: str) -> None:
        self._es = es
        self._alias = alias
        self._by_id: dict[str, DuplicateOf] = {}
        self._by_hash: dict[str, DuplicateOf] = {}

    def check(self, url: str, text_hash: str) -> DuplicateOf | None:
        """The document that `url` with text `text_hash` duplicates, or None when the article
        is new, or is an updated version (same URL, changed text) of an indexed one."""
        doc_id = url_id(url)
        if doc_id in self._by_id:
            return self._by_id[doc_id]
        if text_hash in self._by_hash:
            return self._by_hash[text_hash]
        existing = self._es.options(ignore_status=404).get(
            index=self._alias, id=doc_id, source_includes=["url", "dedup.content_hash"])
        if existing.get("found"):
            source = existing["_source"]
            if source.get("dedup", {}).get("content_hash") == text_hash:
                return DuplicateOf(doc_id=doc_id, url=source["url"], match="same_url")
        hits = self._es.search(
            index=self._alias, size=1, query={"term": {"dedup.content_hash": text_hash}},
            source_includes=["url"], sort=[{"indexed_at": "asc"}])["hits"]["hits"]
        if hits:
            hit: dict[str, Any] = hits[0]
            if hit["_id"] != doc_id:
                return DuplicateOf(doc_id=hit["_id"], url=hit["_source"]["url"],
                                   match="same_text")
        return None

    def accept(self, url: str, text_hash: str) -> None:
        """Remember an article that will be indexed with this batch."""
        doc_id = url_id(url)
        self._by_id[doc_id] = DuplicateOf(doc_id=doc_id, url=url, match="same_url")
        self._by_hash[text_hash] = DuplicateOf(doc_id=doc_id, url=url, match="same_text")

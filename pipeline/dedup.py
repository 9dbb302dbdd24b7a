"""dedup: is this article already in the corpus?

The same canonical URL is the same document (its id is the URL's hash); the same normalised
text under another URL is a copy of the document that has it; a text whose MinHash estimate of
Jaccard similarity with an indexed one reaches the threshold in config/dedup.yaml is a
near-copy of it (syndicated wire copy with a new headline, a trimmed lead or tail, other
boilerplate), and so is a text mostly contained in an indexed one or containing most of it (a
copy cut to its first paragraphs), when the two were published within `window_days` of each
other (or one claims no time: a template filled anew months later is a new article).
Candidates come from one query on the LSH band tokens stored on every document, scored by the
number of bands shared, so the lookup costs the same at any corpus size.

Of two copies the original is the outlet's before a republisher's (a feed marked
`republisher: true`: aggregators, mirrors), then the one published first, then the lower id:
the `seniority` key, the same whatever order the copies arrive in. The time a page is ranked
by is the one it claims, unless our own polls belie the claim (`ranked_time`): a page that a
feed lists for the first time, though that feed was read well after the claimed time, is
ranked by when we first saw it, so a backdated copy does not take over the article it copies.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.minhash import MinHasher
from pipeline.settings import ConfigError, load_yaml
from pipeline.store import msearch_each
from pipeline.urls import indexer_rank, url_id

_NON_WORD = re.compile(r"[\W_]+")
_CANDIDATES = 20


@dataclass(frozen=True)
class DuplicateOf:
    """The indexed document an article duplicates, and how we know."""

    doc_id: str
    url: str
    match: str  # same_url | same_text | near_copy
    similarity: float = 1.0
    seniority: str = "0:~"  # which of two copies is the original (see `seniority`)
    text_kept: bool = False  # same_url: its text came from the URL that comes first


@dataclass(frozen=True)
class Fingerprint:
    """What dedup knows of a text: its exact hash, its MinHash signature and LSH band tokens."""

    content_hash: str
    signature: tuple[int, ...]
    lsh: tuple[str, ...]


def seniority(published_at: str | None, republisher: bool = False) -> str:
    """The key that orders copies, earliest first: an outlet's page before a republisher's,
    then by the publication time the page claims (ISO 8601 in UTC; unknown last)."""
    return f"{1 if republisher else 0}:{published_at or '~'}"


UNDATED = seniority(None)  # an outlet's page that claims no publication time


def published_apart(first: str, second: str) -> timedelta | None:
    """How far apart the publication times are that two `seniority` keys hold; None when
    either holds none (or one that does not read as a time)."""
    times = []
    for key in (first, second):
        try:
            times.append(datetime.fromisoformat(key.partition(":")[2]))
        except ValueError:
            return None
    try:
        return times[1] - times[0]
    except TypeError:  # one with an offset, one without: not from `seniority`
        return None


def ranked_time(claimed: datetime | None, first_seen: datetime,
                feed_read_before: datetime | None, grace: timedelta) -> datetime | None:
    """The publication time a page is ranked by among copies: the time it claims, unless a
    poll belies it. `feed_read_before` is when the feed that lists the page for the first time
    was last read before (None in a backfill, for a feed read for the first time, or for an
    item seen before): when that was more than `grace` after the claimed time, the feed did
    not list the page then, and the page is ranked by `first_seen` instead. A feed lists its
    new pages within `grace` of their publication; a page backdated by whoever publishes it is
    not listed before its real publication."""
    if claimed is not None and feed_read_before is not None and claimed + grace < feed_read_before:
        return first_seen
    return claimed


def listing_grace(path: Path) -> timedelta:
    """`claims.listing_grace_hours` of config/dedup.yaml: how long after a page's publication
    a feed may first list it."""
    hours = (load_yaml(path).get("claims") or {}).get("listing_grace_hours", 24)
    if not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0:
        raise ConfigError(f"{path}: claims.listing_grace_hours must be a positive number")
    return timedelta(hours=hours)


def stored_seniority(source: dict[str, Any]) -> str:
    """A stored document's seniority (from its `published_at` where it predates the field)."""
    key: str | None = (source.get("dedup") or {}).get("seniority")
    return key or seniority(source.get("published_at"))


def precedes(first: tuple[str, str], second: tuple[str, str]) -> bool:
    """Whether the document (seniority, id) `first` is the original of `second`."""
    return first < second


def content_hash(text: str) -> str:
    """Fingerprint of text with case, accents-as-written, punctuation and spacing folded."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _NON_WORD.sub(" ", folded).strip()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def fingerprint(text: str, hasher: MinHasher) -> Fingerprint:
    signature = hasher.signature(text)
    return Fingerprint(content_hash=content_hash(text), signature=tuple(signature),
                       lsh=tuple(hasher.band_tokens(signature)))


def lsh_query(print_: Fingerprint) -> dict[str, Any]:
    """Documents sharing an LSH band with this text, scored by the number of bands shared (so
    the likeliest copies come first)."""
    return {"bool": {"should": [{"constant_score": {"filter": {"term": {"dedup.lsh": token}}}}
                                for token in print_.lsh]}}


_SAME_URL_FIELDS = ["url", "dedup.content_hash", "ingest.item_url"]
_SAME_TEXT_FIELDS = ["url", "published_at", "dedup.seniority"]
_NEAR_COPY_FIELDS = ["url", "published_at", "dedup.signature", "dedup.seniority"]


def same_text_search(print_: Fingerprint) -> dict[str, Any]:
    """The search for the earliest indexed document with this exact text."""
    return {"size": 1, "query": {"term": {"dedup.content_hash": print_.content_hash}},
            "_source": _SAME_TEXT_FIELDS, "sort": [{"indexed_at": "asc"}]}


def near_copy_search(print_: Fingerprint) -> dict[str, Any]:
    """The search for indexed documents sharing an LSH band with this text."""
    return {"size": _CANDIDATES, "query": lsh_query(print_), "_source": _NEAR_COPY_FIELDS}


class Deduplicator:
    """Checks articles against the index and against those accepted earlier in the same batch
    (not yet visible to search). One per batch; `prefetch` asks the index about the whole batch
    in two requests, which `check` then reads instead of asking once per article."""

    def __init__(self, es: Elasticsearch, alias: str, hasher: MinHasher) -> None:
        self._es = es
        self._alias = alias
        self._hasher = hasher
        self._by_id: dict[str, DuplicateOf] = {}
        self._by_hash: dict[str, DuplicateOf] = {}
        self._batch: list[tuple[DuplicateOf, Fingerprint]] = []
        # what the index said, by document id and by the text's fingerprint
        self._stored: dict[str, dict[str, Any] | None] = {}
        self._same_text: dict[str, list[dict[str, Any]]] = {}
        self._near_copies: dict[tuple[str, ...], list[dict[str, Any]]] = {}

    def prefetch(self, articles: list[tuple[str, Fingerprint]]) -> None:
        """Look up the documents of these (url, fingerprint) pairs and their possible copies in
        one `mget` and one `msearch`."""
        if not articles:
            return
        ids = sorted({url_id(url) for url, _ in articles})
        docs = self._es.mget(index=self._alias, ids=ids,
                             source_includes=_SAME_URL_FIELDS)["docs"]
        self._stored.update({doc["_id"]: doc.get("_source") if doc.get("found") else None
                             for doc in docs})
        prints = list({print_.content_hash: print_ for _, print_ in articles}.values())
        hits = msearch_each(self._es, self._alias, [
            body for print_ in prints
            for body in (same_text_search(print_), near_copy_search(print_))])
        for n, print_ in enumerate(prints):
            same, near = hits[2 * n], hits[2 * n + 1]
            if same is not None and near is not None:  # else asked again by `check`
                self._same_text[print_.content_hash] = same
                self._near_copies[print_.lsh] = near

    def check(self, url: str, print_: Fingerprint, senior: str = UNDATED,
              item_url: str | None = None) -> DuplicateOf | None:
        """The document that `url` with this text duplicates, or None when the article is new,
        is an updated version (same URL, changed text) of an indexed one, or is a copy
        published before the indexed one (it will be indexed, and `pipeline.reconcile` makes
        the later one its duplicate)."""
        original = self._find(url, print_, item_url or url, senior)
        if (original is not None and original.match != "same_url"
                and precedes((senior, url_id(url)),
                             (original.seniority, original.doc_id))):
            return None
        return original

    def _find(self, url: str, print_: Fingerprint, item_url: str,
              senior: str) -> DuplicateOf | None:
        doc_id = url_id(url)
        if doc_id in self._by_id:
            return self._by_id[doc_id]
        if print_.content_hash in self._by_hash:
            return self._by_hash[print_.content_hash]
        source = self._stored_document(doc_id)
        if source is not None:
            writer = (source.get("ingest") or {}).get("item_url")
            if source.get("dedup", {}).get("content_hash") == print_.content_hash or (
                    writer and indexer_rank(writer, doc_id) < indexer_rank(item_url, doc_id)):
                # the same text, or another version (an AMP page's) of a document whose text
                # came from the URL that comes first: it keeps that text
                return DuplicateOf(doc_id=doc_id, url=source["url"], match="same_url",
                                   text_kept=source.get("dedup", {}).get("content_hash")
                                   != print_.content_hash)
        hits = self._same_text.get(print_.content_hash)
        if hits is None:
            hits = self._es.search(index=self._alias, **same_text_search(print_))["hits"]["hits"]
        if hits and hits[0]["_id"] != doc_id:
            return DuplicateOf(doc_id=hits[0]["_id"], url=hits[0]["_source"]["url"],
                               match="same_text",
                               seniority=stored_seniority(hits[0]["_source"]))
        return self._near_copy(doc_id, print_, senior)

    def _stored_document(self, doc_id: str) -> dict[str, Any] | None:
        if doc_id in self._stored:
            return self._stored[doc_id]
        existing = self._es.options(ignore_status=404).get(
            index=self._alias, id=doc_id, source_includes=_SAME_URL_FIELDS)
        return existing["_source"] if existing.get("found") else None

    def accept(self, url: str, print_: Fingerprint, senior: str = UNDATED) -> None:
        """Remember an article that will be indexed with this batch."""
        doc_id = url_id(url)
        self._by_id[doc_id] = DuplicateOf(doc_id=doc_id, url=url, match="same_url")
        self._by_hash[print_.content_hash] = DuplicateOf(
            doc_id=doc_id, url=url, match="same_text", seniority=senior)
        self._batch.append((DuplicateOf(doc_id=doc_id, url=url, match="near_copy",
                                        seniority=senior), print_))

    def _near_copy(self, doc_id: str, print_: Fingerprint, senior: str) -> DuplicateOf | None:
        """The most similar indexed (or batched) text sharing an LSH band, if similar enough
        and published close enough in time (`senior` holds this text's time)."""
        candidates: list[tuple[DuplicateOf, tuple[int, ...]]] = [
            (original, other.signature) for original, other in self._batch
            if set(other.lsh) & set(print_.lsh)
        ]
        hits = self._near_copies.get(print_.lsh)
        if hits is None:
            hits = self._es.search(index=self._alias, **near_copy_search(print_))["hits"]["hits"]
        for hit in hits:
            signature = hit["_source"].get("dedup", {}).get("signature") or ()
            candidates.append((DuplicateOf(doc_id=hit["_id"], url=hit["_source"]["url"],
                                           match="near_copy",
                                           seniority=stored_seniority(hit["_source"])),
                               tuple(signature)))
        best: DuplicateOf | None = None
        for original, signature in candidates:
            if original.doc_id == doc_id:
                continue  # an updated version of this very document
            similarity = self._hasher.copy_similarity(
                print_.signature, signature, published_apart(senior, original.seniority))
            if similarity and (best is None or similarity > best.similarity):
                best = DuplicateOf(original.doc_id, original.url, "near_copy", similarity,
                                   original.seniority)
        return best

"""index: article documents into the alias, with idempotent ids, in bulk.

Writes are upserts: a new article is created whole; an article already indexed under the same
id (the hash of its canonical URL) has its fields replaced but keeps the `duplicates` recorded
on it. Duplicates are added to the original with optimistic concurrency (`if_seq_no`), which
the minimal local node supports without scripting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, helpers

from pipeline.dedup import Fingerprint, seniority
from pipeline.records import Article
from pipeline.urls import is_variant, url_id

_DUPLICATE_RETRIES = 30


@dataclass(frozen=True)
class IndexFailure:
    """A document Elasticsearch did not take: refused for good (`index_rejected`, e.g. a
    mapping conflict: quarantined), or for now (`index_busy`: 429 or 5xx still after the
    retries; `index_blocked`: a write block, as maintenance puts on an index; `index_conflict`:
    other writers kept updating it; `index_missing`: the alias is gone, as when an operator
    deletes the index, and the next run sets it up again), tried again on a later run at no
    cost to the item's attempts: none of these is the page's fault."""

    url: str
    reason: str
    detail: str
    transient: bool = False
    document: dict[str, Any] | None = None


# Times a bulk update is retried when another writer changed the document meanwhile.
RETRY_ON_CONFLICT = 5


def _failure_reason(status: int, error_type: str | None) -> str | None:
    """Why a bulk item failed for now, or None when it was refused for good."""
    if status == 429 or status >= 500:
        return "index_busy"
    if status == 403 and error_type == "cluster_block_exception":
        return "index_blocked"
    if status == 409:
        return "index_conflict"
    if status == 404 and error_type == "index_not_found_exception":
        return "index_missing"
    return None


def is_write_block(exc: ApiError) -> bool:
    """Whether Elasticsearch refused a write because the index is write-blocked (a reindex
    copying it): our infrastructure's state, to wait out, not the page's fault."""
    return _failure_reason(exc.meta.status, getattr(exc, "error", None)) == "index_blocked" or (
        exc.meta.status == 403 and "cluster_block_exception" in str(exc))


def article_document(article: Article, print_: Fingerprint, story_id: str, run_id: str,
                     mode: str, enrich_version: str,
                     senior: str | None = None, item_url: str | None = None) -> dict[str, Any]:
    """The document for `article`, as described in docs/architecture.md (without `duplicates`);
    `senior` is its `pipeline.dedup.seniority` key (by default, from the time it claims)."""
    return {
        "url": article.url,
        "title": article.title,
        "text": article.text,
        "summary": article.summary,
        "authors": list(article.authors),
        "published_at": utc_iso(article.published_at),
        "fetched_at": utc_iso(article.fetched_at),
        "indexed_at": datetime.now(UTC).isoformat(),
        "language": article.language,
        "source": {"name": article.source.name, "domain": article.source.domain,
                   "feed": article.source.feed},
        "relevance": ({"score": article.relevance.score,
                       "reasons": list(article.relevance.reasons)}
                      if article.relevance else None),
        **entity_fields(article, enrich_version),
        "dedup": {"content_hash": print_.content_hash, "lsh": list(print_.lsh),
                  "signature": list(print_.signature),
                  "seniority": senior or seniority(utc_iso(article.published_at))},
        "story_id": story_id,
        "word_count": article.word_count,
        "ingest": {"run_id": run_id, "mode": mode, "item_url": item_url or article.url},
    }


def entity_fields(article: Article, enrich_version: str) -> dict[str, Any]:
    """The entity part of a document: `entities`, the flattened names by type, what the NER
    did not read (`enrich_notes`), and the version of the gazetteer, code and model that
    produced them."""
    entities = article.entities

    def names(type_: str) -> list[str]:
        return [e.name for e in entities if e.type == type_]

    return {
        "entities": [
            {"name": e.name, "type": e.type, "wikidata": e.wikidata, "mentions": e.mentions,
             "salience": e.salience, "linked": e.linked}
            for e in entities
        ],
        "persons": names("person"),
        "organizations": names("organization"),
        "locations": names("location"),
        "enrich_notes": list(article.entity_notes),
        "enrich_version": enrich_version,
    }


def index_documents(es: Elasticsearch, alias: str, documents: Iterable[dict[str, Any]],
                    refresh: bool | str = "wait_for", updated: set[str] | None = None
                    ) -> list[IndexFailure]:
    """Upsert `documents` (from `article_document`) and wait until they are searchable. A
    document written from another URL than its own (`ingest.item_url`: an AMP or tracking
    variant) is only created, never written over another version: the article's own URL
    gives it its text, whichever came first. Such a document that exists already comes back
    as a failure with reason `exists`.

    Returns the documents Elasticsearch refused (e.g. a mapping conflict); transport errors
    raise, so that nothing is recorded as done when the node is gone. The ids of documents
    that existed already (written over, not created) are added to `updated` when given."""
    actions: list[dict[str, Any]] = []
    for doc in documents:
        created = {**doc, "duplicates": [], "duplicate_count": 0}
        doc_id = url_id(doc["url"])
        if not is_variant((doc.get("ingest") or {}).get("item_url") or doc["url"],
                          doc_id):  # the article's own URL
            actions.append({"_op_type": "update", "_index": alias, "_id": doc_id,
                            "retry_on_conflict": RETRY_ON_CONFLICT, "doc": doc,
                            "upsert": created})
        else:
            actions.append({"_op_type": "create", "_index": alias, "_id": doc_id,
                            "_source": created})
    if not actions:
        return []
    by_id = {action["_id"]: action.get("doc") or action["_source"] for action in actions}
    failures = []
    # 429s (es_rejected_execution_exception) are retried here with exponential back-off.
    # `require_alias`: where the alias is gone, Elasticsearch would otherwise create an index
    # of that name with mappings guessed from the documents, which would then stand in the
    # alias's place for every later run.
    for ok, item in helpers.streaming_bulk(es, actions, raise_on_error=False,
                                           raise_on_exception=True, refresh=refresh,
                                           require_alias=True,
                                           max_retries=3, initial_backoff=1, chunk_size=200):
        op, result = next(iter(item.items()))
        if ok and updated is not None and result.get("result") != "created":
            updated.add(result["_id"])
        if not ok:
            error = result.get("error", {})
            status = int(result.get("status", 0))
            transient = _failure_reason(status, error.get("type"))
            if op == "create" and status == 409:
                transient = "exists"
            document = by_id[result["_id"]]
            failures.append(IndexFailure(
                url=document["url"],
                reason=transient or "index_rejected",
                detail=f"{error.get('type')}: {error.get('reason')}",
                transient=transient is not None,
                document=document,
            ))
    return failures


def quarantine(es: Elasticsearch, index: str, failure: IndexFailure, run_id: str,
               item_url: str | None = None) -> None:
    """Keep a document Elasticsearch refused for good, with its reason and the feed item that
    brought it, for an operator to look at and to replay once the mapping is fixed
    (`pipeline.maintenance.replay_quarantine`); one record per URL."""
    es.index(index=index, id=url_id(failure.url), refresh="wait_for", document={
        "url": failure.url, "item_url": item_url or failure.url,
        "reason": failure.reason, "detail": failure.detail,
        "run_id": run_id, "quarantined_at": datetime.now(UTC).isoformat(),
        "document": failure.document,
    })


def add_duplicates(es: Elasticsearch, alias: str, original_id: str,
                   copies: list[dict[str, Any]]) -> None:
    """Record `copies` (each `url`, `source`, `seen_at` and the match `reason`) on the document
    `original_id`, each URL once, with optimistic concurrency (no scripts needed). Nothing
    waits for a refresh: the copies are read back by id (realtime), and `holders_of`, the one
    search on them, refreshes first. Raises `NotFoundError` when the document does not exist."""
    for _ in range(_DUPLICATE_RETRIES):
        current = es.get(index=alias, id=original_id, source_includes=["url", "duplicates"])
        update = _with_copies(current["_source"], copies)
        if update is None:
            return
        try:
            es.update(index=current["_index"], id=original_id,
                      if_seq_no=current["_seq_no"], if_primary_term=current["_primary_term"],
                      doc=update)
            return
        except ConflictError:
            time.sleep(random.uniform(0.01, 0.1))  # another writer won; back off, re-read
            continue
    raise RuntimeError(f"could not record duplicates on {original_id}: "
                       f"{_DUPLICATE_RETRIES} concurrent-update conflicts")


def add_duplicates_each(es: Elasticsearch, alias: str,
                        copies: Mapping[str, list[dict[str, Any]]]) -> set[str]:
    """`add_duplicates` for many originals (`copies`: original id -> its new copies) in two
    requests, one `mget` and one bulk of conditional updates; an original another writer
    changed in between, or one refused, is done again on its own (which raises what
    Elasticsearch says: a write block, for one). Returns the originals that do not exist
    (demoted by another worker meanwhile, or removed): nothing was recorded on them."""
    if not copies:
        return set()
    docs = es.mget(index=alias, ids=sorted(copies),
                   source_includes=["url", "duplicates"])["docs"]
    missing = {doc["_id"] for doc in docs if not doc.get("found")}
    actions = [{"_op_type": "update", "_index": doc["_index"], "_id": doc["_id"],
                "if_seq_no": doc["_seq_no"], "if_primary_term": doc["_primary_term"],
                "doc": update}
               for doc in docs if doc.get("found")
               and (update := _with_copies(doc["_source"], copies[doc["_id"]])) is not None]
    again = []
    for ok, item in helpers.streaming_bulk(es, actions, raise_on_error=False,
                                           raise_on_exception=True, max_retries=3,
                                           initial_backoff=1, chunk_size=200):
        if not ok:
            result = item["update"]
            if result.get("status") == 404:
                missing.add(result["_id"])
            else:
                # changed since it was read, or refused (a write block): one by one, which
                # raises what Elasticsearch says
                again.append(result["_id"])
    for original_id in again:
        try:
            add_duplicates(es, alias, original_id, copies[original_id])
        except NotFoundError:
            missing.add(original_id)
    return missing


def _with_copies(source: dict[str, Any], copies: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The update that adds to a document (its `source`: url and duplicates) those of `copies`
    it has not recorded yet (by URL, its own URL included); None when there are none."""
    duplicates = list(source.get("duplicates") or [])
    known = {d["url"] for d in duplicates} | {source.get("url")}
    new = []
    for copy in copies:
        if copy["url"] not in known:
            known.add(copy["url"])
            new.append({k: copy.get(k) for k in ("url", "source", "seen_at", "reason")})
    if not new:
        return None
    duplicates.extend(new)
    return {"duplicates": duplicates, "duplicate_count": len(duplicates)}


def add_duplicate(es: Elasticsearch, alias: str, original_id: str, url: str, source: str,
                  seen_at: datetime, reason: str) -> None:
    """Record `url` (from `source`) as a copy (`reason`: same_text or near_copy) of the
    document `original_id`, once."""
    add_duplicates(es, alias, original_id, [{"url": url, "source": source,
                                             "seen_at": utc_iso(seen_at), "reason": reason}])


def utc_iso(value: datetime | None) -> str | None:
    """A time as the corpus stores and compares it: ISO 8601 in UTC (so that times of pages in
    different offsets sort as strings too)."""
    return value.astimezone(UTC).isoformat() if value else None

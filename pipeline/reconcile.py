"""reconcile: one document for a text and its copies, whatever order or concurrency the copies
arrived in.

Of two copies, the original is the one that comes first by `pipeline.dedup.seniority` (an
outlet's page before a republisher's, then the one published first), then the lower id. After a batch is
indexed, each of its documents is checked against what other workers indexed meanwhile: the
later of two copies is demoted — its URL and its own duplicates move onto the original, the
document is deleted, and its ledger records point at the original. Every worker applies the
same order, so two concurrent runs, or one run in any feed order, leave the same documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from elasticsearch import ConflictError, Elasticsearch, NotFoundError, helpers

from pipeline.dedup import Fingerprint, lsh_query, precedes, published_apart, stored_seniority
from pipeline.index import add_duplicates, add_duplicates_each
from pipeline.ledger import Ledger
from pipeline.minhash import MinHasher
from pipeline.store import msearch_each

_CANDIDATES = 20
_DEMOTE_RETRIES = 10


class Indexed(NamedTuple):
    """A document this worker has just indexed."""

    doc_id: str
    url: str
    fingerprint: Fingerprint
    seniority: str


def reconcile(es: Elasticsearch, alias: str, ledger: Ledger, hasher: MinHasher,
              indexed: Iterable[Indexed]) -> dict[str, str]:
    """Check the batch's documents against the corpus; return the documents that were demoted
    (the batch's own, and others' demoted onto them), each with the document it now copies.

    The copies of the whole batch are looked up in one request and its demotions made together
    (`demote_all`); a document whose demotion met another worker's (a document involved
    vanished meanwhile) is reconciled again on its own, against its copies as they are now."""
    batch = list(indexed)
    demoted: dict[str, str] = {}
    first = _copies_of_batch(es, alias, hasher, batch)  # one request for the whole batch
    plan: dict[str, str] = {}
    for doc in batch:
        copies = first.get(doc.doc_id)
        if copies is None:  # its search failed in the msearch: on its own
            copies = _copies(es, alias, hasher, doc.fingerprint, doc.seniority, [doc.doc_id])
        _plan(doc.doc_id, copies, doc.seniority, plan)
    unsettled = demote_all(es, alias, ledger, plan, demoted)
    for doc_id, url, print_, senior in batch:
        if doc_id not in unsettled:
            continue
        for _ in range(_DEMOTE_RETRIES):  # again when a document vanished as we moved
            if doc_id in demoted:
                break
            try:
                copies = _copies(es, alias, hasher, print_, senior, [doc_id])  # as it is now
                _reconcile_one(es, alias, ledger, doc_id, copies, senior, demoted)
                break
            except NotFoundError:
                # a document another worker demoted just now: ours (then its URL shows where
                # it went), or the one ours was going to: the copies are looked up again
                if not es.exists(index=alias, id=doc_id):
                    holder = holder_of(es, alias, url)
                    if holder:
                        demoted[doc_id] = holder.doc_id
    # A worker reconciling at the same moment may have demoted one of ours already.
    if batch:
        urls = {doc.doc_id: doc.url for doc in batch}
        gone = [doc["_id"] for doc in es.mget(index=alias, ids=list(urls),
                                              source_includes=[])["docs"]
                if not doc.get("found") and doc["_id"] not in demoted]
        holders = holders_of(es, alias, [urls[doc_id] for doc_id in gone])
        demoted.update({doc_id: holders[urls[doc_id]].doc_id for doc_id in gone
                        if urls[doc_id] in holders})
    return demoted


def _plan(doc_id: str, copies: list[tuple[str, str]], senior: str, plan: dict[str, str]) -> None:
    """Of `doc_id` and its `copies` (id, seniority), what `_reconcile_one` would demote onto
    what, added to `plan` (loser -> winner) without touching the corpus."""
    for other_id, other_senior in copies:
        if doc_id in plan:
            return
        if other_id in plan:
            continue
        if precedes((other_senior, other_id), (senior, doc_id)):
            plan[doc_id] = other_id
        else:
            plan[other_id] = doc_id


def demote_all(es: Elasticsearch, alias: str, ledger: Ledger, plan: dict[str, str],
               demoted: dict[str, str]) -> set[str]:
    """Make each loser of `plan` (loser -> winner) a recorded copy of its winner, as `demote`
    does one by one, in a few requests whatever their number: the documents read in one `mget`,
    each final winner's new copies recorded at once (`add_duplicates_each`), the losers deleted
    in one bulk as they were read, their ledger records re-pointed in one more, each of the
    last two searchable at once (one forced refresh each). A loser whose winner was itself
    demoted in the plan goes to where that one went.

    Adds what was demoted to `demoted` (loser -> the document it now copies) and returns the
    documents whose demotion met another worker's (a winner gone meanwhile): the caller
    reconciles those again. A loser already gone was demoted by another worker; one changed
    since it was read (a copy recorded on it meanwhile) is demoted again on its own."""
    if not plan:
        return set()

    def final(doc_id: str) -> str:
        while doc_id in plan:
            doc_id = plan[doc_id]
        return doc_id

    docs = {doc["_id"]: doc for doc in es.mget(
        index=alias, ids=sorted({*plan, *plan.values()}),
        source_includes=["url", "source.name", "fetched_at", "duplicates",
                         "dedup.content_hash"])["docs"]}

    def content_hash(doc_id: str) -> str | None:
        doc = docs[doc_id]
        return (doc["_source"].get("dedup") or {}).get("content_hash") if doc.get("found") \
            else None

    unsettled: set[str] = set()
    moves: dict[str, tuple[str, str]] = {}  # loser -> (final winner, reason)
    copies: dict[str, list[dict[str, Any]]] = {}
    for loser, winner in plan.items():
        if not docs[loser].get("found"):
            continue  # another worker demoted it
        target = final(loser)
        if not docs[target].get("found"):
            unsettled |= {loser, target}
            continue
        # the same reason a copy judged against its winner would have had, whatever the
        # order; recorded with the copy, so that a rerun after a crash re-points with it too
        same = content_hash(winner) is not None and content_hash(winner) == content_hash(loser)
        moves[loser] = target, "same_text" if same else "near_copy"
        copies.setdefault(target, []).extend(_as_copies(docs[loser]["_source"], moves[loser][1]))
    gone = add_duplicates_each(es, alias, copies)
    for loser, (target, _) in list(moves.items()):
        if target in gone:
            unsettled |= {loser, target}
            del moves[loser]
    again = []
    for ok, item in helpers.streaming_bulk(
            es, [{"_op_type": "delete", "_index": docs[loser]["_index"], "_id": loser,
                  "if_seq_no": docs[loser]["_seq_no"],
                  "if_primary_term": docs[loser]["_primary_term"]} for loser in moves],
            raise_on_error=False, raise_on_exception=True, refresh=True, max_retries=3,
            initial_backoff=1, chunk_size=200):
        result = item["delete"]
        if not ok and result.get("status") != 404:  # 404: another worker deleted it
            # changed since it was read (a copy recorded on it: moved too), or refused (a
            # write block): one by one, which raises what Elasticsearch says
            again.append(result["_id"])
    one_by_one = {loser: moves.pop(loser) for loser in again}
    ledger.repoint_all(moves)
    demoted.update({loser: target for loser, (target, _) in moves.items()})
    for loser, (target, _) in one_by_one.items():
        try:
            if demote(es, alias, ledger, loser, target):
                demoted[loser] = target
        except NotFoundError:
            unsettled |= {loser, target}
    return unsettled


def _as_copies(source: dict[str, Any], reason: str) -> list[dict[str, Any]]:
    """A demoted document (its `source`) as the copies its winner records: its own URL, with
    `reason`, then the copies it had recorded."""
    return [{"url": source["url"], "source": source.get("source", {}).get("name"),
             "seen_at": source.get("fetched_at"), "reason": reason},
            *(source.get("duplicates") or [])]


def _reconcile_one(es: Elasticsearch, alias: str, ledger: Ledger, doc_id: str,
                   copies: list[tuple[str, str]], senior: str, demoted: dict[str, str]) -> None:
    """Demote `doc_id` onto the first of its `copies` (id, seniority) that precedes it, and
    each later copy onto it; record each demotion in `demoted`. Raises `NotFoundError` when a
    document involved vanished meanwhile."""
    for other_id, other_senior in copies:
        if doc_id in demoted:
            return
        if other_id in demoted:  # demoted by this batch since the copies were looked up
            continue
        if precedes((other_senior, other_id), (senior, doc_id)):
            if demote(es, alias, ledger, doc_id, other_id):
                demoted[doc_id] = other_id
        elif demote(es, alias, ledger, other_id, doc_id):
            demoted[other_id] = doc_id


def demote(es: Elasticsearch, alias: str, ledger: Ledger, loser_id: str, winner_id: str) -> bool:
    """Make `loser_id` a recorded copy of `winner_id` (idempotent: a document already demoted
    by another worker is left alone, and False returned). The loser is deleted only as it was
    read: a copy another worker recorded on it meanwhile is moved onto the winner too, never
    lost. The deletion and the re-pointed records are searchable at once (a forced refresh of
    the shards they touched, not a wait for the next scheduled one)."""
    for _ in range(_DEMOTE_RETRIES):
        loser = es.options(ignore_status=404).get(
            index=alias, id=loser_id, source_includes=["url", "source.name", "fetched_at",
                                                       "duplicates", "dedup.content_hash"])
        if not loser.get("found"):
            return False
        source: dict[str, Any] = loser["_source"]
        # as in `demote_all`
        winner = es.options(ignore_status=404).get(index=alias, id=winner_id,
                                                   source_includes=["dedup.content_hash"])
        same = (winner.get("found") and (winner["_source"].get("dedup") or {}).get(
            "content_hash") == (source.get("dedup") or {}).get("content_hash"))
        reason = "same_text" if same else "near_copy"
        add_duplicates(es, alias, winner_id, _as_copies(source, reason))
        try:
            es.delete(index=loser["_index"], id=loser_id, if_seq_no=loser["_seq_no"],
                      if_primary_term=loser["_primary_term"], refresh=True)
        except ConflictError:
            continue  # changed since it was read (a copy recorded on it): move that too
        except NotFoundError:
            pass  # another worker demoted it meanwhile
        ledger.repoint(loser_id, winner_id, reason)
        return True
    raise RuntimeError(f"could not demote {loser_id}: it kept changing")


class Holder(NamedTuple):
    """The document that recorded a URL among its duplicates, and why (`same_text` or
    `near_copy`; a copy recorded before the reason was kept counts as a near copy)."""

    doc_id: str
    reason: str


def holder_of(es: Elasticsearch, alias: str, url: str) -> Holder | None:
    """The document that recorded `url` among its duplicates (where a demoted document's URL
    went)."""
    return holders_of(es, alias, [url]).get(url)


def holders_of(es: Elasticsearch, alias: str, urls: Iterable[str]) -> dict[str, Holder]:
    """`holder_of` each of `urls` that has one, after one refresh and in one search."""
    wanted = set(urls)
    if not wanted:
        return {}
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=min(10_000, 10 * len(wanted)),
                     source_includes=["duplicates.url", "duplicates.reason"],
                     query={"terms": {"duplicates.url": sorted(wanted)}})["hits"]["hits"]
    holders: dict[str, Holder] = {}
    for hit in hits:
        for copy in hit["_source"].get("duplicates") or []:
            url = copy.get("url")
            if url in wanted and url not in holders:
                holders[url] = Holder(hit["_id"], copy.get("reason") or "near_copy")
    return holders


def _copies_search(print_: Fingerprint, exclude: list[str]) -> dict[str, Any]:
    query = lsh_query(print_)
    query["bool"]["should"].append({"term": {"dedup.content_hash": print_.content_hash}})
    query["bool"]["must_not"] = [{"ids": {"values": exclude}}]
    return {"size": _CANDIDATES, "query": query,
            "_source": ["published_at", "dedup.signature", "dedup.seniority",
                        "dedup.content_hash"]}


def _copies_of_batch(es: Elasticsearch, alias: str, hasher: MinHasher, batch: list[Indexed]
                     ) -> dict[str, list[tuple[str, str]]]:
    """`_copies` of each of the batch's documents, in one `msearch` (a document whose search
    failed is left out: it is looked up on its own)."""
    found = msearch_each(es, alias, [_copies_search(doc.fingerprint, [doc.doc_id])
                                     for doc in batch])
    return {doc.doc_id: _confirmed(hasher, doc.fingerprint, doc.seniority, hits)
            for doc, hits in zip(batch, found, strict=True) if hits is not None}


def _copies(es: Elasticsearch, alias: str, hasher: MinHasher, print_: Fingerprint,
            senior: str, exclude: list[str]) -> list[tuple[str, str]]:
    """Documents of the corpus (outside `exclude`) that are copies of this text, whose
    seniority is `senior`."""
    hits = es.search(index=alias, **_copies_search(print_, exclude))["hits"]["hits"]
    return _confirmed(hasher, print_, senior, hits)


def _confirmed(hasher: MinHasher, print_: Fingerprint, senior: str,
               hits: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The hits that are copies of this text (the same text, or similar enough and published
    close enough to `senior`'s time), as (id, seniority)."""
    found = []
    for hit in hits:
        dedup = hit["_source"].get("dedup", {})
        other = stored_seniority(hit["_source"])
        same = dedup.get("content_hash") == print_.content_hash
        similar = bool(hasher.copy_similarity(print_.signature,
                                              tuple(dedup.get("signature") or ()),
                                              published_apart(senior, other)))
        if same or similar:
            found.append((hit["_id"], other))
    return found

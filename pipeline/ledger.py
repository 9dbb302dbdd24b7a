"""The ledger: one record per feed item URL with its outcome, and the per-feed state.

A run consults the ledger to skip what is settled and writes it only after the article writes
it depends on have succeeded, so an interrupted run leaves nothing marked done that is not.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, TransportError, helpers

from pipeline.discover import FeedState
from pipeline.records import Outcome
from pipeline.settings import Feed, PollSettings
from pipeline.urls import MAX_URL_CHARS, indexer_rank, url_id

log = logging.getLogger(__name__)

_PAGE = 10_000  # records a search returns at most
SETTLED = {Outcome.INDEXED, Outcome.DUPLICATE, Outcome.IRRELEVANT}
_MACHINE = socket.gethostname()  # a lease taken here names it: its process can be looked for


@dataclass(frozen=True)
class LedgerEntry:
    url: str  # the feed item's URL exactly as the feed gave it
    feed: str
    status: Outcome
    run_id: str
    mode: str = "poll"
    reason: str | None = None
    error: str | None = None
    retryable: bool = False  # a transient failure (timeout, 5xx, 429): retried on later runs
    attempts: int = 1
    not_before: datetime | None = None  # the site asked for no retry before then (Retry-After)
    doc_id: str | None = None
    duplicate_of: str | None = None


def names_as_url(entry: LedgerEntry) -> bool:
    """Whether the entry says its item indexed a document, or is a `same_url` duplicate of the
    document its own URL names (an AMP or tracking variant of it)."""
    return bool((entry.status is Outcome.INDEXED and entry.doc_id) or (
        entry.status is Outcome.DUPLICATE and entry.reason == "same_url"
        and entry.duplicate_of and url_id(entry.url) == entry.duplicate_of))


def document_of(entry: LedgerEntry) -> str | None:
    """The document an entry names, as its indexer or as a copy of it."""
    return entry.doc_id or entry.duplicate_of


def _document(entry: LedgerEntry) -> str:
    return entry.doc_id or entry.duplicate_of or ""


def _status(indexed: bool) -> Outcome:
    return Outcome.INDEXED if indexed else Outcome.DUPLICATE


def _outcome(doc_id: str, indexed: bool) -> dict[str, Any]:
    """The fields of an item that indexed document `doc_id`, or is its `same_url` copy."""
    if indexed:
        return {"reason": None, "doc_id": doc_id, "duplicate_of": None}
    return {"reason": "same_url", "doc_id": None, "duplicate_of": doc_id}


def ledger_id(url: str) -> str:
    """One ledger record per exact item URL (tracking variants get records of their own)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:40]


class Ledger:
    def __init__(self, es: Elasticsearch, index: str, max_attempts: int) -> None:
        self._es = es
        self._index = index
        self._max_attempts = max_attempts

    def lookup(self, urls: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored records of those of `urls` that have one."""
        ids = {ledger_id(url): url for url in urls}
        if not ids:
            return {}
        docs = self._es.mget(index=self._index, ids=list(ids))["docs"]
        return {ids[d["_id"]]: d["_source"] for d in docs if d.get("found")}

    def is_settled(self, record: dict[str, Any] | None) -> bool:
        """Settled items are not fetched again: a final outcome, a permanent failure, or a
        transient one that has failed `max_attempts` times."""
        if record is None:
            return False
        status = Outcome(record["status"])
        if status in SETTLED:
            return True
        if status is Outcome.FAILED:
            return not record.get("retryable") or record.get("attempts", 0) >= self._max_attempts
        return False

    def is_due(self, record: dict[str, Any] | None, now: datetime) -> bool:
        """Whether an unsettled item may be fetched now: not before the time its site asked
        for."""
        not_before = (record or {}).get("not_before")
        return not not_before or datetime.fromisoformat(not_before) <= now

    def indexed_as(self, doc_id: str) -> bool:
        """Whether some item is recorded as having indexed the document `doc_id`."""
        return bool(self._es.count(index=self._index, query={"bool": {"filter": [
            {"term": {"doc_id": doc_id}}, {"term": {"status": Outcome.INDEXED.value}}]}})["count"])

    def retry_candidates(self, feed: str, limit: int = 200) -> list[str]:
        """URLs of this feed's items that failed transiently and may be tried again."""
        response = self._es.search(index=self._index, size=limit, source_includes=["url"],
                                   query={"bool": {"filter": [
                                       {"term": {"feed": feed}},
                                       {"term": {"status": Outcome.FAILED.value}},
                                       {"term": {"retryable": True}},
                                       {"range": {"attempts": {"lt": self._max_attempts}}},
                                   ], "must_not": [{"range": {"not_before": {"gt": "now"}}}]}})
        return [hit["_source"]["url"] for hit in response["hits"]["hits"]]

    def record(self, entries: Iterable[LedgerEntry],
               previous: dict[str, dict[str, Any]] | None = None,
               wait: bool = False) -> list[tuple[str, str]]:
        """Write the entries; attempts accumulate over the `previous` records of failed items.
        Returns the (url, error) of each record Elasticsearch did not take after its retries:
        one refused record never costs the others theirs.

        A record is read back by its URL at once (`lookup`, realtime); searches see it after
        the index's next refresh, or when this returns if `wait` (a worker that must find the
        records others are writing at the same moment: `one_indexer_each`). What searches
        the ledger for an answer that must be current refreshes it first (`counts`,
        `repoint_all`)."""
        now = datetime.now(UTC).isoformat()
        previous = previous or {}
        actions = []
        entries_list = list(entries)
        for entry in entries_list:
            before = previous.get(entry.url) or {}
            attempts = entry.attempts
            if entry.status is Outcome.FAILED and before.get("status") == Outcome.FAILED.value:
                attempts += int(before.get("attempts", 0))
            actions.append({
                "_op_type": "index",
                "_index": self._index,
                "_id": ledger_id(entry.url),
                "_source": {
                    "url": entry.url[:MAX_URL_CHARS],  # the id holds the whole URL's hash
                    "feed": entry.feed,
                    "status": entry.status.value,
                    "reason": entry.reason,
                    "error": entry.error,
                    "retryable": entry.retryable,
                    "attempts": attempts,
                    "not_before": entry.not_before.isoformat() if entry.not_before else None,
                    "doc_id": entry.doc_id,
                    "duplicate_of": entry.duplicate_of,
                    "run_id": entry.run_id,
                    "mode": entry.mode,
                    "first_seen": before.get("first_seen", now),
                    "updated_at": now,
                },
            })
        if not actions:
            return []
        urls = {ledger_id(entry.url): entry.url for entry in entries_list}
        refused = []
        for ok, item in helpers.streaming_bulk(self._es, actions, raise_on_error=False,
                                               raise_on_exception=True,
                                               refresh="wait_for" if wait else False,
                                               max_retries=3, initial_backoff=1):
            if not ok:
                result = item["index"]
                error = result.get("error", {})
                refused.append((urls[result["_id"]], f"{error.get('type')}: "
                                                     f"{error.get('reason')}"[:500]))
        return refused

    def repoint(self, loser_id: str, winner_id: str, reason: str = "near_copy") -> None:
        """A document became a copy of another (`same_text` or a `near_copy`): the items that
        were indexed as it become duplicates of the other, and the items recorded as its
        duplicates follow."""
        self.repoint_all({loser_id: (winner_id, reason)})

    def repoint_all(self, moves: Mapping[str, tuple[str, str]]) -> None:
        """`repoint` for many demoted documents (loser -> (winner, reason)) in one search and
        one bulk, searchable at once (a forced refresh, as `reconcile.demote_all` makes). The
        ledger is refreshed first: a worker that recorded an item as indexed for a loser just
        before it was demoted is re-pointed here, or finds the loser gone when it checks
        (`ingest._repoint_stale_records`)."""
        losers = sorted(moves)
        if losers:  # the records written without waiting for a refresh are found too
            self.searchable()
        while losers:
            hits = self._es.search(index=self._index, size=_PAGE,
                                   source_includes=["doc_id", "duplicate_of"],
                                   query={"bool": {"should": [
                                       {"terms": {"doc_id": losers}},
                                       {"terms": {"duplicate_of": losers}}]}})["hits"]["hits"]
            now = datetime.now(UTC).isoformat()
            actions = []
            for hit in hits:
                record = hit["_source"]
                if record.get("doc_id") in moves:
                    winner, reason = moves[record["doc_id"]]
                    doc = {"status": Outcome.DUPLICATE.value, "reason": reason, "doc_id": None,
                           "duplicate_of": winner, "updated_at": now}
                else:
                    doc = {"duplicate_of": moves[record["duplicate_of"]][0], "updated_at": now}
                actions.append({"_op_type": "update", "_index": self._index, "_id": hit["_id"],
                                "retry_on_conflict": 5, "doc": doc})
            if actions:
                helpers.bulk(self._es, actions, refresh=True)
            if len(hits) < _PAGE:  # else those re-pointed no longer match: the rest come next
                return

    def one_indexer_each(self, entries: Iterable[LedgerEntry] = (), doc_ids: Iterable[str] = (),
                         writers: Callable[[list[str]], dict[str, str | None]] | None = None,
                         ) -> list[LedgerEntry]:
        """One item is `indexed` for each document, whatever order, concurrency or crash its
        URLs came through: of the items recorded (or, in `entries`, about to be) as having
        indexed it, or as its `same_url` duplicates under a URL of its own (an AMP or tracking
        variant), the one whose URL is the document's own, else the first in order. The others
        are its `same_url` duplicates.

        Stored records that must change are changed now (before `entries` are written: a run
        that dies in between leaves its items unrecorded, so they are taken again); `entries`
        come back as they must be written. Called with `doc_ids` alone after a write, it
        settles what workers writing at the same moment could not see of each other.

        `writers` says which of some documents exist, each with the item URL whose page gave
        it its text (`ingest.item_url`, read in real time). A document demoted meanwhile is
        left to the demotion's own re-pointing, never given an indexer. The writer counts
        as having indexed its document even where its record cannot be searched yet (the item
        that created a document from its own URL writes its record without waiting for a
        refresh): a variant refused as a copy never takes the document over from it."""
        entries = list(entries)
        pending = {e.url: e for e in entries if names_as_url(e)}
        ids = sorted({*doc_ids, *(_document(e) for e in pending.values())})
        written: dict[str, str | None] = {}
        if ids and writers is not None:
            written = writers(ids)
            ids = sorted(written)
            pending = {url: e for url, e in pending.items() if _document(e) in ids}
        if not ids:
            return entries
        hits = self._es.search(
            index=self._index, size=10_000,
            source_includes=["url", "status", "reason", "doc_id", "duplicate_of"],
            query={"bool": {"should": [
                {"bool": {"filter": [{"terms": {"doc_id": ids}},
                                     {"term": {"status": Outcome.INDEXED.value}}]}},
                {"bool": {"filter": [{"terms": {"duplicate_of": ids}},
                                     {"term": {"reason": "same_url"}}]}},
            ], "minimum_should_match": 1}})["hits"]["hits"]
        stored = {hit["_source"]["url"]: hit["_source"] for hit in hits
                  if hit["_source"]["url"] not in pending}
        by_doc: dict[str, list[tuple[str, bool]]] = {}  # document -> (url, indexed now)
        for url, record in stored.items():
            if record["status"] == Outcome.INDEXED.value or (
                    record["status"] == Outcome.DUPLICATE.value
                    and url_id(url) == record.get("duplicate_of")):
                by_doc.setdefault(record.get("doc_id") or record["duplicate_of"], []).append(
                    (url, record["status"] == Outcome.INDEXED.value))
        for url, entry in pending.items():
            by_doc.setdefault(_document(entry), []).append(
                (url, entry.status is Outcome.INDEXED))
        for doc_id, writer in written.items():
            claimants = by_doc.setdefault(doc_id, [])
            if writer and writer not in {url for url, _ in claimants}:
                claimants.append((writer, True))
        decided: dict[str, tuple[str, bool]] = {}  # url -> (document, indexed)
        for doc_id, urls in by_doc.items():
            keep = min((url for url, _ in urls), key=lambda url: indexer_rank(url, doc_id))
            for url, indexed in urls:
                if (url == keep) != indexed:
                    decided[url] = (doc_id, url == keep)
        now = datetime.now(UTC).isoformat()
        actions = [{"_op_type": "update", "_index": self._index, "_id": ledger_id(url),
                    "retry_on_conflict": 5,
                    "doc": {**_outcome(doc_id, indexed), "status": _status(indexed).value,
                            "updated_at": now}}
                   for url, (doc_id, indexed) in decided.items() if url in stored]
        if actions:
            helpers.bulk(self._es, actions, refresh="wait_for")
        return [replace(e, status=_status(decided[e.url][1]), **_outcome(*decided[e.url]))
                if e.url in decided and e.url in pending else e for e in entries]

    def searchable(self) -> None:
        """Make every record written so far searchable now."""
        self._es.indices.refresh(index=self._index)

    def counts(self, run_id: str | None = None,
               feeds: Sequence[str] | None = None) -> dict[str, int]:
        """Items by outcome, for one run or for the whole ledger, as they stand now; with
        `feeds`, only those feeds' items (what one of a run's processes polled)."""
        self.searchable()
        filters: list[dict[str, Any]] = [{"term": {"run_id": run_id}}] if run_id else []
        if feeds is not None:
            filters.append({"terms": {"feed": list(feeds)}})
        query = {"bool": {"filter": filters}} if filters else {"match_all": {}}
        response = self._es.search(index=self._index, size=0, query=query,
                                   aggs={"status": {"terms": {"field": "status", "size": 20}}})
        return {b["key"]: b["doc_count"] for b in response["aggregations"]["status"]["buckets"]}

    def latest_run(self) -> str | None:
        self.searchable()
        response = self._es.search(index=self._index, size=1, source_includes=["run_id"],
                                   sort=[{"updated_at": "desc"}])
        hits = response["hits"]["hits"]
        return hits[0]["_source"]["run_id"] if hits else None

    def failures(self, run_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        self.searchable()
        must: list[dict[str, Any]] = [{"term": {"status": Outcome.FAILED.value}}]
        if run_id:
            must.append({"term": {"run_id": run_id}})
        response = self._es.search(index=self._index, size=limit, query={"bool": {"must": must}},
                                   source_includes=["url", "feed", "reason", "error", "attempts"])
        return [hit["_source"] for hit in response["hits"]["hits"]]


class FeedStates:
    """Conditional-GET validators and health per feed, kept in Elasticsearch. A feed that
    fails is backed off: polled again after `backoff_floor_s`, doubling with each failure in a
    row up to `backoff_ceiling_s`."""

    def __init__(self, es: Elasticsearch, index: str, polling: PollSettings) -> None:
        self._es = es
        self._index = index
        self._polling = polling

    def load(self, feed_url: str) -> FeedState:
        doc = self._es.options(ignore_status=404).get(index=self._index, id=ledger_id(feed_url))
        if not doc.get("found"):
            return FeedState()
        source = doc["_source"]
        return FeedState(etag=source.get("etag"), last_modified=source.get("last_modified"),
                         error_streak=int(source.get("error_streak") or 0),
                         last_success=_time(source.get("last_success")),
                         next_poll_at=_time(source.get("next_poll_at")))

    def backoff_s(self, error_streak: int) -> int:
        """Seconds to wait before polling a feed that has failed `error_streak` times in a row
        (0 when it has not failed)."""
        if error_streak <= 0:
            return 0
        floor, ceiling = self._polling.backoff_floor_s, self._polling.backoff_ceiling_s
        return min(ceiling, floor * 2 ** min(error_streak - 1, 30))

    def save_success(self, feed: Feed, state: FeedState, items_seen: int) -> FeedState:
        now = datetime.now(UTC)
        self._es.update(index=self._index, id=ledger_id(feed.url), doc_as_upsert=True, doc={
            "name": feed.name, "source": feed.source_name, "url": feed.url,
            "etag": state.etag, "last_modified": state.last_modified,
            "last_polled": now.isoformat(), "last_success": now.isoformat(),
            "error_streak": 0, "last_error": None, "next_poll_at": None,
            "items_seen": items_seen,
        })
        return replace(state, error_streak=0, last_success=now, next_poll_at=None)

    def save_failure(self, feed: Feed, state: FeedState, error: str) -> FeedState:
        """Record a failed poll and back the feed off; the state after it."""
        now = datetime.now(UTC)
        streak = state.error_streak + 1
        next_poll = now + timedelta(seconds=self.backoff_s(streak))
        self._es.update(index=self._index, id=ledger_id(feed.url), doc_as_upsert=True, doc={
            "name": feed.name, "source": feed.source_name, "url": feed.url,
            "last_polled": now.isoformat(), "error_streak": streak, "last_error": error,
            "next_poll_at": next_poll.isoformat(),
        })
        return replace(state, error_streak=streak, next_poll_at=next_poll)


class RobotsAnswers:
    """Each site's robots.txt answer as last fetched (status and body), kept beside the feed
    states so that the next run, in whatever process or worker, need not ask the site again
    while the answer is fresh (`pipeline.polite.RobotsStore`). Elasticsearch failing here costs
    only the saving: the answer is then fetched as if never stored."""

    def __init__(self, es: Elasticsearch, index: str) -> None:
        self._es = es
        self._index = index

    def load(self, origin: str) -> tuple[float, int, bytes] | None:
        """Seconds since `origin`'s answer was fetched, its status and its body; None when
        none is stored."""
        try:
            doc = self._es.options(ignore_status=404).get(index=self._index, id=_robots_id(origin))
        except (ApiError, TransportError) as exc:
            log.warning("robots.txt of %s could not be read from %s: %s", origin, self._index, exc)
            return None
        if not doc.get("found"):
            return None
        source = doc["_source"]
        age = (datetime.now(UTC) - datetime.fromisoformat(source["robots_fetched"])
               ).total_seconds()
        return max(age, 0.0), int(source["robots_status"]), source["robots_body"].encode()

    def save(self, origin: str, status: int, body: bytes) -> None:
        try:
            self._es.index(index=self._index, id=_robots_id(origin), document={
                "robots_origin": origin, "robots_status": status,
                "robots_body": body.decode("utf-8", errors="replace"),
                "robots_fetched": datetime.now(UTC).isoformat(),
            })
        except (ApiError, TransportError) as exc:
            log.warning("robots.txt of %s could not be kept in %s: %s", origin, self._index, exc)


@dataclass(frozen=True)
class _HostRecord:
    """A host's document as this process last wrote or read it."""

    seq_no: int
    term: int
    next_start: float
    leases: dict[str, _Lease]  # the requests holding a place at the host, by name


@dataclass(frozen=True)
class _Lease:
    """A place at a host, held by a request of process `pid` on `machine` until given back, or
    until `until` (seconds since the epoch) at the latest."""

    until: float
    machine: str
    pid: int

    def held(self, now: float) -> bool:
        """Whether it still holds its place: not lapsed, and not taken by a process of this
        machine that is gone (killed: a rerun goes on at once)."""
        if self.until <= now:
            return False
        if self.machine != _MACHINE or self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process
            return True
        return True


class HostStarts:
    """When the next request to each host may start, and which requests hold its places, shared
    by every process fetching at once (`pipeline.polite.HostClock`): one document a host beside
    the feed states, written with optimistic concurrency (`if_seq_no`), so that no two processes
    take the same start, nor more places than the host has. A request's place is written with
    its start and given back when it ends; one whose process was killed lapses `lease_seconds`
    after its start (the longest a request may take), or at once for a process of the same
    machine (which can tell it is gone). A process remembers what it last wrote: taking a start
    costs one write where no other process wrote the host's document since, and a read and a
    write where one did; giving the place back, one more. Elasticsearch failing here costs only
    the sharing: the process then keeps the limits among its own requests."""

    ATTEMPTS = 50  # takers colliding on one host's document: each retries this often

    def __init__(self, es: Elasticsearch, index: str, lease_seconds: float = 120.0) -> None:
        self._es = es
        self._index = index
        self._lease_seconds = lease_seconds
        self._owner = uuid.uuid4().hex[:12]  # the names of the places this clock takes
        self._leases = itertools.count(1)
        self._written: dict[str, _HostRecord] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._warned = False

    def reserve(self, host: str, earliest: float, delay: float,
                places: int) -> tuple[float, str | None] | None:
        lease = f"{self._owner}-{next(self._leases)}"

        def take(next_start: float, leases: dict[str, _Lease]
                 ) -> tuple[float, dict[str, _Lease], tuple[float, str | None]] | None:
            if len(leases) >= places:
                return None
            start = max(earliest, next_start)
            return start + delay, {**leases, lease: _Lease(
                start + self._lease_seconds, _MACHINE, os.getpid())}, (start, lease)

        return self._update(host, take, failed=(earliest, None))

    def release(self, host: str, lease: str) -> None:
        self._update(host, lambda next_start, leases: (
            next_start, {key: other for key, other in leases.items() if key != lease}, None),
            failed=None)

    def hold_off(self, host: str, until: float) -> None:
        self._update(host, lambda next_start, leases: (max(next_start, until), leases, None),
                     failed=None)

    def _update(self, host: str, change: Callable[[float, dict[str, _Lease]], tuple[
            float, dict[str, _Lease], Any] | None], failed: Any) -> Any:
        """Write `change` of the host's next start and places (those no longer held left out,
        `_Lease.held`); what it gives back, or None without writing where it says None (every
        place is held: the document is read afresh next time), or `failed` where Elasticsearch
        cannot keep it."""
        doc_id = f"host-{ledger_id(host)}"
        with self._lock(host):  # this process's own writes of a host do not collide
            for attempt in range(self.ATTEMPTS):
                try:
                    known = self._written.get(host) or self._read(doc_id)
                    now = time.time()
                    changed = change(known.next_start if known else 0.0, {
                        key: lease for key, lease in (known.leases if known else {}).items()
                        if lease.held(now)})
                    if changed is None:
                        self._written.pop(host, None)
                        return None
                    next_start, leases, result = changed
                    document = {"host_name": host, "host_next_start": next_start,
                                "host_leases": [{"lease": key, "until": lease.until,
                                                 "machine": lease.machine, "pid": lease.pid}
                                                for key, lease in leases.items()]}
                    if known:
                        written = self._es.index(index=self._index, id=doc_id,
                                                 document=document, if_seq_no=known.seq_no,
                                                 if_primary_term=known.term)
                    else:
                        written = self._es.create(index=self._index, id=doc_id,
                                                  document=document)
                    self._written[host] = _HostRecord(written["_seq_no"],
                                                      written["_primary_term"], next_start,
                                                      leases)
                    return result
                except ConflictError:
                    self._written.pop(host, None)  # another process wrote it: read it again
                    # after a moment, longer each time, so that takers colliding at once part
                    time.sleep(random.uniform(0.0, min(0.1, 0.002 * 2 ** attempt)))
                except (ApiError, TransportError) as exc:
                    self._warn(f"the requests to {host} could not be shared through "
                               f"{self._index} ({exc}): this process limits its own")
                    return failed
        self._warn(f"the requests to {host} stayed contended {self.ATTEMPTS} times in a row: "
                   "this one is limited by this process alone")
        return failed

    def _read(self, doc_id: str) -> _HostRecord | None:
        doc = self._es.options(ignore_status=404).get(
            index=self._index, id=doc_id, source_includes=["host_next_start", "host_leases"])
        if not doc.get("found"):
            return None
        source = doc["_source"]
        return _HostRecord(doc["_seq_no"], doc["_primary_term"], float(source["host_next_start"]),
                           {lease["lease"]: _Lease(float(lease["until"]), str(lease["machine"]),
                                                   int(lease["pid"]))
                            for lease in source.get("host_leases") or []})

    def _lock(self, host: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(host, threading.Lock())

    def _warn(self, message: str) -> None:
        if not self._warned:  # once a run: every request would say it again
            self._warned = True
            log.warning(message)


def _robots_id(origin: str) -> str:
    return f"robots-{ledger_id(origin)}"


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None

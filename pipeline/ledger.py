"""The ledger: one record per feed item URL with its outcome, and the per-feed state.

A run consults the ledger to skip what is settled and writes it only after the article writes
it depends on have succeeded, so an interrupted run leaves nothing marked done that is not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, helpers

from pipeline.discover import FeedState
from pipeline.records import Outcome
from pipeline.settings import Feed, PollSettings
from pipeline.urls import MAX_URL_CHARS

SETTLED = {Outcome.INDEXED, Outcome.DUPLICATE, Outcome.IRRELEVANT}


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
               previous: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, str]]:
        """Write the entries (refreshing so the next run sees them); attempts accumulate over
        the `previous` records of failed items. Returns the (url, error) of each record
        Elasticsearch did not take after its retries: one refused record never costs the
        others theirs."""
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
                                               raise_on_exception=True, refresh="wait_for",
                                               max_retries=3, initial_backoff=1):
            if not ok:
                result = item["index"]
                error = result.get("error", {})
                refused.append((urls[result["_id"]], f"{error.get('type')}: "
                                                     f"{error.get('reason')}"[:500]))
        return refused

    def repoint(self, loser_id: str, winner_id: str) -> None:
        """A document became a copy of another: the items that were indexed as it become
        duplicates of the other, and the items recorded as its duplicates follow."""
        hits = self._es.search(index=self._index, size=1000, source_includes=["doc_id"],
                               query={"bool": {"should": [
                                   {"term": {"doc_id": loser_id}},
                                   {"term": {"duplicate_of": loser_id}}]}})["hits"]["hits"]
        now = datetime.now(UTC).isoformat()
        actions = [
            {"_op_type": "update", "_index": self._index, "_id": hit["_id"],
             "doc": ({"status": Outcome.DUPLICATE.value, "reason": "near_copy",
                      "doc_id": None, "duplicate_of": winner_id, "updated_at": now}
                     if hit["_source"].get("doc_id") == loser_id
                     else {"duplicate_of": winner_id, "updated_at": now})}
            for hit in hits
        ]
        if actions:
            helpers.bulk(self._es, actions, refresh="wait_for")

    def counts(self, run_id: str | None = None) -> dict[str, int]:
        """Items by outcome, for one run or for the whole ledger."""
        query = {"term": {"run_id": run_id}} if run_id else {"match_all": {}}
        response = self._es.search(index=self._index, size=0, query=query,
                                   aggs={"status": {"terms": {"field": "status", "size": 20}}})
        return {b["key"]: b["doc_count"] for b in response["aggregations"]["status"]["buckets"]}

    def latest_run(self) -> str | None:
        response = self._es.search(index=self._index, size=1, source_includes=["run_id"],
                                   sort=[{"updated_at": "desc"}])
        hits = response["hits"]["hits"]
        return hits[0]["_source"]["run_id"] if hits else None

    def failures(self, run_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
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


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None

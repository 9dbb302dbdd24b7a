"""Feed health: after each poll, one document per feed in the feed-health index (Kibana's
feed-health panels read it; `newsroom feeds` shows the latest per feed)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.discover import FeedState
from pipeline.settings import Feed


def health_document(feed: Feed, report: Mapping[str, Any], state: FeedState, run_id: str,
                    mode: str, now: datetime, poll_interval_s: int) -> dict[str, Any]:
    """The health of `feed` after a run, from its report (`FeedReport.as_dict()`) and its
    state after the run."""
    attempted = int(report["fetched"]) + int(report["fetch_failures"])
    return {
        "run_at": now.isoformat(),
        "run_id": run_id,
        "mode": mode,
        "feed": feed.name,
        "source": feed.source_name,
        "url": feed.url,
        "status": report["status"],
        "items_seen": report["seen"],
        **{key: report[key] for key in ("fetched", "indexed", "duplicate", "irrelevant",
                                        "failed", "fetch_failures", "extraction_failures")},
        "fetch_failure_rate": _rate(report["fetch_failures"], attempted),
        "extraction_failure_rate": _rate(report["extraction_failures"], report["fetched"]),
        "median_fetch_ms": report["median_fetch_ms"],
        "consecutive_failures": state.error_streak,
        "last_success": state.last_success.isoformat() if state.last_success else None,
        "poll_interval_s": poll_interval_s,
        "next_poll_at": state.next_poll_at.isoformat() if state.next_poll_at else None,
    }


class FeedHealth:
    def __init__(self, es: Elasticsearch, index: str) -> None:
        self._es = es
        self._index = index

    def record(self, document: dict[str, Any]) -> None:
        """Add a feed's health after a poll. Searchable within the index's refresh interval;
        a run makes its feeds' health searchable at once when it ends (`show`)."""
        self._es.index(index=self._index, document=document)

    def show(self) -> None:
        """Make the health recorded so far searchable now (`newsroom feeds` right after a run
        shows it): one refresh per run, where a wait on each feed's record held an
        Elasticsearch connection for up to a second per feed."""
        self._es.indices.refresh(index=self._index)

    def latest(self) -> list[dict[str, Any]]:
        """The most recent health document of every feed, by feed name."""
        response = self._es.search(index=self._index, size=0, aggs={"feeds": {
            "terms": {"field": "feed", "size": 10_000, "order": {"_key": "asc"}},
            "aggs": {"last": {"top_hits": {"size": 1, "sort": [{"run_at": "desc"}]}}},
        }})
        return [bucket["last"]["hits"]["hits"][0]["_source"]
                for bucket in response["aggregations"]["feeds"]["buckets"]]


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0

"""maintenance: move the corpus to a new mapping version, index again what the mapping refused
once it takes it, and keep the ledger from growing without end.

Reindexing is client-side (scan + bulk), since the local node has no reindex module, and safe
against a concurrent ingest: the old index is made read-only first, so the articles a run
writes meanwhile fail `index_blocked` (retried by its next run, which writes through the alias
into the new index); a reindex that fails takes the block off again. The alias moves in one
atomic `update_aliases` call, after the copy is counted. The reindex claims the index it blocks
and renews the claim as it copies; the block of one killed outright (SIGKILL, a lost node) is
lifted by the first run that finds its claim older than `maintenance.reindex_lease_s`, and a
second reindex does not start while a live one holds its claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, helpers

from pipeline.index import index_documents
from pipeline.ledger import SETTLED, ledger_id
from pipeline.progress import NO_PROGRESS, Progress
from pipeline.records import Outcome
from pipeline.settings import Settings
from pipeline.store import (
    alias_indices,
    articles_index,
    articles_version,
    claim_for_reindex,
    lift_block,
    reindex_claim,
    stale_blocks,
)

log = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    status: str  # current | reindexed
    target: str
    sources: list[str]
    copied: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reindex(es: Elasticsearch, settings: Settings, batch_size: int = 500,
            progress: Progress = NO_PROGRESS) -> ReindexReport:
    """If the alias is not on `<alias>-v<version>` of the mapping file, copy every document
    into that index (created from the index template) and swap the alias to it; then remove
    the old indices."""
    alias = settings.index_alias
    target = articles_index(alias, articles_version(settings.config_dir))
    sources = [index for index in alias_indices(es, alias) if index != target]
    if not sources:
        return ReindexReport(status="current", target=target, sources=[])
    stale = set(stale_blocks(es, settings))
    for index in sources:
        claim = reindex_claim(es, index)
        if claim and index not in stale:
            raise RuntimeError(f"{index} is being reindexed by {claim['owner']} (claim renewed "
                               f"at {claim['renewed_at']}); not starting a second reindex")
    # Writes wait while the corpus is copied: ingest records them `index_blocked`, retried on
    # its next run at no cost. Whatever stops the copy, the block comes off again; if the
    # process dies outright, its claim goes stale and the next run lifts the block.
    for index in sources:
        claim_for_reindex(es, index)
    es.indices.put_settings(index=",".join(sources), settings={"index.blocks.write": True})
    try:
        copied = _copy(es, sources, target, batch_size,
                       renew_every_s=settings.reindex_lease_s / 3, progress=progress)
        es.indices.update_aliases(actions=[
            *({"remove": {"index": index, "alias": alias}} for index in sources),
            {"add": {"index": target, "alias": alias, "is_write_index": True}},
        ])
    except BaseException:
        for index in sources:
            lift_block(es, index)
        raise
    es.indices.delete(index=",".join(sources))
    log.info("reindexed %s documents from %s into %s", copied, sources, target)
    return ReindexReport(status="reindexed", target=target, sources=sources, copied=copied)


def _copy(es: Elasticsearch, sources: list[str], target: str, batch_size: int,
          renew_every_s: float, progress: Progress = NO_PROGRESS) -> int:
    """Copy every document of `sources` into `target`, renewing the claim on the sources at
    least every `renew_every_s`; how many. Raises when `target` holds fewer than the sources
    do."""
    if not es.indices.exists(index=target):
        es.indices.create(index=target)
    # what was written just before the block is searchable, so copied and counted, before the
    # sources are deleted
    es.indices.refresh(index=",".join(sources))
    progress.listed(es.count(index=",".join(sources))["count"])
    copied, _ = helpers.bulk(es, (
        {"_op_type": "index", "_index": target, "_id": hit["_id"], "_source": hit["_source"]}
        for hit in _renewing(es, sources, renew_every_s, progress, helpers.scan(
            es, index=",".join(sources), size=batch_size, query={"query": {"match_all": {}}}))
    ), chunk_size=batch_size, max_retries=3, raise_on_error=True)
    es.indices.refresh(index=target)
    expected = es.count(index=",".join(sources))["count"]
    if es.count(index=target)["count"] < expected:
        raise RuntimeError(f"reindex into {target} copied fewer documents than {sources} hold; "
                           "the alias was not moved, run again")
    return copied


def _renewing(es: Elasticsearch, sources: list[str], every_s: float, progress: Progress,
              hits: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`hits`, renewing the claim on `sources` whenever `every_s` has passed since the last
    (and counting them done)."""
    renewed = time.monotonic()
    for hit in hits:
        if time.monotonic() - renewed >= every_s:
            for index in sources:
                claim_for_reindex(es, index)
            renewed = time.monotonic()
        yield hit
        progress.done()


def replay_quarantine(es: Elasticsearch, settings: Settings,
                      batch_size: int = 200) -> dict[str, int]:
    """Index again the documents Elasticsearch refused for good (after a mapping fix and a
    reindex, say): each one it now takes leaves the quarantine and its item's ledger record
    says `indexed`; one still refused stays, with the new reason. Counts of both."""
    counts = {"replayed": 0, "still_refused": 0}
    held = list(helpers.scan(es, index=settings.quarantine_index, size=batch_size,
                             query={"query": {"match_all": {}}}))
    now = datetime.now(UTC).isoformat()
    for start in range(0, len(held), batch_size):
        batch = held[start:start + batch_size]
        documents = [hit["_source"]["document"] for hit in batch if hit["_source"].get("document")]
        refused = {f.url: f for f in index_documents(es, settings.index_alias, documents)}
        for hit in batch:
            record = hit["_source"]
            failure = refused.get(record["url"])
            if failure is not None or not record.get("document"):
                counts["still_refused"] += 1
                if failure is not None:
                    es.update(index=settings.quarantine_index, id=hit["_id"], doc={
                        "reason": failure.reason, "detail": failure.detail})
                continue
            es.options(ignore_status=404).update(
                index=settings.ledger_index, id=ledger_id(record.get("item_url") or record["url"]),
                doc={"status": Outcome.INDEXED.value, "reason": None, "error": None,
                     "retryable": False, "doc_id": hit["_id"], "updated_at": now})
            es.delete(index=settings.quarantine_index, id=hit["_id"], refresh="wait_for")
            counts["replayed"] += 1
    return counts


def prune_ledger(es: Elasticsearch, settings: Settings, older_than_days: int,
                 batch_size: int = 1000) -> int:
    """Delete ledger records settled (or permanently failed) more than `older_than_days` ago;
    how many. Safe: an item a feed lists again is fetched again and found to be the same URL
    as its document, so nothing is indexed twice."""
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    query = {"bool": {
        "filter": [{"range": {"updated_at": {"lt": cutoff.isoformat()}}}],
        "should": [
            {"terms": {"status": sorted(outcome.value for outcome in SETTLED)}},
            {"bool": {"filter": [{"term": {"status": Outcome.FAILED.value}}],
                      "must_not": [{"term": {"retryable": True}}]}},
        ],
        "minimum_should_match": 1,
    }}
    deleted, _ = helpers.bulk(es, (
        {"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]}
        for hit in helpers.scan(es, index=settings.ledger_index, size=batch_size,
                                query={"query": query, "_source": False})
    ), chunk_size=batch_size, refresh="wait_for")
    return deleted

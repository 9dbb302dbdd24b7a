"""Elasticsearch faults, injected by a proxy in front of the real local node: bulk items
rejected with 429 (retried with back-off), the node going away in the middle of a bulk after
it wrote (nothing settled; the rerun finishes without duplicates), and a document the mapping
refuses (quarantined with its reason while the rest land). The node stopped before a run is
in tests/test_ingest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from elasticsearch import ApiError, Elasticsearch, TransportError

from pipeline.ingest import FeedReport, Ingestor
from pipeline.ledger import ledger_id
from pipeline.settings import CONFIG_DIR, Feed, Settings, load_feeds
from pipeline.store import alias_indices, articles_index, articles_version, connect, open_store
from pipeline.urls import url_id
from tests.chaos.es_proxy import (
    Fault,
    FaultyProxy,
    articles_deleted_at_first_bulk,
    first_bulk_rejected,
    gone_at_bulk,
    one_document_unmappable,
    one_ledger_record_refused,
)
from tests.sample_site.server import SampleSite


@pytest.fixture
def northwire(site: SampleSite, feeds_file: Path) -> Feed:
    return next(f for f in load_feeds(feeds_file) if f.name == "Northern Wire")


@pytest.fixture
def proxied() -> Iterator[Callable[[Settings, Fault], tuple[Settings, FaultyProxy]]]:
    proxies: list[FaultyProxy] = []

    def make(settings: Settings, fault: Fault) -> tuple[Settings, FaultyProxy]:
        proxy = FaultyProxy(settings.elasticsearch_url, fault)
        proxies.append(proxy)
        return replace(settings, elasticsearch_url=proxy.url), proxy

    yield make
    for proxy in proxies:
        proxy.close()


def _stored(es: Elasticsearch, settings: Settings) -> list[str]:
    es.indices.refresh(index=settings.index_alias)
    return sorted(hit["_source"]["url"] for hit in es.search(
        index=settings.index_alias, size=500, source=["url"])["hits"]["hits"])


def _ingest_through(proxied, settings: Settings, fault: Fault, feed: Feed,
                    run_id: str) -> tuple[FeedReport, FaultyProxy]:
    """One run of `feed` whose Elasticsearch traffic goes through a proxy injecting `fault`;
    its report and the proxy."""
    through, proxy = proxied(settings, fault)
    with Ingestor(through, es=connect(through)) as ingestor:
        return ingestor.ingest_feed(feed, run_id), proxy


def _baseline(settings: Settings, feed: Feed) -> list[str]:
    """What the feed leaves in a corpus of its own without faults."""
    alias = f"{settings.index_alias}-base"
    base = replace(settings, index_alias=alias)
    es = connect(base)
    from pipeline.store import ensure_indices

    ensure_indices(es, base)
    try:
        with Ingestor(base, es=es) as ingestor:
            ingestor.ingest_feed(feed, "baseline")
        return _stored(es, base)
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{alias}*", expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")


def test_bulk_items_rejected_with_429_are_retried(fresh_settings: Settings, es: Elasticsearch,
                                                  northwire: Feed, proxied) -> None:
    rejected: list[dict[str, object]] = []
    report, proxy = _ingest_through(proxied, fresh_settings, first_bulk_rejected(rejected),
                                    northwire, "run-429")
    assert rejected and proxy.bulks >= 2
    assert report.failed == 0 and report.indexed == len(_stored(es, fresh_settings)) > 0
    assert _stored(es, fresh_settings) == _baseline(fresh_settings, northwire)


def test_node_gone_mid_bulk_loses_nothing(fresh_settings: Settings, es: Elasticsearch,
                                          northwire: Feed, proxied) -> None:
    through, _ = proxied(fresh_settings, gone_at_bulk)
    with Ingestor(through, es=connect(through)) as ingestor, \
            pytest.raises((TransportError, ApiError)):
        ingestor.ingest_feed(northwire, "run-crash")
    es.indices.refresh(index=fresh_settings.ledger_index)
    assert es.count(index=fresh_settings.ledger_index)["count"] == 0  # nothing marked done
    partial = _stored(es, fresh_settings)

    with Ingestor(fresh_settings, es=es) as ingestor:  # the node is back
        report = ingestor.ingest_feed(northwire, "run-again")
    stored = _stored(es, fresh_settings)
    assert stored == _baseline(fresh_settings, northwire) and set(partial) <= set(stored)
    assert len(stored) == len(set(stored)) and report.failed == 0


def test_a_document_the_mapping_refuses_is_quarantined(fresh_settings: Settings,
                                                       es: Elasticsearch, northwire: Feed,
                                                       proxied) -> None:
    victim: list[str] = []
    report, _ = _ingest_through(proxied, fresh_settings, one_document_unmappable(victim),
                                northwire, "run-conflict")
    (url,) = victim
    assert report.failed == 1 and report.errors[0]["reason"] == "index_rejected"
    assert "mapper_parsing_exception" in report.errors[0]["error"] or \
        "document_parsing_exception" in report.errors[0]["error"]
    held = es.get(index=fresh_settings.quarantine_index, id=url_id(url))["_source"]
    assert held["reason"] == "index_rejected" and held["document"]["url"] == url
    assert url not in _stored(es, fresh_settings)
    assert len(_stored(es, fresh_settings)) == len(_baseline(fresh_settings, northwire)) - 1
    record = es.search(index=fresh_settings.ledger_index,
                       query={"term": {"doc_id": url_id(url)}})["hits"]["hits"]
    failed = [h["_source"] for h in es.search(
        index=fresh_settings.ledger_index, query={"term": {"status": "failed"}})["hits"]["hits"]]
    assert record == [] and [f["reason"] for f in failed] == ["index_rejected"]
    assert failed[0]["retryable"] is False
    assert es.get(index=fresh_settings.ledger_index, id=ledger_id(failed[0]["url"]))


def test_articles_written_during_a_write_block_land_on_the_next_run(
        fresh_settings: Settings, es: Elasticsearch, northwire: Feed) -> None:
    # a reindex blocks writes to the live index: the run records its articles as failed for
    # now, at no cost to their attempts, quarantines nothing, and the next run indexes them
    alias = fresh_settings.index_alias
    es.indices.add_block(index=alias, block="write")
    try:
        with Ingestor(fresh_settings, es=es) as ingestor:
            blocked = ingestor.ingest_feed(northwire, "run-blocked")
    finally:
        es.indices.put_settings(index=alias, settings={"index.blocks.write": False})
    assert blocked.failed > 0 and {e["reason"] for e in blocked.errors} == {"index_blocked"}
    es.indices.refresh(index=fresh_settings.ledger_index)
    held = [h["_source"] for h in es.search(index=fresh_settings.ledger_index, size=100, query={
        "term": {"reason": "index_blocked"}})["hits"]["hits"]]
    assert len(held) == blocked.failed
    assert all(r["retryable"] and r["attempts"] == 0 for r in held)
    assert es.count(index=fresh_settings.quarantine_index)["count"] == 0
    for _ in range(fresh_settings.max_attempts):  # more runs than attempts: none is given up
        with Ingestor(fresh_settings, es=es) as ingestor:
            after = ingestor.ingest_feed(northwire, "run-after")
        if not after.failed:
            break
    assert after.failed == 0 and _stored(es, fresh_settings) == _baseline(fresh_settings,
                                                                           northwire)


def test_articles_written_after_their_index_was_deleted_land_on_the_next_run(
        fresh_settings: Settings, es: Elasticsearch, northwire: Feed, proxied) -> None:
    # an operator deletes the article index while a run writes to it: the run's articles fail
    # for now, at no cost; their writes leave no index of their own in the alias's place (one
    # with mappings guessed from the documents, which later runs would have filled), and the
    # next run sets the index up again and indexes them
    alias, deleted = fresh_settings.index_alias, []
    report, _ = _ingest_through(proxied, fresh_settings, articles_deleted_at_first_bulk(
        fresh_settings.elasticsearch_url, alias, deleted), northwire, "run-deleted")
    assert deleted and report.failed > 0
    assert {e["reason"] for e in report.errors} == {"index_missing"}
    assert not es.indices.exists(index=alias)
    es.indices.refresh(index=fresh_settings.ledger_index)
    held = [h["_source"] for h in es.search(index=fresh_settings.ledger_index, size=100, query={
        "term": {"reason": "index_missing"}})["hits"]["hits"]]
    assert len(held) == report.failed and all(r["retryable"] and r["attempts"] == 0
                                              for r in held)
    assert es.count(index=fresh_settings.quarantine_index)["count"] == 0

    with Ingestor(fresh_settings, es=open_store(fresh_settings)) as ingestor:
        after = ingestor.ingest_feed(northwire, "run-after")
    assert after.failed == 0
    assert alias_indices(es, alias) == [articles_index(alias, articles_version(CONFIG_DIR))]
    assert _stored(es, fresh_settings) == _baseline(fresh_settings, northwire)


def test_a_ledger_record_refused_costs_the_others_nothing(fresh_settings: Settings,
                                                          es: Elasticsearch, northwire: Feed,
                                                          proxied) -> None:
    # one record of the batch's ledger write is refused: the others are written, the run
    # reports the one and goes on, and the next run records its item without a duplicate
    victim: list[str] = []
    report, _ = _ingest_through(proxied, fresh_settings, one_ledger_record_refused(victim),
                                northwire, "run-refused")
    (url,) = victim
    assert [(e["url"], e["reason"]) for e in report.errors] == [(url, "ledger_write_failed")]
    es.indices.refresh(index=fresh_settings.ledger_index)
    recorded = es.count(index=fresh_settings.ledger_index)["count"]
    assert recorded == report.seen - 1
    assert not es.exists(index=fresh_settings.ledger_index, id=ledger_id(url))
    with Ingestor(fresh_settings, es=es) as ingestor:
        again = ingestor.ingest_feed(northwire, "run-again")
    assert again.errors == [] and es.exists(index=fresh_settings.ledger_index, id=ledger_id(url))
    stored = _stored(es, fresh_settings)
    assert stored == _baseline(fresh_settings, northwire) and len(stored) == len(set(stored))

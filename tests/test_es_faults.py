"""Elasticsearch faults, injected by a proxy in front of the real local node: bulk items
rejected with 429 (retried with back-off), the node going away in the middle of a bulk after
it wrote (nothing settled; the rerun finishes without duplicates), and a document the mapping
refuses (quarantined with its reason while the rest land). The node stopped before a run is
in tests/test_ingest.py."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from elasticsearch import ApiError, Elasticsearch, TransportError

from pipeline.ingest import Ingestor
from pipeline.ledger import ledger_id
from pipeline.settings import Feed, Settings, load_feeds
from pipeline.store import connect
from pipeline.urls import url_id
from tests.sample_site.server import SampleSite

# (method, path, body) -> (status, body) to answer instead, "drop" after forwarding, a new
# request body, or None to pass through.
Fault = Callable[[str, str, bytes], object]


class FaultyProxy:
    def __init__(self, upstream: str, fault: Fault) -> None:
        target = urlsplit(upstream)
        proxy = self
        self.bulks = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "/_bulk" in self.path:
                    proxy.bulks += 1
                action = fault(self.command, self.path, body)
                if isinstance(action, tuple):
                    self._answer(*action)
                    return
                if isinstance(action, bytes):
                    body = action
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if action == "drop":  # the node wrote, then went away before answering
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._answer(response.status, data, response.getheader("Content-Type"))

            def _answer(self, status: int, data: bytes, kind: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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
    rejected = []

    def first_bulk_overloaded(method: str, path: str, body: bytes) -> object:
        if "/_bulk" not in path or rejected:
            return None
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items = [{op: {"_index": meta.get("_index", "x"), "_id": meta["_id"], "status": 429,
                       "error": {"type": "es_rejected_execution_exception",
                                 "reason": "rejected execution (queue capacity 200)"}}}
                 for entry in lines[::2] for op, meta in entry.items()]
        rejected.extend(items)
        return 200, json.dumps({"took": 1, "errors": True, "items": items}).encode()

    through, proxy = proxied(fresh_settings, first_bulk_overloaded)
    with Ingestor(through, es=connect(through)) as ingestor:
        report = ingestor.ingest_feed(northwire, "run-429")
    assert rejected and proxy.bulks >= 2
    assert report.failed == 0 and report.indexed == len(_stored(es, fresh_settings)) > 0
    assert _stored(es, fresh_settings) == _baseline(fresh_settings, northwire)


def test_node_gone_mid_bulk_loses_nothing(fresh_settings: Settings, es: Elasticsearch,
                                          northwire: Feed, proxied) -> None:
    through, _ = proxied(fresh_settings,
                         lambda method, path, body: "drop" if "/_bulk" in path else None)
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

    def corrupt_one(method: str, path: str, body: bytes) -> object:
        if "/_bulk" not in path or victim:
            return None
        lines = body.splitlines()
        doc = json.loads(lines[1])
        doc["doc"]["published_at"] = doc["upsert"]["published_at"] = "the day after tomorrow"
        victim.append(doc["doc"]["url"])
        return b"\n".join([lines[0], json.dumps(doc).encode(), *lines[2:]]) + b"\n"

    through, _ = proxied(fresh_settings, corrupt_one)
    with Ingestor(through, es=connect(through)) as ingestor:
        report = ingestor.ingest_feed(northwire, "run-conflict")
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

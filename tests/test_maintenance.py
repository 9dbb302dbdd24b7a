"""Maintenance: reindex into a new mapping version with an atomic alias swap, ledger
retention, and `newsroom setup` (indices; roles and users where the cluster has security;
Kibana's saved objects through its import API)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from elasticsearch import ApiError, Elasticsearch, helpers

from pipeline.ledger import Ledger, LedgerEntry, ledger_id
from pipeline.maintenance import prune_ledger, reindex
from pipeline.provision import import_saved_objects, setup
from pipeline.records import Outcome
from pipeline.search import ANALYSED_LANGUAGES, search_articles
from pipeline.settings import CONFIG_DIR, Settings
from pipeline.store import (
    StoreUnavailable,
    alias_indices,
    articles_version,
    ensure_indices,
    open_store,
    reindex_claim,
)

VERSION = articles_version(CONFIG_DIR)  # the article mapping's version as shipped


@pytest.fixture
def next_version(fresh_settings: Settings, tmp_path: Path) -> Settings:
    """Settings whose article mapping is one version on, with a field added."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    path = config / "mappings" / "articles.json"
    body = json.loads(path.read_text())
    body["version"] += 1
    body["mappings"]["properties"]["section"] = {"type": "keyword"}
    path.write_text(json.dumps(body))
    return replace(fresh_settings, config_dir=config)


def test_reindex_copies_everything_and_swaps_the_alias(fresh_settings: Settings,
                                                       es: Elasticsearch,
                                                       next_version: Settings) -> None:
    alias = fresh_settings.index_alias
    for n in range(25):
        es.index(index=alias, id=f"doc-{n}", document={"url": f"https://example.org/{n}",
                                                       "title": f"Story {n}"})
    es.indices.refresh(index=alias)
    assert reindex(es, fresh_settings).status == "current"

    ensure_indices(es, next_version)  # a run under the new config: the alias stays put
    assert alias_indices(es, alias) == [f"{alias}-v{VERSION}"]
    report = reindex(es, next_version)
    assert (report.status, report.copied, report.sources) == ("reindexed", 25, [f"{alias}-v{VERSION}"])
    assert alias_indices(es, alias) == [f"{alias}-v{VERSION + 1}"]
    assert es.count(index=alias)["count"] == 25
    assert es.get(index=alias, id="doc-7")["_source"]["title"] == "Story 7"
    mapping = es.indices.get_mapping(index=f"{alias}-v{VERSION + 1}")[f"{alias}-v{VERSION + 1}"]["mappings"]
    assert mapping["properties"]["section"] == {"type": "keyword"}
    es.index(index=alias, id="new", document={"url": "https://example.org/new"})  # writable
    assert not es.indices.exists(index=f"{alias}-v{VERSION}")
    assert reindex(es, next_version).status == "current"


def test_runs_that_open_a_new_store_at_once_set_it_up_once(fresh_settings: Settings) -> None:
    """The DAG's group tasks start together and each sets up the indices it needs: on a new
    alias, four at once all succeed and leave one article index under the alias and every
    index current (three rounds, each on a new alias, to give the races a chance)."""
    from pipeline.store import connect, indices_current

    def open_at_once(settings: Settings, start: threading.Barrier, failures: list) -> None:
        start.wait()
        try:
            open_store(settings)
        except Exception as exc:  # noqa: BLE001 - the test reports every thread's failure
            failures.append(exc)

    es = connect(fresh_settings)
    for round_ in range(3):
        settings = replace(fresh_settings, index_alias=f"{fresh_settings.index_alias}-{round_}")
        start, failures = threading.Barrier(4), []
        runs = [threading.Thread(target=open_at_once, args=(settings, start, failures))
                for _ in range(4)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        es.options(ignore_status=404).indices.delete_index_template(
            name=f"{settings.index_alias}-template")  # (the fixture removes the indices)
        assert failures == []
        assert alias_indices(es, settings.index_alias) == [f"{settings.index_alias}-v{VERSION}"]
        assert indices_current(es, settings)


def test_new_fields_reach_an_index_behind_the_mapping_version(fresh_settings: Settings,
                                                               es: Elasticsearch,
                                                               next_version: Settings) -> None:
    # before the reindex, documents with the field the new mapping adds are taken, not refused
    # by the old index's strict mapping
    alias = fresh_settings.index_alias
    ensure_indices(es, next_version)
    assert alias_indices(es, alias) == [f"{alias}-v{VERSION}"]
    es.index(index=alias, id="with-section", document={"url": "https://example.org/s",
                                                        "section": "world"})
    assert es.get(index=alias, id="with-section")["_source"]["section"] == "world"


def test_a_changed_field_stops_runs_until_the_reindex(fresh_settings: Settings,
                                                      es: Elasticsearch,
                                                      next_version: Settings) -> None:
    path = next_version.config_dir / "mappings" / "articles.json"
    body = json.loads(path.read_text())
    body["mappings"]["properties"]["persons"] = {"type": "text"}  # was keyword
    path.write_text(json.dumps(body))
    with pytest.raises(StoreUnavailable, match="newsroom reindex"):
        ensure_indices(es, next_version)
    ensure_indices(es, next_version, reindexing=True)  # the reindex itself may run
    assert reindex(es, next_version).status == "reindexed"
    ensure_indices(es, next_version)  # and afterwards every run does


def test_a_corpus_from_before_the_language_fields_is_moved_by_the_reindex(
        fresh_settings: Settings, tmp_path: Path) -> None:
    """An index made by the mapping before `title` and `text` had language sub-fields stops
    runs with a clear message; `newsroom reindex` moves it, and its articles are then found
    in any inflection."""
    config = tmp_path / "before"
    shutil.copytree(CONFIG_DIR, config)
    path = config / "mappings" / "articles.json"
    body = json.loads(path.read_text())
    body["version"] -= 1
    del body["settings"]["analysis"], body["settings"]["query"]
    for name in ("title", "text"):
        for language in ANALYSED_LANGUAGES:
            del body["mappings"]["properties"][name]["fields"][language]
    path.write_text(json.dumps(body))
    before = replace(fresh_settings, config_dir=config)
    es = open_store(before)
    alias = fresh_settings.index_alias
    es.index(index=alias, id="kremlin", refresh=True, document={
        "url": "https://example.org/kremlin", "language": "ru", "title": "Звонок из Пекина",
        "text": "Председатель КНР позвонил Путину и обсудил поставки газа."})
    assert search_articles(es, alias, "Путина")["total"] == 0

    with pytest.raises(StoreUnavailable, match="newsroom reindex"):
        ensure_indices(es, fresh_settings)
    report = reindex(es, fresh_settings)
    assert (report.status, report.copied) == ("reindexed", 1)
    assert alias_indices(es, alias) == [f"{alias}-v{VERSION}"]
    es.indices.refresh(index=alias)
    assert [hit["id"] for hit in search_articles(es, alias, "Путина")["hits"]] == ["kremlin"]
    ensure_indices(es, fresh_settings)  # runs go on


def test_a_reindex_that_fails_takes_its_write_block_off(fresh_settings: Settings,
                                                        es: Elasticsearch,
                                                        next_version: Settings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    alias = fresh_settings.index_alias
    for n in range(5):
        es.index(index=alias, id=f"doc-{n}", document={"url": f"https://example.org/{n}"})
    es.indices.refresh(index=alias)

    def dies(*args: object, **kwargs: object) -> Iterator[dict[str, object]]:
        yield from ()
        raise ConnectionError("the node went away in the middle of the copy")

    monkeypatch.setattr("pipeline.maintenance.helpers.scan", dies)
    with pytest.raises(ConnectionError):
        reindex(es, next_version)
    assert alias_indices(es, alias) == [f"{alias}-v{VERSION}"]
    es.index(index=alias, id="after", document={"url": "https://example.org/after"})  # writable
    monkeypatch.undo()
    assert reindex(es, next_version).copied == 6


def _write_blocked(es: Elasticsearch, index: str) -> bool:
    found = es.indices.get_settings(index=index, name="index.blocks.write").body.get(index, {})
    return str(found.get("settings", {}).get("index", {}).get("blocks", {}).get("write")) == "true"


def test_a_reindex_killed_outright_leaves_a_block_that_a_later_run_lifts(
        fresh_settings: Settings, es: Elasticsearch, next_version: Settings) -> None:
    alias = fresh_settings.index_alias
    source = f"{alias}-v{VERSION}"
    es.index(index=alias, id="kept", document={"url": "https://example.org/kept"}, refresh=True)
    # the real `newsroom reindex`, whose copy never ends, killed once its block is on
    hangs = ("import sys, time; import pipeline.maintenance as m; "
             "m._copy = lambda *a, **k: time.sleep(600); "
             "from pipeline.cli import main; sys.exit(main(['reindex']))")
    env = {**os.environ, "ELASTICSEARCH_URL": fresh_settings.elasticsearch_url,
           "NEWSROOM_INDEX": alias, "NEWSROOM_CONFIG_DIR": str(next_version.config_dir)}
    process = subprocess.Popen([sys.executable, "-c", hangs], env=env)
    try:
        deadline = time.monotonic() + 120
        while not _write_blocked(es, source):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert reindex_claim(es, source) is not None

    # while the claim is younger than the lease, the block stays and no second reindex starts
    open_store(fresh_settings)
    assert _write_blocked(es, source)
    with pytest.raises(RuntimeError, match="being reindexed"):
        reindex(es, next_version)
    with pytest.raises(ApiError):
        es.index(index=alias, id="refused", document={"url": "https://example.org/refused"})

    # once it is older, the next run that opens the store lifts the block and the claim
    time.sleep(1.2)
    open_store(replace(fresh_settings, reindex_lease_s=1.0))
    assert not _write_blocked(es, source) and reindex_claim(es, source) is None
    es.index(index=alias, id="written", document={"url": "https://example.org/written"})
    report = reindex(es, next_version)
    assert (report.status, report.copied) == ("reindexed", 2)


def test_a_block_nobody_claims_is_left_alone(fresh_settings: Settings,
                                             es: Elasticsearch) -> None:
    """An operator's own write block (or anything not a reindex of ours) is not lifted."""
    source = f"{fresh_settings.index_alias}-v{VERSION}"
    es.indices.put_settings(index=source, settings={"index.blocks.write": True})
    open_store(replace(fresh_settings, reindex_lease_s=0.0))
    assert _write_blocked(es, source)
    es.indices.put_settings(index=source, settings={"index.blocks.write": None})


def test_a_working_reindex_renews_its_claim_as_it_copies(
        fresh_settings: Settings, es: Elasticsearch, next_version: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    alias = fresh_settings.index_alias
    source = f"{alias}-v{VERSION}"
    for n in range(4):
        es.index(index=alias, id=f"doc-{n}", document={"url": f"https://example.org/{n}"})
    es.indices.refresh(index=alias)
    renewals: list[str] = []
    scan = helpers.scan

    def watched(*args: object, **kwargs: object) -> Iterator[dict[str, object]]:
        for hit in scan(*args, **kwargs):  # type: ignore[arg-type]
            claim = reindex_claim(es, source)
            assert claim is not None and _write_blocked(es, source)
            renewals.append(claim["renewed_at"])
            time.sleep(0.01)
            yield hit

    monkeypatch.setattr("pipeline.maintenance.helpers.scan", watched)
    assert reindex(es, replace(next_version, reindex_lease_s=0.0)).copied == 4
    assert len(renewals) == 4 and renewals == sorted(set(renewals))  # renewed between hits


def test_quarantined_documents_are_replayed_once_the_mapping_takes_them(
        fresh_settings: Settings, es: Elasticsearch, next_version: Settings) -> None:
    from pipeline.index import index_documents, quarantine
    from pipeline.maintenance import replay_quarantine
    from pipeline.urls import url_id

    alias = fresh_settings.index_alias
    item = "https://example.org/story?utm_source=feed"
    taken_later = {"url": "https://example.org/story", "title": "Story", "section": "world"}
    never = {"url": "https://example.org/never", "title": "Never", "published_at": "someday"}
    refused = index_documents(es, alias, [taken_later, never])
    assert {f.reason for f in refused} == {"index_rejected"}  # strict mapping: no `section`
    for failure in refused:
        quarantine(es, fresh_settings.quarantine_index, failure, "run-1",
                   item if failure.url == taken_later["url"] else None)
    ledger = Ledger(es, fresh_settings.ledger_index, max_attempts=3)
    ledger.record([LedgerEntry(item, "F", Outcome.FAILED, "run-1", reason="index_rejected")])

    assert replay_quarantine(es, fresh_settings) == {"replayed": 0, "still_refused": 2}
    ensure_indices(es, next_version)  # the mapping now has `section`
    assert replay_quarantine(es, next_version) == {"replayed": 1, "still_refused": 1}
    assert es.get(index=alias, id=url_id(taken_later["url"]))["_source"]["section"] == "world"
    record = es.get(index=fresh_settings.ledger_index, id=ledger_id(item))["_source"]
    assert record["status"] == "indexed" and record["doc_id"] == url_id(taken_later["url"])
    es.indices.refresh(index=fresh_settings.quarantine_index)
    left = es.search(index=fresh_settings.quarantine_index)["hits"]["hits"]
    assert [h["_source"]["url"] for h in left] == [never["url"]]


def test_prune_ledger_keeps_recent_and_retryable_records(fresh_settings: Settings,
                                                         es: Elasticsearch) -> None:
    ledger = Ledger(es, fresh_settings.ledger_index, max_attempts=3)
    ledger.record([
        LedgerEntry("https://example.org/old-indexed", "F", Outcome.INDEXED, "r"),
        LedgerEntry("https://example.org/old-404", "F", Outcome.FAILED, "r", reason="http_404"),
        LedgerEntry("https://example.org/old-timeout", "F", Outcome.FAILED, "r",
                    reason="timeout", retryable=True),
        LedgerEntry("https://example.org/new-indexed", "F", Outcome.INDEXED, "r"),
    ])
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    for url in ("old-indexed", "old-404", "old-timeout"):
        es.update(index=fresh_settings.ledger_index, id=ledger_id(f"https://example.org/{url}"),
                  doc={"updated_at": old}, refresh=True)
    assert prune_ledger(es, fresh_settings, older_than_days=365) == 2
    left = ledger.lookup(f"https://example.org/{u}" for u in
                         ("old-indexed", "old-404", "old-timeout", "new-indexed"))
    assert set(left) == {"https://example.org/old-timeout", "https://example.org/new-indexed"}


def test_setup_on_a_node_without_security(fresh_settings: Settings) -> None:
    from pipeline.store import connect

    es = connect(fresh_settings)
    report = setup(es, fresh_settings, {})
    assert report == {"indices": True, "security": False, "users": [], "kibana": None}
    for index in (fresh_settings.ledger_index, fresh_settings.feed_state_index,
                  fresh_settings.feed_health_index):
        assert es.indices.exists(index=index)
    with pytest.raises(ApiError):  # what setup would have used, had the node security
        es.security.get_role(name="newsroom_analyst")


class _Kibana(BaseHTTPRequestHandler):
    """Records what a saved-objects import sends and answers as Kibana does."""

    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "xsrf": self.headers.get("kbn-xsrf"),
                              "auth": self.headers.get("Authorization"), "body": body})
        lines = [line for line in body.split(b"\n") if line.startswith(b"{")]
        answer = json.dumps({"success": True, "successCount": len(lines)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def kibana() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Kibana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Kibana.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_saved_objects_are_posted_to_kibanas_import_api(kibana: str,
                                                        fresh_settings: Settings) -> None:
    result = import_saved_objects(kibana, fresh_settings, ("elastic", "secret"))
    (request,) = _Kibana.received
    assert request["path"] == "/api/saved_objects/_import?overwrite=true"
    assert request["xsrf"] and str(request["auth"]).startswith("Basic ")
    objects = (CONFIG_DIR / "kibana" / "saved_objects.ndjson").read_text().splitlines()
    assert result["successCount"] == len(objects)
    assert all(line.encode() in request["body"] for line in objects)  # type: ignore[operator]

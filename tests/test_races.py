"""Races between workers, with the interleavings forced: another worker demotes the original a
copy is being recorded on, or records a copy on a document being demoted. Nothing is lost,
nothing aborts, every ledger record names a document that exists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

import pipeline.ingest
import pipeline.reconcile
from pipeline.index import add_duplicate, index_documents, is_write_block
from pipeline.ingest import Ingestor
from pipeline.ledger import Ledger, LedgerEntry, ledger_id
from pipeline.reconcile import demote, demote_all
from pipeline.records import Outcome
from pipeline.settings import Feed, Settings, load_feeds
from pipeline.urls import url_id
from tests.chaos.suite import Item, rss
from tests.conftest import SampleArticle, republished_later, sample_articles
from tests.sample_site.server import SampleSite


def _earlier_twin(es: Elasticsearch, alias: str, doc_id: str, url: str) -> str:
    """Index, under `url`, the same text as `doc_id` published a day earlier: the document a
    worker elsewhere found to be the original. Its id."""
    source = es.get(index=alias, id=doc_id)["_source"]
    twin = {**source, "url": url, "published_at": "2020-01-01T00:00:00+00:00",
            "indexed_at": datetime.now(UTC).isoformat()}  # indexed after it
    for key in ("duplicates", "duplicate_count"):
        twin.pop(key, None)
    assert index_documents(es, alias, [twin]) == []
    return url_id(url)


def _northwire_story(feeds_file: Path, site: SampleSite) -> tuple[Feed, SampleArticle, str]:
    """The Northern Wire feed, its first relevant story and the story's URL."""
    northwire = next(f for f in load_feeds(feeds_file) if f.name == "Northern Wire")
    story = next(a for a in sample_articles() if a.raw["relevant"] and a.outlet == "northwire")
    return northwire, story, story.raw["canonical"].replace("{BASE_URL}", site.base_url)


def _demoted_before_recorded(es: Elasticsearch, alias: str, ingestor: Ingestor, doc_id: str,
                             names: Callable[[LedgerEntry], bool],
                             monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Another worker indexes an earlier twin of `doc_id` and demotes it onto the twin just
    before the ledger records of the first batch with an entry that `names` it are written:
    the twin's id, in the list returned, once that has happened."""
    twin: list[str] = []
    real = ingestor.ledger.record

    def after_another_worker_demoted(entries: Any, *args: Any, **kwargs: Any) -> Any:
        entries = list(entries)
        if not twin and any(names(e) for e in entries):
            twin.append(_earlier_twin(es, alias, doc_id, "https://wire.example/first"))
            demote(es, alias, ingestor.ledger, doc_id, twin[0])
        return real(entries, *args, **kwargs)

    monkeypatch.setattr(ingestor.ledger, "record", after_another_worker_demoted)
    return twin


def test_a_copy_whose_original_was_just_demoted_goes_to_the_winner(
        tmp_path: Path, es: Elasticsearch, fresh_settings: Settings, site: SampleSite,
        feeds_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alias = fresh_settings.index_alias
    northwire, story, original_url = _northwire_story(feeds_file, site)
    root = tmp_path / "mirror"
    (root / "m").mkdir(parents=True)
    (root / "m" / "copy.html").write_text(republished_later(story, site.base_url),
                                          encoding="utf-8")
    with Ingestor(fresh_settings, es=es) as ingestor:
        ingestor.ingest_feed(northwire, "run-outlet")
        winner = _earlier_twin(es, alias, url_id(original_url), "https://wire.example/first")
        ledger = Ledger(es, fresh_settings.ledger_index, fresh_settings.max_attempts)
        real = pipeline.ingest.add_duplicates_each
        calls: list[list[str]] = []

        def after_another_worker_demoted(es_: Elasticsearch, alias_: str,
                                         copies: dict[str, list[dict[str, Any]]]) -> set[str]:
            if not calls:  # another worker finds the earlier twin and demotes ours first
                demote(es, alias, ledger, url_id(original_url), winner)
            calls.append(sorted(copies))
            return real(es_, alias_, copies)

        monkeypatch.setattr(pipeline.ingest, "add_duplicates_each", after_another_worker_demoted)
        with SampleSite(root=root) as mirror:
            copy_url = f"{mirror.base_url}/m/copy.html"
            (root / "m" / "rss.xml").write_bytes(rss([Item(copy_url, "Copy")]))
            report = ingestor.ingest_feed(
                Feed(name="Mirror", url=f"{mirror.base_url}/m/rss.xml"), "run-mirror")
    assert report.duplicate == 1 and report.errors == []
    assert not es.exists(index=alias, id=url_id(original_url))
    kept = es.get(index=alias, id=winner)["_source"]
    assert {original_url, copy_url} <= {d["url"] for d in kept["duplicates"]}
    record = es.get(index=fresh_settings.ledger_index, id=ledger_id(copy_url))["_source"]
    assert (record["status"], record["duplicate_of"]) == ("duplicate", winner)


def _loser_and_winner(es: Elasticsearch, settings: Settings) -> tuple[str, str, Ledger]:
    """Two copies of one text indexed, the later one to be demoted onto the earlier: their
    URLs, and the ledger."""
    from tests.test_store import _doc

    loser, winner = "https://late.example/story", "https://early.example/story"
    assert index_documents(es, settings.index_alias, [_doc(loser), _doc(winner)]) == []
    return loser, winner, Ledger(es, settings.ledger_index, settings.max_attempts)


def test_a_copy_recorded_on_a_document_being_demoted_is_not_lost(
        es: Elasticsearch, fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    alias = fresh_settings.index_alias
    loser, winner, ledger = _loser_and_winner(es, fresh_settings)
    real = pipeline.reconcile.add_duplicates
    moved: list[int] = []

    def while_another_worker_records_a_copy(es_: Elasticsearch, alias_: str, original_id: str,
                                            copies: list[dict[str, Any]]) -> None:
        real(es_, alias_, original_id, copies)
        if not moved:  # between our read of the loser and its deletion
            add_duplicate(es, alias, url_id(loser), "https://syndicator.example/x", "Synd",
                          datetime.now(UTC), "same_text")
        moved.append(len(copies))

    monkeypatch.setattr(pipeline.reconcile, "add_duplicates", while_another_worker_records_a_copy)
    demote(es, alias, ledger, url_id(loser), url_id(winner))
    assert not es.exists(index=alias, id=url_id(loser))
    kept = {d["url"] for d in es.get(index=alias, id=url_id(winner))["_source"]["duplicates"]}
    assert kept == {loser, "https://syndicator.example/x"}


def test_a_copy_recorded_on_one_of_many_documents_being_demoted_is_not_lost(
        es: Elasticsearch, fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # a batch's demotions made together: another worker records a copy on one of the losers
    # between their reading and their deletion in one bulk
    from tests.test_store import _doc

    alias = fresh_settings.index_alias
    losers = [f"https://late{n}.example/story" for n in range(3)]
    winners = [f"https://early{n}.example/story" for n in range(3)]
    assert index_documents(es, alias, [_doc(url) for url in losers + winners]) == []
    for loser in losers:  # each loser carries a copy recorded earlier, which must move too
        add_duplicate(es, alias, url_id(loser), f"{loser}/mirror", "Mirror", datetime.now(UTC),
                      "same_text")
    ledger = Ledger(es, fresh_settings.ledger_index, fresh_settings.max_attempts)
    assert ledger.record([entry for loser in losers for entry in (
        LedgerEntry(loser, "Late", Outcome.INDEXED, "run", doc_id=url_id(loser)),
        LedgerEntry(f"{loser}/mirror", "Mirror", Outcome.DUPLICATE, "run", reason="same_text",
                    duplicate_of=url_id(loser)))]) == []
    real = pipeline.reconcile.add_duplicates_each

    def while_another_worker_records_a_copy(es_: Elasticsearch, alias_: str,
                                            copies: dict[str, list[dict[str, Any]]]) -> set[str]:
        gone = real(es_, alias_, copies)
        add_duplicate(es, alias, url_id(losers[1]), "https://syndicator.example/x", "Synd",
                      datetime.now(UTC), "same_text")
        return gone

    monkeypatch.setattr(pipeline.reconcile, "add_duplicates_each",
                        while_another_worker_records_a_copy)
    demoted: dict[str, str] = {}
    plan = {url_id(loser): url_id(winner) for loser, winner in zip(losers, winners, strict=True)}
    assert demote_all(es, alias, ledger, plan, demoted) == set()
    assert demoted == plan
    for loser, winner in zip(losers, winners, strict=True):
        assert not es.exists(index=alias, id=url_id(loser))
        kept = {d["url"] for d in es.get(index=alias, id=url_id(winner))["_source"]["duplicates"]}
        assert kept == {loser, f"{loser}/mirror"} | (
            {"https://syndicator.example/x"} if loser == losers[1] else set())
        for url in (loser, f"{loser}/mirror"):  # the ledger follows
            record = es.get(index=fresh_settings.ledger_index, id=ledger_id(url))["_source"]
            assert (record["status"], record["reason"], record["duplicate_of"]) == (
                "duplicate", "same_text", url_id(winner))


def test_a_document_demoted_before_its_ledger_record_is_written_is_recorded_as_a_copy(
        es: Elasticsearch, fresh_settings: Settings, site: SampleSite, feeds_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # another worker indexes an earlier twin of one of the batch's articles and demotes ours
    # after our reconcile, before our ledger write: no record may name the deleted document
    alias = fresh_settings.index_alias
    northwire, _, own_url = _northwire_story(feeds_file, site)
    ours = url_id(own_url)
    with Ingestor(fresh_settings, es=es) as ingestor:
        twin = _demoted_before_recorded(es, alias, ingestor, ours,
                                        lambda entry: entry.doc_id == ours, monkeypatch)
        report = ingestor.ingest_feed(northwire, "run-race")
    (winner,) = twin
    assert not es.exists(index=alias, id=ours)
    es.indices.refresh(index=fresh_settings.ledger_index)
    named = es.search(index=fresh_settings.ledger_index, size=100, query={"bool": {"should": [
        {"term": {"doc_id": ours}}, {"term": {"duplicate_of": ours}}]}})["hits"]["hits"]
    assert named == []  # no record names the deleted document
    indexed = es.search(index=fresh_settings.ledger_index, size=100,
                        query={"term": {"status": "indexed"}})["hits"]["hits"]
    for hit in indexed:
        assert es.exists(index=alias, id=hit["_source"]["doc_id"]), hit["_source"]["url"]
    assert report.errors == [] or all(e["reason"] == "http_404" for e in report.errors)
    assert winner in {h["_source"].get("duplicate_of") for h in es.search(
        index=fresh_settings.ledger_index, size=100,
        query={"term": {"status": "duplicate"}})["hits"]["hits"]}


def test_a_variant_of_a_document_demoted_before_its_record_is_written_follows_it(
        tmp_path: Path, es: Elasticsearch, fresh_settings: Settings, site: SampleSite,
        feeds_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a tracking variant of an indexed article is judged its `same_url` duplicate; another
    # worker demotes the article onto an earlier twin after that, before the variant's ledger
    # record is written: the record names the twin, not the deleted document
    alias = fresh_settings.index_alias
    northwire, _, own_url = _northwire_story(feeds_file, site)
    ours, variant = url_id(own_url), f"{own_url}?utm_source=race"
    root = tmp_path / "feeds"
    (root / "t").mkdir(parents=True)
    (root / "t" / "rss.xml").write_bytes(rss([Item(variant, "Tracked")]))
    with Ingestor(fresh_settings, es=es) as ingestor:
        ingestor.ingest_feed(northwire, "run-outlet")
        twin = _demoted_before_recorded(es, alias, ingestor, ours,
                                        lambda entry: entry.duplicate_of == ours, monkeypatch)
        with SampleSite(root=root) as feeds:
            report = ingestor.ingest_feed(Feed(name="Tracked", url=f"{feeds.base_url}/t/rss.xml"),
                                          "run-tracked")
    (winner,) = twin
    assert report.duplicate == 1 and report.errors == []
    assert not es.exists(index=alias, id=ours)
    record = es.get(index=fresh_settings.ledger_index, id=ledger_id(variant))["_source"]
    assert (record["status"], record["duplicate_of"]) == ("duplicate", winner)


def test_a_write_block_met_while_demoting_a_batch_is_raised_for_the_ingest_to_wait_out(
        es: Elasticsearch, fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # a reindex blocks writes between the copies' recording and the losers' deletion: the
    # block comes back as Elasticsearch's own error (the ingest fails the batch's articles
    # `index_blocked`, to be taken again), and no loser is deleted without its records
    alias = fresh_settings.index_alias
    loser, winner, ledger = _loser_and_winner(es, fresh_settings)
    assert ledger.record([LedgerEntry(loser, "Late", Outcome.INDEXED, "run",
                                      doc_id=url_id(loser))]) == []
    (index,) = es.indices.get_alias(name=alias)
    real = pipeline.reconcile.add_duplicates_each

    def then_a_reindex_blocks_writes(es_: Elasticsearch, alias_: str,
                                     copies: dict[str, list[dict[str, Any]]]) -> set[str]:
        gone = real(es_, alias_, copies)
        es.indices.put_settings(index=index, settings={"index.blocks.write": True})
        return gone

    monkeypatch.setattr(pipeline.reconcile, "add_duplicates_each", then_a_reindex_blocks_writes)
    try:
        with pytest.raises(ApiError) as raised:
            demote_all(es, alias, ledger, {url_id(loser): url_id(winner)}, {})
        assert is_write_block(raised.value)
    finally:
        es.indices.put_settings(index=index, settings={"index.blocks.write": False})
    assert es.exists(index=alias, id=url_id(loser))
    record = es.get(index=fresh_settings.ledger_index, id=ledger_id(loser))["_source"]
    assert (record["status"], record["doc_id"]) == ("indexed", url_id(loser))


def test_a_variant_refused_as_a_copy_never_takes_over_from_its_own_url_recorded_unseen(
        es: Elasticsearch, fresh_settings: Settings, site: SampleSite,
        feeds_file: Path) -> None:
    # one feed lists an article's own URL and creates its document; another lists a tracking
    # variant of it at the same moment, is refused (the document exists) and settles who
    # indexed it before the first one's ledger record can be searched
    from tests.test_store import _doc

    alias = fresh_settings.index_alias
    own = "https://wire.example/story"
    variant = f"{own}?utm_source=rss"
    doc_id = url_id(own)
    assert index_documents(es, alias, [{**_doc(own), "ingest": {
        "run_id": "run", "mode": "poll", "item_url": own}}]) == []
    es.indices.put_settings(index=fresh_settings.ledger_index,  # records not searchable yet
                            settings={"index.refresh_interval": "-1"})
    try:
        with Ingestor(fresh_settings, es=es) as ingestor:
            ingestor.ledger.record([LedgerEntry(own, "Own", Outcome.INDEXED, "run",
                                                doc_id=doc_id)])
            copy = LedgerEntry(variant, "Tracked", Outcome.DUPLICATE, "run", reason="same_url",
                               duplicate_of=doc_id)
            (settled,) = ingestor.ledger.one_indexer_each([copy], writers=ingestor._writers)
    finally:
        es.indices.put_settings(index=fresh_settings.ledger_index,
                                settings={"index.refresh_interval": None})
    assert (settled.status, settled.duplicate_of) == (Outcome.DUPLICATE, doc_id)

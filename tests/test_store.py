"""index, dedup and the ledger against the real local Elasticsearch node."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from pipeline.dedup import Deduplicator, fingerprint, ranked_time, seniority
from pipeline.index import add_duplicate, add_duplicates, index_documents
from pipeline.ledger import Ledger, LedgerEntry
from pipeline.minhash import MinHasher
from pipeline.reconcile import Holder, Indexed, holder_of, holders_of, reconcile
from pipeline.records import Outcome
from pipeline.settings import CONFIG_DIR, Settings
from pipeline.store import (
    StoreUnavailable,
    alias_indices,
    articles_index,
    articles_version,
    ensure_indices,
    open_store,
)
from pipeline.urls import url_id

HASHER = MinHasher.load(CONFIG_DIR / "dedup.yaml")
VERSION = articles_version(CONFIG_DIR)  # the article mapping's version as shipped


LATER = seniority("2026-11-02T00:00:00+00:00")  # published after the documents _doc make


def _doc(url: str, text: str = "Russia and China signed a gas deal.") -> dict:
    print_ = fingerprint(text, HASHER)
    return {"url": url, "title": "t", "text": text, "indexed_at": datetime.now(UTC).isoformat(),
            "published_at": "2026-11-01T00:00:00+00:00",
            "dedup": {"content_hash": print_.content_hash, "lsh": list(print_.lsh),
                      "signature": list(print_.signature)},
            "persons": ["Xi Jinping"]}


def test_indices_are_versioned_behind_the_alias_and_idempotent(es: Elasticsearch,
                                                               fresh_settings: Settings) -> None:
    ensure_indices(es, fresh_settings)  # a second time changes nothing
    alias = fresh_settings.index_alias
    assert list(es.indices.get_alias(name=alias)) == [f"{alias}-v{VERSION}"]
    mapping = es.indices.get_mapping(index=alias)[f"{alias}-v{VERSION}"]["mappings"]
    assert mapping["properties"]["published_at"]["type"] == "date"
    assert mapping["properties"]["persons"]["type"] == "keyword"
    assert es.indices.exists(index=fresh_settings.ledger_index)


def test_upsert_is_idempotent_and_keeps_duplicates(es: Elasticsearch,
                                                   fresh_settings: Settings) -> None:
    alias = fresh_settings.index_alias
    url = "https://example.org/a"
    assert index_documents(es, alias, [_doc(url)]) == []
    add_duplicate(es, alias, url_id(url), "https://copy.example/b", "Copy Times",
                  datetime.now(UTC), "near_copy")
    assert index_documents(es, alias, [_doc(url, "Russia and China signed an updated deal.")]) == []
    stored = es.get(index=alias, id=url_id(url))["_source"]
    assert es.count(index=alias)["count"] == 1
    assert stored["text"] == "Russia and China signed an updated deal."
    assert stored["duplicate_count"] == 1 and stored["duplicates"][0]["source"] == "Copy Times"


def test_document_refused_by_mapping_is_reported_not_raised(es: Elasticsearch,
                                                            fresh_settings: Settings) -> None:
    bad = {**_doc("https://example.org/bad"), "unexpected_field": 1}  # the mapping is strict
    failures = index_documents(es, fresh_settings.index_alias, [_doc("https://example.org/ok"),
                                                                 bad])
    assert [f.url for f in failures] == ["https://example.org/bad"]
    assert failures[0].reason == "index_rejected" and "strict" in failures[0].detail
    assert es.count(index=fresh_settings.index_alias)["count"] == 1


def test_concurrent_duplicates_are_all_recorded(es: Elasticsearch,
                                                fresh_settings: Settings) -> None:
    alias = fresh_settings.index_alias
    index_documents(es, alias, [_doc("https://example.org/orig")])
    threads = [threading.Thread(target=add_duplicate, args=(
        es, alias, url_id("https://example.org/orig"), f"https://copy{i}.example/x", f"S{i}",
        datetime.now(UTC), "near_copy")) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = es.get(index=alias, id=url_id("https://example.org/orig"))["_source"]
    assert stored["duplicate_count"] == 6
    assert len({d["url"] for d in stored["duplicates"]}) == 6


def test_where_demoted_urls_went_is_found_for_many_at_once(es: Elasticsearch,
                                                          fresh_settings: Settings) -> None:
    # a demoted document's URL is recorded among its holder's duplicates: each URL's holder
    # and reason come back from one lookup, whichever document holds it (none for a URL that
    # no document recorded); what was written a moment ago is found
    alias = fresh_settings.index_alias
    index_documents(es, alias, [_doc("https://example.org/one"),
                                _doc("https://example.org/two", "Lavrov met Wang Yi in Beijing.")])
    now = datetime.now(UTC)
    add_duplicates(es, alias, url_id("https://example.org/one"), [
        {"url": "https://copy.example/a", "source": "A", "seen_at": now.isoformat(),
         "reason": "same_text"},
        {"url": "https://copy.example/b", "source": "B", "seen_at": now.isoformat()}])
    add_duplicate(es, alias, url_id("https://example.org/two"), "https://copy.example/c", "C",
                  now, "near_copy")
    urls = ["https://copy.example/a", "https://copy.example/b", "https://copy.example/c",
            "https://copy.example/none"]
    assert holders_of(es, alias, urls) == {
        "https://copy.example/a": Holder(url_id("https://example.org/one"), "same_text"),
        "https://copy.example/b": Holder(url_id("https://example.org/one"), "near_copy"),
        "https://copy.example/c": Holder(url_id("https://example.org/two"), "near_copy")}
    assert holder_of(es, alias, "https://copy.example/c") == Holder(
        url_id("https://example.org/two"), "near_copy")
    assert holder_of(es, alias, "https://copy.example/none") is None
    assert holders_of(es, alias, []) == {}


def test_dedup_finds_same_url_and_same_text(es: Elasticsearch, fresh_settings: Settings) -> None:
    alias = fresh_settings.index_alias
    text = "Moscow and Beijing agreed to expand the pipeline."
    index_documents(es, alias, [_doc("https://example.org/orig", text)])
    dedup = Deduplicator(es, alias, HASHER)
    same_url = dedup.check("https://EXAMPLE.org/orig?utm_source=x", fingerprint(text, HASHER))
    assert same_url is not None and same_url.match == "same_url"
    # case, punctuation and spacing do not hide a copy
    copy = dedup.check("https://other.example/copy", fingerprint(
        "MOSCOW and Beijing agreed to expand the pipeline!", HASHER), LATER)
    assert copy is not None and copy.match == "same_text"
    assert copy.doc_id == url_id("https://example.org/orig")
    # an updated text at the same URL is not a duplicate: it updates the document
    assert dedup.check("https://example.org/orig", fingerprint("A new version.", HASHER)) is None
    assert dedup.check("https://example.org/new", fingerprint("Something else.", HASHER)) is None


WIRE = [
    ("MOSCOW, Nov 3 — Russian Foreign Minister Sergei Lavrov and his Chinese counterpart Wang Yi "
    "agreed on Monday to coordinate more closely at the United Nations, the ministry said."),
    ("The two ministers met for three hours in Beijing and discussed Ukraine, the Korean "
    "peninsula and the situation in the Middle East, according to a statement."),
    ("Lavrov said relations between Moscow and Beijing were at their best level in history and "
    "that trade had grown despite Western sanctions on Russian banks."),
    ("Wang said China was ready to work with Russia to oppose unilateral sanctions and to "
    "defend the role of the United Nations Security Council in world affairs."),
    ("The ministers also prepared a visit by President Xi Jinping to Moscow next year and "
    "discussed the agenda of the next summit of the Shanghai Cooperation Organisation."),
]


def test_dedup_finds_near_copies_through_lsh(es: Elasticsearch, fresh_settings: Settings) -> None:
    alias = fresh_settings.index_alias
    index_documents(es, alias, [_doc("https://wire.example/lavrov", "\n\n".join(WIRE))])
    dedup = Deduplicator(es, alias, HASHER)
    trimmed = "\n\n".join(WIRE[:-1] + ["(Additional reporting by Anna Petrova)"])
    found = dedup.check("https://herald.example/lavrov-wang", fingerprint(trimmed, HASHER), LATER)
    assert found is not None and found.match == "near_copy"
    assert found.doc_id == url_id("https://wire.example/lavrov") and found.similarity >= 0.5
    other = ("Chinese Foreign Minister Wang Yi hosted Sergei Lavrov in Beijing, where the two "
             "men spent the afternoon on Ukraine and the United Nations. Officials in Moscow "
             "described the talks as friendly; Beijing stressed opposition to sanctions.")
    assert dedup.check("https://times.example/talks", fingerprint(other, HASHER), LATER) is None
    # a copy published before the indexed text is not its duplicate: it will be the original
    assert dedup.check("https://early.example/lavrov", fingerprint(trimmed, HASHER),
                       seniority("2026-10-31T00:00:00+00:00")) is None


def _edition(language: str) -> str:
    """An announcement that a publisher fills anew for each edition, in the same words."""
    return (f"The {language} edition of a collection of speeches on relations between Russia and "
            "China was published this week by a state publishing house in Beijing, the "
            "publisher said in a statement on Tuesday. The volume gathers addresses, letters "
            "and interviews from the past ten years on trade, energy, the border regions and "
            "cooperation at the United Nations, and it follows the editions published earlier "
            "for readers abroad. The publisher said the book would help foreign readers "
            "understand the partnership between the two neighbours and its history.")


def test_a_text_that_recurs_weeks_later_with_a_word_changed_is_a_new_article(
        es: Elasticsearch, fresh_settings: Settings) -> None:
    """A template filled anew (an edition in another language announced in the same words)
    is as similar to the first as a copy is; a copy is published within days of its original
    (`window_days`), so the later one is an article of its own, in dedup and in reconcile."""
    alias = fresh_settings.index_alias
    first = _doc("https://press.example/arabic-edition", _edition("Arabic"))
    index_documents(es, alias, [first])
    spanish = fingerprint(_edition("Spanish"), HASHER)
    assert HASHER.copy_similarity(fingerprint(_edition("Arabic"), HASHER).signature,
                                  spanish.signature) >= HASHER.threshold
    dedup = Deduplicator(es, alias, HASHER)
    months_later = seniority("2027-02-15T08:00:00+00:00")
    assert dedup.check("https://press.example/spanish-edition", spanish, months_later) is None
    # the same text a day later, or with no time to tell, is a copy as before
    next_day = dedup.check("https://portal.example/spanish-edition", spanish,
                           seniority("2026-11-02T08:00:00+00:00"))
    assert next_day is not None and next_day.match == "near_copy"
    undated = dedup.check("https://portal.example/undated", spanish)
    assert undated is not None and undated.doc_id == url_id(first["url"])

    # indexed both (the later one by a worker that had not seen the first): neither is demoted
    later = {**_doc("https://press.example/spanish-edition", _edition("Spanish")),
             "published_at": "2027-02-15T08:00:00+00:00"}
    index_documents(es, alias, [later])
    es.indices.refresh(index=alias)
    ledger = Ledger(es, fresh_settings.ledger_index, max_attempts=3)
    assert reconcile(es, alias, ledger, HASHER, [
        Indexed(url_id(later["url"]), later["url"], spanish, months_later)]) == {}
    assert es.exists(index=alias, id=url_id(first["url"]))
    assert es.exists(index=alias, id=url_id(later["url"]))


def test_a_claimed_time_stands_unless_the_feed_was_read_well_after_it() -> None:
    claimed = datetime(2026, 11, 1, 9, tzinfo=UTC)
    seen = datetime(2026, 11, 20, 9, tzinfo=UTC)
    grace = timedelta(hours=24)
    # read an hour after the claim: a feed may not list a page at once
    assert ranked_time(claimed, seen, claimed + timedelta(hours=1), grace) == claimed
    # read two days after it, and the page not listed then: ranked as first seen
    assert ranked_time(claimed, seen, claimed + timedelta(days=2), grace) == seen
    # nothing to check the claim against: a feed read for the first time, a backfill
    assert ranked_time(claimed, seen, None, grace) == claimed
    assert ranked_time(None, seen, claimed, grace) is None  # no claim: undated, as before


def test_dedup_sees_articles_accepted_earlier_in_the_batch(es: Elasticsearch,
                                                          fresh_settings: Settings) -> None:
    dedup = Deduplicator(es, fresh_settings.index_alias, HASHER)
    dedup.accept("https://a.example/1", fingerprint("Same wire text.", HASHER), LATER)
    found = dedup.check("https://b.example/2", fingerprint("Same wire text.", HASHER),
                        seniority("2026-11-03T00:00:00+00:00"))
    assert found is not None and found.doc_id == url_id("https://a.example/1")
    dedup.accept("https://a.example/3", fingerprint("\n\n".join(WIRE), HASHER), LATER)
    near = dedup.check("https://b.example/4", fingerprint("\n\n".join(WIRE[1:]), HASHER),
                       seniority("2026-11-03T00:00:00+00:00"))
    assert near is not None and near.match == "near_copy"
    assert near.doc_id == url_id("https://a.example/3")


def test_ledger_settles_and_counts_attempts(es: Elasticsearch, fresh_settings: Settings) -> None:
    ledger = Ledger(es, fresh_settings.ledger_index, max_attempts=2)
    failed = LedgerEntry("https://x.example/a", "F", Outcome.FAILED, "run1", reason="timeout",
                         retryable=True)
    done = LedgerEntry("https://x.example/b", "F", Outcome.INDEXED, "run1", doc_id="d")
    gone = LedgerEntry("https://x.example/c", "F", Outcome.FAILED, "run1", reason="http_404")
    ledger.record([failed, done, gone])
    records = ledger.lookup(["https://x.example/a", "https://x.example/b", "https://x.example/c",
                             "https://x.example/d"])
    assert set(records) == {"https://x.example/a", "https://x.example/b", "https://x.example/c"}
    assert ledger.is_settled(records["https://x.example/b"])
    assert ledger.is_settled(records["https://x.example/c"])  # permanent: not retried
    assert not ledger.is_settled(records["https://x.example/a"])  # transient: retried
    ledger.searchable()  # as the next run does at its start
    assert ledger.retry_candidates("F") == ["https://x.example/a"]
    ledger.record([LedgerEntry("https://x.example/a", "F", Outcome.FAILED, "run2",
                               reason="timeout", retryable=True)], previous=records)
    again = ledger.lookup(["https://x.example/a"])["https://x.example/a"]
    assert again["attempts"] == 2 and ledger.is_settled(again)  # gave up after max_attempts
    ledger.searchable()
    assert ledger.retry_candidates("F") == []
    assert again["first_seen"] == records["https://x.example/a"]["first_seen"]
    assert ledger.counts("run1") == {"indexed": 1, "failed": 1}
    assert ledger.counts("run2") == {"failed": 1}
    # another process of run1 (a DAG's other group task) polled feed G: each counts its own
    ledger.record([LedgerEntry("https://y.example/e", "G", Outcome.FAILED, "run1",
                               reason="http_404")])
    ledger.searchable()
    assert ledger.counts("run1") == {"indexed": 1, "failed": 2}
    assert ledger.counts("run1", ["F"]) == {"indexed": 1, "failed": 1}
    assert ledger.counts("run1", ["G"]) == {"failed": 1}
    assert ledger.counts("run1", []) == {}


def test_concurrent_upserts_of_one_document_all_land(es: Elasticsearch,
                                                     fresh_settings: Settings) -> None:
    # several workers writing the same article at once: version conflicts are retried inside
    # the bulk request, never reported as a refusal (which would quarantine the article)
    alias = fresh_settings.index_alias
    url = "https://example.org/contended"
    failures: list[object] = []

    def upsert(worker: int) -> None:
        for round_ in range(25):
            failures.extend(index_documents(es, alias, [_doc(url, f"Russia and China signed "
                                                              f"deal {worker}-{round_}.")],
                                            refresh=False))

    threads = [threading.Thread(target=upsert, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    es.indices.refresh(index=alias)
    assert es.count(index=alias)["count"] == 1


def test_a_write_block_is_a_refusal_for_now(es: Elasticsearch, fresh_settings: Settings) -> None:
    # maintenance puts a write block on the live index: what arrives meanwhile is tried again
    # later, not quarantined as refused for good
    alias = fresh_settings.index_alias
    es.indices.add_block(index=alias, block="write")
    try:
        failures = index_documents(es, alias, [_doc("https://example.org/during-maintenance")])
    finally:
        es.indices.put_settings(index=alias, settings={"index.blocks.write": False})
    assert [(f.reason, f.transient) for f in failures] == [("index_blocked", True)]
    assert index_documents(es, alias, [_doc("https://example.org/during-maintenance")]) == []


def test_a_write_where_the_alias_is_gone_is_a_refusal_for_now(es: Elasticsearch,
                                                               fresh_settings: Settings) -> None:
    # the index behind the alias was deleted: the write is tried again later, and it creates
    # no index under the alias's name
    alias = fresh_settings.index_alias
    es.indices.delete(index=articles_index(alias, VERSION))
    failures = index_documents(es, alias, [_doc("https://example.org/after-deletion")])
    assert [(f.reason, f.transient) for f in failures] == [("index_missing", True)]
    assert not es.indices.exists(index=alias)


def test_the_alias_is_put_back_on_its_index(es: Elasticsearch, fresh_settings: Settings) -> None:
    # the live index lost its alias (an operator's slip): the next run's set-up puts it back,
    # as the index written to
    alias = fresh_settings.index_alias
    es.indices.delete_alias(index=articles_index(alias, VERSION), name=alias)
    open_store(fresh_settings)
    assert alias_indices(es, alias) == [articles_index(alias, VERSION)]
    assert index_documents(es, alias, [_doc("https://example.org/alias-back")]) == []


def test_an_index_in_the_alias_place_stops_the_run(es: Elasticsearch,
                                                   fresh_settings: Settings) -> None:
    # an index that holds the alias's name (a write made while the alias was gone created it,
    # with mappings guessed from the document) is not written into in the alias's stead
    alias = fresh_settings.index_alias
    es.indices.delete(index=articles_index(alias, VERSION))
    es.index(index=alias, id="x", document=_doc("https://example.org/stand-in"))
    with pytest.raises(StoreUnavailable, match=f"{alias} is an index, not the alias"):
        open_store(fresh_settings)
    assert alias_indices(es, alias) == []
    assert not es.indices.exists(index=articles_index(alias, VERSION))


def test_a_ledger_a_write_created_stops_the_run_with_what_to_do(es: Elasticsearch,
                                                                 fresh_settings: Settings) -> None:
    # the ledger was deleted and a record written before the next run set it up again (a
    # cluster without security lets a write create an index): its mapping is guessed, and the
    # run says which index and what to do instead of Elasticsearch's mapping error alone
    es.indices.delete(index=fresh_settings.ledger_index)
    Ledger(es, fresh_settings.ledger_index, 3).record([LedgerEntry(
        url="https://example.org/a", feed="Northern Wire", status=Outcome.INDEXED,
        run_id="run", doc_id=url_id("https://example.org/a"))])
    # (which field Elasticsearch names first, of those the write guessed, varies)
    with pytest.raises(StoreUnavailable, match=rf"{fresh_settings.ledger_index} has a field "
                       r"of another type .*mapper \[\w+\] cannot be changed"):
        open_store(fresh_settings)


def test_the_story_search_sends_a_capped_text_and_still_finds_the_story(
        es: Elasticsearch, fresh_settings: Settings) -> None:
    """A 2 MB article's story search sends at most `like_chars` of it, and the article still
    joins the story of an indexed article on the same event."""
    import json as json_
    from dataclasses import replace

    from pipeline.records import Article, Source
    from pipeline.stories import StoryFinder, StoryRules
    from tests.chaos.es_proxy import FaultyProxy

    alias = fresh_settings.index_alias
    lead = " ".join(WIRE)
    index_documents(es, alias, [{**_doc("https://wire.example/lavrov", lead),
                                 "story_id": "story-lavrov"}])
    sent: list[int] = []

    def record(method: str, path: str, body: bytes) -> None:
        if path.split("?")[0].endswith("/_search") and b"more_like_this" in body:
            like = json_.loads(body)["query"]["bool"]["must"]["more_like_this"]["like"]
            sent.append(len(like))

    rules = StoryRules.load(CONFIG_DIR / "dedup.yaml")
    long_text = lead + "\n\n" + "Further background paragraph on the talks. " * 50_000
    article = Article(url="https://herald.example/long", title="Lavrov and Wang Yi meet",
                      text=long_text, language="en",
                      published_at=datetime(2026, 11, 1, 6, tzinfo=UTC), authors=(),
                      source=Source("Herald", "herald.example"),
                      fetched_at=datetime(2026, 11, 1, 7, tzinfo=UTC))
    with FaultyProxy(fresh_settings.elasticsearch_url, record) as proxy:
        from pipeline.store import connect

        through = connect(replace(fresh_settings, elasticsearch_url=proxy.url))
        story = StoryFinder(through, alias, rules).assign(article)
    assert len(long_text) > 2_000_000 and sent and max(sent) <= rules.like_chars
    assert story == "story-lavrov"


def test_replicas_are_configuration_applied_to_every_index(es: Elasticsearch,
                                                           fresh_settings: Settings) -> None:
    """`elasticsearch.replicas` (NEWSROOM_REPLICAS) reaches every index of the pipeline, new and
    existing; a change makes the indices not current until the setup applies it."""
    from dataclasses import replace

    from pipeline.store import indices_current, open_store

    def replicas(settings: Settings) -> set[str]:
        found = es.indices.get_settings(index=f"{settings.index_alias}*",
                                        name="index.number_of_replicas")
        return {body["settings"]["index"]["number_of_replicas"] for body in found.values()}

    assert replicas(fresh_settings) == {"0"} and indices_current(es, fresh_settings)
    on_a_cluster = replace(fresh_settings,
                           replicas=Settings.load({"NEWSROOM_REPLICAS": "1"}).replicas)
    assert not indices_current(es, on_a_cluster)
    open_store(on_a_cluster)
    assert replicas(on_a_cluster) == {"1"} and indices_current(es, on_a_cluster)
    open_store(fresh_settings)
    assert replicas(fresh_settings) == {"0"}

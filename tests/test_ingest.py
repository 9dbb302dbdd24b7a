"""The whole pipeline through `newsroom ingest --json` over the sample corpus, twice, and with
Elasticsearch down; what landed is read back from the real node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from elasticsearch import Elasticsearch

from pipeline.settings import CONFIG_DIR, Settings, load_yaml
from pipeline.urls import url_id
from tests.chaos.suite import Item, rss
from tests.conftest import assert_sample_corpus_landed, republished_later, sample_articles
from tests.sample_site.server import SampleSite

if TYPE_CHECKING:
    from pipeline.ingest import FeedReport


def newsroom(settings: Settings, *args: str, url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ELASTICSEARCH_URL": url or settings.elasticsearch_url,
           "NEWSROOM_INDEX": settings.index_alias, "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
           "NEWSROOM_HOST_DELAY": "0"}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _ingest(settings: Settings, feeds_file: Path) -> dict[str, Any]:
    result = newsroom(settings, "ingest", "--feeds", str(feeds_file), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_ingest_sample_corpus_twice(fresh_settings: Settings, es: Elasticsearch,
                                    site: SampleSite, feeds_file: Path) -> None:
    base = site.base_url
    articles = [a for a in sample_articles(None) if a.raw["feed"]]  # archived: in no feed
    relevant = [a for a in articles if a.raw["kind"] == "article" and a.raw["relevant"]]
    irrelevant = [a for a in articles if a.raw["kind"] == "article" and not a.raw["relevant"]]

    report = _ingest(fresh_settings, feeds_file)
    assert set(report) == {"run_id", "seen", "fetched", "indexed", "duplicate", "irrelevant",
                           "failed", "feeds"}
    assert report["seen"] == len(articles)
    assert report["irrelevant"] == len(irrelevant)
    assert report["failed"] == 1
    assert report["seen"] == sum(report[k] for k in ("indexed", "duplicate", "irrelevant",
                                                      "failed"))
    (herald,) = [f for f in report["feeds"] if f["name"] == "The Eastern Herald"]
    assert [e["reason"] for e in herald["errors"]] == ["http_404"]

    stored = assert_sample_corpus_landed(es, fresh_settings, base)
    assert report["indexed"] == len(stored)
    alias = fresh_settings.index_alias
    one = es.get(index=alias, id=url_id(relevant[0].raw["canonical"].replace("{BASE_URL}",
                                                                             base)))["_source"]
    assert one["language"] == relevant[0].raw["language"]
    threshold = load_yaml(CONFIG_DIR / "topic.yaml")["threshold"]
    assert one["published_at"] and one["relevance"]["score"] >= threshold and one["entities"]
    assert one["ingest"] == {"run_id": report["run_id"], "mode": "poll",
                             "item_url": relevant[0].raw["feed_link"].replace("{BASE_URL}", base)}

    # An outlet with two feeds is one source.
    continental = es.search(index=alias, size=50, source_includes=["source"],
                            query={"prefix": {"url": f"{base}/continental-times/"}})
    assert {h["_source"]["source"]["name"] for h in continental["hits"]["hits"]} == {
        "The Continental Times"}

    # Second run: every feed answers 304, nothing is fetched or indexed again.
    requests_before = len(site.requests)
    again = _ingest(fresh_settings, feeds_file)
    assert {f["status"] for f in again["feeds"]} == {"not_modified"}
    assert again["fetched"] == again["indexed"] == 0
    # only the feeds are asked: the sites' robots.txt answers were kept by the first run
    new_requests = site.requests[requests_before:]
    assert new_requests and {status for _, status in new_requests} == {304}
    assert es.count(index=alias)["count"] == len(stored)


def test_ingest_without_elasticsearch_fails_clearly(fresh_settings: Settings,
                                                    es: Elasticsearch, site: SampleSite,
                                                    feeds_file: Path) -> None:
    result = newsroom(fresh_settings, "ingest", "--feeds", str(feeds_file), "--json",
                      url="http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Elasticsearch is not reachable at http://127.0.0.1:9" in lines[0]
    assert site.requests == []  # no feed was even fetched
    es.indices.refresh(index=fresh_settings.ledger_index)
    assert es.count(index=fresh_settings.ledger_index)["count"] == 0


def test_extract_command_json(site: SampleSite, fresh_settings: Settings) -> None:
    (sample,) = [a for a in sample_articles() if a.raw["language"] == "ru"][:1]
    result = newsroom(fresh_settings, "extract", str(sample.page_path), "--url",
                      sample.url(site.base_url), "--json")
    assert result.returncode == 0, result.stderr
    fields = json.loads(result.stdout)
    assert fields["title"] == sample.raw["title"] and fields["language"] == "ru"
    assert fields["text"].split("\n\n")[0] == sample.gold_text.split("\n\n")[0]
    assert fields["relevance"]["relevant"] is sample.raw["relevant"]

    fetched = newsroom(fresh_settings, "extract", sample.url(site.base_url), "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["text"] == fields["text"]

    missing = newsroom(fresh_settings, "extract", f"{site.base_url}/nope.html", "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"]["reason"] == "http_404"


def test_search_command_json(fresh_settings: Settings, es: Elasticsearch, site: SampleSite,
                             feeds_file: Path) -> None:
    _ingest(fresh_settings, feeds_file)
    result = newsroom(fresh_settings, "search", "Putin", "--limit", "3", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["query"] == "Putin" and found["total"] >= 3 and len(found["hits"]) == 3
    assert all("<mark>Putin" in " ".join(hit["highlights"]) for hit in found["hits"])
    assert set(found["hits"][0]) == {"id", "score", "title", "url", "source", "published_at",
                                     "language", "persons", "duplicate_count", "highlights"}
    for name in ("Xi Jinping", "习近平", "Си Цзиньпин"):  # any alias finds the one person
        by_entity = json.loads(newsroom(fresh_settings, "search", "--entity", name,
                                        "--limit", "50", "--json").stdout)
        languages = {hit["language"] for hit in by_entity["hits"]}
        assert {"en", "ru", "zh"} <= languages
        assert all("Xi Jinping" in hit["persons"] for hit in by_entity["hits"])
    since = json.loads(newsroom(fresh_settings, "search", "", "--since", "2026-11-15",
                                "--limit", "50", "--json").stdout)
    assert since["hits"] and all(hit["published_at"] >= "2026-11-15" for hit in since["hits"])


def test_transient_failures_are_retried_until_they_succeed(tmp_path: Path, es: Elasticsearch,
                                                           fresh_settings: Settings) -> None:
    """An article whose site is down is recorded as a retryable failure and fetched again on
    the next runs, though the feed itself answers 304, until it is indexed."""
    import shutil
    import socket

    from pipeline.ingest import Ingestor
    from pipeline.ledger import ledger_id
    from pipeline.settings import Feed

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down_port = probe.getsockname()[1]
    story = next(a for a in sample_articles() if a.raw["relevant"] and a.outlet == "northwire")
    article_root = tmp_path / "articles"
    (article_root / "late").mkdir(parents=True)
    shutil.copy(story.page_path, article_root / "late" / "story.html")
    story_url = f"http://127.0.0.1:{down_port}/late/story.html"
    (tmp_path / "feeds" / "f").mkdir(parents=True)
    (tmp_path / "feeds" / "f" / "rss.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><link>x</link>'
        f"<description>d</description><item><title>Late</title><link>{story_url}</link>"
        "</item></channel></rss>")

    # The runs follow each other at once here; in production a poll interval (longer than
    # `host_rest`) passes between them, so the down host is no longer resting.
    settings = replace(fresh_settings, http=replace(fresh_settings.http, host_rest=0.0))
    with SampleSite(root=tmp_path / "feeds") as feeds, Ingestor(settings, es=es) as ingestor:
        feed = Feed(name="F", url=f"{feeds.base_url}/f/rss.xml")
        first = ingestor.ingest_feed(feed, "run-1")
        assert (first.failed, first.errors[0]["reason"]) == (1, "connection_error")
        second = ingestor.ingest_feed(feed, "run-2")
        assert second.status == "not_modified" and second.failed == 1
        record = es.get(index=fresh_settings.ledger_index, id=ledger_id(story_url))["_source"]
        assert record["attempts"] == 2 and record["retryable"] is True
        with SampleSite(port=down_port, root=article_root):
            third = ingestor.ingest_feed(feed, "run-3")
        assert third.status == "not_modified" and third.indexed == 1
        fourth = ingestor.ingest_feed(feed, "run-4")
        assert fourth.seen == fourth.fetched == 0  # settled: not fetched again
    assert es.get(index=fresh_settings.ledger_index,
                  id=ledger_id(story_url))["_source"]["status"] == "indexed"


def _corpus_state(es: Elasticsearch, alias: str) -> dict[str, set[str]]:
    """Each indexed URL with the URLs recorded as its duplicates."""
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=500, source_includes=["url", "duplicates"])["hits"]["hits"]
    return {h["_source"]["url"]: {d["url"] for d in h["_source"].get("duplicates") or []}
            for h in hits}


def test_same_documents_in_any_feed_order_and_in_concurrent_runs(
        fresh_settings: Settings, es: Elasticsearch, site: SampleSite, tmp_path: Path) -> None:
    """The syndicated wire copy (published after the wire's original) is recorded on the
    original whichever feed comes first, and two runs at once leave the same corpus."""
    from dataclasses import replace

    from pipeline.ingest import ingest
    from pipeline.settings import load_feeds
    from pipeline.store import connect, ensure_indices
    from tests.conftest import write_feeds_file

    feeds = load_feeds(write_feeds_file(tmp_path / "feeds.yaml", site.base_url))
    (copy,) = sample_articles("syndicated_copy")
    original_url = f"{site.base_url}/{copy.raw['duplicate_of']}"
    copy_url = copy.raw["canonical"].replace("{BASE_URL}", site.base_url)

    states = []
    for name, order in (("forward", feeds), ("reversed", feeds[::-1])):
        settings = replace(fresh_settings, index_alias=f"{fresh_settings.index_alias}-{name}")
        client = connect(settings)
        ensure_indices(client, settings)
        ingest(order, settings, f"run-{name}", es=client)
        states.append(_corpus_state(client, settings.index_alias))
        assert copy_url in states[-1][original_url] and copy_url not in states[-1]

    concurrent = replace(fresh_settings, index_alias=f"{fresh_settings.index_alias}-together")
    client = connect(concurrent)
    ensure_indices(client, concurrent)
    halves = [feeds[::2], feeds[1::2][::-1]]
    runs = [threading.Thread(target=ingest, args=(half, concurrent, f"run-{i}", "poll", client))
            for i, half in enumerate(halves)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    states.append(_corpus_state(client, concurrent.index_alias))
    assert states[0] == states[1] == states[2]
    for name in ("forward", "reversed", "together"):
        client.options(ignore_status=404).indices.delete(
            index=f"{fresh_settings.index_alias}-{name}*", expand_wildcards="all")
        client.options(ignore_status=404).indices.delete_index_template(
            name=f"{fresh_settings.index_alias}-{name}-template")


def test_small_batches_leave_the_same_corpus(fresh_settings: Settings, es: Elasticsearch,
                                             site: SampleSite, feeds_file: Path) -> None:
    """Items are fetched, written and recorded in batches of `ingest.batch_size`; batches of
    two leave the corpus one batch per feed leaves."""
    from dataclasses import replace

    from pipeline.ingest import ingest
    from pipeline.settings import load_feeds
    from pipeline.store import connect, ensure_indices

    feeds = load_feeds(feeds_file)
    small = replace(fresh_settings, batch_size=2)
    report = ingest(feeds, small, "run-small", es=es)
    whole = replace(fresh_settings, index_alias=f"{fresh_settings.index_alias}-whole",
                    batch_size=1000)
    whole_es = connect(whole)
    ensure_indices(whole_es, whole)
    try:
        ingest(feeds, whole, "run-whole", es=whole_es)
        assert _corpus_state(es, small.index_alias) == _corpus_state(whole_es,
                                                                     whole.index_alias)
        assert report["indexed"] == es.count(index=small.index_alias)["count"]
    finally:
        whole_es.options(ignore_status=404).indices.delete(index=f"{whole.index_alias}*",
                                                           expand_wildcards="all")
        whole_es.options(ignore_status=404).indices.delete_index_template(
            name=f"{whole.index_alias}-template")


def test_an_item_the_ledger_cannot_hold_fails_alone(tmp_path: Path, es: Elasticsearch,
                                                    fresh_settings: Settings) -> None:
    """A feed item with a 33,000-character URL (over what Elasticsearch indexes as one
    keyword) fails on its own, `url_too_long`, settled, beside a healthy item that lands; the
    ledger write does not fail for the batch, and the next run takes neither again."""
    import shutil

    from pipeline.ingest import Ingestor
    from pipeline.ledger import ledger_id
    from pipeline.settings import Feed

    story = next(a for a in sample_articles() if a.raw["relevant"] and a.outlet == "northwire")
    root = tmp_path / "site"
    (root / "f").mkdir(parents=True)
    shutil.copy(story.page_path, root / "f" / "story.html")
    with SampleSite(root=root) as site, Ingestor(fresh_settings, es=es) as ingestor:
        healthy = f"{site.base_url}/f/story.html"
        huge = f"{site.base_url}/f/story.html?q=" + "x" * 33_000
        (root / "f" / "rss.xml").write_text(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><link>x</link>'
            f"<description>d</description><item><title>Huge</title><link>{huge}</link></item>"
            f"<item><title>Fine</title><link>{healthy}</link></item></channel></rss>")
        feed = Feed(name="F", url=f"{site.base_url}/f/rss.xml")
        first = ingestor.ingest_feed(feed, "run-1")
        assert first.indexed == 1 and [e["reason"] for e in first.errors] == ["url_too_long"]
        record = es.get(index=fresh_settings.ledger_index, id=ledger_id(huge))["_source"]
        assert record["status"] == "failed" and record["retryable"] is False
        assert huge.startswith(record["url"])
        (root / "f" / "rss.xml").write_text((root / "f" / "rss.xml").read_text() + " ")
        second = ingestor.ingest_feed(feed, "run-2")  # the feed changed: both listed again
        assert second.fetched == 0 and second.errors == []


def test_another_sites_page_claiming_an_article_does_not_take_it_over(
        tmp_path: Path, es: Elasticsearch, fresh_settings: Settings, site: SampleSite,
        feeds_file: Path) -> None:
    """An aggregator's page that declares an outlet's article as its canonical URL is its
    own page: a copy of the article, recorded on it, never written over it."""
    from pipeline.ingest import Ingestor
    from pipeline.ledger import ledger_id
    from pipeline.settings import Feed, load_feeds

    northwire = next(f for f in load_feeds(feeds_file) if f.name == "Northern Wire")
    story = next(a for a in sample_articles() if a.raw["relevant"] and a.outlet == "northwire")
    original_url = story.raw["canonical"].replace("{BASE_URL}", site.base_url)
    root = tmp_path / "aggregator"
    (root / "a").mkdir(parents=True)
    page = republished_later(story, site.base_url)
    (root / "a" / "copy.html").write_text(page, encoding="utf-8")
    with Ingestor(fresh_settings, es=es) as ingestor:
        ingestor.ingest_feed(northwire, "run-outlet")
        before = es.get(index=fresh_settings.index_alias, id=url_id(original_url))["_source"]
        with SampleSite(root=root) as aggregator:
            copy_url = f"{aggregator.base_url}/a/copy.html"
            (root / "a" / "rss.xml").write_bytes(rss([Item(copy_url, "Copy")]))
            report = ingestor.ingest_feed(
                Feed(name="Aggregator", url=f"{aggregator.base_url}/a/rss.xml"), "run-agg")
    after = es.get(index=fresh_settings.index_alias, id=url_id(original_url))["_source"]
    assert report.duplicate == 1 and report.indexed == 0
    assert after["source"] == before["source"] and after["text"] == before["text"]
    assert after["url"] == original_url
    assert copy_url in {d["url"] for d in after["duplicates"]}
    record = es.get(index=fresh_settings.ledger_index, id=ledger_id(copy_url))["_source"]
    assert record["status"] == "duplicate" and record["duplicate_of"] == url_id(original_url)


@pytest.mark.parametrize("amp_first", [True, False])
def test_an_articles_own_page_gives_its_text_whichever_variant_a_feed_lists_first(
        tmp_path: Path, es: Elasticsearch, fresh_settings: Settings, site: SampleSite,
        amp_first: bool) -> None:
    """A feed listing an article's AMP page and the article itself in one batch: the
    document holds the article's own text and is indexed by its own URL, the AMP page a
    `same_url` duplicate, in either order."""
    from pipeline.ingest import Ingestor
    from pipeline.ledger import ledger_id
    from pipeline.settings import Feed

    amp = next(a for a in sample_articles(None) if a.raw["kind"] == "amp_copy")
    amp_url, own_url = amp.url(site.base_url), amp.raw["canonical"].replace(
        "{BASE_URL}", site.base_url)
    root = tmp_path / "feed"
    root.mkdir()
    order = [amp_url, own_url] if amp_first else [own_url, amp_url]
    (root / "rss.xml").write_bytes(rss([Item(url, "Power of Siberia") for url in order]))
    with SampleSite(root=root) as feeds, Ingestor(fresh_settings, es=es) as ingestor:
        ingestor.ingest_feed(Feed(name="Both", url=f"{feeds.base_url}/rss.xml"), "run-both")
    stored = es.get(index=fresh_settings.index_alias, id=url_id(own_url))["_source"]
    assert stored["ingest"]["item_url"] == own_url
    assert not stored["text"].startswith("Energy")  # the AMP page's section label
    assert es.get(index=fresh_settings.ledger_index, id=ledger_id(own_url))["_source"][
        "status"] == "indexed"
    amp_record = es.get(index=fresh_settings.ledger_index, id=ledger_id(amp_url))["_source"]
    assert (amp_record["status"], amp_record["reason"]) == ("duplicate", "same_url")


def test_a_rerun_settles_two_indexers_a_killed_run_left_for_one_document(
        tmp_path: Path, es: Elasticsearch, fresh_settings: Settings, site: SampleSite) -> None:
    """Two feeds polled at once, killed between their ledger writes and the check after them,
    may leave an article and its tracking-URL variant both `indexed`. The next run that lists
    the variant leaves one: the article's own URL `indexed`, the variant its `same_url`
    duplicate, as an uninterrupted run does."""
    from pipeline.ingest import Ingestor
    from pipeline.ledger import LedgerEntry, ledger_id
    from pipeline.records import Outcome
    from pipeline.settings import Feed

    tracked = next(a for a in sample_articles(None) if a.raw["kind"] == "tracking_link")
    variant = tracked.raw["feed_link"].replace("{BASE_URL}", site.base_url)
    own = tracked.raw["canonical"].replace("{BASE_URL}", site.base_url)
    root = tmp_path / "feed"
    root.mkdir()
    with SampleSite(root=root) as feeds, Ingestor(fresh_settings, es=es) as ingestor:
        (root / "own.xml").write_bytes(rss([Item(own, "Kremlin readies")]))
        ingestor.ingest_feed(Feed(name="Own", url=f"{feeds.base_url}/own.xml"), "run-own")
        # what the killed run left: the variant recorded `indexed` for the same document
        ingestor.ledger.record([LedgerEntry(variant, "Tracked", Outcome.INDEXED, "run-killed",
                                            doc_id=url_id(own))])
        (root / "tracked.xml").write_bytes(rss([Item(variant, "Kremlin readies")]))
        ingestor.ingest_feed(Feed(name="Tracked", url=f"{feeds.base_url}/tracked.xml"),
                             "run-again")
    es.indices.refresh(index=fresh_settings.ledger_index)
    records = {url: es.get(index=fresh_settings.ledger_index, id=ledger_id(url))["_source"]
               for url in (own, variant)}
    assert records[own]["status"] == "indexed" and records[own]["doc_id"] == url_id(own)
    assert (records[variant]["status"], records[variant]["reason"],
            records[variant]["duplicate_of"]) == ("duplicate", "same_url", url_id(own))


def test_a_rerun_settles_an_indexed_record_whose_document_was_demoted(
        tmp_path: Path, es: Elasticsearch, fresh_settings: Settings, site: SampleSite) -> None:
    """A run killed after its ledger write, before it re-pointed the records of a document
    another worker demoted meanwhile, leaves an item `indexed` for a document that is gone.
    The next run that lists the item makes it a duplicate of the document that took the
    demoted one over."""
    from pipeline.ingest import Ingestor
    from pipeline.ledger import LedgerEntry, ledger_id
    from pipeline.records import Outcome
    from pipeline.settings import Feed

    copy = next(a for a in sample_articles(None) if a.raw["kind"] == "syndicated_copy")
    copy_url = copy.url(site.base_url)
    original_url = f"{site.base_url}/{copy.raw['duplicate_of']}"
    root = tmp_path / "feed"
    root.mkdir()
    (root / "both.xml").write_bytes(rss([Item(original_url, "Original"), Item(copy_url, "Copy")]))
    with SampleSite(root=root) as feeds, Ingestor(fresh_settings, es=es) as ingestor:
        feed = Feed(name="Both", url=f"{feeds.base_url}/both.xml")
        ingestor.ingest_feed(feed, "run-one")
        assert copy_url in {d["url"] for d in es.get(
            index=fresh_settings.index_alias, id=url_id(original_url))["_source"]["duplicates"]}
        # what the killed run left: the copy recorded as having indexed its own (gone) document
        ingestor.ledger.record([LedgerEntry(copy_url, "Both", Outcome.INDEXED, "run-killed",
                                            doc_id=url_id(copy_url))])
        # the killed run kept no validators for the feed: the next poll gets it whole
        es.delete(index=fresh_settings.feed_state_index, id=ledger_id(feed.url), refresh=True)
        ingestor.ingest_feed(feed, "run-again")
    es.indices.refresh(index=fresh_settings.ledger_index)
    record = es.get(index=fresh_settings.ledger_index, id=ledger_id(copy_url))["_source"]
    assert (record["status"], record["doc_id"], record["duplicate_of"]) == (
        "duplicate", None, url_id(original_url))


def test_a_rerun_settles_a_copy_a_killed_run_demoted_but_never_re_pointed(
        tmp_path: Path, es: Elasticsearch, fresh_settings: Settings, site: SampleSite) -> None:
    """A run killed while demoting a copy onto its original (the copy's document deleted, its
    record not yet re-pointed, the original's record not written) leaves the copy's item
    `indexed` for a document that is gone, on a feed with nothing new. The rerun of the
    original's feed re-points it."""
    from pipeline.ingest import Ingestor
    from pipeline.ledger import LedgerEntry, ledger_id
    from pipeline.records import Outcome
    from pipeline.settings import Feed

    copy = next(a for a in sample_articles(None) if a.raw["kind"] == "syndicated_copy")
    copy_url = copy.url(site.base_url)
    original_url = f"{site.base_url}/{copy.raw['duplicate_of']}"
    root = tmp_path / "feed"
    root.mkdir()
    (root / "copy.xml").write_bytes(rss([Item(copy_url, "Copy")]))
    (root / "original.xml").write_bytes(rss([Item(original_url, "Original")]))
    with SampleSite(root=root) as feeds, Ingestor(fresh_settings, es=es) as ingestor:
        original_feed = Feed(name="Original", url=f"{feeds.base_url}/original.xml")
        ingestor.ingest_feed(Feed(name="Copy", url=f"{feeds.base_url}/copy.xml"), "run-copy")
        ingestor.ingest_feed(original_feed, "run-original")  # demotes the copy onto it
        assert not es.exists(index=fresh_settings.index_alias, id=url_id(copy_url))
        uninterrupted = es.get(index=fresh_settings.ledger_index, id=ledger_id(copy_url))[
            "_source"]["reason"]
        # what the killed run left: the copy's record not re-pointed, the original's and the
        # original feed's state not written
        ingestor.ledger.record([LedgerEntry(copy_url, "Copy", Outcome.INDEXED, "run-copy",
                                            doc_id=url_id(copy_url))])
        es.delete(index=fresh_settings.ledger_index, id=ledger_id(original_url), refresh=True)
        es.delete(index=fresh_settings.feed_state_index, id=ledger_id(original_feed.url),
                  refresh=True)
        ingestor.ingest_feed(original_feed, "run-again")
    es.indices.refresh(index=fresh_settings.ledger_index)
    record = es.get(index=fresh_settings.ledger_index, id=ledger_id(copy_url))["_source"]
    assert (record["status"], record["doc_id"], record["duplicate_of"]) == (
        "duplicate", None, url_id(original_url))
    # with the reason the uninterrupted run gave it (the copy is the same text)
    assert record["reason"] == uninterrupted == "same_text"
    assert es.get(index=fresh_settings.ledger_index, id=ledger_id(original_url))["_source"][
        "status"] == "indexed"


def test_a_backdated_copy_never_takes_over_an_outlets_article_where_it_can_be_told(
        tmp_path: Path, fresh_settings: Settings, site: SampleSite, feeds_file: Path) -> None:
    """An aggregator republishing an outlet's article under a date a year earlier: the
    outlet's page is the document in either order, the copy recorded on it, when the
    aggregator's feed is marked `republisher`, or when that feed had been read long after the
    copy's claimed date without listing it (the claim is belied). Unmarked and read for the
    first time, the earlier claim wins: nothing tells it false."""
    from pipeline.discover import FeedState
    from pipeline.ingest import Ingestor
    from pipeline.settings import Feed, load_feeds
    from pipeline.store import connect, ensure_indices

    northwire = next(f for f in load_feeds(feeds_file) if f.name == "Northern Wire")
    story = next(a for a in sample_articles() if a.raw["relevant"] and a.outlet == "northwire")
    original_url = story.raw["canonical"].replace("{BASE_URL}", site.base_url)
    root = tmp_path / "aggregator"
    (root / "a").mkdir(parents=True)
    (root / "a" / "copy.html").write_text(republished_later(story, site.base_url, hours=-8760),
                                          encoding="utf-8")
    outcomes = {}
    with SampleSite(root=root) as aggregator:
        copy_url = f"{aggregator.base_url}/a/copy.html"
        (root / "a" / "rss.xml").write_bytes(rss([Item(copy_url, "Copy")]))
        for marked, copy_first, read_before in ((True, True, False), (True, False, False),
                                                (False, True, False), (False, True, True),
                                                (False, False, True)):
            scoped = replace(fresh_settings, index_alias=f"{fresh_settings.index_alias}-"
                                                         f"{marked:d}{copy_first:d}{read_before:d}")
            es = connect(scoped)
            ensure_indices(es, scoped)
            feed = Feed(name="Aggregator", url=f"{aggregator.base_url}/a/rss.xml",
                        republisher=marked)
            with Ingestor(scoped, es=es) as ingestor:
                if read_before:  # an earlier poll of the aggregator's feed, which was empty
                    ingestor.feed_states.save_success(feed, FeedState(), items_seen=0)
                for polled in ((feed, northwire) if copy_first else (northwire, feed)):
                    ingestor.ingest_feed(polled, f"run-{polled.name}")
            es.indices.refresh(index=scoped.index_alias)
            hits = es.search(index=scoped.index_alias, size=50, source=["url", "duplicates"],
                             query={"terms": {"_id": [url_id(original_url),
                                                      url_id(copy_url)]}})["hits"]["hits"]
            outcomes[(marked, copy_first, read_before)] = {
                hit["_source"]["url"]: sorted(d["url"] for d in hit["_source"]["duplicates"])
                for hit in hits}
    for case in ((True, True, False), (True, False, False), (False, True, True),
                 (False, False, True)):
        assert outcomes[case] == {original_url: [copy_url]}, case
    assert outcomes[(False, True, False)] == {copy_url: [original_url]}


def test_a_slow_feed_is_recorded_as_it_goes(es: Elasticsearch, fresh_settings: Settings) -> None:
    """Items taken before a stalling one are written and recorded while it stalls (after
    `flush_after_s`), not only at the end of the batch: a run stopped by its timeout keeps
    them."""

    from pipeline.ingest import Ingestor
    from pipeline.ledger import ledger_id
    from pipeline.settings import Feed
    from tests.chaos import server as chaos
    from tests.chaos.server import ChaosServer
    from tests.chaos.suite import HEALTHY, sample_page

    settings = replace(fresh_settings, flush_after_s=0.0, http=replace(
        fresh_settings.http, read_timeout=4.0, respect_robots=False, per_host_delay=0.0))
    with ChaosServer() as site, ChaosServer() as slow:
        healthy = site.route(f"/{HEALTHY}", chaos.page(sample_page(HEALTHY, site.base_url)))
        stalled = slow.route("/stall", chaos.delayed_headers(10, chaos.page(b"late")))
        site.route("/feed.xml", chaos.page(rss([Item(healthy, "ok"), Item(stalled, "stall")]),
                                           "application/rss+xml"))
        with Ingestor(settings, es=es) as ingestor:
            run = threading.Thread(target=ingestor.ingest_feed, args=(
                Feed(name="slow", url=site.url("/feed.xml")), "run-slow"))
            run.start()
            while not slow.content_hits() and run.is_alive():
                time.sleep(0.05)
            # poll while the stalled request is in flight (it times out 4 s after it began);
            # a busy node may take a second to write, so no fixed pause decides the outcome
            stalled_until = time.monotonic() + 3.5
            recorded_meanwhile = False
            while not recorded_meanwhile and time.monotonic() < stalled_until:
                recorded_meanwhile = bool(
                    es.exists(index=settings.ledger_index, id=ledger_id(healthy)))
                time.sleep(0.05)
            run.join()
    assert recorded_meanwhile
    assert es.get(index=settings.ledger_index, id=ledger_id(healthy))["_source"]["status"] == \
        "indexed"
    assert es.get(index=settings.ledger_index, id=ledger_id(stalled))["_source"]["reason"] == \
        "timeout"


def test_a_report_kept_in_xcom_holds_a_bounded_number_of_errors() -> None:
    # a failing 10,000-item feed must not write megabytes into Airflow's metadata DB each run
    from pipeline.ingest import XCOM_ERRORS, FeedReport

    report = FeedReport(name="F", url="u", failed=10_000, errors=[
        {"url": f"https://example.org/{n}", "reason": "http_404", "error": "HTTP 404"}
        for n in range(10_000)])
    kept = report.as_dict(max_errors=XCOM_ERRORS)
    assert len(kept["errors"]) == XCOM_ERRORS and kept["errors_left_out"] == 10_000 - XCOM_ERRORS
    assert kept["failed"] == 10_000
    assert len(report.as_dict()["errors"]) == 10_000  # the CLI's --json keeps them all


def test_a_runs_totals_are_the_ledgers_outcomes_once_settled() -> None:
    # the DAG's report sums its groups' feed reports; a copy one group indexed before its
    # original came in another is a duplicate in the ledger, and the totals say so
    from pipeline.ingest import FeedReport, summarize

    first = FeedReport(name="Copies", url="c", seen=2, fetched=2, indexed=2).as_dict()
    second = FeedReport(name="Originals", url="o", seen=2, fetched=2, indexed=2).as_dict()
    settled = {"indexed": 2, "duplicate": 2}
    summary = summarize("run", [first, second], settled)
    assert (summary["seen"], summary["indexed"], summary["duplicate"]) == (4, 2, 2)
    assert summarize("run", [first, second], None)["indexed"] == 4  # the ledger unreadable
    # an item whose ledger record was not written is missing from the ledger's counts
    second["errors"] = [{"url": "u", "reason": "ledger_write_failed", "error": "refused"}]
    assert summarize("run", [first, second], settled)["indexed"] == 4


class _Slow:
    """Servers on loopback (one "host" each: the port is part of the host) whose pages answer
    after a pause, counting the requests in flight at once, per host and in all."""

    def __init__(self, hosts: int, pause: float = 0.3) -> None:
        self.lock = threading.Lock()
        self.now: dict[int, int] = {}
        self.most: dict[int, int] = {}
        self.most_in_all = 0
        self.asked: list[str] = []  # the paths asked for, in order
        slow = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                port = self.server.server_address[1]
                slow.asked.append(self.path)
                counted = self.path != "/robots.txt"
                if counted:
                    with slow.lock:
                        slow.now[port] = slow.now.get(port, 0) + 1
                        slow.most[port] = max(slow.most.get(port, 0), slow.now[port])
                        slow.most_in_all = max(slow.most_in_all, sum(slow.now.values()))
                time.sleep(pause)
                if counted:
                    with slow.lock:
                        slow.now[port] -= 1
                body = (slow.feeds.get((port, self.path)) or b"<html><body><p>short</p>"
                        b"</body></html>")
                kind = "application/rss+xml" if (port, self.path) in slow.feeds else "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.feeds: dict[tuple[int, str], bytes] = {}
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(hosts)]
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.bases = [f"http://127.0.0.1:{s.server_address[1]}" for s in self.servers]

    def feed(self, host: int, urls: list[str]) -> str:
        """Serve a feed listing `urls` on host `host`; its URL."""
        port = self.servers[host].server_address[1]
        self.feeds[(port, "/feed.xml")] = rss([Item(url, "Item") for url in urls])
        return f"{self.bases[host]}/feed.xml"

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def poll(self, es: Elasticsearch, settings: Settings, pages: list[str]) -> FeedReport:
        """One poll of a feed on host 0 listing `pages`, with `settings`; its report. The
        servers are closed afterwards."""
        from pipeline.ingest import Ingestor
        from pipeline.settings import Feed

        try:
            with Ingestor(settings, es=es) as ingestor:
                return ingestor.ingest_feed(Feed(name="Polled", url=self.feed(0, pages)), "run-1")
        finally:
            self.close()


def test_a_feeds_pages_on_many_hosts_are_fetched_at_once_within_each_hosts_limit(
        es: Elasticsearch, fresh_settings: Settings) -> None:
    slow = _Slow(hosts=5)
    report = slow.poll(es, replace(fresh_settings, fetch_workers=8, http=replace(
        fresh_settings.http, per_host_concurrency=1, per_host_delay=0.0)),
        [f"{base}/story-{n}.html" for base in slow.bases[1:] for n in range(3)])
    assert report.seen == report.fetched == 12
    page_hosts = [int(base.rsplit(":", 1)[1]) for base in slow.bases[1:]]
    assert max(slow.most[port] for port in page_hosts) == 1  # each host's limit held
    assert slow.most_in_all >= 3  # while several hosts were asked at once


def test_pages_being_read_do_not_hold_back_the_fetch_of_the_feeds_next_pages(
        es: Elasticsearch, fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two fetch threads: each hands its page over to be read and goes on to the next. The
    # first two pages' readings are held until every page has been asked for (as when the
    # readers are still starting, busy, or stuck on hostile pages): the host's turns are not
    # lost to them.
    from concurrent.futures import Future

    import pipeline.cpu
    from pipeline.cpu import CpuStages, PendingReading
    from pipeline.records import FeedItem, Page

    slow = _Slow(hosts=2, pause=0.0)
    pages = [f"{slow.bases[1]}/story-{n}.html" for n in range(4)]
    held: list[bool] = []  # for each held reading: held until every page was asked for

    class FirstReadingsHeld(CpuStages):
        def begin_read(self, page: Page, item: FeedItem, source_name: str | None
                       ) -> PendingReading:
            reading = super().begin_read(page, item, source_name)
            if page.url not in pages[:2]:
                return reading
            later: Future[Any] = Future()

            def release() -> None:
                deadline = time.monotonic() + 10.0
                while (sum(path.startswith("/story-") for path in slow.asked) < len(pages)
                       and time.monotonic() < deadline):
                    time.sleep(0.02)
                held.append(time.monotonic() < deadline)
                try:
                    later.set_result(reading.result())
                except Exception as exc:  # noqa: BLE001 (the page's own outcome)
                    later.set_exception(exc)

            threading.Thread(target=release, daemon=True).start()
            return PendingReading(later, None)

    monkeypatch.setattr(pipeline.cpu, "CpuStages", FirstReadingsHeld)
    settings = replace(fresh_settings, fetch_workers=2, cpu_workers=1, http=replace(
        fresh_settings.http, per_host_delay=0.0))
    report = slow.poll(es, settings, pages)
    assert held == [True, True]
    assert report.seen == report.fetched == len(pages)


def test_newsroom_ingest_polls_feeds_at_once(es: Elasticsearch,
                                             fresh_settings: Settings) -> None:
    from pipeline.ingest import ingest
    from pipeline.settings import Feed

    slow = _Slow(hosts=6)
    try:
        feeds = [Feed(name=f"F{n}", url=slow.feed(n, [])) for n in range(6)]
        settings = replace(fresh_settings, feed_workers=6, http=replace(
            fresh_settings.http, per_host_delay=0.0))
        summary = ingest(feeds, settings, "run-1", es=es)
    finally:
        slow.close()
    assert [feed["name"] for feed in summary["feeds"]] == [f"F{n}" for n in range(6)]
    assert slow.most_in_all >= 3


def test_each_of_a_runs_processes_totals_only_the_feeds_it_polled(
        es: Elasticsearch, fresh_settings: Settings) -> None:
    # the DAG's group tasks share one run id; a task's totals (its XCom, its log) are its own
    # feeds' items, whatever the other tasks have recorded under the run meanwhile
    from pipeline.ingest import ingest
    from pipeline.settings import Feed

    slow = _Slow(hosts=2, pause=0.0)
    try:
        settings = replace(fresh_settings, http=replace(fresh_settings.http, per_host_delay=0.0))
        first = ingest([Feed(name="A", url=slow.feed(0, [f"{slow.bases[0]}/a-{n}.html"
                                                        for n in range(2)]))],
                       settings, "run-1", es=es)
        second = ingest([Feed(name="B", url=slow.feed(1, [f"{slow.bases[1]}/b-{n}.html"
                                                         for n in range(3)]))],
                        settings, "run-1", es=es)
    finally:
        slow.close()
    # the pages are too short to be articles: each item fails, and is counted once, where it was
    assert (first["seen"], first["failed"]) == (2, 2)
    assert (second["seen"], second["failed"]) == (3, 3)


def test_a_long_run_shows_progress_on_a_terminal_and_json_stays_clean(
        fresh_settings: Settings, es: Elasticsearch, site: SampleSite, feeds_file: Path) -> None:
    """With stderr a terminal, `newsroom ingest --json` draws pages done, rate and time left
    there, and stdout is the JSON report alone; with stderr a pipe, no bar is drawn."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()  # a terminal 120 columns wide
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = {**os.environ, "ELASTICSEARCH_URL": fresh_settings.elasticsearch_url,
           "NEWSROOM_INDEX": fresh_settings.index_alias, "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
           "NEWSROOM_HOST_DELAY": "0"}
    run = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "ingest", "--feeds",
                            str(feeds_file), "--json"], env=env, stdout=subprocess.PIPE,
                           stderr=follower)
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the run closed its end
            break
        if not chunk:
            break
        drawn += chunk
    stdout, _ = run.communicate(timeout=600)
    os.close(leader)
    assert run.returncode == 0
    report = json.loads(stdout)
    bar = drawn.decode("utf-8", "replace")
    assert "ingest" in bar and "page/s" in bar, bar[-500:]
    assert f"{report['seen']}/{report['seen']}" in bar  # a first run takes every item listed
    piped = newsroom(fresh_settings, "ingest", "--feeds", str(feeds_file), "--json")
    assert piped.returncode == 0 and "page/s" not in piped.stderr
    json.loads(piped.stdout)


def test_the_dags_tasks_each_take_all_of_a_sites_feeds() -> None:
    """The DAG maps its tasks over groups of whole sites, so that one process's per-host
    limits hold for a site: feeds on one registrable domain (or one address and port) go
    together."""
    from pipeline.ingest import host_groups, site_group, site_groups
    from pipeline.settings import Feed

    feeds = [Feed(name=name, url=url) for name, url in (
        ("a", "https://www.example.co.uk/world.xml"), ("b", "https://news.example.co.uk/rss"),
        ("c", "https://other.example.org/feed"), ("d", "http://127.0.0.1:8000/x.xml"),
        ("e", "http://127.0.0.1:8001/y.xml"), ("f", "https://example.co.uk/more.xml"))]
    groups = {site: [feed.name for feed in members]
              for site, members in site_groups(feeds).items()}
    assert groups == {"example.co.uk": ["a", "b", "f"], "example.org": ["c"],
                      "127.0.0.1:8000": ["d"], "127.0.0.1:8001": ["e"]}
    # dealt into as many groups as tasks run at once: every site whole in one of them
    dealt = [{site: [feed.name for feed in members] for site, members in group.items()}
             for group in host_groups(feeds, 2)]
    assert dealt == [{"example.co.uk": ["a", "b", "f"]},
                     {"example.org": ["c"], "127.0.0.1:8000": ["d"], "127.0.0.1:8001": ["e"]}]
    assert len(host_groups(feeds, 10)) == 4 and len(host_groups(feeds, 1)) == 1
    # the DAG's task n of 3 takes group n, each task dealing the feeds alike: every feed is
    # polled by one task, whatever order the tasks run in; a task without a group polls none
    taken = [[feed.name for feed in site_group(feeds, n, 3)] for n in (2, 0, 1)]
    assert sorted(name for names in taken for name in names) == sorted(f.name for f in feeds)
    assert taken[1] == ["a", "b", "f"]
    assert site_group(feeds, 1, 2) == site_group(feeds[::-1], 1, 2)[::-1] == feeds[2:5]
    assert site_group(feeds, 4, 10) == []


def test_a_run_without_feeds_reports_nothing_without_asking_anyone() -> None:
    """A DAG task whose group has no sites (fewer sites than tasks) reports an empty run and
    never reaches Elasticsearch (here there is none at that address)."""
    from pipeline.ingest import ingest

    nowhere = replace(Settings.load(), elasticsearch_url="http://127.0.0.1:9")
    assert ingest([], nowhere, "run-empty") == {
        "run_id": "run-empty", "seen": 0, "fetched": 0, "indexed": 0, "duplicate": 0,
        "irrelevant": 0, "failed": 0, "feeds": []}

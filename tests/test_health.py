"""Feed health: per feed and run, in an index of its own and by `newsroom feeds --json`; a
feed that keeps failing is backed off between a floor and a ceiling, not hammered."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from elasticsearch import Elasticsearch

from pipeline.ingest import Ingestor
from pipeline.ledger import FeedStates, ledger_id
from pipeline.settings import Feed, PollSettings, Settings
from tests.sample_site.server import SampleSite
from tests.test_ingest import newsroom


def test_health_after_each_poll_and_newsroom_feeds(fresh_settings: Settings, es: Elasticsearch,
                                                   site: SampleSite, feeds_file: Path) -> None:
    result = newsroom(fresh_settings, "ingest", "--feeds", str(feeds_file), "--json")
    assert result.returncode == 0, result.stderr
    report = {feed["name"]: feed for feed in json.loads(result.stdout)["feeds"]}
    feeds = json.loads(newsroom(fresh_settings, "feeds", "--json").stdout)["feeds"]
    assert {feed["feed"] for feed in feeds} == set(report)
    for health in feeds:
        run = report[health["feed"]]
        assert health["status"] == "ok" and health["consecutive_failures"] == 0
        assert health["last_success"] and health["next_poll_at"] is None
        assert (health["items_seen"], health["indexed"]) == (run["seen"], run["indexed"])
        assert health["median_fetch_ms"] > 0
        attempted = run["fetched"] + run["fetch_failures"]
        assert health["fetch_failure_rate"] == round(run["fetch_failures"] / attempted, 4)
    herald = next(h for h in feeds if h["feed"] == "The Eastern Herald")
    assert herald["fetch_failure_rate"] > 0  # its 404 item
    assert herald["extraction_failure_rate"] == 0

    text = newsroom(fresh_settings, "feeds").stdout
    assert "The Eastern Herald: ok" in text and "0 failures in a row" in text


def test_failing_feed_is_backed_off_and_recovers(fresh_settings: Settings, es: Elasticsearch,
                                                 tmp_path: Path) -> None:
    settings = replace(fresh_settings, polling=PollSettings(backoff_floor_s=60,
                                                            backoff_ceiling_s=600))
    states = FeedStates(es, settings.feed_state_index, settings.polling)
    assert [states.backoff_s(n) for n in (0, 1, 2, 3, 4, 5, 9)] == [0, 60, 120, 240, 480, 600,
                                                                    600]
    (tmp_path / "f").mkdir()
    with SampleSite(root=tmp_path) as server, Ingestor(settings, es=es) as ingestor:
        feed = Feed(name="Flaky", url=f"{server.base_url}/f/rss.xml")
        first = ingestor.ingest_feed(feed, "run-1")
        assert first.status == "failed" and first.errors[0]["reason"] == "http_404"
        hits = len(server.requests)
        second = ingestor.ingest_feed(feed, "run-2")
        assert second.status == "backed_off" and len(server.requests) == hits  # not asked
        state = states.load(feed.url)
        assert state.error_streak == 1 and state.next_poll_at is not None

        # Once its back-off has passed, it is polled again; a success resets it.
        es.update(index=settings.feed_state_index, id=ledger_id(feed.url),
                  doc={"next_poll_at": "2000-01-01T00:00:00+00:00"}, refresh=True)
        (tmp_path / "f" / "rss.xml").write_text(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><link>x</link>'
            "<description>d</description></channel></rss>")
        third = ingestor.ingest_feed(feed, "run-3")
        assert third.status == "ok" and states.load(feed.url).error_streak == 0
    es.indices.refresh(index=settings.feed_health_index)
    statuses = [hit["_source"]["status"] for hit in es.search(
        index=settings.feed_health_index, sort=[{"run_at": "asc"}],
        query={"term": {"feed": "Flaky"}})["hits"]["hits"]]
    assert statuses == ["failed", "backed_off", "ok"]


def test_fetch_time_is_the_sites_not_our_waits_for_its_turn(es: Elasticsearch,
                                                            fresh_settings: Settings) -> None:
    # four pages of one host, answering after 0.1 s, asked 0.6 s apart: what the feed's health
    # says of the site is how fast it answers, not how long our host delay kept a page waiting
    # (up to 1.8 s here: the median would read about 1 s)
    from tests.test_ingest import _Slow

    slow = _Slow(hosts=2, pause=0.1)
    report = slow.poll(es, replace(fresh_settings, fetch_workers=4, http=replace(
        fresh_settings.http, per_host_concurrency=1, per_host_delay=0.6)),
        [f"{slow.bases[1]}/story-{n}.html" for n in range(4)])
    assert report.fetched == 4 and len(report.fetch_ms) == 4
    # each at least the site's 0.1 s (the first item also asked for robots.txt), none near a
    # host delay
    assert all(100 <= ms < 500 for ms in report.fetch_ms), report.fetch_ms
    assert 100 <= report.as_dict()["median_fetch_ms"] < 500

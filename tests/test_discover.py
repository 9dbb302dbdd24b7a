"""discover: RSS 2.0 and Atom feeds through feedparser, conditional GET with stored validators."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from pipeline.discover import FeedState, parse_feed, poll_feed
from pipeline.fetch import HttpClient
from pipeline.records import ItemError
from pipeline.settings import Feed, HttpSettings, parse_nets
from tests.sample_site.server import SampleSite


@pytest.fixture
def http() -> Iterator[HttpClient]:
    with HttpClient(HttpSettings(allow_nets=parse_nets("127.0.0.0/8"))) as client:
        yield client


@pytest.mark.parametrize(("path", "count"), [
    ("northwire/feed.xml", 8),          # RSS 2.0
    ("eastern-herald/atom.xml", 8),     # Atom, one entry whose page is missing
    ("volga-vestnik/rss.xml", 7),       # Russian titles
    ("huaxia-review/atom.xml", 7),      # Chinese titles
])
def test_feed_items(site: SampleSite, http: HttpClient, path: str, count: int) -> None:
    feed = Feed(name="x", url=f"{site.base_url}/{path}")
    poll = poll_feed(feed, FeedState(), http)
    assert not poll.not_modified
    assert len(poll.items) == count
    for item in poll.items:
        assert item.url.startswith(site.base_url)  # the placeholder was filled in
        assert item.title and item.published_at is not None
        assert item.published_at.tzinfo is not None
        assert item.feed_name == "x"
    assert poll.state.etag and poll.state.last_modified


def test_conditional_get_answers_304_and_keeps_state(site: SampleSite, http: HttpClient) -> None:
    feed = Feed(name="x", url=f"{site.base_url}/northwire/feed.xml")
    first = poll_feed(feed, FeedState(), http)
    again = poll_feed(feed, first.state, http)
    assert again.not_modified and again.items == () and again.state == first.state
    assert site.requests[-1][1] == 304


def test_malformed_feed_is_an_error_with_a_reason(tmp_path, http: HttpClient) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "feed.xml").write_text("<rss><channel><title>oops</title><item>")
    with SampleSite(root=tmp_path) as broken, pytest.raises(ItemError) as caught:
        poll_feed(Feed(name="b", url=f"{broken.base_url}/broken/feed.xml"), FeedState(), http)
    assert caught.value.reason == "bad_feed"


def test_a_json_feed_is_an_error_that_says_so(tmp_path, http: HttpClient) -> None:
    (tmp_path / "feed.json").write_text('{"version": "https://jsonfeed.org/version/1.1", '
                                        '"items": [{"id": "1", "url": "https://example.org/a"}]}')
    with SampleSite(root=tmp_path) as json_site, pytest.raises(ItemError) as caught:
        poll_feed(Feed(name="j", url=f"{json_site.base_url}/feed.json"), FeedState(), http)
    assert caught.value.reason == "bad_feed" and "only RSS and Atom" in caught.value.detail


def test_missing_feed_is_an_http_error(site: SampleSite, http: HttpClient) -> None:
    with pytest.raises(ItemError) as caught:
        poll_feed(Feed(name="x", url=f"{site.base_url}/nowhere.xml"), FeedState(), http)
    assert caught.value.reason == "http_404"


@pytest.mark.parametrize("before", [b"", b"\n\n", b"\xef\xbb\xbf\r\n"])
def test_a_feed_whose_server_names_no_charset_is_read_by_its_declaration(
        tmp_path, http: HttpClient, before: bytes) -> None:
    # "Content-Type: application/rss+xml", as many sites send it: the encoding is the XML
    # declaration's, and a well-formed feed gets no warning; nor does one with blank lines
    # before its declaration, which publishing plugins print
    (tmp_path / "feed.rss").write_bytes(before + (
        '<?xml version="1.0" encoding="windows-1251"?><rss version="2.0"><channel>'
        "<title>Вестник</title><item><title>Путин и Си Цзиньпин провели переговоры</title>"
        "<link>https://example.org/talks.html</link></item></channel></rss>").encode("cp1251"))
    with SampleSite(root=tmp_path) as plain:
        poll = poll_feed(Feed(name="p", url=f"{plain.base_url}/feed.rss"), FeedState(), http)
    assert poll.warning is None
    assert [item.title for item in poll.items] == ["Путин и Си Цзиньпин провели переговоры"]


def test_relative_links_are_read_against_the_feed(tmp_path, http: HttpClient) -> None:
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "feed.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Relative</title>'
        "<item><title>One</title><link>/world/2026/one.html</link></item>"
        "<item><title>Two</title><link>two.html</link></item>"
        "<item><title>Three</title><link>https://example.org/three.html</link></item>"
        "</channel></rss>")
    (tmp_path / "news" / "atom.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        'xml:base="https://example.org/base/"><title>Based</title>'
        '<entry><title>Four</title><id>4</id><link href="four.html"/></entry></feed>')
    with SampleSite(root=tmp_path) as relative:
        rss = poll_feed(Feed(name="r", url=f"{relative.base_url}/news/feed.xml"), FeedState(), http)
        atom = poll_feed(Feed(name="a", url=f"{relative.base_url}/news/atom.xml"), FeedState(),
                         http)
    # as a browser would read them from the feed's address, never a path without a site
    assert [item.url for item in rss.items] == [f"{relative.base_url}/world/2026/one.html",
                                                 f"{relative.base_url}/news/two.html",
                                                 "https://example.org/three.html"]
    assert [item.url for item in atom.items] == ["https://example.org/base/four.html"]


@pytest.mark.parametrize(("language", "channel_language", "published", "expected"), [
    # a time without its offset is the outlet's own clock, not UTC
    ("zh", None, "2026-12-07 10:00:00", datetime(2026, 12, 7, 2, 0, tzinfo=UTC)),
    (None, "zh-cn", "2026-12-07 10:00:00", datetime(2026, 12, 7, 2, 0, tzinfo=UTC)),
    ("ru", None, "Mon, 07 Dec 2026 10:00:00", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),
    # Russian day and month names, a zone's abbreviation, a Russian date
    ("ru", None, "Пн, 07 дек 2026 10:00:00 +0300", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),
    ("en", None, "Mon, 07 Dec 2026 10:00:00 MSK", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),
    ("ru", None, "07.12.2026 10:00", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),
    # an offset or UTC the feed gives stands, whatever the language
    ("zh", None, "Mon, 07 Dec 2026 10:00:00 +0800", datetime(2026, 12, 7, 2, 0, tzinfo=UTC)),
    ("zh", None, "2026-12-07T10:00:00Z", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)),
    ("ru", None, "Mon, 07 Dec 2026 10:00:00 GMT", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)),
    # and so does a zone feedparser knows by its name (RFC 822's: EST is -05:00 in any season)
    ("en", None, "Tue, 07 Jul 2026 10:00:00 EST", datetime(2026, 7, 7, 15, 0, tzinfo=UTC)),
    ("en", None, "Mon, 07 Dec 2026 10:00:00 MST", datetime(2026, 12, 7, 17, 0, tzinfo=UTC)),
    ("en", None, "Mon, 07 Dec 2026 10:00:00 CST", datetime(2026, 12, 7, 16, 0, tzinfo=UTC)),
    # ...however the time is written (feedparser loses the time of the first, the zone of the
    # second, and cannot read the third)
    ("en", None, "2026-12-07 10:00:00 EST", datetime(2026, 12, 7, 15, 0, tzinfo=UTC)),
    ("en", None, "2026-12-07T10:00:00 MST", datetime(2026, 12, 7, 17, 0, tzinfo=UTC)),
    ("en", None, "Jul 7, 2026 10:00 AM EST", datetime(2026, 7, 7, 15, 0, tzinfo=UTC)),
    # except where the zone usual for the language goes by that name: in a Chinese feed CST is
    # China Standard Time, however the time is written (Java's servers: "... CST 2026")
    ("zh", None, "Mon, 07 Dec 2026 10:00:00 CST", datetime(2026, 12, 7, 2, 0, tzinfo=UTC)),
    (None, "zh-cn", "Mon Dec 07 10:00:00 CST 2026", datetime(2026, 12, 7, 2, 0, tzinfo=UTC)),
    ("zh", None, "2026-12-07 10:00:00 CST", datetime(2026, 12, 7, 2, 0, tzinfo=UTC)),
    ("ru", None, "Mon, 07 Dec 2026 10:00:00 MSK", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),
])
def test_an_item_s_time_is_read_in_its_feed_s_zone_when_it_gives_none(
        language: str | None, channel_language: str | None, published: str,
        expected: datetime) -> None:
    channel = f"<language>{channel_language}</language>" if channel_language else ""
    body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
            f"{channel}<item><title>One</title><link>https://example.org/one.html</link>"
            f"<pubDate>{published}</pubDate></item></channel></rss>").encode()
    (item,), _ = parse_feed(body, None, Feed(name="f", url="https://example.org/feed.xml",
                                             language=language))
    assert item.published_at == expected

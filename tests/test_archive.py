"""archive: sitemaps, sitemap indexes, news sitemaps and paged feeds read for a time window,
and what counts as published in it."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.archive import (
    ListingEntry,
    Window,
    candidate,
    list_archive,
    parse_sitemap,
    parse_w3c_date,
    url_date,
)
from pipeline.backfill import archive_sources
from pipeline.fetch import HttpClient
from pipeline.records import ItemError
from pipeline.settings import (
    ArchiveSettings,
    ConfigError,
    Feed,
    HttpSettings,
    load_feeds,
    parse_nets,
)
from tests.conftest import sample_articles
from tests.sample_site.server import SampleSite

RULES = ArchiveSettings()
OCT_20 = Window(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 21, tzinfo=UTC))
NEWS = "http://www.google.com/schemas/sitemap-news/0.9"


@pytest.fixture
def http() -> Iterator[HttpClient]:
    with HttpClient(HttpSettings(allow_nets=parse_nets("127.0.0.0/8"))) as client:
        yield client


def test_urlset_news_sitemap_and_index_are_read() -> None:
    urlset = f"""<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="{NEWS}">
      <url><loc>https://example.org/a.html</loc><lastmod>2026-10-20</lastmod></url>
      <url><loc>/b.html</loc>
        <news:news><news:publication_date>2026-10-20T06:00:00+08:00</news:publication_date>
          <news:title>Talks in Beijing</news:title></news:news></url>
      <url><lastmod>2026-10-20</lastmod></url>
    </urlset>""".encode()
    entries, children = parse_sitemap(urlset, "https://example.org/sitemap.xml")
    assert children == []
    assert entries == [
        ListingEntry("https://example.org/a.html", lastmod=datetime(2026, 10, 20, tzinfo=UTC)),
        ListingEntry("https://example.org/b.html", title="Talks in Beijing",
                     published_at=datetime(2026, 10, 19, 22, tzinfo=UTC)),
    ]
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://example.org/s/2026-10.xml</loc><lastmod>2026-10-31T10:00Z</lastmod>
      </sitemap></sitemapindex>"""
    entries, children = parse_sitemap(index, "https://example.org/sitemap.xml")
    assert entries == [] and [c.url for c in children] == ["https://example.org/s/2026-10.xml"]


@pytest.mark.parametrize("before", [b"\n", b"\r\n  \n", b"\xef\xbb\xbf\n"])
def test_blank_lines_before_the_xml_declaration_are_read_past(before: bytes) -> None:
    # publishing plugins often print a blank line first: not well-formed, but nothing is lost
    urlset = (b'<?xml version="1.0" encoding="UTF-8"?>'
              b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
              b"<url><loc>https://example.org/a.html</loc></url></urlset>")
    entries, _ = parse_sitemap(before + urlset, "https://example.org/sitemap.xml")
    assert [entry.url for entry in entries] == ["https://example.org/a.html"]


@pytest.mark.parametrize("body", [
    b"<html><body>not a sitemap</body></html>",
    b"<urlset><url><loc>https://example.org/a</loc>",  # truncated
    b"\x89PNG\r\n\x1a\n\x00\x00binary",
])
def test_what_is_not_a_sitemap_is_a_bad_sitemap(body: bytes) -> None:
    with pytest.raises(ItemError) as caught:
        parse_sitemap(body, "https://example.org/sitemap.xml")
    assert caught.value.reason == "bad_sitemap"


def test_entities_are_not_expanded_nor_fetched() -> None:
    laughs = b"""<?xml version="1.0"?>
    <!DOCTYPE urlset [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
      <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
      <!ENTITY file SYSTEM "file:///etc/passwd">]>
    <urlset><url><loc>https://example.org/&d;</loc></url>
      <url><loc>https://example.org/x&file;</loc></url></urlset>"""
    entries, _ = parse_sitemap(laughs, "https://example.org/sitemap.xml")
    assert all(len(e.url) < 100 and "root:" not in e.url for e in entries)


def test_w3c_dates_in_utc() -> None:
    assert parse_w3c_date("2026-10-23T08:00:00+03:00") == datetime(2026, 10, 23, 5, tzinfo=UTC)
    assert parse_w3c_date("2026-10-23T08:00:00Z") == datetime(2026, 10, 23, 8, tzinfo=UTC)
    assert parse_w3c_date("2026-10-23") == datetime(2026, 10, 23, tzinfo=UTC)
    # an RSS-style date, as some publishing systems write into their sitemaps
    assert parse_w3c_date("Fri, 23 Oct 2026 08:00:00 +0300") == datetime(2026, 10, 23, 5,
                                                                         tzinfo=UTC)
    assert parse_w3c_date("yesterday") is None and parse_w3c_date(None) is None


def test_which_entries_may_be_published_in_the_window() -> None:
    def at(day: int, hour: int = 12) -> datetime:
        return datetime(2026, 10, day, hour, tzinfo=UTC)

    url = "https://example.org/news/story.html"
    # a publication date decides, at the window's edges too
    assert candidate(ListingEntry(url, published_at=at(20, 0)), OCT_20, RULES)
    assert not candidate(ListingEntry(url, published_at=at(21, 0)), OCT_20, RULES)
    assert not candidate(ListingEntry(url, published_at=at(19, 23)), OCT_20, RULES)
    # lastmod: never before the publication, so modified before the window means not in it
    assert not candidate(ListingEntry(url, lastmod=at(19)), OCT_20, RULES)
    assert candidate(ListingEntry(url, lastmod=at(20) + timedelta(days=6)), OCT_20, RULES)
    assert not candidate(ListingEntry(url, lastmod=at(20) + timedelta(days=9)), OCT_20, RULES)
    # else the URL's date, a local date: a day either side
    assert candidate(ListingEntry("https://example.org/2026/10/21/a.html"), OCT_20, RULES)
    assert not candidate(ListingEntry("https://example.org/2026/10/25/a.html"), OCT_20, RULES)
    assert candidate(ListingEntry(url), OCT_20, RULES) is None  # undated: left out


@pytest.mark.parametrize(("url", "day"), [
    ("https://example.org/world/2026/10/23/story.html", datetime(2026, 10, 23, tzinfo=UTC)),
    ("https://example.org/gj/2026-10/23/content_1.html", None),  # year-month only: no day
    ("https://example.org/2026-10-23-story", datetime(2026, 10, 23, tzinfo=UTC)),
    ("https://example.org/news/20261023/story", datetime(2026, 10, 23, tzinfo=UTC)),
    ("https://example.org/article/123456789", None),
    ("https://example.org/2026/13/45/x.html", None),
])
def test_dates_in_urls(url: str, day: datetime | None) -> None:
    assert url_date(url) == day


def test_window_days() -> None:
    window = Window(datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    assert [d.start.day for d in window.days()] == [30, 31, 1]
    with pytest.raises(ValueError):
        Window(datetime(2026, 10, 30), datetime(2026, 10, 31))  # naive


def test_paged_feed_needs_a_page_placeholder() -> None:
    with pytest.raises(ConfigError):
        Feed.from_dict({"name": "x", "url": "https://example.org/rss",
                        "paged_feed": "https://example.org/rss?page=2"})
    feed = Feed.from_dict({"name": "x", "url": "https://example.org/rss",
                           "sitemap": "https://example.org/sitemap.xml"})
    assert feed.sitemaps == ("https://example.org/sitemap.xml",) and feed.has_archive


def test_sample_listings_give_every_article_of_the_window(site: SampleSite, http: HttpClient,
                                                          feeds_file: Path) -> None:
    """Every outlet's listing (news sitemap, sitemap index, lastmod urlset, paged feed) yields
    the articles published in a two-week window; lastmod-only listings may add a few
    modified up to the grace period later, which the ingest then leaves out."""
    window = Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    for source, feeds in archive_sources(load_feeds(feeds_file)).items():
        listing = list_archive(feeds, window, http, RULES)
        assert listing.errors == [], source
        outlet = feeds[0].url.split("/")[3]
        expected = {a.url(site.base_url) for a in sample_articles(None)
                    if a.outlet == outlet and a.raw["kind"] in ("article", "archived")
                    and datetime.fromisoformat(a.raw["published"]) in window}
        found = {item.url for item in listing.items}
        assert expected <= found, source
        late = window.end + timedelta(days=RULES.lastmod_grace_days)
        for a in sample_articles(None):
            if a.outlet == outlet and a.url(site.base_url) in found - expected:
                assert window.end <= datetime.fromisoformat(a.raw["published"]) < late


def test_gzipped_sitemap_within_the_cap_and_a_bomb_refused(tmp_path, http: HttpClient) -> None:
    urlset = (b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url>'
              b"<loc>http://127.0.0.1/x/2026/10/20/a.html</loc>"
              b"<lastmod>2026-10-20T10:00:00Z</lastmod></url></urlset>")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "small.xml.gz").write_bytes(gzip.compress(urlset))
    (tmp_path / "s" / "bomb.xml.gz").write_bytes(gzip.compress(b" " * 50_000_000))
    with SampleSite(root=tmp_path) as server:
        small = Feed(name="s", url=f"{server.base_url}/rss",
                     sitemaps=(f"{server.base_url}/s/small.xml.gz",))
        assert [i.url for i in list_archive([small], OCT_20, http, RULES).items] == [
            "http://127.0.0.1/x/2026/10/20/a.html"]
        bomb = Feed(name="b", url=f"{server.base_url}/rss",
                    sitemaps=(f"{server.base_url}/s/bomb.xml.gz",))
        listing = list_archive([bomb], OCT_20, http, RULES)
    assert listing.items == [] and [e["reason"] for e in listing.errors] == ["too_large"]

"""archive: what a source published in a time window, from its archive listings.

Backfills and the daily sweep discover articles here instead of in the live feed: XML sitemaps
and sitemap indexes (`<lastmod>`), Google News sitemaps (`<news:publication_date>`) and paged
feeds (an archive feed URL with `{page}`), as declared per feed in the feeds file.

Which entries are candidates for a window [start, end):
- a publication date (news sitemap, feed item) inside the window;
- else a `<lastmod>` from `start` to `end + lastmod_grace_days` (a page is modified after it is
  published, so one published in the window was last modified no earlier than `start`);
- else a date in the URL's path (`/2026/10/23/`, `2026-10-23`) within a day of it.
Entries with none of these are counted as `undated` and left out. The ingest confirms each
candidate against the publication time read from the page itself.

Sitemaps are parsed with entity expansion, DTDs and network access off, and a gzipped sitemap
is inflated only up to the HTTP size cap.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from lxml import etree

from pipeline.discover import FEED_ACCEPT, from_first_tag, parse_feed
from pipeline.fetch import HttpClient
from pipeline.records import FeedItem, ItemError
from pipeline.settings import ArchiveSettings, Feed

_SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, */*;q=0.5"
_URL_DATE = re.compile(r"(?<!\d)(20\d\d|19\d\d)([/_-]?)(0[1-9]|1[0-2])\2(0[1-9]|[12]\d|3[01])(?!\d)")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False, remove_comments=True, recover=False)


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end), timezone-aware (a DAG run's data interval)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a window needs timezone-aware bounds")
        if not self.start < self.end:
            raise ValueError(f"empty window: {self.start} .. {self.end}")

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @classmethod
    def day(cls, day: datetime) -> Window:
        start = day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(start, start + timedelta(days=1))

    def days(self) -> Iterator[Window]:
        """The UTC days this window covers, in order."""
        current = Window.day(self.start)
        while current.start < self.end:
            yield current
            current = Window(current.end, current.end + timedelta(days=1))


@dataclass(frozen=True)
class ListingEntry:
    """One URL of an archive listing with the dates the listing gives for it."""

    url: str
    published_at: datetime | None = None
    lastmod: datetime | None = None
    title: str | None = None


@dataclass
class ArchiveListing:
    """A source's candidates for a window, with what the listings said along the way."""

    items: list[FeedItem] = field(default_factory=list)
    listed: int = 0  # entries read, in or out of the window
    undated: int = 0  # entries with no date at all: left out
    listings_read: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)  # listings that failed


def list_archive(feeds: list[Feed], window: Window, http: HttpClient,
                 rules: ArchiveSettings) -> ArchiveListing:
    """Candidates published in `window` from every archive listing the `feeds` (one source's)
    declare, each URL once. A listing that fails is an error in the result; the others go on."""
    listing = ArchiveListing()
    seen: set[str] = set()
    for feed in feeds:
        for entries in (*(_sitemap_entries(url, feed, window, http, rules, listing)
                          for url in feed.sitemaps),
                        _paged_feed_entries(feed, window, http, rules, listing)):
            for entry in entries:
                listing.listed += 1
                verdict = candidate(entry, window, rules)
                if verdict is None:
                    listing.undated += 1
                elif verdict and entry.url not in seen:
                    seen.add(entry.url)
                    listing.items.append(FeedItem(url=entry.url, feed_name=feed.name,
                                                  feed_url=feed.url, title=entry.title,
                                                  published_at=entry.published_at))
    return listing


def candidate(entry: ListingEntry, window: Window, rules: ArchiveSettings) -> bool | None:
    """Whether the entry may have been published in `window`; None when nothing dates it."""
    if entry.published_at is not None:
        return entry.published_at in window
    if entry.lastmod is not None:
        grace = timedelta(days=rules.lastmod_grace_days)
        return window.start <= entry.lastmod < window.end + grace
    in_path = url_date(entry.url)
    if in_path is not None:  # a local date: the UTC time may be up to a day either side
        return window.start - timedelta(days=2) < in_path < window.end + timedelta(days=1)
    return None


def url_date(url: str) -> datetime | None:
    """The date a URL's path carries (`/2026/10/23/`, `2026-10-23`, `20261023`), at midnight
    UTC, or None."""
    for match in _URL_DATE.finditer(url):
        year, _, month, day = match.groups()
        try:
            return datetime(int(year), int(month), int(day), tzinfo=UTC)
        except ValueError:
            continue
    return None


def parse_sitemap(body: bytes, base_url: str) -> tuple[list[ListingEntry], list[ListingEntry]]:
    """The `<url>` entries of a urlset and the child sitemaps of a sitemap index (each with its
    `<lastmod>`). `ItemError('bad_sitemap')` for XML that is not a sitemap."""
    try:
        root = etree.fromstring(from_first_tag(body), parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ItemError("bad_sitemap", f"{base_url}: not well-formed XML: {exc}") from exc
    kind = etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        raise ItemError("bad_sitemap", f"{base_url}: <{kind}> is not a sitemap")
    entries: list[ListingEntry] = []
    for node in root:
        if not isinstance(node.tag, str) or etree.QName(node).localname not in ("url", "sitemap"):
            continue
        fields = _children_text(node)
        loc = fields.get("loc")
        if not loc:
            continue
        entries.append(ListingEntry(
            url=urljoin(base_url, loc),
            published_at=parse_w3c_date(fields.get("publication_date")),
            lastmod=parse_w3c_date(fields.get("lastmod")),
            title=fields.get("title"),
        ))
    return (entries, []) if kind == "urlset" else ([], entries)


def parse_w3c_date(value: str | None) -> datetime | None:
    """A sitemap date (W3C datetime: `2026-10-23`, `...T08:00:00+03:00`, `...Z`; or, as some
    publishing systems write it there, an RSS date: `Fri, 23 Oct 2026 08:00:00 +0300`), in
    UTC."""
    if not value:
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _children_text(node: etree._Element) -> dict[str, str]:
    """Local name -> text of the element's descendants (`loc`, `lastmod`, and the news
    extension's `publication_date` and `title`)."""
    fields: dict[str, str] = {}
    for child in node.iter():
        if child is node or not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if name not in fields and child.text and child.text.strip():
            fields[name] = child.text.strip()
    return fields


def _sitemap_entries(url: str, feed: Feed, window: Window, http: HttpClient,
                     rules: ArchiveSettings, listing: ArchiveListing) -> Iterator[ListingEntry]:
    """The entries of a sitemap, following a sitemap index into the children that may hold
    the window (those without a `<lastmod>`, or modified since it began)."""
    queue = [url]
    visited: set[str] = set()
    while queue:
        current = queue.pop(0)
        if current in visited:
            continue
        if len(visited) >= rules.max_sitemaps:
            listing.errors.append({"url": current, "reason": "too_many_sitemaps",
                                   "error": f"{feed.name}: read {rules.max_sitemaps} sitemaps; "
                                            "the rest were left out"})
            return
        visited.add(current)
        try:
            page = http.get(current, headers={"Accept": _SITEMAP_ACCEPT})
            entries, children = parse_sitemap(_inflate(page.body, current, http.max_bytes),
                                              page.final_url)
        except ItemError as exc:
            listing.errors.append({"url": current, "reason": exc.reason, "error": exc.detail})
            continue
        listing.listings_read += 1
        yield from entries
        queue.extend(child.url for child in children
                     if child.lastmod is None or child.lastmod >= window.start)


def _paged_feed_entries(feed: Feed, window: Window, http: HttpClient, rules: ArchiveSettings,
                        listing: ArchiveListing) -> Iterator[ListingEntry]:
    """Pages 1, 2, ... of the feed's archive feed, newest first, until a page has nothing as
    recent as the window, a page is missing, or `max_pages`."""
    if not feed.paged_feed:
        return
    for number in range(1, rules.max_pages + 1):
        url = feed.paged_feed.replace("{page}", str(number))
        try:
            page = http.get(url, headers={"Accept": FEED_ACCEPT})
            items, _ = parse_feed(page.body, page.charset, feed, base=page.final_url)
        except ItemError as exc:
            if number == 1 or exc.reason != "http_404":  # past the last page is the end
                listing.errors.append({"url": url, "reason": exc.reason, "error": exc.detail})
            return
        listing.listings_read += 1
        for item in items:
            yield ListingEntry(url=item.url, published_at=item.published_at, title=item.title)
        dated = [item.published_at for item in items if item.published_at is not None]
        if not items or (dated and max(dated) < window.start):
            return


def _inflate(body: bytes, url: str, max_bytes: int) -> bytes:
    """A gzipped sitemap (`.xml.gz`) inflated, refusing more than `max_bytes` of XML."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        xml = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ItemError("bad_sitemap", f"{url}: broken gzip: {exc}") from exc
    if len(xml) > max_bytes or inflater.unconsumed_tail:
        raise ItemError("too_large", f"{url} inflates to over the {max_bytes} byte cap")
    return xml

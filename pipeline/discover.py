"""discover: poll a feed with a conditional GET and turn its entries into `FeedItem`s."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import feedparser
from feedparser.datetimes.rfc822 import timezone_names as FEEDPARSER_ZONES

from pipeline.fetch import HttpClient
from pipeline.records import FeedItem, ItemError
from pipeline.settings import Feed

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
# A DOCTYPE's internal subset is where entities are declared. Feeds have no use for them, and
# feedparser expands plain ones, so that 16 KB declaring one 5 KB entity used 2,000 times
# would become a 10 MB summary: the subset is dropped before parsing (its references stay
# unexpanded text).
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_SUBSET_END = re.compile(rb"\]\s*>")
# A feed's time that gives its offset as a number, "Z" or UTC's name is feedparser's to read. One
# that gives a zone's name feedparser knows (the US zones of RFC 822: "EST" is -05:00 whatever
# the season) is its clock time in that zone, read as a page's printed time is: feedparser loses
# the time of "2026-12-07 10:00:00 EST" and the zone of "2026-12-07T10:00:00 EST". In a feed
# whose language's usual zone goes by that name, the name is that zone's: in a Chinese feed
# "CST" is China Standard Time (Java's servers print it, "Mon Dec 07 10:00:00 CST 2026"), not
# RFC 822's US Central. Any other time (no zone at all, "2026-12-07 10:00:00", as many Chinese
# feeds write it, which feedparser takes for UTC; a zone it does not know, "MSK", which it also
# takes for UTC; a date in Russian) is read as a page's printed date is, in the zone usual for
# the feed's language.
_UTC_OFFSET = re.compile(r"(?:[+-]\d{2}:?\d{2}|\dZ|\b(?:GMT|UTC?))\s*$", re.IGNORECASE)
_ZONE_NAME = re.compile(r"\b([A-Za-z]{1,4})(?:\s+\d{4})?\s*$")  # ...or before asctime's year
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 10_000


@dataclass(frozen=True)
class FeedState:
    """What we remember of a feed between polls (kept in Elasticsearch by
    `pipeline.ledger.FeedStates`): conditional-GET validators, and the back-off of a feed
    that keeps failing."""

    etag: str | None = None
    last_modified: str | None = None
    error_streak: int = 0  # consecutive failed polls
    last_success: datetime | None = None
    next_poll_at: datetime | None = None  # backed off until then

    def backed_off(self, now: datetime) -> bool:
        return self.next_poll_at is not None and now < self.next_poll_at


@dataclass(frozen=True)
class FeedPoll:
    """The result of one poll: either `not_modified`, or the items and the new validators."""

    not_modified: bool
    items: tuple[FeedItem, ...]
    state: FeedState
    warning: str | None = None  # feedparser's bozo exception, when it still found entries


def poll_feed(feed: Feed, state: FeedState, http: HttpClient) -> FeedPoll:
    """Fetch `feed` (sending the stored ETag / Last-Modified) and parse it with feedparser.

    Raises `ItemError` when the feed cannot be fetched, or when it is so malformed that
    feedparser finds no entry with a link in it; a feed malformed only in part yields its
    items with a warning."""
    headers = {"Accept": FEED_ACCEPT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    page = http.get(feed.url, headers=headers)
    if page.status == 304:
        return FeedPoll(not_modified=True, items=(), state=state)

    items, warning = parse_feed(page.body, page.charset, feed, base=page.final_url)
    new_state = FeedState(
        etag=page.etag,
        last_modified=page.last_modified,
    )
    return FeedPoll(not_modified=False, items=tuple(items), state=new_state, warning=warning)


def parse_feed(body: bytes, charset: str | None, feed: Feed,
               base: str | None = None) -> tuple[list[FeedItem], str | None]:
    """The items of an RSS or Atom document (each link once), and feedparser's complaint when
    the document is malformed only in part. `ItemError('bad_feed')` when no item has a link.
    A relative link ("/world/a.html", as some publishing systems write them) is read against
    the document's `xml:base`, else against `base`, the URL it was read from.

    Entities the document declares itself are not expanded; titles and summaries are cut at
    `MAX_TITLE_CHARS` and `MAX_SUMMARY_CHARS`."""
    body = _drop_internal_subset(from_first_tag(body))
    parsed = feedparser.parse(body, response_headers=_headers_for_feedparser(charset, base))
    language = (feed.language or parsed.feed.get("language") or "")[:2].lower() or None
    items = []
    seen: set[str] = set()
    for entry in parsed.entries:
        link = (entry.get("link") or "").strip()
        if not link or link in seen:
            continue
        seen.add(link)
        items.append(FeedItem(
            url=link,
            feed_name=feed.name,
            feed_url=feed.url,
            title=(entry.get("title") or "").strip()[:MAX_TITLE_CHARS] or None,
            summary=(entry.get("summary") or "").strip()[:MAX_SUMMARY_CHARS] or None,
            published_at=_entry_time(entry, language),
        ))
    warning = None
    if parsed.bozo:
        if not items and body.lstrip().startswith((b"{", b"[")):
            raise ItemError("bad_feed", f"{feed.url}: a JSON document (a JSON Feed?): only RSS "
                                        "and Atom feeds are read")
        if not items:
            raise ItemError("bad_feed", f"{feed.url}: {parsed.bozo_exception}")
        warning = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"
    return items, warning


def from_first_tag(body: bytes) -> bytes:
    """An XML document without the blank lines before its declaration (and a UTF-8 byte order
    mark before them), which publishing plugins print: strictly they make it not well-formed
    (feedparser then also misses the declared encoding), yet they mean nothing."""
    start = body.removeprefix(b"\xef\xbb\xbf").lstrip()
    return start if start.startswith(b"<") else body


def _drop_internal_subset(body: bytes) -> bytes:
    """`body` without its first DOCTYPE's internal subset (`<!DOCTYPE x [ ... ]>`), in time
    linear in its size; a subset that never ends takes the rest of the body with it (nothing
    after it can be a feed)."""
    doctype = _DOCTYPE.search(body)
    if doctype is None:
        return body
    opening, closing = body.find(b"[", doctype.end()), body.find(b">", doctype.end())
    if opening == -1 or -1 < closing < opening:
        return body  # a DOCTYPE without an internal subset
    end = _SUBSET_END.search(body, opening)
    return body[:doctype.start()] + (body[end.end():] if end else b"")


def _headers_for_feedparser(charset: str | None, base: str | None) -> dict[str, str]:
    # feedparser reads the charset from the HTTP header when we pass it on (without one, from
    # the XML declaration), and resolves relative links against the Content-Location. It is
    # always told the document is XML: given headers without a type it reports every feed
    # malformed ("no Content-type specified"), and the site's own type says nothing more
    # (text/xml without a charset would have it read as ASCII).
    headers = {"content-type": f"application/xml; charset={charset}" if charset
               else "application/xml"}
    if base:
        headers["content-location"] = base
    return headers


def _entry_time(entry: feedparser.FeedParserDict, language: str | None) -> datetime | None:
    """The entry's publication (else update) time. Where the feed gives a numeric offset, "Z"
    or UTC's name: feedparser's reading. A zone's name that feedparser knows (RFC 822's US
    zones: "EST" is -05:00 in any season), or that the zone usual for the feed's language goes
    by ("CST" in a Chinese feed is China's): the clock time as printed, in that zone (the clock
    as feedparser read it where the printed-date reader cannot read the format: asctime's).
    Any other time is read as a printed date (in the zone usual for the feed's `language`
    where it gives none: `config/metadata.yaml`), else as feedparser reads it."""
    for key in ("published", "updated"):
        raw = str(entry.get(key) or "").strip()
        parsed = entry.get(f"{key}_parsed")
        read = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC) if parsed else None
        if read and _UTC_OFFSET.search(raw):
            return read
        named = _ZONE_NAME.search(raw)
        name = named.group(1).lower() if named else ""
        if named and name in FEEDPARSER_ZONES:
            hours = timedelta(hours=FEEDPARSER_ZONES[name])
            zone = _usual_zone_named(name, language) or timezone(hours)
            clock = _printed(raw[:named.start(1)] + raw[named.end(1):], language)
            if clock is None and read is not None:
                clock = read + hours
            if clock is not None:
                return clock.replace(tzinfo=zone)
        if raw:
            printed = _printed(raw, language)
            if printed:
                return printed
        if read:
            return read
    return None


# (pipeline.metadata is imported where a feed's time needs it: a run whose feeds give numeric
# offsets never does)
def _printed(raw: str, language: str | None) -> datetime | None:
    from pipeline.metadata import metadata_rules, parse_printed_date

    return parse_printed_date(raw, language, metadata_rules())


def _usual_zone_named(name: str, language: str | None) -> tzinfo | None:
    from pipeline.metadata import metadata_rules, usual_zone_named

    return usual_zone_named(name, language, metadata_rules())

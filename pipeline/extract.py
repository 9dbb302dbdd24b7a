"""extract: a fetched page -> an `Article` with clean text and metadata.

trafilatura finds the main content; we keep its block structure (paragraphs, subheadings, lists,
quotes) as paragraphs separated by blank lines, drop a headline repeated as the first block, and
read the metadata analysts chart by (canonical URL, publication time, authors, language) from the
page's own declarations before falling back to trafilatura's guesses and the feed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import py3langid
import trafilatura
from lxml import etree
from trafilatura.settings import Document
from trafilatura.utils import decode_file

from pipeline.clean import (
    Block,
    CleaningRules,
    article_blocks,
    drop_boilerplate_blocks,
    preclean,
)
from pipeline.records import Article, FeedItem, ItemError, Page, Source
from pipeline.settings import CONFIG_DIR
from pipeline.urls import normalize_url

MIN_WORDS = 40
_HTML_TYPES = {"text/html", "application/xhtml+xml", None}
_DATE_META = (
    ("property", "article:published_time"),
    ("name", "article:published_time"),
    ("itemprop", "datePublished"),
    ("name", "pubdate"),
    ("name", "publishdate"),
    ("name", "date"),
    ("property", "og:published_time"),
    ("name", "dc.date"),
    ("name", "DC.date.issued"),
)


def extract_article(page: Page, item: FeedItem | None = None, *,
                    source_name: str | None = None,
                    rules: CleaningRules | None = None) -> Article:
    """Build an `Article` from `page`; `item` (the feed entry) supplies fallbacks.

    Raises `ItemError` with reason `not_html`, `no_content` or `too_short`."""
    rules = rules or default_rules()
    if page.content_type not in _HTML_TYPES:
        raise ItemError("not_html", f"{page.final_url} is {page.content_type}")
    html = decode_html(page.body, page.charset)
    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise ItemError("bad_html", f"{page.final_url}: {exc}") from exc

    canonical = canonical_url(tree, page.final_url)
    page_published = _page_published(tree)

    preclean(tree, rules)
    document = trafilatura.bare_extraction(
        tree, url=page.final_url, with_metadata=True, include_comments=False,
        include_tables=True, favor_precision=True,
    )
    if not isinstance(document, Document) or document.body is None:
        raise ItemError("no_content", f"no article text found at {page.final_url}")

    title = _clean(document.title or (item.title if item else None) or "")
    extracted = list(_blocks(document.body))
    blocks = article_blocks(tree, extracted) or [Block("paragraph", b) for b in extracted]
    text = "\n\n".join(b.text for b in drop_boilerplate_blocks(blocks, title, rules))
    words = len(text.split()) if not _is_cjk_heavy(text) else len(text) // 2
    if words < MIN_WORDS:
        raise ItemError("too_short", f"{page.final_url}: {words} words of text")

    published = (page_published or _parse_time(document.date)
                 or (item.published_at if item else None))
    authors = tuple(a.strip() for a in re.split(r";|\band\b", document.author or "")
                    if a.strip())
    domain = urlsplit(canonical).hostname or ""
    return Article(
        url=canonical,
        title=title,
        text=text,
        language=detect_language(f"{title}\n{text}"),
        published_at=_not_in_future(published, page.fetched_at),
        authors=authors,
        source=Source(name=source_name or document.sitename or domain, domain=domain,
                      feed=item.feed_url if item else None),
        fetched_at=page.fetched_at,
        summary=item.summary if item else None,
        fetched_url=page.url if normalize_url(page.url) != canonical else None,
    )


@lru_cache(maxsize=1)
def default_rules() -> CleaningRules:
    return CleaningRules.load(CONFIG_DIR / "cleaning.yaml")


def decode_html(body: bytes, charset: str | None) -> str:
    """Decode with the HTTP charset when it is known and fits, else sniff like a browser."""
    if charset:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return str(decode_file(body))


def canonical_url(tree: lxml.html.HtmlElement, page_url: str) -> str:
    """`<link rel=canonical>` (then og:url) resolved against the page, normalised; else the
    page URL normalised."""
    for xpath in ('//link[@rel="canonical"]/@href', '//meta[@property="og:url"]/@content'):
        for href in tree.xpath(xpath):
            candidate = urljoin(page_url, str(href).strip())
            if urlsplit(candidate).scheme in ("http", "https"):
                return normalize_url(candidate)
    return normalize_url(page_url)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None for an empty text."""
    sample = text[:4000].strip()
    if not sample:
        return None
    code, _ = py3langid.classify(sample)
    return str(code)


def _blocks(body: etree._Element) -> Iterator[str]:
    for element in body:
        if element.tag == "list":
            items = [_clean(" ".join(item.itertext())) for item in element.iter("item")]
            block = "\n".join(item for item in items if item)
        else:
            block = _clean(" ".join(element.itertext()))
        if block:
            yield block


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _is_cjk_heavy(text: str) -> bool:
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return cjk > len(text) * 0.3


def _page_published(tree: lxml.html.HtmlElement) -> datetime | None:
    for value in _json_ld_dates(tree):
        parsed = _parse_time(value)
        if parsed:
            return parsed
    for attribute, name in _DATE_META:
        for value in tree.xpath(f'//meta[@{attribute}="{name}"]/@content'):
            parsed = _parse_time(str(value))
            if parsed:
                return parsed
    for value in tree.xpath("//time[@datetime]/@datetime"):
        parsed = _parse_time(str(value))
        if parsed:
            return parsed
    return None


def _json_ld_dates(tree: lxml.html.HtmlElement) -> Iterator[str]:
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        for node in _walk_json(data):
            value = node.get("datePublished")
            if isinstance(value, str):
                yield value


def _walk_json(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        yield data
        for value in data.values():
            yield from _walk_json(value)
    elif isinstance(data, list):
        for value in data:
            yield from _walk_json(value)


def _parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (date or date-time) to an aware UTC datetime; a date alone means 00:00 UTC;
    a time without an offset is taken as UTC."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _not_in_future(published: datetime | None, fetched_at: datetime) -> datetime | None:
    if published is None or published > fetched_at:
        return None
    return published

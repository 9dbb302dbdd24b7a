"""Article metadata read from the page itself: canonical URL, headline, authors, site name,
publication time and language. Declared metadata (JSON-LD, Open Graph and article meta tags,
`<time datetime>`) comes first, then what the page prints; the feed is the caller's last
resort. Settings are data in config/metadata.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import htmldate
from lxml.html import HtmlElement
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from pipeline.settings import ConfigError, load_yaml
from pipeline.text import CJK, fold, squash
from pipeline.urls import normalize_url

_DATE_META = (
    ("property", "article:published_time"),
    ("name", "article:published_time"),
    ("itemprop", "datePublished"),
    ("name", "pubdate"),
    ("name", "publishdate"),
    ("name", "publish-date"),
    ("name", "citation_publication_date"),
    ("name", "dc.date.issued"),
    ("name", "DC.date.issued"),
    ("name", "date"),
    ("property", "og:published_time"),
)
_UPDATED = re.compile(r"(updated|modified|edited|обновлен|изменен|更新|修改)\W{0,3}$", re.IGNORECASE)
_OFFSET = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")
_TIME = r"(?:[\sT,]*(?:at\s+|в\s+)?(\d{1,2})[:.](\d{2})(?::\d{2})?\s*([ap]\.?m\.?)?)?"
_ZONE = r"\s*(?:\(?\s*(?:GMT|UTC)\s*([+-]\d{1,2}(?::?\d{2})?)\)?|([+-]\d{2}:?\d{2})\b|([A-Za-zА-Яа-я\u4e00-\u9fff]{2,5}))?"
_DATE_PATTERNS = (
    # 2026-11-03 14:05, 2026/11/03, 2026年11月03日 14:05
    ("ymd", re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?" + _TIME + _ZONE,
                       re.IGNORECASE)),
    # 03.11.2026 14:05
    ("dmy", re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})" + _TIME + _ZONE, re.IGNORECASE)),
    # 3 November 2026, 14:05 MSK; 3 ноября 2026 в 14:05
    ("d_month_y", re.compile(r"(\d{1,2})\s+([^\W\d_]{3,})\.?,?\s+(\d{4})\s*(?:г\.?|года)?"
                             + _TIME + _ZONE, re.IGNORECASE)),
    # November 3, 2026 10:22 AM GMT+3
    ("month_d_y", re.compile(r"([^\W\d_]{3,})\.?\s+(\d{1,2}),?\s+(\d{4})" + _TIME + _ZONE, re.IGNORECASE)),
)


@dataclass(frozen=True)
class MetadataRules:
    languages: tuple[str, ...]
    language_prior: dict[str, float]
    local_offsets: dict[str, str]
    zones: dict[str, str]
    months: dict[str, int]
    date_elements: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> MetadataRules:
        raw = load_yaml(path)
        keys = {"languages", "language_prior", "local_utc_offset", "zones", "months",
                "date_elements"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected keys {sorted(keys)}, got {sorted(raw)}")
        rules = cls(languages=tuple(raw["languages"]),
                    language_prior={str(k): float(v) for k, v in raw["language_prior"].items()},
                    local_offsets={str(k): str(v) for k, v in raw["local_utc_offset"].items()},
                    zones={str(k): str(v) for k, v in raw["zones"].items()},
                    months={str(k).lower(): int(v) for k, v in raw["months"].items()},
                    date_elements=tuple(str(w).lower() for w in raw["date_elements"]))
        for offset in (*rules.local_offsets.values(), *rules.zones.values()):
            if _tz(offset) is None:
                raise ConfigError(f"{path}: {offset!r} is not a UTC offset like +03:00")
        return rules

    @cached_property
    def identifier(self) -> LanguageIdentifier:
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier.set_languages(list(self.languages))
        return identifier


def canonical_url(tree: HtmlElement, page_url: str) -> str:
    """`<link rel=canonical>` (then og:url) resolved against the page, normalised; else the
    page URL normalised."""
    for xpath in ('//link[@rel="canonical"]/@href', '//meta[@property="og:url"]/@content'):
        for href in tree.xpath(xpath):
            candidate = urljoin(page_url, str(href).strip())
            if urlsplit(candidate).scheme in ("http", "https"):
                return normalize_url(candidate)
    return normalize_url(page_url)


def page_title(tree: HtmlElement) -> str | None:
    """The headline: the `<h1>` that the page's declared title names, else the declared title
    (Open Graph, JSON-LD, Twitter card), else the first real `<h1>`, else `<title>`."""
    declared = (_meta(tree, "property", "og:title") or _json_ld_value(tree, "headline")
                or _meta(tree, "name", "twitter:title"))
    headings = [squash(h.text_content()) for h in tree.iter("h1")]
    headings = [h for h in headings if len(h.split()) >= 2 or CJK.search(h)]
    if declared:
        # "Headline | Site": the h1 that is most of the declared title, not the site's logo
        named = [h for h in headings
                 if fold(h) and fold(h) in fold(declared)
                 and len(fold(h)) >= 0.4 * len(fold(declared))]
        return max(named, key=len) if named else declared
    if headings:
        return headings[0]
    title = tree.find(".//title")
    return squash(title.text_content()) if title is not None else None


def page_authors(tree: HtmlElement) -> tuple[str, ...]:
    names: list[str] = []
    for node in _json_ld_nodes(tree):
        for author in _as_list(node.get("author")):
            name = author.get("name") if isinstance(author, dict) else author
            if isinstance(name, str):
                names.append(name)
        if names:
            break
    if not names:
        for value in tree.xpath('//meta[@name="author" or @property="article:author"]/@content'):
            if not str(value).startswith("http"):
                names.extend(re.split(r"\s*(?:,|;|\band\b|&)\s*", str(value)))
    seen: list[str] = []
    for name in (squash(n) for n in names):
        if name and name not in seen:
            seen.append(name)
    return tuple(seen)


def site_name(tree: HtmlElement) -> str | None:
    name = _meta(tree, "property", "og:site_name") or _meta(tree, "name", "application-name")
    if name:
        return name
    for node in _json_ld_nodes(tree):
        publisher = node.get("publisher")
        if isinstance(publisher, dict) and isinstance(publisher.get("name"), str):
            return squash(publisher["name"])
    return None


def published_time(tree: HtmlElement, language: str | None,
                   rules: MetadataRules) -> datetime | None:
    """When the page says it was published, in UTC: declared metadata first, then a date the
    page prints where pages print them, then htmldate's reading of the markup and URL."""
    for value in _declared_dates(tree):
        parsed = parse_iso(value, _local_zone(language, rules))
        if parsed:
            return parsed
    for element in _date_elements(tree, rules):
        parsed = parse_printed_date(squash(element.text_content()), language, rules)
        if parsed:
            return parsed
    try:
        found = htmldate.find_date(tree, extensive_search=False, original_date=True)
    except (ValueError, TypeError):
        found = None
    return parse_iso(found, _local_zone(language, rules)) if found else None


def parse_iso(value: str | None, local: timezone = UTC) -> datetime | None:
    """ISO 8601 date or date-time as aware UTC; without a zone it is read in `local`; a date
    alone is noon there (so its day survives the move to UTC)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if len(text) <= 10:
        parsed = parsed.replace(hour=12)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=local)
    return parsed.astimezone(UTC)


def parse_printed_date(text: str, language: str | None,
                       rules: MetadataRules) -> datetime | None:
    """The first publication date printed in `text` ("3 November 2026, 14:05 MSK",
    "03.11.2026 14:05", "2026年11月03日 14:05", "Nov 3, 2026 10:22 AM GMT+3"), skipping one
    labelled as an update."""
    found: list[tuple[int, datetime]] = []
    for kind, pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            if _UPDATED.search(text[max(0, match.start() - 20):match.start()]):
                continue
            parsed = _printed(kind, match, language, rules)
            if parsed:
                found.append((match.start(), parsed))
                break
    return min(found, key=lambda item: item[0])[1] if found else None


def detect_language(text: str, rules: MetadataRules) -> str | None:
    """ISO 639-1 code of the text's language among `rules.languages`, the detector's
    probabilities weighted by the corpus's prior (which settles short, ambiguous texts such as
    headlines); None for no text."""
    sample = text[:1500].strip()  # plenty for the detector; more only costs time
    if not sample:
        return None
    ranked = rules.identifier.rank(sample)
    code, _ = max(ranked, key=lambda pair: pair[1] * rules.language_prior.get(pair[0], 1.0))
    return str(code)


def _printed(kind: str, match: re.Match[str], language: str | None,
             rules: MetadataRules) -> datetime | None:
    groups = match.groups()
    if kind == "ymd":
        year, month, day = int(groups[0]), int(groups[1]), int(groups[2])
    elif kind == "dmy":
        day, month, year = int(groups[0]), int(groups[1]), int(groups[2])
    elif kind == "d_month_y":
        day, year = int(groups[0]), int(groups[2])
        month = _month(groups[1], rules) or 0
    else:
        month, day, year = _month(groups[0], rules) or 0, int(groups[1]), int(groups[2])
    hour, minute, meridiem = groups[3], groups[4], groups[5]
    gmt_offset, numeric_offset, abbreviation = groups[6], groups[7], groups[8]
    zone = (_tz(gmt_offset or numeric_offset or "")
            or (_tz(rules.zones[abbreviation]) if abbreviation in rules.zones else None)
            or _local_zone(language, rules))
    if hour is None:
        hours, minutes = 12, 0  # a date alone: noon keeps its day in UTC
    else:
        hours, minutes = int(hour), int(minute)
        if meridiem:
            hours = hours % 12 + (12 if meridiem.lower().startswith("p") else 0)
    try:
        local = datetime(year, month, day, hours, minutes, tzinfo=zone)
    except ValueError:
        return None
    if not 1990 <= year <= datetime.now(UTC).year + 1:
        return None
    return local.astimezone(UTC)


def _month(name: str, rules: MetadataRules) -> int | None:
    lowered = name.lower()
    return rules.months.get(lowered[:3])


def _local_zone(language: str | None, rules: MetadataRules) -> timezone:
    zone = _tz(rules.local_offsets.get(language or "", rules.local_offsets["default"]))
    return zone or UTC


def _tz(offset: str) -> timezone | None:
    match = _OFFSET.match(offset.strip()) if offset else None
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes >= 60:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _declared_dates(tree: HtmlElement) -> Iterator[str]:
    for node in _json_ld_nodes(tree):
        value = node.get("datePublished")
        if isinstance(value, str):
            yield value
    for attribute, name in _DATE_META:
        for value in tree.xpath(f'//meta[@{attribute}="{name}"]/@content'):
            yield str(value)
    for element in tree.xpath('//*[@itemprop="datePublished"]'):
        value = element.get("datetime") or element.get("content")
        if value:
            yield value
    for value in tree.xpath("//time[@datetime]/@datetime"):
        yield str(value)


def _date_elements(tree: HtmlElement, rules: MetadataRules) -> Iterator[HtmlElement]:
    body = tree.find("body")
    for element in (body if body is not None else tree).iter():
        if not isinstance(element.tag, str) or element.tag in ("script", "style"):
            continue
        names = " ".join(element.get(a, "") for a in ("class", "id", "itemprop")).lower()
        named = element.tag == "time" or any(w in names for w in rules.date_elements)
        if named and len(element.text_content()) < 300:
            yield element


def _json_ld_nodes(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        yield from _walk_json(data)


def _json_ld_value(tree: HtmlElement, key: str) -> str | None:
    for node in _json_ld_nodes(tree):
        value = node.get(key)
        if isinstance(value, str) and value.strip():
            return squash(value)
    return None


def _walk_json(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        yield data
        for value in data.values():
            yield from _walk_json(value)
    elif isinstance(data, list):
        for value in data:
            yield from _walk_json(value)


def _meta(tree: HtmlElement, attribute: str, name: str) -> str | None:
    for value in tree.xpath(f'//meta[@{attribute}="{name}"]/@content'):
        if str(value).strip():
            return squash(str(value))
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []

"""Article metadata read from the page itself: canonical URL, headline, authors, site name,
publication time and language. Declared metadata (JSON-LD, Open Graph and article meta tags,
`<time datetime>`) comes first, then what the page prints; the feed is the caller's last
resort. Settings are data in config/metadata.yaml."""

from __future__ import annotations

import functools
import html
import json
import re
import weakref
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import htmldate.core as hd
from lxml import etree
from lxml.html import HtmlElement
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from trafilatura.metadata import examine_meta, extract_meta_json

from pipeline.settings import CONFIG_DIR, ConfigError, load_yaml
from pipeline.text import UNSPACED, fold, squash
from pipeline.urls import MAX_URL_CHARS, normalize_url, same_site, site_of

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
# A time: "14:05", "at 2:05 p.m.", "в 10:22", "下午3:48", "午後3時"; am/pm only where the hour is
# a 12-hour one ("15:48 am Dienstag" is German for "on Tuesday", not 3:48 in the morning).
_TIME = (r"(?:[\sT,]*(?:at\s+|в\s+|(?P<cjk_half>上午|下午|晚上|凌晨|中午|早上|午前|午後)\s*)?"
         r"(?P<hour>\d{1,2})[:.时時](?P<minute>\d{2})(?::\d{2})?\s*"
         r"(?P<meridiem>[ap]\.?\s?m\.?(?![^\W\d_]))?)?")
_ZONE = (r"\s*(?:\(?\s*(?:GMT|UTC)\s*(?P<gmt>[+-]\d{1,2}(?::?\d{2})?)\)?|(?P<offset>[+-]\d{2}:?\d{2})\b"
         r"|(?P<abbreviation>[A-Za-zА-Яа-я\u4e00-\u9fff]{2,5}))?")
_DATE_PATTERNS = (
    # 2026-11-03 14:05, 2026/11/03, 2026年11月03日 14:05
    re.compile(r"(?P<year>\d{4})\s*[-/.年]\s*(?P<month>\d{1,2})\s*[-/.月]\s*(?P<day>\d{1,2})\s*日?"
               + _TIME + _ZONE, re.IGNORECASE),
    # 03.11.2026 14:05
    re.compile(r"(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})" + _TIME + _ZONE,
               re.IGNORECASE),
    # 3 November 2026, 14:05 MSK; 3 ноября 2026 в 14:05
    re.compile(r"(?P<day>\d{1,2})\s+(?P<month_name>[^\W\d_]{3,})\.?,?\s+(?P<year>\d{4})\s*"
               r"(?:г\.?|года)?" + _TIME + _ZONE, re.IGNORECASE),
    # November 3, 2026 10:22 AM GMT+3
    re.compile(r"(?P<month_name>[^\W\d_]{3,})\.?\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})"
               + _TIME + _ZONE, re.IGNORECASE),
)
_AFTERNOON = {"下午", "晚上", "午後"}
UNDETERMINED = "und"  # ISO 639-2: a language not determined


@dataclass(frozen=True)
class MetadataRules:
    min_letters: int
    language_prior: dict[str, float]
    prior_max_chars: int
    local_zones: dict[str, str]  # language -> zone of its outlets' printed times
    zones: dict[str, str]  # abbreviation -> UTC offset or IANA zone
    months: dict[str, int]
    date_elements: tuple[str, ...]
    date_labels: tuple[str, ...]
    # a language written in Chinese characters beside standard Chinese -> its own characters
    written_dialects: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> MetadataRules:
        raw = load_yaml(path)
        keys = {"min_letters", "language_prior", "prior_max_chars", "local_zone", "zones", "months",
                "date_elements", "date_labels", "written_dialects"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected keys {sorted(keys)}, got {sorted(raw)}")
        rules = cls(min_letters=int(raw["min_letters"]),
                    language_prior={str(k): float(v) for k, v in raw["language_prior"].items()},
                    prior_max_chars=int(raw["prior_max_chars"]),
                    local_zones={str(k): str(v) for k, v in raw["local_zone"].items()},
                    zones={str(k): str(v) for k, v in raw["zones"].items()},
                    months={str(k).lower(): int(v) for k, v in raw["months"].items()},
                    date_elements=tuple(str(w).lower() for w in raw["date_elements"]),
                    date_labels=tuple(str(w).lower() for w in raw["date_labels"]),
                    written_dialects={str(k): tuple(str(w) for w in v)
                                      for k, v in raw["written_dialects"].items()})
        for zone in (*rules.local_zones.values(), *rules.zones.values()):
            if _zone(zone) is None:
                raise ConfigError(f"{path}: {zone!r} is neither a UTC offset like +03:00 nor an "
                                  "IANA zone like Europe/Moscow")
        return rules

    @cached_property
    def date_element_names(self) -> re.Pattern[str]:
        """Matches the lower-cased class, id or itemprop of an element that may print a date."""
        return re.compile("|".join(re.escape(word) for word in self.date_elements))

    @cached_property
    def date_label(self) -> re.Pattern[str]:
        """A publication label and the colon or spaces after it, in lower-cased text (whether
        it stands as a word of its own is `_labelled_date`'s to tell: a lookbehind here would
        make the search five times slower)."""
        labels = "|".join(re.escape(label) for label in sorted(self.date_labels, key=len,
                                                                  reverse=True))
        return re.compile(rf"(?:{labels})(?:\s*[:：]\s*|\s+|$)")

    @cached_property
    def identifier(self) -> LanguageIdentifier:
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@functools.lru_cache(maxsize=4)
def metadata_rules(config_dir: Path = CONFIG_DIR) -> MetadataRules:
    """The rules in `config_dir`'s metadata.yaml, loaded once."""
    return MetadataRules.load(config_dir / "metadata.yaml")


def canonical_url(tree: HtmlElement, page_url: str) -> str:
    """`<link rel=canonical>` (then og:url) resolved against the page, normalised; else the
    page URL normalised. Only a URL on the page's own site is trusted (another site's page
    naming an outlet's article as its canonical would otherwise take over that article's
    document); a declared URL longer than `MAX_URL_CHARS` is no address."""
    for href in (*tree.xpath('//link[@rel="canonical"]/@href'),
                 *_meta_values(tree, "property", "og:url")):
        candidate = urljoin(page_url, str(href).strip())
        if urlsplit(candidate).scheme in ("http", "https") \
                and len(candidate) <= MAX_URL_CHARS and same_site(candidate, page_url):
            return normalize_url(candidate)
    return normalize_url(page_url)


def page_title(tree: HtmlElement, site: str | None = None, url: str | None = None) -> str | None:
    """The headline: the page's `<h1>` (the one its declared title names, else the first
    outside the page's header and navigation; never one in a dialog or a hidden part of the
    page), else the declared title (Open Graph, JSON-LD, Twitter card), else `<title>`; the
    site's name (or its domain's, from `url`: "Headline | Newegg.com") and its separator are
    taken off a declared title ("Headline | Site")."""
    declared = (_meta(tree, "property", "og:title") or _json_ld_value(tree, "headline")
                or _meta(tree, "name", "twitter:title"))
    site = site or site_name(tree)
    headings = [h for h in (squash(_heading_text(e)) for e in _page_h1s(tree))
                if (len(h.split()) >= 2 or UNSPACED.search(h)) and fold(h) != fold(site or "")]
    if declared:
        # "Headline | Site": the h1 that is most of the declared title, not the site's logo
        named = [h for h in headings
                 if fold(h) and fold(h) in fold(declared)
                 and len(fold(h)) >= 0.4 * len(fold(declared))]
        if named:
            return max(named, key=len)
    if headings:
        return headings[0]
    if not declared:
        title = tree.find(".//title")
        if title is None:
            return None
        declared = squash(title.text_content())
    return _without_site(declared, site, site_of(url) if url else None)


def page_authors(tree: HtmlElement, site: str | None = None) -> tuple[str, ...]:
    """The people who wrote the article, as the page names them: in its JSON-LD (people, not
    organisations), else its author meta tags, else trafilatura's reading of them (broken JSON
    included; not where those credit an organisation), else its byline markup (not a
    commenter's), else a visible byline whatever its markup ("By <a>Anna Petrova</a>"); the
    first of these that names a person wins. Joint bylines are split (at "and" only between
    full names); an e-mail, a URL, a handle, a number, a month, the site (or a desk of it:
    "Northern Wire Asia"; nor is its name after a person's part of the name), an organisation
    (nor the places after it: "Northern Wire, Hamburg, Germany"), a desk, a placeholder
    ("Admin", "Unknown"), a phrase ("Product marketer") or a bare title ("Community Editor") is
    never an author."""
    site = site or site_name(tree)
    for raw, people in _author_sources(tree, site):
        names: list[str] = []
        for value in raw:
            full_name = False
            for name in split_names(value):
                name = _name_without_site(name, site)
                # a Person named as the site is its owner ("Jane Doe" on janedoe.example); the
                # site's name beside another is an affiliation ("{name}, Northern Wire")
                owner = value in people and name == squash(value)
                if name and is_person(name, None if owner else site):
                    if full_name and " " not in name and not UNSPACED.search(name):
                        continue  # "Anna Petrova, Moscow": a dateline's place, not a name
                    full_name = full_name or " " in name
                    if name not in names:
                        names.append(name)
                elif _names_an_organisation(name, site):
                    break  # "SPIEGEL ONLINE, Hamburg, Germany": the rest is its address
        if names:
            # the fullest form of a name only ("Ivanov" beside "Ivan Ivanov")
            return tuple(n for n in names if not any(n != m and n in m for m in names))
    return ()


def _author_sources(tree: HtmlElement, site: str | None
                   ) -> Iterator[tuple[list[str], set[str]]]:
    """What the page says about its authors, one source after another, each with the names it
    types as a Person (a one-person site's owner may share the site's name)."""
    raw: list[str] = []
    people: set[str] = set()
    for node in _json_ld_nodes(tree):
        for author in (*_as_list(node.get("author")), *_as_list(node.get("creator"))):
            if isinstance(author, dict):
                kinds = {str(k).lower() for k in _as_list(author.get("@type"))}
                if kinds and "person" not in kinds:
                    continue  # an Organization, a NewsMediaOrganization...
                author = author.get("name")
                if isinstance(author, str) and kinds:
                    people.add(squash(author))
            if isinstance(author, str):
                raw.append(author)
        if raw:
            break
    yield raw, people
    meta = [*(str(value) for name in _AUTHOR_META
              for value in (*_meta_values(tree, "name", name), *_meta_values(tree, "property", name))),
            *_labelled_meta(tree, "written by", "author", "by")]
    yield meta, set()
    if not (_only_organisations(raw, site) or _only_organisations(meta, site)):
        # trafilatura reads JSON-LD too broken for us; where ours or the meta tags credit an
        # organisation, its reading splits that name into "people" ("Redacci", "Oacute")
        found = extract_meta_json(tree, examine_meta(tree)).author
        yield (found.split("; ") if found else []), set()
    for texts in _byline_texts(tree):
        yield texts, set()
    labelled = _labelled_byline(tree)
    yield ([labelled] if labelled else []), set()
    # Not trafilatura's `extract_author` after these: on WCXB's pages it found 8 more of 617
    # authors, gave as many wrong ones (CSS class names among them) and cost a tenth of
    # extraction's speed.


def split_names(byline: str) -> list[str]:
    """The names in a byline: "By Anna Petrova and Li Wei" -> Anna Petrova, Li Wei; joint
    bylines are split on commas, semicolons, "and" in the major languages, "&", "|", "/";
    credentials after a name ("MD", "Ph.D.") and titles before it ("Dr.") are left out."""
    text = html.unescape(squash(byline))
    text = _BYLINE_PREFIX.sub("", text)
    text = _BYLINE_TAIL.split(text, maxsplit=1)[0]  # "Anna Petrova 3 June 2025, 7 min read"
    text = _DANGLING.sub("", text)  # "Moritz Gathmann am" (21. April 2020)
    names: list[str] = []
    for part in _joint_names(text):
        if re.search(r"\([^)]*(\.\w{2,}|www)[^)]*\)", part):
            continue  # "Deutsche Welle (www.dw.com)": an outlet and its address
        part = re.sub(r"\([^)]*\)", " ", part)  # "(Reuters)", "(LTV)"
        part = _BYLINE_PREFIX.sub("", part)
        label = _LABEL.match(part)
        if label and _NOT_A_NAME_WORD.search(label.group()):
            continue  # "Fotos: Eva Schmidt": who took the pictures, not who wrote
        part = _LEADING_ROLE.sub("", squash(part[label.end():] if label else part))
        if re.match(r"(of|at|for)\s", part):
            continue  # "CEO of CaseBasix": what a role was held at, not a name
        name = _ROLE.sub("", part)
        if name != part and " " not in name.strip():
            continue  # "Community Editor", "Staff Writer": a desk or a title, not a person
        part = name
        part = _HONORIFIC.sub("", squash(part.strip(" .,:;-–—»›：，、")))
        if UNSPACED.search(part) and len(part.split()) > 1:
            # "王明 李华": Chinese names side by side; a longer word is a role or an affiliation
            # ("王文 中国人民大学重阳金融研究院执行院长")
            names.extend(w for w in part.split() if 2 <= len(w) <= 4 or not UNSPACED.search(w))
        elif part and not _CREDENTIAL.fullmatch(part):
            names.append(part)
    return names


def _joint_names(text: str) -> Iterator[str]:
    """The parts of a byline between its separators (commas, semicolons, "|", "/", "&"...);
    a part is split at "and" ("und", "et", "и"...) only where each side is a full name: "Kirche
    und Leben" and "Center for Drug Evaluation and Research" are one name each (an
    organisation's, as it turns out), "Anna Petrova and Li Wei" two."""
    for part in _NAME_SEPARATOR.split(text):
        sides = _CONJUNCTION.split(part)
        if len(sides) > 1 and all(len(side.split()) >= 2 or UNSPACED.search(side)
                                  for side in sides):
            yield from sides
        else:
            yield part


def _only_organisations(values: list[str], site: str | None) -> bool:
    """Whether these author values are there and each begins with an organisation's name (or
    the site's)."""
    firsts = [next(iter(split_names(value)), "") for value in values]
    return bool(firsts) and all(_names_an_organisation(first, site) for first in firsts)


def _names_an_organisation(name: str, site: str | None) -> bool:
    """Whether a part of a byline names an outlet or an organisation (or its address), after
    which the byline's other parts are its details rather than people."""
    return bool(_ORGANISATION.search(name) or _FUNCTION_WORD.search(f" {name} ")
                or _PLACEHOLDER.fullmatch(name) or _NOT_A_NAME.search(name)
                or _CJK_NOT_A_NAME.search(name)
                or re.search(r"\w\.[a-z]{2,}$", name)  # "northern-wire.example", "anna.petrova"
                or _is_site(name, site))


def _is_site(name: str, site: str | None) -> bool:
    """Whether `name` is the site's own name (spaced or not: "Northern Wire", "NorthernWire"),
    or one of its desks, editions or labels ("Northern Wire Sponsored", "Northern Wire Asia")."""
    if not site:
        return False
    folded, own = fold(name), fold(site)
    return folded in (own, own.replace(" ", "")) or folded.startswith(own + " ")


def _name_without_site(name: str, site: str | None) -> str:
    """`name` without the site's name after it: "Anna Petrova Northern Wire" -> "Anna Petrova";
    empty where one word comes before it, a desk's ("Noticias Northern Wire")."""
    words = name.split()
    if site:
        own = fold(site)
        for cut in range(1, len(words)):
            if fold(" ".join(words[cut:])) == own:
                return " ".join(words[:cut]) if cut > 1 or UNSPACED.search(words[0]) else ""
    return name


def declared_body(tree: HtmlElement) -> str | None:
    """The article's text as the page declares it in its JSON-LD (schema.org `articleBody`),
    where it declares one only: a page declaring several is no one article's page."""
    bodies = {node["articleBody"].strip() for node in _json_ld_nodes(tree)
              if isinstance(node.get("articleBody"), str)} - {""}
    return bodies.pop() if len(bodies) == 1 else None


def site_name(tree: HtmlElement) -> str | None:
    name = _meta(tree, "property", "og:site_name") or _meta(tree, "name", "application-name")
    if name:
        return name
    for node in _json_ld_nodes(tree):
        publisher = node.get("publisher")
        if isinstance(publisher, dict) and isinstance(publisher.get("name"), str):
            return squash(publisher["name"])
    return None


def published_time(tree: HtmlElement, language: str | None, rules: MetadataRules, *,
                   feed_time: datetime | None = None) -> datetime | None:
    """When the page says it was published, in the page's own offset: declared metadata first,
    then a date the page prints where pages print them (an element named for dates, else after
    a publication label: "发布时间：", "Published"), then one printed under its headline.
    Where the page gives the day alone, the time is the one printed under its headline on that
    day, else the feed's (`feed_time`) on that day, else noon (so that the day survives the move
    to UTC). A page that gives no date has the feed's time, and without one htmldate's reading
    of the markup, text and URL (a day). A time without a zone is read in the zone usual for the
    page's language."""
    local = _local_zone(language, rules)
    day: datetime | None = None  # a day the page gives without its time
    for value in _declared_dates(tree):
        parsed = parse_iso(value, local)
        if parsed and len(value.strip()) > 10:
            return parsed
        if parsed:
            day = parsed
            break
    if day is None:
        for element in _date_elements(tree, rules):
            printed = _printed_date(squash(element.text_content()), language, rules)
            if printed and printed[1]:
                return printed[0]
            if printed:
                day = printed[0]
                break
    if day is None and (printed := _labelled_date(tree, language, rules)):
        if printed[1]:
            return printed[0]
        day = printed[0]
    dateline = next((printed for line in _dateline(tree)
                     if (printed := _printed_date(line, language, rules))), None)
    if day is None:
        if dateline:
            return dateline[0]
        if feed_time is not None:
            return feed_time
        try:
            found = _htmldate_reading(tree)
        except (ValueError, TypeError):
            found = None
        return parse_iso(found, local) if found else None
    if dateline and dateline[1] and dateline[0].date() == day.date():
        return dateline[0]
    if feed_time is not None and feed_time.astimezone(day.tzinfo).date() == day.date():
        return feed_time.astimezone(day.tzinfo)
    return day


def _labelled_date(tree: HtmlElement, language: str | None,
                   rules: MetadataRules) -> tuple[datetime, bool] | None:
    """The first date the body prints right after a publication label ("发布时间：2019-05-18",
    "Published: 3 November 2026"; the date may be in the next text, after a tag or a
    comment), and whether it gives the time."""
    body = tree.find("body")
    # the texts a line apart: a label at a text's start stands as a word of its own
    texts = "\n".join(_TEXTS(body if body is not None else tree))
    lowered = texts.lower()  # ten times faster to search than with re.IGNORECASE
    dates = texts if len(lowered) == len(texts) else lowered  # (a letter lowered to two)
    for label in rules.date_label.finditer(lowered):
        if label.start() and _IN_A_WORD.match(lowered, label.start() - 1):
            continue  # "更新时间" (updated) holds no "时间"
        after = squash(dates[label.end():label.end() + 200])[:60]
        if any(pattern.match(after) for pattern in _DATE_PATTERNS):
            return _printed_date(after, language, rules)
    return None


_TEXTS = etree.XPath(".//text()[not(parent::script or parent::style)]")
_IN_A_WORD = re.compile(r"[\w\u3040-\u30ff\u3400-\u9fff]")


def _dateline(tree: HtmlElement) -> list[str]:
    """The short texts printed just under the headline (the first of `_page_h1s`), where pages
    print their date and byline: up to the first sentence of prose, and none longer than a line
    (a date in a sentence, "from 9 January to 10 February", is not the page's)."""
    headline = next(_page_h1s(tree), None)
    if headline is None:
        return []
    lines: list[str] = []
    for text in _FOLLOWING_TEXT(headline):
        parent = text.getparent()
        if parent is None or parent.tag in ("script", "style"):
            continue
        line = squash(str(text))
        if len(line) > 80:
            break  # the article has begun
        if line:
            lines.append(line)
    return lines


_FOLLOWING_TEXT = etree.XPath("following::text()[position() <= 60]")


def _htmldate_reading(tree: HtmlElement) -> str | None:
    """The publication day as htmldate's extensive search (`find_date(tree,
    extensive_search=True, original_date=True)`) reads it from the URL, the markup and the
    text, without its last resort: a search of the whole page's HTML for anything date-shaped,
    down to a copyright year taken as 1 January. On the real pages that reach it, that guess
    was another day than the gold's on 9 of 10 (WCXB dev, December 2026), and it was two thirds
    of htmldate's time. Its steps are find_date's, in its order, from htmldate 1.11."""
    options = hd.Extractor(True, hd.get_max_date(None), hd.get_min_date(None), True, "%Y-%m-%d")
    canonical = tree.find('.//link[@rel="canonical"]')
    found = (hd.extract_url_date(canonical.get("href") if canonical is not None else None, options)
             or hd.examine_header(tree, options) or hd.json_search(tree, options)
             or hd.examine_abbr_elements(tree, options))
    if found:
        return found
    pruned = hd.discard_unwanted(hd.clean_html(deepcopy(tree), hd.CLEANING_LIST))
    found = (hd.examine_elements(hd.date_candidates(pruned, True), options)
             or hd.examine_elements(pruned.xpath(".//title|.//h1"), options)
             or hd.examine_time_elements(pruned, options))
    if found:
        return found
    markup = hd.serialize(pruned)
    found = (hd.pattern_search(markup, hd.TIMESTAMP_PATTERN, options)
             or hd.img_search(pruned, options) or hd.idiosyncrasies_search(markup, options))
    if found:
        return found
    reference: datetime | None = None
    for segment in hd.FREE_TEXT_EXPRESSIONS(pruned):
        segment = segment.strip()
        if hd.MIN_SEGMENT_LEN < len(segment) < hd.MAX_SEGMENT_LEN:
            reference = hd.compare_reference(reference, segment, options)
    return hd.check_extracted_reference(reference, options)


def parse_iso(value: str | None, local: tzinfo = UTC) -> datetime | None:
    """An ISO 8601 date or date-time (or an RFC 2822 one, as some meta tags carry), aware, in
    its own offset; without a zone it is read in `local`; a date alone is noon there (so its
    day survives the move to UTC)."""
    if not value:
        return None
    text = value.strip()
    normalised = re.sub(r"\s*(?:GMT|UTC)\s*([+-]\d{1,2})(?::?(\d{2}))?$",
                        lambda m: f"{m.group(1)[0]}{int(m.group(1)[1:]):02d}:{m.group(2) or '00'}",
                        text.replace("Z", "+00:00").replace(" ", "T", 1))
    try:
        parsed = datetime.fromisoformat(normalised)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if len(text) <= 10:
        parsed = parsed.replace(hour=12)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=local)
    return parsed


def parse_printed_date(text: str, language: str | None,
                       rules: MetadataRules) -> datetime | None:
    """The first publication date printed in `text` ("3 November 2026, 14:05 MSK",
    "03.11.2026 14:05", "2026年11月03日 14:05", "Nov 3, 2026 10:22 AM GMT+3"), skipping one
    labelled as an update; a day printed without its time is noon."""
    printed = _printed_date(text, language, rules)
    return printed[0] if printed else None


def _printed_date(text: str, language: str | None,
                  rules: MetadataRules) -> tuple[datetime, bool] | None:
    """`parse_printed_date`'s date, and whether the text printed its time."""
    found: list[tuple[int, datetime, bool]] = []
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            if _UPDATED.search(text[max(0, match.start() - 20):match.start()]):
                continue
            parsed = _printed(match, language, rules)
            if parsed:
                found.append((match.start(), parsed, match.group("hour") is not None))
                break
    if not found:
        return None
    _, parsed, timed = min(found, key=lambda item: item[0])
    return parsed, timed


def detect_language(text: str, rules: MetadataRules) -> str:
    """ISO 639-1 code of the text's language, any of the 97 py3langid knows; `und` when the
    text has too few letters to tell. A short text (a headline) whose words fit several
    languages goes to the one likelier in this corpus (`language_prior`). Written Wu or
    Cantonese is told from standard Chinese by characters of its own (`written_dialects`):
    without one, the text is standard Chinese."""
    sample = text[:1000].strip()  # plenty for the detector (the same on 1,804 real pages as 1,500)
    head = sample[:300]
    # a character of a script without spaces (Chinese, Japanese...) says as much as a short word
    if sum(c.isalpha() for c in head) + 2 * len(UNSPACED.findall(head)) < rules.min_letters:
        return UNDETERMINED
    ranked = rules.identifier.rank(sample)
    if len(sample) >= rules.prior_max_chars:
        code = str(ranked[0][0])
    else:
        code = str(max(ranked, key=lambda pair: pair[1] * rules.language_prior.get(pair[0], 1.0))[0])
    markers = rules.written_dialects.get(code)
    if markers is not None and not any(marker in sample for marker in markers):
        return "zh"  # standard Chinese, which the detector's Wu and Cantonese models also take
    return code


def _printed(match: re.Match[str], language: str | None,
             rules: MetadataRules) -> datetime | None:
    found = match.groupdict()
    year, day = int(found["year"]), int(found["day"])
    month = int(found["month"]) if found.get("month") else _month(found["month_name"], rules) or 0
    abbreviation = found["abbreviation"]
    zone = (_zone(found["gmt"] or found["offset"] or "")
            or (abbreviation and usual_zone_named(abbreviation, language, rules))
            or (_zone(rules.zones[abbreviation]) if abbreviation in rules.zones else None)
            or _local_zone(language, rules))
    if found["hour"] is None:
        hours, minutes = 12, 0  # a date alone: noon keeps its day in UTC
    else:
        hours, minutes = int(found["hour"]), int(found["minute"])
        meridiem, half = found["meridiem"], found["cjk_half"]
        if meridiem and 1 <= hours <= 12:
            hours = hours % 12 + (12 if meridiem.lower().startswith("p") else 0)
        elif half in _AFTERNOON and hours < 12:
            hours += 12
    if not 1990 <= year <= datetime.now(UTC).year + 1:
        return None
    try:
        return datetime(year, month, day, hours, minutes, tzinfo=zone)
    except ValueError:
        return None


def _month(name: str, rules: MetadataRules) -> int | None:
    lowered = name.lower()
    return rules.months.get(lowered[:3])


def _local_zone(language: str | None, rules: MetadataRules) -> tzinfo:
    zone = _zone(rules.local_zones.get(language or "", rules.local_zones["default"]))
    return zone or UTC


def usual_zone_named(name: str, language: str | None, rules: MetadataRules) -> tzinfo | None:
    """The zone usual for `language`, where `name` is a name it goes by in winter or summer (as
    the tz database names it): "CST" is China Standard Time in Chinese, whatever else it names
    elsewhere (US Central)."""
    zone = _local_zone(language, rules)
    return zone if name.lower() in _names_of(zone) else None


@functools.lru_cache(maxsize=64)
def _names_of(zone: tzinfo) -> frozenset[str]:
    """The names `zone` goes by in winter and in summer, lower-cased ("cet", "cest")."""
    return frozenset((datetime(2026, month, 15, 12, tzinfo=zone).tzname() or "").lower()
                     for month in (1, 7))


def _zone(spec: str) -> tzinfo | None:
    """A UTC offset ("+03:00") or an IANA zone ("Europe/Moscow": its offset follows daylight
    saving on the day in question)."""
    if not spec:
        return None
    match = _OFFSET.match(spec.strip())
    if match:
        sign = -1 if match.group(1) == "-" else 1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes >= 60:
            return None
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(spec.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _declared_dates(tree: HtmlElement) -> Iterator[str]:
    """Publication dates the page declares, likeliest first: JSON-LD, the meta tags in the order
    of `_DATE_META`, itemprop=datePublished, then <time datetime>."""
    for node in _json_ld_nodes(tree):
        value = node.get("datePublished")
        if isinstance(value, str):
            yield value
    for attribute, name in _DATE_META:
        yield from _meta_values(tree, attribute, name)
    itemprops: list[str] = []
    times: list[str] = []
    for element in _DECLARED_DATE(tree):  # one walk of the tree for both
        if element.get("itemprop") == "datePublished":
            itemprops.append(element.get("datetime") or element.get("content") or "")
        else:
            times.append(element.get("datetime", ""))
    yield from (value for value in (*itemprops, *times) if value)


_DECLARED_DATE = etree.XPath('//*[@itemprop="datePublished"][not(self::meta)] | //time[@datetime]')


def _date_elements(tree: HtmlElement, rules: MetadataRules) -> Iterator[HtmlElement]:
    for element in _body_elements(tree):
        named = element.tag == "time" or rules.date_element_names.search(_names(element))
        if named and len(element.text_content()) < 300:
            yield element


def _body_elements(tree: HtmlElement) -> Iterator[HtmlElement]:
    """The body's elements in document order, script, style and meta aside."""
    body = tree.find("body")
    for element in (body if body is not None else tree).iter(etree.Element):
        if element.tag not in ("script", "style", "meta"):
            yield element


def _names(element: HtmlElement) -> str:
    """An element's class, id and itemprop, lower-cased."""
    return f"{element.get('class', '')} {element.get('id', '')} {element.get('itemprop', '')}".lower()


_Found = TypeVar("_Found")


def _once_per_tree(read: Callable[[HtmlElement], _Found]) -> Callable[[HtmlElement], _Found]:
    """`read` memoised for as long as its tree lives: the headline, the site, the authors and the
    dates all read the same parts of a page (its JSON-LD, its meta tags), which are found once."""
    found: weakref.WeakKeyDictionary[HtmlElement, _Found] = weakref.WeakKeyDictionary()

    @functools.wraps(read)
    def once(tree: HtmlElement) -> _Found:
        if tree not in found:
            found[tree] = read(tree)
        return found[tree]
    return once


@_once_per_tree
def _json_ld_nodes(tree: HtmlElement) -> list[dict[str, Any]]:
    """The objects of the page's JSON-LD, nested ones too, in document order."""
    nodes: list[dict[str, Any]] = []
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            nodes.extend(_walk_json(json.loads(script)))
        except ValueError:
            continue
    return nodes


@_once_per_tree
def _metas(tree: HtmlElement) -> dict[tuple[str, str], list[str]]:
    """The contents of the page's meta tags by (attribute, value): ("property", "og:title"),
    ("name", "author"), ("itemprop", ...), each list in document order."""
    found: dict[tuple[str, str], list[str]] = {}
    for element in tree.iter("meta"):
        content = element.get("content")
        if content is None:
            continue
        for attribute in ("property", "name", "itemprop"):
            value = element.get(attribute)
            if value is not None:
                found.setdefault((attribute, value), []).append(content)
    return found


def _meta_values(tree: HtmlElement, attribute: str, name: str) -> list[str]:
    return _metas(tree).get((attribute, name), [])


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
    for value in _meta_values(tree, attribute, name):
        if str(value).strip():
            return squash(str(value))
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


# Meta tags that name an article's author.
_AUTHOR_META = ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator",
                "DC.creator", "byl", "citation_author")
_BYLINE_PREFIX = re.compile(
    r"^\s*((more|all|view all)\s+)?((posts|articles|stories|text|words|story|reporting|photos)\s+)?"
    r"(about|by|from|[a-z]+ by|(erstellt|verfasst|geschrieben|artikel|beitrag) von|"
    r"(écrit|rédigé|publié) par|(escrito|redactado|publicado) por|(scritto|pubblicato) da|"
    r"von|par|por|di|door|av|af|autor(es|zy|a)?|auteur|autore|"
    r"auteurs|yazar|автор(ы)?|текст|作者|文|记者|本报记者)\s*(：\s*|[:|-]?(\s+|$))", re.IGNORECASE)
_NAME_SEPARATOR = re.compile(
    r"\s*(?:[,;]\s*(?:and|und|et|y|e|i|en|og|och|ve|и|та|або)\s|[,;|/、，；»›·⋅•]|\s[-–—]\s|"
    r"&|\+|和|与|及)\s*", re.IGNORECASE)
# A label before a name: "Interview: Anna Petrova", "Text: Li Wei", "Authors: ...".
_LABEL = re.compile(r"^\s*[^\W\d_]{2,12}(?:\s[^\W\d_]{2,12})?\s*[:：]\s+")
_CONJUNCTION = re.compile(r"\s+(?:and|und|et|y|e|i|en|og|och|ve|и|та|або)\s+", re.IGNORECASE)
# Words no personal name holds, in the major languages ("für", "of", "the", "by"): a phrase with
# one is an organisation's name, a title or a label.
_FUNCTION_WORD = re.compile(
    r"\s(?:and|und|et|y|og|och|for|für|of|pour|para|per|the|by|from|in|im|am|at|on|zum|zur|"
    r"über|sur|sobre|my|mon|mein|meine|из|для|от)\s", re.IGNORECASE)
# A preposition left at a byline's end once its date is cut off ("Von Anna Petrova am 21. April")
_DANGLING = re.compile(r"\s+(?:am|at|on|um|le|el|il)\.?$", re.IGNORECASE)
# A role: "Writer", "Senior Research Executive", "Former Deputy Tech Editor".
_ROLE_NOUNS = (
    r"(?:writer|editor|reporter|correspondent|contributor|columnist|journalist|producer|analyst|"
    r"expert|consultant|founder|co-founder|ceo|cto|director|manager|attorney|author|blogger|"
    r"executive|redakteur(?:in)?|korrespondent(?:in)?|kolumnist(?:in)?|autor(?:in)?|"
    r"journaliste|periodista|giornalista|"
    r"корреспондент|обозреватель|журналист)\b")
_ROLE_WORDS = (
    # a rank may qualify the role with words of the desk's own ("Senior Autos Reporter")
    r"(?:(?:senior|chief|deputy|managing|associate|assistant|contributing)\s+(?:[\w&-]+\s+){1,2}"
    rf"(?={_ROLE_NOUNS}))?"
    r"(?:(?:former|senior|staff|chief|contributing|special|deputy|executive|managing|associate|"
    r"assistant|lead|principal|tech|technology|digital|security|travel|research|political|"
    r"foreign|business|science|health|sports?|trial|energy|economics?|politics|defen[cs]e|"
    r"world|international|national|investigative|features|opinion|climate|markets)\s+){0,3}"
    + _ROLE_NOUNS)
# A role before a name ("Senior Correspondent Anna Petrova"): the name follows it.
_LEADING_ROLE = re.compile(rf"^{_ROLE_WORDS}\s+(?=\S)", re.IGNORECASE)
# A role after a name ("Stephen Jesudunsin AI Writer"): the name ends before it.
_ROLE = re.compile(rf"(?:^|\s+)(?:(?-i:[A-Z]{{2,}})\s+)?{_ROLE_WORDS}.*$", re.IGNORECASE)
_HONORIFIC = re.compile(r"^(dr|prof|professor|mr|mrs|ms|sir|dame)\.?\s+", re.IGNORECASE)
# Credentials and post-nominals: MD, RD, Ph.D., MBA, CFA, FACP, E-RYT 200...
_CREDENTIAL = re.compile(r"(?:[A-Z][A-Z]?\.?){1,4}(?:-[A-Z]+)?(?:\s+\d+)?®?|(?i:ph\.?\s?d\.?|m\.?d\.?|"
                         r"jr\.?|sr\.?|esq\.?)")
_NOT_A_NAME = re.compile(r"[@/\\*]|https?:|\bwww\b|\.(com|org|net|ru|cn|de|uk|at|ch|fr|it|es|pl)\b|"
                         r"\d", re.IGNORECASE)
# What a byline holds in place of a name, as the whole of it: a placeholder, a label, a desk
# ("Red." is the German and Polish editors' mark), an agency pool.
_PLACEHOLDER = re.compile(
    r"unknown|undefined|anonym|anonymous|anonyme|anónimo|anonimo|publisher|submitted|guest|gast|"
    r"red|agencies|agenturen|agencias|agenzie|newsdesk|datum|text|quelle|source|fuente|fonte|"
    r"user unknown|(your )?name", re.IGNORECASE)  # "name": a template's, "name, email@..."
# Words that make a byline's text a site's own ("NOC Admin"), a link's ("View my profile") or a
# form's ("Email").
_NOT_A_NAME_WORD = re.compile(r"\b(admin|administrator|webmaster|profile?|posts|view|sign in|"
                              r"log in|photos?|fotos?|фото|e-?mail)\b", re.IGNORECASE)
# A Chinese byline that names an outlet, a platform or a desk ("新京报", "证券时报网", "网易",
# "新浪科技"), an editor ("责任编辑：张申") or no one ("作者：未知", "佚名"), is a phrase ("我已授权",
# I have authorised) or a page's button or label ("关注", follow; "暂无简介", no bio yet): Chinese
# has no spaces to tell its words apart, so these are looked for anywhere, an outlet's
# one-character endings (报, 网, 社...) only after two characters or more (a two-character name
# can end in one: "阿部").
_CJK_NOT_A_NAME = re.compile(
    r"[\u3400-\u9fff]{2,}(?:网|报|社|台|号|部|局|院|所)$|"
    r"(?:新闻|消息|资讯|科技|财经|频道|中心|集团|公司|杂志|周刊|广播|发布|政府|委员会|协会|学会|行情|"
    r"综合|之家)$|网易|新浪|腾讯|搜狐|凤凰网|百度|澎湃|头条|微信|微博|自媒体|编辑|记者站|日报|晚报|未知|"
    r"佚名|授权|我|"
    r"篇数|粉丝|关注|暂无|简介|更多|阅读|登录|注册|分享|评论|收藏|点赞|订阅")
# A month or a weekday read from a dateline ("July", "Mon"), not a name.
_CALENDAR_WORD = re.compile(
    r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|"
    r"oct(ober)?|nov(ember)?|dec(ember)?|mon(day)?|tue(sday)?|wed(nesday)?|thu(rsday)?|"
    r"fri(day)?|sat(urday)?|sun(day)?)\.?", re.IGNORECASE)
# Where the names of a byline end and its date, reading time or update note begin.
_BYLINE_TAIL = re.compile(
    r"(?:^|\s+)(?=\d|(?:published|updated|posted|last updated|veröffentlicht|publiziert|"
    r"aktualisiert|stand(?=\s*:)|publié|"
    r"опубликовано|обновлено)\b|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|"
    r"(?:am|on|le|el|il)\s+(?:mon|tue|wed|thu|fri|sat|sun|montag|dienstag|mittwoch|donnerstag|"
    r"freitag|samstag|sonntag|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)[a-z]*\b)",
    re.IGNORECASE)
# Words that make a name an organisation's, in the major languages.
_ORGANISATION = re.compile(
    r"\b(news|times|post|daily|herald|journal|tribune|gazette|agency|press|media|group|inc|ltd|"
    r"llc|corp|gmbh|team|staff|desk|editorial|editors?|newsroom|redaktion|rédaction|redacción|"
    r"redazione|redakcja|redactie|online|magazine|network|tv|radio|service|associated|reuters|afp|"
    r"bloomberg|xinhua|tass|ria|interfax|sputnik|cnn|bbc|dpa|efe|ansa|kyodo|yonhap|welle|"
    r"rundfunk|broadcasting|television|zeitung|nachrichten|foundation|institute|university|"
    r"company|bank|ministry|department|council|association|club|e\.\s?v|fundación|fundacion|"
    r"fondation|fondazione|asociación|associazione|"
    r"редакция|агентство|новости)\b"
    # and German compounds ending in one ("Bundesverband", "Hanns-Seidel-Stiftung")
    r"|(stiftung|verband|verein|partei|genossenschaft)\b", re.IGNORECASE)


def is_person(name: str, site: str | None) -> bool:
    """Whether `name` (one name of a byline) can be a person's: not an e-mail, a URL, a number,
    a month, an organisation, a title-like name, a user name, nor the site's own name."""
    if not 2 <= len(name) <= 60 or len(name.split()) > 5 or _NOT_A_NAME.search(name):
        return False
    if not any(c.isalpha() for c in name) or _ORGANISATION.search(name) \
            or _CALENDAR_WORD.fullmatch(name) or _PLACEHOLDER.fullmatch(name) \
            or _NOT_A_NAME_WORD.search(name) or _FUNCTION_WORD.search(f" {name} ") \
            or _CJK_NOT_A_NAME.search(name):
        return False
    if re.match(r"(the|la|le|les|el|los|il|der|die|das|de|het)\s", name, re.IGNORECASE):
        return False  # "The Commercial Appeal", "Le Monde": a name with an article is a title
    if _is_site(name, site):
        return False
    # a lone lower-case token is a user name ("kffnirmitap"), not a byline
    if name.islower() and " " not in name and not UNSPACED.search(name):
        return False
    # a name is written in capitals or all in small letters (a particle aside: "Ludwig van
    # Beethoven", "Ali al-Hassan", "Anna d'Souza"); "Product marketer" is a phrase
    words = name.split()
    return not (any(w[:1].isupper() for w in words)
                and any(w[:1].islower() and _PARTICLE_END.split(w.lower())[0] not in _PARTICLES
                        for w in words))


_PARTICLES = frozenset((
    "van", "von", "der", "den", "de", "da", "di", "du", "del", "della", "dos", "das", "le", "la",
    "bin", "ibn", "al", "el", "ter", "ten", "zu", "af", "av", "y", "e", "d", "l"))
_PARTICLE_END = re.compile(r"[-'’]")


def _labelled_meta(tree: HtmlElement, *labels: str) -> Iterator[str]:
    """Values of the label/data meta pairs that summary cards carry ("twitter:label1" "Written
    by", "twitter:data1" "Anna Petrova") whose label is one of `labels`."""
    for (attribute, name), contents in _metas(tree).items():
        if attribute == "name" and name.startswith("twitter:label") \
                and any(squash(content).lower() in labels for content in contents):
            yield from _meta_values(tree, "name", f"twitter:data{name[len('twitter:label'):]}")


def _byline_texts(tree: HtmlElement) -> list[list[str]]:
    """Texts of the page's byline markup, in candidate groups: rel=author links and
    itemprop=author together; else the first element outside the comments whose class or id
    names a byline, an author or a writer (not a bio, a box of links or a photo) and that holds
    a text short enough to be a name, each candidate on its own: the texts of its byline
    elements that name a name ("author-name"), of its other byline elements, of its links to an
    author's page ("/contributor/anna-petrova"), then its own text."""
    found: list[str] = []
    for element in tree.xpath('//*[@rel="author"] | //*[@itemprop="author"]'):
        if _in_comments(element):
            continue  # a reader's comment links its own author
        names = element.xpath('.//*[@itemprop="name"]')
        value = (_spaced_text(names[0]) if names else None) or element.get("content") \
            or _spaced_text(element)
        if value and len(value) <= 80:
            found.append(value)
    if found:
        return [found[:6]]
    for element in _body_elements(tree):
        # (a page's own class, "single-author", says nothing of where its byline is)
        if element.tag != "body" and _is_byline_element(element) and not _in_comments(element):
            # the byline's name elements first ("author-name" inside "author-date-block"),
            # then its other byline elements and its links to an author's page, then the whole
            inner = [e for e in element.iterdescendants(etree.Element)
                     if _is_byline_element(e) and not _in_comments(e)]
            links = [a for a in element.iterdescendants("a")
                     if _AUTHOR_PAGE.search(a.get("href", "")) and a not in inner]
            named = [e for e in inner if "name" in _names(e)]
            texts = [_spaced_text(e) for e in (*named, *(e for e in inner if e not in named),
                                                *links, element)]
            candidates = [[text] for text in texts if 0 < len(text) <= 80]
            if candidates:
                return candidates
    return []


def _labelled_byline(tree: HtmlElement) -> str | None:
    """The page's first visible byline that says what it is whatever its markup: a label ("By",
    "Written by", "Von", "Автор") and then a name in an element of its own ("By <a>Anna
    Petrova</a>", "<span>By</span><span>Anna Petrova</span>"), outside the comments, menus,
    footers and asides."""
    for element in _body_elements(tree):
        label = element.text
        if not label or len(label) > 20 or not _BY_LABEL.fullmatch(label.strip()):
            continue
        # the label and the name in one element, or the label an element beside the name's
        holder = element if len(element) else element.getparent()
        if holder is None or holder.tag == "body":
            continue
        if len(_spaced_text(holder)) > 80:
            continue
        text = squash(_text_with_breaks(holder))
        # (an article's own <header> often holds its byline: only the site's furniture is out)
        if (len(text) <= 80 and _BY_LABEL.match(text) and not _in_comments(holder)
                and not _in_page_furniture(holder, ("nav", "footer", "aside"))):
            # full names only: a lone word after "By" is as often an agency or a handle
            names = [n for n in split_names(text) if " " in n or UNSPACED.search(n)]
            return "; ".join(names) or None
    return None


def _text_with_breaks(element: HtmlElement) -> str:
    """An element's text with its line breaks and list items as semicolons: "Anna Petrova<br>
    Moscow" -> "Anna Petrova ; Moscow" (walked without recursion: broken pages nest deep)."""
    parts: list[str] = []
    for event, node in etree.iterwalk(element, events=("start", "end")):
        if event == "end":
            if node is not element:
                parts.append(node.tail or "")
        elif isinstance(node.tag, str):  # (not a comment's own text)
            if node is not element and node.tag in ("br", "li", "p", "div"):
                parts.append(" ; ")
            if node.tag not in ("script", "style"):
                parts.append(node.text or "")
    return " ".join(parts)


# Stricter than _BYLINE_PREFIX (no "from", "about", "photo by"): the whole of a label element.
_BY_LABEL = re.compile(
    r"(by|written by|words by|story by|text by|posted by|von|par|por|di|door|av|af|"
    r"autor(es|zy|a)?|auteur|autore|yazar|автор(ы)?|текст|作者|记者)\s*[:：]?(?=\s|$)",
    re.IGNORECASE)


def _is_byline_element(element: HtmlElement) -> bool:
    names = f"{element.get('class', '')} {element.get('id', '')}".lower()
    return bool(_BYLINE_CLASS.search(names)) and not _NOT_BYLINE_CLASS.search(names)


_AUTHOR_PAGE = re.compile(r"/(authors?|contributors?|writers?|journalists?|people|staff|profile)/",
                          re.IGNORECASE)
_BYLINE_CLASS = re.compile(r"byline|author|writer|posted-?by|submitted-?by|reporter")
_NOT_BYLINE_CLASS = re.compile(r"bio|box|about|avatar|image|img|photo|social|follow|more|list")


def _in_comments(element: HtmlElement) -> bool:
    return any("comment" in f"{a.get('class', '')} {a.get('id', '')}".lower()
               for a in element.iterancestors())


def _spaced_text(element: HtmlElement) -> str:
    return squash(" ".join(element.itertext()))


# what an h1 may hold that is not its headline: a heading a template nested in it, code
_NOT_HEADLINE_TEXT = frozenset({"h2", "h3", "h4", "h5", "h6", "script", "style", "template"})


def _heading_text(heading: HtmlElement) -> str:
    """A heading's words: its line breaks as spaces ("WEEKEND<br>CODING"), without the headings
    a template nested in it (a "Posted on ... by ..." line) and without scripts."""
    parts = [heading.text or ""]
    for child in heading:
        if child.tag == "br":
            parts.append(" ")
        elif isinstance(child.tag, str) and child.tag not in _NOT_HEADLINE_TEXT:
            parts.append(_heading_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _page_h1s(tree: HtmlElement) -> Iterator[HtmlElement]:
    """The page's `<h1>`s that may be its headline: not in its header, navigation, footer or
    asides, nor in a dialog or a hidden part of it."""
    return (h for h in tree.iter("h1") if not _in_page_furniture(h) and not _hidden(h))


def _hidden(element: HtmlElement) -> bool:
    """In a dialog, or in a part of the page marked hidden: not what a reader sees of it."""
    return any(e.tag == "dialog" or e.get("role") in ("dialog", "alertdialog")
               or e.get("hidden") is not None or e.get("aria-hidden") == "true"
               for e in (element, *element.iterancestors()))


def _in_page_furniture(element: HtmlElement,
                       tags: tuple[str, ...] = ("header", "nav", "footer", "aside")) -> bool:
    return any(a.tag in tags for a in element.iterancestors())


def _without_site(title: str, site: str | None, domain: str | None = None) -> str:
    """"Headline | Site" -> "Headline": the first or last part of a title, beside a separator,
    that is the site's name or its domain's ("cbcbank.com": "CBC Bank", "Newegg.com") is
    dropped."""
    separators = list(_TITLE_SEPARATOR.finditer(title))
    if not separators or not (site or domain):
        return title
    site_key = fold(site).replace(" ", "") if site else ""
    # the domain's name: "cbcbank" of www.cbcbank.com, and "cbcbankcom" as it is spelt in full
    host = re.sub(r"^(www\d?|m|amp|mobile)\.", "", (domain or "").casefold())
    label, full = host.split(".")[0], re.sub(r"\W", "", host.split(":")[0])
    last, first = separators[-1], separators[0]
    for part, rest in ((title[last.end():], title[:last.start()]),
                       (title[:first.start()], title[first.end():])):
        key = fold(part).replace(" ", "")
        bare = re.sub(r"\W", "", key)
        if key and rest.strip() and (
                (site_key and (key in site_key or site_key in key))
                or (bare and (bare in (label, full) or len(bare) >= 5
                              and (label.startswith(bare) or label.endswith(bare))))):
            return squash(rest).strip(" |–—-·»:/")  # ("Headline | | Site")
    return title


_TITLE_SEPARATOR = re.compile(r"\s+[|–—\-·»:/]\s+|\s*\|\s*|\s+::\s+")

"""The evaluation data written by the team: pages with gold text and metadata (held out from
development: tests/eval/pages/), the sample corpus's pages (the development set), and the
labelled relevance articles (tests/eval/relevance/)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from pipeline.records import FeedItem, Page

EVAL = Path(__file__).resolve().parent
SAMPLE = EVAL.parent / "sample_site"
SAMPLE_BASE = "http://127.0.0.1:8765"


@dataclass(frozen=True)
class GoldPage:
    group: str  # template or outlet
    name: str
    url: str
    body: bytes
    http_charset: str | None
    gold_text: str
    title: str
    language: str
    published: datetime | None
    feed_published: datetime | None
    canonical: str
    relevant: bool | None

    def page(self) -> Page:
        return Page(url=self.url, final_url=self.url, status=200, content_type="text/html",
                    charset=self.http_charset, body=self.body,
                    fetched_at=datetime(2026, 11, 26, tzinfo=UTC))

    def feed_item(self) -> FeedItem:
        return FeedItem(url=self.url, feed_name=self.group, feed_url="", title=None,
                        published_at=self.feed_published)


def held_out_pages() -> list[GoldPage]:
    pages = []
    for manifest in sorted((EVAL / "pages").glob("*.yaml")):
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        folder = manifest.with_suffix("")
        for raw in data["pages"]:
            pages.append(GoldPage(
                group=data["template"], name=raw["file"], url=raw["url"],
                body=(folder / raw["file"]).read_bytes(), http_charset=raw.get("http_charset"),
                gold_text=(folder / raw["gold"]).read_text(encoding="utf-8").strip(),
                title=raw["title"], language=raw["language"],
                # a page that prints no date: the feed's date is the truth we have
                published=_time(raw["published"] or raw.get("feed_published")),
                feed_published=_time(raw.get("feed_published")),
                canonical=raw["canonical"], relevant=raw.get("relevant")))
    return pages


def sample_pages() -> list[GoldPage]:
    pages = []
    for manifest in sorted((SAMPLE / "expected").glob("*.yaml")):
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        for raw in data["articles"]:
            if not raw["page"] or raw["kind"] not in ("article", "amp_copy", "syndicated_copy"):
                continue
            path = SAMPLE / "www" / data["slug"] / raw["page"]
            pages.append(GoldPage(
                group=data["slug"], name=raw["page"],
                url=raw["feed_link"].replace("{BASE_URL}", SAMPLE_BASE),
                body=path.read_bytes().replace(b"{BASE_URL}", SAMPLE_BASE.encode()),
                http_charset="utf-8",
                gold_text=(SAMPLE / "expected" / raw["gold"]).read_text(encoding="utf-8").strip(),
                title=raw["title"], language=raw["language"], published=_time(raw["published"]),
                feed_published=None, canonical=raw["canonical"].replace("{BASE_URL}", SAMPLE_BASE),
                relevant=raw["relevant"]))
    return pages


def labelled_articles() -> list[dict[str, Any]]:
    articles = []
    for path in sorted((EVAL / "relevance").glob("*.yaml")):
        articles.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["articles"])
    return articles


def annotated_articles() -> list[dict[str, Any]]:
    """Articles with their gold entities (tests/eval/entities/)."""
    articles = []
    for path in sorted((EVAL / "entities").glob("*.yaml")):
        articles.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["articles"])
    return articles


def dedup_set() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Documents (by id) and labelled pairs for near-duplicates and stories (tests/eval/dedup/)."""
    documents: dict[str, dict[str, Any]] = {}
    pairs: list[dict[str, Any]] = []
    for path in sorted((EVAL / "dedup").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        documents.update({doc["id"]: doc for doc in data["documents"]})
        pairs.extend(data["pairs"])
    return documents, pairs


def tokens(text: str) -> list[str]:
    """Words for alphabetic scripts, single characters for Chinese: the bag-of-words unit of
    the public article-extraction benchmarks, made to work for text without spaces."""
    return re.findall(r"[\u3400-\u9fff]|[^\W\d_]+|\d+", text.casefold())


def overlap(extracted: str, gold: str) -> tuple[int, int, int]:
    """(shared tokens, extracted tokens, gold tokens) of two texts as bags of words."""
    got, want = Counter(tokens(extracted)), Counter(tokens(gold))
    return sum((got & want).values()), sum(got.values()), sum(want.values())


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value)).astimezone(UTC)

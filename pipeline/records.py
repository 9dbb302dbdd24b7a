"""The records that flow between stages, one per step of the data flow in docs/architecture.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from pipeline.text import word_count


class Outcome(str, Enum):
    """What happened to a feed item; the ledger stores one per item URL."""

    PENDING = "pending"
    INDEXED = "indexed"
    DUPLICATE = "duplicate"
    IRRELEVANT = "irrelevant"
    FAILED = "failed"


class ItemError(Exception):
    """A feed item could not go further. `reason` is a short stable code (e.g. `http_404`)
    that is counted and stored in the ledger; `transient` says whether a retry may help,
    `retry_after` how many seconds the site asked us to wait before one (`Retry-After`), and
    `attempted` whether the page was asked at all (a failure before any request, such as a host
    still paused, costs the item none of its `max_attempts`)."""

    def __init__(self, reason: str, detail: str, *, transient: bool = False,
                 retry_after: float | None = None, attempted: bool = True) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after
        self.attempted = attempted

    def __reduce__(self) -> tuple[Any, ...]:  # raised in a worker process, seen in ours
        return _item_error, (self.reason, self.detail, self.transient, self.retry_after,
                             self.attempted)


def _item_error(reason: str, detail: str, transient: bool, retry_after: float | None,
                attempted: bool) -> ItemError:
    return ItemError(reason, detail, transient=transient, retry_after=retry_after,
                     attempted=attempted)


@dataclass(frozen=True)
class FeedItem:
    """An entry discovered in a feed."""

    url: str
    feed_name: str
    feed_url: str
    title: str | None = None
    summary: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class Page:
    """A fetched HTTP response body, decoded neither by us nor yet by the extractor."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int
    content_type: str | None
    charset: str | None
    body: bytes
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Relevance:
    score: float
    relevant: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Entity:
    name: str
    type: str  # person | organization | location | other
    mentions: int
    salience: bool  # named in the title or the lead
    wikidata: str | None = None
    linked: bool = False


@dataclass(frozen=True)
class Source:
    name: str
    domain: str
    feed: str | None = None


@dataclass(frozen=True)
class Article:
    """A cleaned article, built by `extract` and completed by the later stages."""

    url: str  # canonical URL
    title: str
    text: str
    language: str | None
    published_at: datetime | None
    authors: tuple[str, ...]
    source: Source
    fetched_at: datetime
    summary: str | None = None
    fetched_url: str | None = None  # the URL the page was fetched from, if not canonical
    relevance: Relevance | None = None
    entities: tuple[Entity, ...] = field(default=())
    # what the entity stage did not read, and why ("ner_language_not_covered:de")
    entity_notes: tuple[str, ...] = field(default=())

    @property
    def word_count(self) -> int:
        """Words of `text` as the stages count them (`pipeline.text.word_count`): two
        characters of a script written without spaces, Chinese or Japanese, count as one."""
        return word_count(self.text)

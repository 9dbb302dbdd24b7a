"""ingest: one feed, or all of them, through every stage, with the ledger kept true.

Order of writes for a feed: articles, then duplicates on their originals, then the ledger, then
the feed's conditional-GET validators. If Elasticsearch fails part-way, the exception stops
the feed before the ledger and the validators are written, so the next run fetches the feed
body again and finishes the job; ids are idempotent, so nothing is indexed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Self

from elasticsearch import ApiError, Elasticsearch, TransportError

from pipeline.dedup import Deduplicator, DuplicateOf, Fingerprint, fingerprint
from pipeline.discover import poll_feed
from pipeline.enrich import EnrichRules, enrich_articles, enrichment_version
from pipeline.extract import extract_article
from pipeline.fetch import HttpClient
from pipeline.gazetteer import Gazetteer
from pipeline.index import add_duplicate, article_document, index_documents
from pipeline.ledger import FeedStates, Ledger, LedgerEntry
from pipeline.minhash import MinHasher
from pipeline.reconcile import Indexed, reconcile
from pipeline.records import Article, FeedItem, ItemError, Outcome
from pipeline.relevance import TopicModel, score_relevance
from pipeline.settings import Feed, Settings
from pipeline.store import connect
from pipeline.stories import StoryFinder, StoryRules
from pipeline.urls import url_id

log = logging.getLogger(__name__)

COUNTS = ("seen", "fetched", "indexed", "duplicate", "irrelevant", "failed")


@dataclass
class FeedReport:
    name: str
    url: str
    status: str = "ok"  # ok | not_modified | failed
    seen: int = 0
    fetched: int = 0
    indexed: int = 0
    duplicate: int = 0
    irrelevant: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(run_id: str, feed_reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's report: totals by outcome over the feeds' reports (`FeedReport.as_dict()`),
    then the feeds themselves, as `newsroom ingest --json` prints it."""
    totals = {key: sum(int(report[key]) for report in feed_reports) for key in COUNTS}
    return {"run_id": run_id, **totals, "feeds": feed_reports}


class Ingestor:
    """Holds the clients and models one worker needs; `ingest_feed` is safe to call for many
    feeds in turn. Close it (or use it as a context manager) to release the HTTP pool."""

    def __init__(self, settings: Settings, es: Elasticsearch | None = None,
                 nlp: Any | None = None) -> None:
        self.settings = settings
        self.es = es or connect(settings)
        self.http = HttpClient(settings.http)
        self.gazetteer = Gazetteer.load(settings.config_dir / "entities.yaml")
        self.enrich_rules = EnrichRules.load(settings.config_dir / "enrich.yaml")
        self.enrich_version = enrichment_version(settings.config_dir / "entities.yaml",
                                                 settings.config_dir / "enrich.yaml")
        self.topic = TopicModel.load(settings.config_dir / "topic.yaml", self.gazetteer)
        self.ledger = Ledger(self.es, settings.ledger_index, settings.max_attempts)
        self.feed_states = FeedStates(self.es, settings.feed_state_index)
        self.hasher = MinHasher.load(settings.config_dir / "dedup.yaml")
        self.story_rules = StoryRules.load(settings.config_dir / "dedup.yaml")
        self._nlp = nlp

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def ingest_feed(self, feed: Feed, run_id: str, mode: str = "poll") -> FeedReport:
        """Poll `feed` and take each new item, and each earlier transient failure, through
        every stage.

        Item problems are recorded (ledger `failed` with a reason) and the feed goes on; a feed
        that cannot be fetched is reported `failed`; Elasticsearch errors raise."""
        report = FeedReport(name=feed.name, url=feed.url)
        try:
            poll = poll_feed(feed, self.feed_states.load(feed.url), self.http)
        except ItemError as exc:
            log.warning("feed %s failed: %s", feed.name, exc)
            report.status = "failed"
            report.errors.append({"url": feed.url, "reason": exc.reason, "error": exc.detail})
            self.feed_states.save_failure(feed.name, feed.url, str(exc))
            return report
        if poll.not_modified:
            report.status = "not_modified"
        if poll.warning:
            report.errors.append({"url": feed.url, "reason": "feed_warning",
                                  "error": poll.warning})

        # Items that failed transiently on an earlier run are retried even when the feed is
        # unchanged or no longer lists them.
        listed = {item.url for item in poll.items}
        retries = [FeedItem(url=url, feed_name=feed.name, feed_url=feed.url)
                   for url in self.ledger.retry_candidates(feed.name) if url not in listed]
        items = [*poll.items, *retries]
        report.seen = len(items)
        previous = self.ledger.lookup(item.url for item in items)
        todo = [i for i in items if not self.ledger.is_settled(previous.get(i.url))]
        self._process(todo, feed, run_id, mode, report, previous)
        self.feed_states.save_success(feed.name, feed.url, poll.state,
                                      items_seen=len(poll.items))
        return report

    def _process(self, items: list[FeedItem], feed: Feed, run_id: str, mode: str,
                 report: FeedReport, previous: dict[str, dict[str, Any]]) -> None:
        batch = _Batch(feed=feed, run_id=run_id, mode=mode, report=report)
        dedup = Deduplicator(self.es, self.settings.index_alias, self.hasher)
        for item in items:
            try:
                self._take(item, batch, dedup)
            except ItemError as exc:
                log.info("item %s failed: %s", item.url, exc)
                batch.fail(item, exc.reason, exc.detail, retryable=exc.transient)
            except (ApiError, TransportError):
                raise
            except Exception as exc:  # a bug or a page that breaks a library: keep going
                log.exception("item %s failed unexpectedly", item.url)
                batch.fail(item, "internal_error", f"{type(exc).__name__}: {exc}")
        self._write(batch)
        self.ledger.record(batch.entries, previous)
        for entry in batch.entries:
            setattr(report, entry.status.value, getattr(report, entry.status.value) + 1)

    def _take(self, item: FeedItem, batch: _Batch, dedup: Deduplicator) -> None:
        """Fetch, extract, judge and dedup one item: it joins the batch's articles, its copies,
        or its settled entries."""
        page = self.http.get(item.url)
        batch.report.fetched += 1
        article = extract_article(page, item, source_name=batch.feed.source_name)
        relevance = score_relevance(article.title, article.text, self.topic)
        article = replace(article, relevance=relevance)
        if not relevance.relevant:
            batch.entries.append(batch.entry(item, Outcome.IRRELEVANT, reason="not_relevant",
                                             error=f"score {relevance.score}"))
            return
        print_ = fingerprint(article.text, self.hasher)
        published = article.published_at.isoformat() if article.published_at else None
        original = dedup.check(article.url, print_, published)
        if original is not None:
            batch.entries.append(batch.entry(item, Outcome.DUPLICATE, reason=original.match,
                                             duplicate_of=original.doc_id))
            if original.match != "same_url":  # another URL: recorded on the original
                batch.copies.append((item, article, original))
            return
        dedup.accept(article.url, print_, published)
        batch.accepted.append((item, article, print_))

    def _write(self, batch: _Batch) -> None:
        """Enrich, assign stories, index, record copies, reconcile; then the batch's entries
        say what happened to each accepted article."""
        alias = self.settings.index_alias
        enriched = enrich_articles((a for _, a, _ in batch.accepted), self.gazetteer,
                                   self.enrich_rules, self._nlp)
        stories = StoryFinder(self.es, alias, self.story_rules)
        documents = [article_document(article, print_, stories.assign(article), batch.run_id,
                                      batch.mode, self.enrich_version)
                     for article, (_, _, print_) in zip(enriched, batch.accepted, strict=True)]
        rejected = {f.url: f for f in index_documents(self.es, alias, documents)}
        for _, article, original in batch.copies:
            add_duplicate(self.es, alias, original.doc_id, article.url,
                          batch.feed.source_name, article.fetched_at)
        # Copies indexed meanwhile by other workers, or published later than ours: one stays.
        demoted = reconcile(self.es, alias, self.ledger, self.hasher, [
            Indexed(url_id(article.url), article.url, print_,
                    article.published_at.isoformat() if article.published_at else None)
            for _, article, print_ in batch.accepted if article.url not in rejected])
        for item, article, _ in batch.accepted:
            failure = rejected.get(article.url)
            doc_id = url_id(article.url)
            if failure:
                batch.fail(item, failure.reason, failure.detail)
            elif doc_id in demoted:
                batch.entries.append(batch.entry(item, Outcome.DUPLICATE, reason="near_copy",
                                                 duplicate_of=demoted[doc_id]))
            else:
                batch.entries.append(batch.entry(item, Outcome.INDEXED, doc_id=doc_id))
        batch.entries = [replace(e, duplicate_of=demoted.get(e.duplicate_of, e.duplicate_of))
                         if e.duplicate_of else e for e in batch.entries]


@dataclass
class _Batch:
    """One feed's items on their way through a run."""

    feed: Feed
    run_id: str
    mode: str
    report: FeedReport
    entries: list[LedgerEntry] = field(default_factory=list)
    accepted: list[tuple[FeedItem, Article, Fingerprint]] = field(default_factory=list)
    copies: list[tuple[FeedItem, Article, DuplicateOf]] = field(default_factory=list)

    def entry(self, item: FeedItem, status: Outcome, **details: Any) -> LedgerEntry:
        return LedgerEntry(item.url, self.feed.name, status, self.run_id, self.mode, **details)

    def fail(self, item: FeedItem, reason: str, error: str, retryable: bool = False) -> None:
        self.entries.append(self.entry(item, Outcome.FAILED, reason=reason, error=error,
                                       retryable=retryable))
        self.report.errors.append({"url": item.url, "reason": reason, "error": error})


def ingest(feeds: Iterable[Feed], settings: Settings, run_id: str, mode: str = "poll",
           es: Elasticsearch | None = None) -> dict[str, Any]:
    """Run every feed in turn (one failing feed does not stop the others); the summary."""
    with Ingestor(settings, es=es) as ingestor:
        reports = [ingestor.ingest_feed(feed, run_id, mode).as_dict() for feed in feeds]
    return summarize(run_id, reports)

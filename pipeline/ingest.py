"""ingest: one feed, or all of them, through every stage, with the ledger kept true; or, for
backfills and the daily sweep, what one source's archive listings give for a time window, or
an operator's list of URLs.

Order of writes for a feed: articles, then duplicates on their originals, then the ledger, then
the feed's conditional-GET validators, then its health. If Elasticsearch fails part-way, the exception stops
the feed before the ledger and the validators are written, so the next run fetches the feed
body again and finishes the job; ids are idempotent, so nothing is indexed twice.

Concurrency: `ingest` polls up to `ingest.feed_workers` feeds at once, and a feed's pages are
fetched up to `ingest.fetch_workers` at once, in threads that share the per-host limits
(`pipeline.polite`, held across processes through the feed-state index), so many hosts are in
flight while no host sees more than `per_host_concurrency` requests or starts closer than
`per_host_delay`. The pages are then
taken in the feed's order. What only computes (reading a page, enriching the accepted
articles) runs on `ingest.cpu_workers` processes (`pipeline.cpu`): a fetch thread hands its
page over to be read as soon as it has it and goes on to its next page without waiting for the
reading; `pipeline.cpu` is loaded when the first page is, so that a run with no new page never
loads trafilatura and the models.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from elasticsearch import ApiError, Elasticsearch, TransportError

from pipeline.archive import Window, list_archive
from pipeline.dedup import (
    Deduplicator,
    DuplicateOf,
    Fingerprint,
    listing_grace,
    ranked_time,
    seniority,
)
from pipeline.discover import FeedState, poll_feed
from pipeline.enrich import enrichment_version
from pipeline.fetch import HttpClient
from pipeline.health import FeedHealth, health_document
from pipeline.index import (
    add_duplicates_each,
    article_document,
    index_documents,
    is_write_block,
    quarantine,
    utc_iso,
)
from pipeline.ledger import (
    FeedStates,
    HostStarts,
    Ledger,
    LedgerEntry,
    RobotsAnswers,
    document_of,
    names_as_url,
)
from pipeline.minhash import MinHasher
from pipeline.polite import Turn
from pipeline.progress import NO_PROGRESS, Progress
from pipeline.reconcile import Indexed, holders_of, reconcile
from pipeline.records import Article, FeedItem, ItemError, Outcome, Page
from pipeline.settings import Feed, Settings
from pipeline.store import connect
from pipeline.stories import StoryFinder, StoryRules
from pipeline.urls import MAX_URL_CHARS, indexer_rank, is_variant, site_of, url_id

if TYPE_CHECKING:  # pipeline.cpu (trafilatura, the models) is loaded on first use: Ingestor.cpu
    from pipeline.cpu import CpuStages, PendingReading, Reading

log = logging.getLogger(__name__)

COUNTS = ("seen", "fetched", "indexed", "duplicate", "irrelevant", "failed")
URL_LIST = "urls"  # the feed name ledger records of `ingest_urls` carry
XCOM_ERRORS = 20  # errors a feed's report keeps where Airflow stores it (XCom, every run)


@dataclass
class FeedReport:
    """What a run did with one feed (a poll) or one source (an archive run)."""

    name: str
    url: str
    status: str = "ok"  # ok | not_modified | failed | backed_off | dry_run
    seen: int = 0
    fetched: int = 0
    indexed: int = 0
    duplicate: int = 0
    irrelevant: int = 0
    failed: int = 0
    fetch_failures: int = 0  # of `failed`: the page could not be fetched
    extraction_failures: int = 0  # of `failed`: fetched, but no article could be read
    out_of_window: int = 0  # archive runs: published outside the window, left for its day
    errors: list[dict[str, Any]] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # dry runs: what would be fetched
    fetch_ms: list[float] = field(default_factory=list)

    def as_dict(self, max_errors: int | None = None) -> dict[str, Any]:
        """The report as plain data; with `max_errors`, only that many errors (the ledger
        holds every item's), and how many were left out."""
        report = asdict(self)
        times = report.pop("fetch_ms")
        report["median_fetch_ms"] = round(statistics.median(times), 1) if times else None
        kept = report["errors"] if max_errors is None else report["errors"][:max_errors]
        report["errors_left_out"] = len(report["errors"]) - len(kept)
        report["errors"] = kept
        return report


@dataclass(frozen=True)
class _Fetched:
    """What a fetch thread did with an item: the page (or what stopped its fetch) and the
    milliseconds its requests took on the wire (`HttpClient.timed`; None when it made none: a
    page robots.txt disallows, a paused host); then the page's reading, begun (or what stopped
    it from beginning)."""

    page: Page | Exception
    wire_ms: float | None
    reading: PendingReading | Exception | None = None


# An item's page being fetched in a fetch thread, then read, or the reason it is not fetched.
Fetching = Future[_Fetched] | ItemError


def summarize(run_id: str, feed_reports: list[dict[str, Any]],
              settled: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The run's report: totals by outcome over the feeds' reports (`FeedReport.as_dict()`),
    then the feeds themselves, as `newsroom ingest --json` prints it.

    With `settled` (the ledger's outcomes for the run, `Ledger.counts`), the totals of outcomes
    are the ledger's: a feed's report says what it saw, and feeds polled at once may have
    settled since which copy is the original. Not where a ledger record could not be written:
    the ledger then lacks items the reports have."""
    totals = {key: sum(int(report[key]) for report in feed_reports) for key in COUNTS}
    unrecorded = any(error["reason"] == "ledger_write_failed"
                     for report in feed_reports for error in report["errors"])
    if settled and not unrecorded:
        totals.update({key: settled.get(key, 0) for key in COUNTS[2:]})
    return {"run_id": run_id, **totals, "feeds": feed_reports}


class Ingestor:
    """Holds the clients and models one worker needs; `ingest_feed` is safe to call for many
    feeds, in turn or from several threads at once. Close it (or use it as a context manager)
    to release the HTTP pool."""

    def __init__(self, settings: Settings, es: Elasticsearch | None = None,
                 progress: Progress = NO_PROGRESS) -> None:
        self.settings = settings
        self.progress = progress  # items listed and taken, for a terminal's progress bar
        self.es = es or connect(settings)
        self.http = HttpClient(settings.http,
                               robots_store=RobotsAnswers(self.es, settings.feed_state_index),
                               host_clock=HostStarts(self.es, settings.feed_state_index,
                                                     settings.http.longest_request))
        self._cpu: CpuStages | None = None
        self._cpu_lock = threading.Lock()
        self.enrich_version = enrichment_version(settings.config_dir / "entities.yaml",
                                                 settings.config_dir / "enrich.yaml")
        self.ledger = Ledger(self.es, settings.ledger_index, settings.max_attempts)
        self.feed_states = FeedStates(self.es, settings.feed_state_index, settings.polling)
        self.health = FeedHealth(self.es, settings.feed_health_index)
        self.hasher = MinHasher.load(settings.config_dir / "dedup.yaml")
        self.story_rules = StoryRules.load(settings.config_dir / "dedup.yaml")
        self.listing_grace = listing_grace(settings.config_dir / "dedup.yaml")
        self._run_lock = threading.Lock()
        self._run_id: str | None = None  # the run whose start made the ledger searchable

    @property
    def cpu(self) -> CpuStages:
        """The CPU stages, loaded on first use: a run that fetches no page never loads them."""
        if self._cpu is None:  # asked for every page: the lock only while they are loaded
            with self._cpu_lock:
                if self._cpu is None:
                    from pipeline.cpu import CpuStages, cpu_workers

                    self._cpu = CpuStages(self.settings.config_dir,
                                          cpu_workers(self.settings.cpu_workers),
                                          self.settings.reading_timeout_s)
        return self._cpu

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None:
                self._show_what_was_recorded()
        finally:
            self.http.close()

    def _show_what_was_recorded(self) -> None:
        """When a run ends: what it recorded (ledger, feed health) searchable at once, so that
        `newsroom ledger`, `newsroom feeds` or Kibana right after show it. Its writes do not
        wait for refreshes as they go."""
        try:
            self.ledger.searchable()
            self.health.show()
        except (ApiError, TransportError) as exc:  # written; searchable within a second
            log.warning("the run's records could not be refreshed: %s", exc)

    def ingest_feed(self, feed: Feed, run_id: str, mode: str = "poll") -> FeedReport:
        """Poll `feed` and take each new item, and each earlier transient failure, through
        every stage; then record the feed's health.

        Item problems are recorded (ledger `failed` with a reason) and the feed goes on; a feed
        that cannot be fetched is reported `failed` and backed off (`backed_off` until its next
        poll time); Elasticsearch errors raise."""
        report = FeedReport(name=feed.name, url=feed.url)
        state = self.feed_states.load(feed.url)
        if state.backed_off(datetime.now(UTC)):
            report.status = "backed_off"
            self._record_health(feed, report, state, run_id, mode)
            return report
        try:
            poll = poll_feed(feed, state, self.http)
        except ItemError as exc:
            log.warning("feed %s failed: %s", feed.name, exc)
            report.status = "failed"
            report.errors.append({"url": feed.url, "reason": exc.reason, "error": exc.detail})
            state = self.feed_states.save_failure(feed, state, str(exc))
            self._record_health(feed, report, state, run_id, mode)
            return report
        if poll.not_modified:
            report.status = "not_modified"
        if poll.warning:
            report.errors.append({"url": feed.url, "reason": "feed_warning",
                                  "error": poll.warning})

        # Items that failed transiently on an earlier run are retried even when the feed is
        # unchanged or no longer lists them.
        self._earlier_runs_searchable(run_id)
        listed = {item.url for item in poll.items}
        retries = [FeedItem(url=url, feed_name=feed.name, feed_url=feed.url)
                   for url in self.ledger.retry_candidates(feed.name) if url not in listed]
        items = [*poll.items, *retries]
        report.seen = len(items)
        self._ingest_items(items, _Batch(feed=feed, run_id=run_id, mode=mode, report=report,
                                         feed_read_at=state.last_success))
        # An item whose ledger record was not written must be listed again: the feed's new
        # validators are not kept, so that the next poll reads the whole feed.
        unrecorded = any(e["reason"] == "ledger_write_failed" for e in report.errors)
        state = self.feed_states.save_success(
            feed, replace(poll.state, etag=state.etag, last_modified=state.last_modified)
            if unrecorded else poll.state, items_seen=len(poll.items))
        self._record_health(feed, report, state, run_id, mode)
        return report

    def _earlier_runs_searchable(self, run_id: str) -> None:
        """Once per run, before its first search of the ledger: what earlier runs recorded is
        made searchable (records are written without waiting for a refresh, and a run killed
        a moment ago never had one)."""
        with self._run_lock:
            if self._run_id != run_id:
                self.ledger.searchable()
                self._run_id = run_id

    def ingest_archive(self, feeds: list[Feed], window: Window, run_id: str, mode: str,
                       reprocess: bool = False, dry_run: bool = False) -> FeedReport:
        """Take what one source (`feeds`, sharing a source name) published in `window`, as its
        archive listings give it, through every stage.

        Items the ledger has settled are skipped unless `reprocess`; a page whose own
        publication time falls outside the window is left for its own day (`out_of_window`);
        a dry run only lists what would be fetched."""
        report = FeedReport(name=feeds[0].source_name, url=feeds[0].url)
        listing = list_archive(feeds, window, self.http, self.settings.archive)
        report.errors.extend(listing.errors)
        if listing.errors and not listing.listings_read:
            report.status = "failed"
        report.seen = len(listing.items)
        if dry_run:
            return self._plan(listing.items, report, reprocess)
        for feed in feeds:
            items = [item for item in listing.items if item.feed_name == feed.name]
            self._ingest_items(items, _Batch(feed=feed, run_id=run_id, mode=mode, report=report,
                                             window=window, reprocess=reprocess))
        return report

    def ingest_urls(self, urls: list[str], window: Window, run_id: str, mode: str,
                    reprocess: bool = False, dry_run: bool = False) -> FeedReport:
        """Take the pages at `urls` (an operator's list) published in `window` through every
        stage, as an archive run takes what a listing gives. Their ledger records name the feed
        `urls`; each article's source is what its page says (site name, else domain)."""
        feed = Feed(name=URL_LIST, url=URL_LIST)
        report = FeedReport(name=URL_LIST, url=URL_LIST)
        items = [FeedItem(url=url, feed_name=feed.name, feed_url=feed.url)
                 for url in dict.fromkeys(urls)]
        report.seen = len(items)
        if dry_run:
            return self._plan(items, report, reprocess)
        self._ingest_items(items, _Batch(feed=feed, run_id=run_id, mode=mode, report=report,
                                         window=window, reprocess=reprocess,
                                         source_from_page=True))
        return report

    def _plan(self, items: list[FeedItem], report: FeedReport, reprocess: bool) -> FeedReport:
        """A dry run: what would be fetched."""
        report.status = "dry_run"
        previous = self.ledger.lookup(item.url for item in items)
        report.planned = [item.url for item in items
                          if reprocess or not self.ledger.is_settled(previous.get(item.url))]
        return report

    def _record_health(self, feed: Feed, report: FeedReport, state: FeedState, run_id: str,
                       mode: str) -> None:
        self.health.record(health_document(
            feed, report.as_dict(), state, run_id, mode, datetime.now(UTC),
            poll_interval_s=self.feed_states.backoff_s(state.error_streak)))

    def _ingest_items(self, items: list[FeedItem], batch: _Batch) -> None:
        """Take the items the ledger has not settled (all of them when reprocessing), in
        batches of `ingest.batch_size`, each written and recorded before the next is fetched:
        memory stays bounded however long the feed."""
        self._earlier_runs_searchable(batch.run_id)  # `_claimed` searches it
        size = self.settings.batch_size
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            previous = self.ledger.lookup(item.url for item in chunk)
            self._settle_leftovers(previous)
            now = datetime.now(UTC)
            todo = [i for i in chunk if batch.reprocess or (
                not self.ledger.is_settled(previous.get(i.url))
                and self.ledger.is_due(previous.get(i.url), now))]
            if todo:
                self.progress.listed(len(todo))
                self._process(todo, batch.fresh(), previous)

    def _settle_leftovers(self, records: dict[str, dict[str, Any]]) -> None:
        """What a run killed between its ledger write and the checks after it may have left
        for the items a later run lists, settled as an uninterrupted run settles it:
        - an item recorded `indexed` for a document another worker demoted meanwhile becomes
          a duplicate of the document that took it over;
        - two items `indexed` for one document (an article and its variant, written by two
          feeds at once): of a variant recorded `indexed`, the document gets one indexer."""
        indexed = {record["doc_id"]: url for url, record in records.items()
                   if record.get("status") == Outcome.INDEXED.value and record.get("doc_id")}
        if not indexed:
            return
        existing = self._existing(sorted(indexed))
        gone = sorted(set(indexed) - existing)
        holders = holders_of(self.es, self.settings.index_alias, [indexed[d] for d in gone])
        for doc_id in gone:
            if (holder := holders.get(indexed[doc_id])) is not None:
                self.ledger.repoint(doc_id, holder.doc_id, holder.reason)
        variants = sorted({record["doc_id"] for url, record in records.items()
                           if record.get("status") == Outcome.INDEXED.value
                           and record.get("doc_id") in existing  # a variant, not its own URL
                           and is_variant(url, record["doc_id"])})
        if variants:
            self.ledger.one_indexer_each(doc_ids=variants, writers=self._writers)

    def _settle_copies_of(self, doc_ids: list[str]) -> None:
        """The records of the copies recorded on these documents, settled as
        `_settle_leftovers` settles them: a run killed while demoting a copy onto one of them
        (the copy deleted, its records not yet re-pointed) left its item `indexed` for a
        document that is gone, and that item's feed may have nothing new to list."""
        if not doc_ids:
            return
        docs = self.es.mget(index=self.settings.index_alias, ids=sorted(set(doc_ids)),
                            source_includes=["duplicates.url"])["docs"]
        urls = [copy["url"] for doc in docs if doc.get("found")
                for copy in doc["_source"].get("duplicates") or []]
        if urls:
            self._settle_leftovers(self.ledger.lookup(urls))

    def _process(self, items: list[FeedItem], batch: _Batch,
                 previous: dict[str, dict[str, Any]]) -> None:
        """Take `items`, then write and record them; sooner, every `flush_after_s`, when they
        come slowly: a run stopped by its timeout loses at most that much work."""
        started = time.monotonic()
        source_name = None if batch.source_from_page else batch.feed.source_name
        for item, fetching in self._fetching(items, source_name):
            if batch.taken and time.monotonic() - started > self.settings.flush_after_s:
                self._finish(batch, previous)  # before waiting on the next page
                batch = batch.fresh()
                started = time.monotonic()
            try:
                self._take(item, self._reading(fetching, batch.report), batch)
            except ItemError as exc:
                log.info("item %s failed: %s", item.url, exc)
                batch.fail(item, exc.reason, exc.detail, retryable=exc.transient,
                           retry_after=exc.retry_after, attempted=exc.attempted)
            except (ApiError, TransportError):
                raise
            except Exception as exc:  # a bug or a page that breaks a library: keep going
                log.exception("item %s failed unexpectedly", item.url)
                batch.fail(item, "internal_error", f"{type(exc).__name__}: {exc}")
            self.progress.done()
        self._finish(batch, previous)

    def _finish(self, batch: _Batch, previous: dict[str, dict[str, Any]]) -> None:
        """Judge the batch's articles against the corpus, write them and record every item's
        outcome."""
        self._judge(batch, previous)
        try:
            self._write(batch)
        except ApiError as exc:
            if not is_write_block(exc):
                raise
            self._wait_for_block(batch, exc)
        # Of the URLs of one article (AMP, tracking variants) the same one is `indexed`,
        # whichever came first. Only a document another item may name is in question: not
        # one this batch has just created from its own URL (a variant of it is refused, and
        # the same URL in another feed is the same record).
        contested = sorted({doc for e in batch.entries if names_as_url(e)
                            and (doc := document_of(e)) and doc not in batch.created})
        if contested:
            batch.entries = self.ledger.one_indexer_each(batch.entries, writers=self._writers)
        for url, error in self.ledger.record(batch.entries, previous, wait=bool(contested)):
            # not recorded: the next run takes the item again (its article, if indexed, is
            # recognised as its own)
            log.error("ledger record of %s not written: %s", url[:200], error)
            batch.report.errors.append({"url": url, "reason": "ledger_write_failed",
                                        "error": error})
        self._repoint_stale_records(batch)
        self._settle_copies_of(batch.rewritten)
        if contested:  # and again: other workers wrote at the same moment perhaps
            self.ledger.one_indexer_each(doc_ids=contested, writers=self._writers)
        for entry in batch.entries:
            setattr(batch.report, entry.status.value,
                    getattr(batch.report, entry.status.value) + 1)

    def _writers(self, doc_ids: list[str]) -> dict[str, str | None]:
        """Which of these documents exist now, each with the item URL whose page gave it its
        text (`ingest.item_url`)."""
        docs = self.es.mget(index=self.settings.index_alias, ids=doc_ids,
                            source_includes=["ingest.item_url"])["docs"]
        return {doc["_id"]: (doc["_source"].get("ingest") or {}).get("item_url")
                for doc in docs if doc.get("found")}

    def _existing(self, doc_ids: list[str]) -> set[str]:
        """Which of these documents exist now."""
        return set(self._writers(doc_ids))

    def _wait_for_block(self, batch: _Batch, exc: ApiError) -> None:
        """The index became write-blocked (a reindex) in the middle of the batch's writes: its
        articles and copies fail `index_blocked`, at no cost, and the next run takes them again
        (what was written meanwhile is found to be theirs, and reconciled then)."""
        log.warning("index write-blocked while writing a batch of %s: %s", batch.feed.name, exc)
        waiting = ([item for item, _, _ in batch.accepted]
                   + [item for item, _, _ in batch.copies])
        urls = {item.url for item in waiting}
        batch.entries = [e for e in batch.entries if e.url not in urls]
        for item in waiting:
            batch.fail(item, "index_blocked", "the index is write-blocked (a reindex); taken "
                       "again on the next run", retryable=True, attempted=False)

    def _repoint_stale_records(self, batch: _Batch) -> None:
        """A worker that demoted a document after our reconcile (or after our dedup judged an
        item a `same_url` duplicate of it), and before our ledger records were written, could
        not re-point them: such a record names a document that is gone. An `indexed` one
        becomes a duplicate of the document that took it over, and a duplicate's
        `duplicate_of` moves there."""
        alias = self.settings.index_alias
        urls = {url_id(article.url): article.url for _, article, _ in batch.accepted}
        urls.update({original.doc_id: original.url for _, _, original in batch.copies})
        urls.update({original.doc_id: original.url for original in batch.variants})
        named = {name for e in batch.entries for name in (e.doc_id, e.duplicate_of)
                 if name in urls}
        if not named:
            return
        gone = sorted(named - self._existing(sorted(named)))
        held = holders_of(self.es, alias, [urls[doc_id] for doc_id in gone])
        holders = {doc_id: held[urls[doc_id]] for doc_id in gone if urls[doc_id] in held}
        if not holders:
            return
        entries, changed = [], []
        for entry in batch.entries:
            new = entry
            if entry.status is Outcome.INDEXED and entry.doc_id in holders:
                holder = holders[entry.doc_id]
                new = replace(entry, status=Outcome.DUPLICATE, reason=holder.reason, doc_id=None,
                              duplicate_of=holder.doc_id)
            elif entry.duplicate_of in holders:
                new = replace(entry, duplicate_of=holders[entry.duplicate_of].doc_id)
            if new is not entry:
                changed.append(new)
            entries.append(new)
        for url, error in self.ledger.record(changed):
            log.error("ledger record of %s not re-pointed: %s", url[:200], error)
        batch.entries = entries

    def _fetching(self, items: list[FeedItem], source_name: str | None
                  ) -> Iterator[tuple[FeedItem, Fetching]]:
        """Each item, in the items' order, with its page being fetched and read: up to
        `fetch_workers` at once, at most twice that many started ahead of the item being
        taken, each taking its turn at its host in this order (`HttpClient.turn`)."""
        queue = iter(items)
        pending: list[tuple[FeedItem, Fetching]] = []
        pool = ThreadPoolExecutor(self.settings.fetch_workers, thread_name_prefix="fetch")

        def submit(item: FeedItem) -> None:
            if len(item.url) > MAX_URL_CHARS:  # a URL we do not take is never asked for
                pending.append((item, ItemError(
                    "url_too_long", f"{len(item.url)} characters; at most {MAX_URL_CHARS} "
                                    "are taken")))
            else:
                turn = self.http.turn(item.url)
                try:
                    fetching = pool.submit(self._fetch_one, item, source_name, turn)
                except BaseException:
                    turn.give_up()  # never queued: the host's next items must not wait for it
                    raise
                fetching.add_done_callback(lambda _: turn.give_up())  # also when cancelled
                pending.append((item, fetching))

        try:
            for item in queue:
                submit(item)
                if len(pending) >= 2 * self.settings.fetch_workers:
                    break
            while pending:
                taken = pending.pop(0)
                for more in queue:
                    submit(more)
                    break
                yield taken
        finally:  # the feed stopped (Elasticsearch failed): pages not started are not asked
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _reading(fetching: Fetching, report: FeedReport) -> Reading:
        """What the fetched page gave (waiting for its fetch, then its reading), counted in the
        feed's report; raises what stopped its fetch or its reading."""
        if isinstance(fetching, ItemError):
            raise fetching
        fetched = fetching.result()
        if fetched.wire_ms is not None:
            report.fetch_ms.append(fetched.wire_ms)
        if isinstance(fetched.page, ItemError):
            report.fetch_failures += 1
        if isinstance(fetched.page, Exception):
            raise fetched.page
        report.fetched += 1
        assert fetched.reading is not None
        try:
            if isinstance(fetched.reading, Exception):
                raise fetched.reading
            return fetched.reading.result()
        except ItemError:
            report.extraction_failures += 1
            raise

    def _fetch_one(self, item: FeedItem, source_name: str | None, turn: Turn) -> _Fetched:
        """The item's page, fetched in its `turn` at its host, or the error that stopped it, and
        the milliseconds its requests took on the wire; then the page's reading begun, which
        the thread does not wait for (run in a fetch thread: nothing here touches the
        batch)."""
        with self.http.timed() as wire:
            try:
                with turn:
                    page = self.http.get(item.url)
            except Exception as exc:  # noqa: BLE001 (raised when the item is taken)
                return _Fetched(exc, wire.ms if wire.requests else None)
        try:
            return _Fetched(page, wire.ms, self.cpu.begin_read(page, item, source_name))
        except Exception as exc:  # noqa: BLE001 (as above)
            return _Fetched(page, wire.ms, exc)

    def _take(self, item: FeedItem, reading: Reading, batch: _Batch) -> None:
        """Judge where one read item goes: a relevant article waits in the batch for `_judge`,
        which compares the whole batch with the corpus at once."""
        article = reading.article
        if (batch.window is not None and article.published_at is not None
                and article.published_at not in batch.window):
            batch.report.out_of_window += 1  # listed under another day: its own run takes it
            return
        assert article.relevance is not None
        if reading.fingerprint is None:
            batch.entries.append(batch.entry(item, Outcome.IRRELEVANT, reason="not_relevant",
                                             error=f"score {article.relevance.score}"))
            return
        batch.pending.append((item, article, reading.fingerprint))

    def _judge(self, batch: _Batch, previous: dict[str, dict[str, Any]]) -> None:
        """Dedup the batch's relevant articles against the corpus (asked about all of them in
        two requests) and each other, in the order they came (the pages of one document
        together, its own URL first): each joins the batch's articles to index, its copies, or
        its settled entries. An item the ledger has no record of is seen for the first time:
        its feed's last read before tells whether its claimed time can stand (`ranked_time`)."""
        dedup = Deduplicator(self.es, self.settings.index_alias, self.hasher)
        dedup.prefetch([(article.url, print_) for _, article, print_ in batch.pending])
        for item, article, print_ in _indexer_first(batch.pending):
            published = ranked_time(
                article.published_at, article.fetched_at,
                batch.feed_read_at if item.url not in previous else None, self.listing_grace)
            senior = seniority(utc_iso(published), batch.feed.republisher)
            original = dedup.check(article.url, print_, senior, item.url)
            if original is not None and original.match == "same_url" and not original.text_kept \
                    and (batch.reprocess or not self._claimed(original.doc_id, batch)):
                # Reprocessing replaces the stored version. And a document no ledger record
                # (nor this batch) has indexed was written by a run that died before its
                # ledger: this item is the one that indexes it (and that run's demotions of
                # its copies may not have reached their records: see `_finish`).
                batch.rewritten.append(original.doc_id)
                original = None
            if original is not None:
                batch.entries.append(batch.entry(item, Outcome.DUPLICATE, reason=original.match,
                                                 duplicate_of=original.doc_id))
                if original.match != "same_url":  # another URL: recorded on the original
                    batch.copies.append((item, article, original))
                else:
                    batch.variants.append(original)
                continue
            dedup.accept(article.url, print_, senior)
            batch.accepted.append((item, article, print_))
            batch.seniority[article.url] = senior
        batch.pending = []

    def _record_copies(self, batch: _Batch) -> dict[str, str]:
        """Record the batch's copies on their originals, all at once; a copy whose original
        another worker demoted meanwhile goes to the document that took it over, and one whose
        original is gone without a trace fails, to be judged again on the next run. Returns
        the originals demoted meanwhile, each with where it went."""
        alias = self.settings.index_alias

        def recorded(targets: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
            by_target: dict[str, list[dict[str, Any]]] = {}
            for _, article, original in batch.copies:
                if original.doc_id in targets:
                    by_target.setdefault(targets[original.doc_id], []).append({
                        "url": article.url, "source": batch.feed.source_name,
                        "seen_at": utc_iso(article.fetched_at), "reason": original.match})
            return by_target

        gone = add_duplicates_each(self.es, alias, recorded(
            {original.doc_id: original.doc_id for _, _, original in batch.copies}))
        urls = {original.doc_id: original.url for _, _, original in batch.copies}
        held = holders_of(self.es, alias, [urls[doc_id] for doc_id in gone])
        moved = {doc_id: held[urls[doc_id]].doc_id for doc_id in sorted(gone)
                 if urls[doc_id] in held}
        gone_too = add_duplicates_each(self.es, alias, recorded(moved))
        lost = (gone - set(moved)) | {doc_id for doc_id, target in moved.items()
                                      if target in gone_too}
        for item, _, original in batch.copies:
            if original.doc_id in lost:  # the next run judges it again
                batch.entries = [e for e in batch.entries if e.url != item.url]
                batch.fail(item, "original_gone", f"{original.url} was removed meanwhile",
                           retryable=True, attempted=False)
        return {doc_id: target for doc_id, target in moved.items() if doc_id not in lost}

    def _claimed(self, doc_id: str, batch: _Batch) -> bool:
        return (any(url_id(a.url) == doc_id for _, a, _ in batch.accepted)
                or self.ledger.indexed_as(doc_id))

    def _write(self, batch: _Batch) -> None:
        """Enrich, assign stories, index, record copies, reconcile; then the batch's entries
        say what happened to each accepted article."""
        alias = self.settings.index_alias
        enriched = self.cpu.enrich([a for _, a, _ in batch.accepted])
        stories = StoryFinder(self.es, alias, self.story_rules)
        stories.prefetch(enriched)
        documents = [article_document(article, print_, stories.assign(article), batch.run_id,
                                      batch.mode, self.enrich_version,
                                      batch.seniority[article.url], item.url)
                     for article, (item, _, print_) in zip(enriched, batch.accepted,
                                                           strict=True)]
        updated: set[str] = set()
        rejected = {f.url: f for f in index_documents(self.es, alias, documents,
                                                      updated=updated)}
        # a variant URL's version of an article that exists already is a copy of it
        existed = {url for url, failure in rejected.items() if failure.reason == "exists"}
        rejected = {url: f for url, f in rejected.items() if url not in existed}
        batch.created = {url_id(article.url) for item, article, _ in batch.accepted
                         if article.url not in rejected and article.url not in existed
                         and not is_variant(item.url, url_id(article.url))
                         and url_id(article.url) not in updated}
        moved = self._record_copies(batch)  # originals demoted meanwhile -> where to
        # Copies indexed meanwhile by other workers, or published later than ours: one stays.
        demoted = reconcile(self.es, alias, self.ledger, self.hasher, [
            Indexed(url_id(article.url), article.url, print_, batch.seniority[article.url])
            for _, article, print_ in batch.accepted
            if article.url not in rejected and article.url not in existed])
        # a demoted article is the same text as its original, or a near-copy of it
        hashes = {doc["_id"]: (doc["_source"].get("dedup") or {}).get("content_hash")
                  for doc in (self.es.mget(index=alias, ids=sorted(set(demoted.values())),
                                           source_includes=["dedup.content_hash"])["docs"]
                              if demoted else []) if doc.get("found")}
        for item, article, print_ in batch.accepted:
            failure = rejected.get(article.url)
            doc_id = url_id(article.url)
            if failure:
                if not failure.transient:
                    quarantine(self.es, self.settings.quarantine_index, failure, batch.run_id,
                               item.url)
                # a transient refusal is Elasticsearch's state, not the page's fault
                batch.fail(item, failure.reason, failure.detail, retryable=failure.transient,
                           attempted=not failure.transient)
            elif article.url in existed:
                batch.entries.append(batch.entry(item, Outcome.DUPLICATE, reason="same_url",
                                                 duplicate_of=doc_id))
            elif doc_id in demoted:
                same = hashes.get(demoted[doc_id]) == print_.content_hash
                batch.entries.append(batch.entry(item, Outcome.DUPLICATE,
                                                 reason="same_text" if same else "near_copy",
                                                 duplicate_of=demoted[doc_id]))
            else:
                batch.entries.append(batch.entry(item, Outcome.INDEXED, doc_id=doc_id))
        moved.update(demoted)
        batch.entries = [replace(e, duplicate_of=moved.get(e.duplicate_of, e.duplicate_of))
                         if e.duplicate_of else e for e in batch.entries]


@dataclass
class _Batch:
    """One feed's items on their way through a run."""

    feed: Feed
    run_id: str
    mode: str
    report: FeedReport
    window: Window | None = None  # archive runs: the interval being filled
    reprocess: bool = False  # archive runs: take settled items again
    source_from_page: bool = False  # URL lists: the page names its source, not the feed
    feed_read_at: datetime | None = None  # polls: the feed's last successful read before this
    entries: list[LedgerEntry] = field(default_factory=list)
    pending: list[tuple[FeedItem, Article, Fingerprint]] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # documents a dead run left unrecorded
    accepted: list[tuple[FeedItem, Article, Fingerprint]] = field(default_factory=list)
    seniority: dict[str, str] = field(default_factory=dict)  # accepted article URL -> its key
    copies: list[tuple[FeedItem, Article, DuplicateOf]] = field(default_factory=list)
    variants: list[DuplicateOf] = field(default_factory=list)  # stored documents of `same_url` items
    created: set[str] = field(default_factory=set)  # documents created now from their own URL

    def fresh(self) -> _Batch:
        """An empty batch for the same feed, run and report."""
        return replace(self, entries=[], pending=[], rewritten=[], accepted=[], seniority={},
                       copies=[], variants=[], created=set())

    @property
    def taken(self) -> bool:
        """Whether any item has an outcome or an article waiting."""
        return bool(self.entries or self.pending or self.accepted or self.copies)

    def entry(self, item: FeedItem, status: Outcome, **details: Any) -> LedgerEntry:
        return LedgerEntry(item.url, self.feed.name, status, self.run_id, self.mode, **details)

    def fail(self, item: FeedItem, reason: str, error: str, retryable: bool = False,
             retry_after: float | None = None, attempted: bool = True) -> None:
        """Record a failure; one that came before the page was asked, or from our own side,
        (`attempted` false) does not count towards the item's `max_attempts`."""
        not_before = (datetime.now(UTC) + timedelta(seconds=retry_after)
                      if retry_after else None)
        self.entries.append(self.entry(item, Outcome.FAILED, reason=reason, error=error,
                                       retryable=retryable, not_before=not_before,
                                       attempts=1 if attempted else 0))
        self.report.errors.append({"url": item.url, "reason": reason, "error": error})


def ingest(feeds: Iterable[Feed], settings: Settings, run_id: str, mode: str = "poll",
           es: Elasticsearch | None = None, max_errors: int | None = None,
           progress: Progress = NO_PROGRESS) -> dict[str, Any]:
    """Run every feed, up to `ingest.feed_workers` at once (one failing feed does not stop
    the others); the summary, feeds in the order given (each with at most `max_errors` of its
    errors). Each feed's report says what it saw; the totals of outcomes are the ledger's
    for these feeds in the run, after the feeds polled at once have settled which copy is the
    original (a DAG task's run has other tasks' feeds too: their items are not counted here)."""
    feeds = list(feeds)
    if not feeds:  # a DAG task whose group has no sites
        return summarize(run_id, [])
    with Ingestor(settings, es=es, progress=progress) as ingestor, \
            ThreadPoolExecutor(settings.feed_workers, thread_name_prefix="feed") as pool:
        reports = list(pool.map(
            lambda feed: ingestor.ingest_feed(feed, run_id, mode).as_dict(max_errors), feeds))
        return summarize(run_id, reports,
                         ingestor.ledger.counts(run_id, [feed.name for feed in feeds]))


def settled_outcomes(settings: Settings, run_id: str) -> dict[str, int] | None:
    """The ledger's outcomes for a run (`Ledger.counts`), for `summarize` to report over all the
    processes that took part (the DAG's group tasks); None when Elasticsearch cannot say."""
    try:
        return Ledger(connect(settings), settings.ledger_index, settings.max_attempts
                      ).counts(run_id)
    except (ApiError, TransportError) as exc:
        log.warning("the ledger's outcomes for %s could not be read (%s); the totals are the "
                    "feeds' reports summed", run_id, exc)
        return None


def _indexer_first(pending: list[tuple[FeedItem, Article, Fingerprint]]
                   ) -> list[tuple[FeedItem, Article, Fingerprint]]:
    """The batch's articles in the order they came, except that the pages of one document (an
    article and its AMP or tracking variants) come together, where the first of them came, and
    the one that is to be its indexer first: it gives the document its text, the others are
    its `same_url` duplicates, whichever order the feed listed them in."""
    first: dict[str, int] = {}
    for position, (_, article, _) in enumerate(pending):
        first.setdefault(url_id(article.url), position)
    return sorted(pending, key=lambda taken: (
        first[url_id(taken[1].url)], indexer_rank(taken[0].url, url_id(taken[1].url))))


def site_groups(feeds: Iterable[Feed]) -> dict[str, list[Feed]]:
    """The feeds by the site their URL is on (`urls.site_of`), in the order first seen: what
    one process polls, so that processes polling at once seldom wait on one another for a
    host (`polite.HostClock` spaces their requests)."""
    groups: dict[str, list[Feed]] = {}
    for feed in feeds:
        groups.setdefault(site_of(feed.url), []).append(feed)
    return groups


def host_groups(feeds: Iterable[Feed], groups: int) -> list[dict[str, list[Feed]]]:
    """The sites of `site_groups` dealt into at most `groups` groups of about as many feeds
    each, every site whole in one group (the DAG maps one task over each, which polls its
    sites' feeds `ingest.feed_workers` at once)."""
    dealt: list[dict[str, list[Feed]]] = [{} for _ in range(max(1, groups))]
    sites = site_groups(feeds)
    for site in sorted(sites, key=lambda name: -len(sites[name])):  # largest first
        smallest = min(dealt, key=lambda group: sum(len(f) for f in group.values()))
        smallest[site] = sites[site]
    return [group for group in dealt if group]


def site_group(feeds: Iterable[Feed], number: int, groups: int) -> list[Feed]:
    """The feeds of group `number` (from 0) of `host_groups(feeds, groups)`, none when there
    are fewer groups of sites: what the DAG's task `number` of `groups` polls. The dealing
    depends on the feeds alone, so tasks that read the same feeds file deal it alike."""
    dealt = host_groups(feeds, groups)
    return [feed for site in dealt[number].values() for feed in site] if number < len(dealt) else []

"""cpu: the stages that only compute, run on every core: reading a fetched page (extraction,
relevance, the dedup fingerprint) and enriching accepted articles (gazetteer and spaCy NER).

`ingest` fetches in threads and talks to Elasticsearch; it hands what it computes to
`CpuStages`, which sends it to a pool of `ingest.cpu_workers` worker processes (pebble's,
spawned: no thread or connection state is forked), each of which loads the models once per
config folder and keeps them. A page's reading may take `ingest.reading_timeout_s`: a parser
stuck on a hostile page (libxml2 spends hours on one element with 300,000 attributes) is
stopped with its process, which is replaced, and the page fails `reading_timeout`. The pool is
started on first use and shared by everything in the process asking for the same size, so
that runs with no new pages start none and tests start one. A worker exits when the process
that started it is gone, killed or not.

A daemonic process (a multiprocessing pool's worker, say) may start no processes: there, and
only there, the calling process computes, one call at a time and with no time limit (it logs
so). Readers are spawned without running the starting program's main script again
(`_ReaderProcess`).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import cache
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessFuture, ProcessPool

from pipeline.dedup import Fingerprint, fingerprint
from pipeline.enrich import EnrichRules, enrich_articles
from pipeline.extract import ExtractionRules, default_rules, extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.minhash import MinHasher
from pipeline.records import Article, FeedItem, ItemError, Page
from pipeline.relevance import TopicModel, score_relevance

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Reading:
    """What reading a page gives: the article with its relevance, and, when it is relevant,
    the fingerprint dedup compares."""

    article: Article
    fingerprint: Fingerprint | None


@dataclass(frozen=True)
class Models:
    """The rules and models the CPU stages use, loaded from one config folder."""

    extraction: ExtractionRules
    topic: TopicModel
    hasher: MinHasher
    gazetteer: Gazetteer
    enrich_rules: EnrichRules

    @classmethod
    def load(cls, config_dir: Path) -> Models:
        gazetteer = Gazetteer.load(config_dir / "entities.yaml")
        return cls(extraction=default_rules(config_dir),
                   topic=TopicModel.load(config_dir / "topic.yaml", gazetteer),
                   hasher=MinHasher.load(config_dir / "dedup.yaml"),
                   gazetteer=gazetteer,
                   enrich_rules=EnrichRules.load(config_dir / "enrich.yaml"))

    def read(self, page: Page, item: FeedItem, source_name: str | None) -> Reading:
        """The article on `page` and its relevance; raises `ItemError` when there is none."""
        article = extract_article(page, item, source_name=source_name, rules=self.extraction)
        relevance = score_relevance(article.title, article.text, self.topic, article.language)
        article = replace(article, relevance=relevance)
        return Reading(article, fingerprint(article.text, self.hasher)
                       if relevance.relevant else None)

    def enrich(self, articles: list[Article]) -> list[Article]:
        return list(enrich_articles(articles, self.gazetteer, self.enrich_rules))


class PendingReading:
    """A page being read (`CpuStages.begin_read`)."""

    def __init__(self, future: Future[Reading], timeout: float | None) -> None:
        self._future = future
        self._timeout = timeout  # the pool's: a TimeoutError is the reading stopped after it

    def result(self) -> Reading:
        """The reading, waiting for it; raises what `CpuStages.read` raises."""
        try:
            return self._future.result()
        except TimeoutError as exc:
            if self._timeout is None:
                raise
            raise ItemError("reading_timeout", f"reading the page took over "
                            f"{self._timeout:g} s; the process reading it was stopped",
                            transient=True) from exc
        except (ProcessExpired, BrokenProcessPool) as exc:
            raise ItemError("reader_crashed", f"the process reading the page died ({exc})",
                            transient=True) from exc


class CpuStages:
    """`read` and `enrich`, safe to call from many threads at once; on `workers` processes
    (see the module's docstring), or, at 0, in the caller's, one call at a time."""

    def __init__(self, config_dir: Path, workers: int,
                 reading_timeout: float | None = None) -> None:
        self.config_dir = config_dir
        self.workers = workers
        self.reading_timeout = reading_timeout
        self._local: Models | None = None
        # In the caller's process, one stage at a time: trafilatura is not safe to run in two
        # threads at once (two fetch threads reading pages together hung in its tree walk),
        # and threads would gain nothing under the GIL.
        self._lock = threading.Lock()

    def read(self, page: Page, item: FeedItem, source_name: str | None) -> Reading:
        """What `page` gives (`Models.read`); raises `ItemError` when it gives no article, when
        reading it took longer than `reading_timeout` (its worker is then stopped), or when the
        worker reading it died (a crash in a parser, or out of memory). Those two are
        transient: the item is taken again on a later run until it has failed
        `ingest.max_attempts` times."""
        return self.begin_read(page, item, source_name).result()

    def begin_read(self, page: Page, item: FeedItem, source_name: str | None
                   ) -> PendingReading:
        """`read`, begun: the page waits for a worker while the caller goes on (a fetch thread
        to its next page, which a host's delay would otherwise let pass unused while the
        workers start or are busy); `result()` is what `read` returns or raises. With no
        workers the page is read here and now."""
        if self.workers:
            return PendingReading(_schedule(self.workers, _read, (
                self.config_dir, page, item, source_name), self.reading_timeout),
                self.reading_timeout)
        done: Future[Reading] = Future()
        try:
            with self._lock:
                done.set_result(self._models().read(page, item, source_name))
        except Exception as exc:  # noqa: BLE001 (raised by result(), as read raises it)
            done.set_exception(exc)
        return PendingReading(done, None)

    def enrich(self, articles: list[Article]) -> list[Article]:
        """The articles, in order, with their entities; split over the workers (a part whose
        worker died is asked once more, of a new one)."""
        if not articles:
            return []
        if not self.workers:
            with self._lock:
                return self._models().enrich(articles)
        size = -(-len(articles) // self.workers)
        parts = [articles[start:start + size] for start in range(0, len(articles), size)]
        asked = [_schedule(self.workers, _enrich, (self.config_dir, part)) for part in parts]
        enriched: list[Article] = []
        for part, future in zip(parts, asked, strict=True):
            try:
                enriched += future.result()
            except (ProcessExpired, BrokenProcessPool):
                enriched += _schedule(self.workers, _enrich, (self.config_dir, part)).result()
        return enriched

    def _models(self) -> Models:
        if self._local is None:
            self._local = _models(self.config_dir)
        return self._local


def cpu_workers(configured: int) -> int:
    """The pool size `ingest.cpu_workers` asks for: 0 means one per core. A daemonic process
    (a multiprocessing pool's worker, say) may start no processes: there, 0, computing in its
    own."""
    if multiprocessing.current_process().daemon:
        log.warning("pages are read in this process, one at a time and with no time limit: "
                    "a daemonic process may start no worker processes")
        return 0
    return configured if configured > 0 else (os.cpu_count() or 1)


_pools: dict[int, ProcessPool] = {}
_pools_lock = threading.Lock()


def _schedule(workers: int, function: Callable[..., T], args: tuple[Any, ...],
              timeout: float | None = None) -> ProcessFuture[T]:
    """`function(*args)` on the process's pool of `workers` processes, stopped after `timeout`
    seconds of running. The pool is started on first use, and anew when it broke (its workers
    all gone at once)."""
    with _pools_lock:
        for fresh in (False, True):
            pool = _pools.get(workers)
            if fresh or pool is None or not pool.active:
                if pool is not None:
                    _stop(pool)
                pool = _pools[workers] = ProcessPool(
                    workers, context=_ReaderContext(),
                    initializer=_start_reader, initargs=(os.getpid(),))
            try:
                return pool.schedule(function, args, timeout=timeout)
            except RuntimeError:  # it broke since it was looked at
                if fresh:
                    raise
        raise AssertionError("unreachable")


def _stop(pool: ProcessPool) -> None:
    """Stop the pool's workers and its threads."""
    pool.stop()
    pool.join()


class _ReaderProcess(SpawnProcess):
    """A spawned process that does not run the main script of the process starting it. Spawn
    runs it first (as `__mp_main__`), so that what it defines can be unpickled; a reader runs
    `pipeline` functions only, and a host's main may not bear running twice: in an Airflow 3
    task it is the `airflow` command, whose import sets up the metadata database, which a task
    may not reach, so every reader died at its start."""

    def start(self) -> None:
        with _main_lock:
            main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")  # nothing to run again
            try:
                super().start()
            finally:
                sys.modules["__main__"] = main


class _ReaderContext(SpawnContext):
    Process = _ReaderProcess


_main_lock = threading.Lock()


@atexit.register
def _shut_down() -> None:
    with _pools_lock:
        for pool in _pools.values():
            _stop(pool)
        _pools.clear()


@cache
def _models(config_dir: Path) -> Models:
    return Models.load(config_dir)


def _read(config_dir: Path, page: Page, item: FeedItem, source_name: str | None) -> Reading:
    return _models(config_dir).read(page, item, source_name)


def _enrich(config_dir: Path, articles: list[Article]) -> list[Article]:
    return _models(config_dir).enrich(articles)


def _start_reader(parent: int) -> None:
    """In a worker, first: SIGTERM ends it at once, also in the middle of a parser's C code
    (pebble's handler would wait for Python to run again, and the pool would kill it only
    seconds later); and it exits once the process that started the pool is gone (a SIGKILL
    leaves no one to shut the pool down)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

"""cpu: the stages that only compute, run on every core: reading a fetched page (extraction,
relevance, the dedup fingerprint) and enriching accepted articles (gazetteer and spaCy NER).

`ingest` fetches in threads and talks to Elasticsearch; it hands what it computes to
`CpuStages`. With `ingest.cpu_workers` above 1, the work goes to a pool of that many worker
processes (spawned: no thread or connection state is forked), each of which loads the models
once per config folder and keeps them; at 1, the calling process computes it, one call at a
time. The pool is started on first use and shared by everything in the process asking
for the same size, so that runs with no new pages start none and tests start one. A worker
exits when the process that started it is gone, killed or not.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from pipeline.dedup import Fingerprint, fingerprint
from pipeline.enrich import EnrichRules, enrich_articles
from pipeline.extract import ExtractionRules, default_rules, extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.minhash import MinHasher
from pipeline.records import Article, FeedItem, ItemError, Page
from pipeline.relevance import TopicModel, score_relevance


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


class CpuStages:
    """`read` and `enrich`, safe to call from many threads at once; on `workers` processes
    (see the module's docstring), or in the caller's at 1, one call at a time."""

    def __init__(self, config_dir: Path, workers: int) -> None:
        self.config_dir = config_dir
        self.workers = workers
        self._local: Models | None = None
        # In the caller's process, one stage at a time: trafilatura is not safe to run in two
        # threads at once (two fetch threads reading pages together hung in its tree walk),
        # and threads would gain nothing under the GIL.
        self._lock = threading.Lock()

    def read(self, page: Page, item: FeedItem, source_name: str | None) -> Reading:
        """What `page` gives (`Models.read`); raises `ItemError` when it gives no article, or
        when the worker reading it died (a crash in a parser, or out of memory): the pool is
        then renewed, and the item, like the others in flight, is taken again on a later run
        until it has failed `ingest.max_attempts` times."""
        if self.workers <= 1:
            with self._lock:
                return self._models().read(page, item, source_name)
        pool = _pool(self.workers)
        try:
            return pool.submit(_read, self.config_dir, page, item, source_name).result()
        except BrokenProcessPool as exc:
            _pool(self.workers, broken=pool)
            raise ItemError("reader_crashed", f"the process reading the page died ({exc})",
                            transient=True) from exc

    def enrich(self, articles: list[Article]) -> list[Article]:
        """The articles, in order, with their entities; split over the workers (asked once
        more, in a new pool, if a worker died)."""
        if not articles:
            return []
        if self.workers <= 1:
            with self._lock:
                return self._models().enrich(articles)
        size = -(-len(articles) // self.workers)
        for last_try in (False, True):
            pool = _pool(self.workers)
            parts: list[Future[list[Article]]] = [
                pool.submit(_enrich, self.config_dir, articles[start:start + size])
                for start in range(0, len(articles), size)]
            try:
                return [article for part in parts for article in part.result()]
            except BrokenProcessPool:
                _pool(self.workers, broken=pool)
                if last_try:
                    raise
        raise AssertionError("unreachable")

    def _models(self) -> Models:
        if self._local is None:
            self._local = _models(self.config_dir)
        return self._local


def cpu_workers(configured: int) -> int:
    """The pool size `ingest.cpu_workers` asks for: 0 means one per core. A daemonic process
    (an Airflow task under LocalExecutor or a Celery worker) may start no processes: there,
    1."""
    if multiprocessing.current_process().daemon:
        return 1
    return configured if configured > 0 else (os.cpu_count() or 1)


_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int, broken: ProcessPoolExecutor | None = None) -> ProcessPoolExecutor:
    """The process's pool of `workers` processes: started on first use, and started anew
    when it is the `broken` one (a worker died)."""
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None or pool is broken:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            pool = _pools[workers] = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_watch_parent, initargs=(os.getpid(),))
        return pool


@atexit.register
def _shut_down() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        _pools.clear()


@cache
def _models(config_dir: Path) -> Models:
    return Models.load(config_dir)


def _read(config_dir: Path, page: Page, item: FeedItem, source_name: str | None) -> Reading:
    return _models(config_dir).read(page, item, source_name)


def _enrich(config_dir: Path, articles: list[Article]) -> list[Article]:
    return _models(config_dir).enrich(articles)


def _watch_parent(parent: int) -> None:
    """In a worker: exit once the process that started the pool is gone (a SIGKILL leaves no
    one to shut the pool down)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

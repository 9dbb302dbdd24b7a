"""The CPU stages on worker processes: what they give is what the calling process gives; a
worker that dies costs the pages in flight a retry, not the run; and a killed run leaves no
worker behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import psutil
import pytest

from pipeline import cpu
from pipeline.cpu import CpuStages, cpu_workers
from pipeline.records import FeedItem, ItemError
from pipeline.settings import CONFIG_DIR, PROJECT_ROOT
from tests.conftest import sample_articles

ARTICLES = sample_articles()[:8]


def _item(page_url: str) -> FeedItem:
    return FeedItem(url=page_url, feed_name="Sample", feed_url="https://sample.example/feed")


def _reading(stages: CpuStages) -> list[tuple[object, ...]]:
    found = []
    for sample in ARTICLES:
        page = sample.page()
        reading = stages.read(page, _item(page.url), "Sample")
        found.append((reading.article.url, reading.article.text, reading.article.relevance,
                      reading.fingerprint))
    return found


def test_workers_read_and_enrich_as_the_calling_process_does() -> None:
    here, pool = CpuStages(CONFIG_DIR, 1), CpuStages(CONFIG_DIR, 2)
    assert _reading(pool) == _reading(here)
    articles = [here.read(a.page(), _item(a.page().url), "Sample").article for a in ARTICLES]
    enriched_here, enriched_pool = here.enrich(articles), pool.enrich(articles)
    assert [a.url for a in enriched_pool] == [a.url for a in articles]  # in order
    assert [a.entities for a in enriched_pool] == [a.entities for a in enriched_here]
    assert any(a.entities for a in enriched_pool)


def test_a_page_without_an_article_fails_the_same_in_a_worker() -> None:
    page = replace(ARTICLES[0].page(), body=b"<html><body><p>Too short.</p></body></html>")
    for stages in (CpuStages(CONFIG_DIR, 1), CpuStages(CONFIG_DIR, 2)):
        with pytest.raises(ItemError) as failure:
            stages.read(page, _item(page.url), "Sample")
        assert failure.value.reason == "too_short" and not failure.value.transient


def test_a_worker_that_dies_fails_its_pages_for_a_retry_and_the_pool_is_renewed() -> None:
    stages = CpuStages(CONFIG_DIR, 2)
    page = ARTICLES[0].page()
    stages.read(page, _item(page.url), "Sample")  # the pool is up
    broken = cpu._pool(2)
    for process in list(broken._processes.values()):  # type: ignore[attr-defined]
        os.kill(process.pid, signal.SIGKILL)  # as the OOM killer would
    time.sleep(0.5)
    with pytest.raises(ItemError) as failure:
        stages.read(page, _item(page.url), "Sample")
    assert failure.value.reason == "reader_crashed" and failure.value.transient
    assert stages.read(page, _item(page.url), "Sample").article.text  # a new pool
    assert cpu._pool(2) is not broken


def test_a_killed_run_leaves_no_worker_behind() -> None:
    script = ("import sys, time\n"
              "from pipeline.cpu import CpuStages, cpu_workers, _pool\n"
              "from pipeline.settings import CONFIG_DIR\n"
              "if __name__ == '__main__':\n"
              "    CpuStages(CONFIG_DIR, 2).enrich([])\n"
              "    pool = _pool(2)\n"
              "    for done in [pool.submit(time.sleep, 1) for _ in range(2)]:\n"
              "        done.result()\n"
              "    print(*[p.pid for p in pool._processes.values()], flush=True)\n"
              "    time.sleep(600)\n")
    run = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                           stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    workers = [int(pid) for pid in run.stdout.readline().split()]
    assert len(workers) == 2 and all(psutil.pid_exists(pid) for pid in workers)
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)


def test_a_daemonic_process_reads_its_pages_itself() -> None:
    """Airflow runs tasks in daemonic processes (LocalExecutor, Celery), which may start no
    processes of their own: there, no pool."""
    with multiprocessing.get_context("spawn").Pool(1) as daemonic:
        assert daemonic.apply(cpu_workers, (0,)) == 1
    assert cpu_workers(0) == (os.cpu_count() or 1) and cpu_workers(3) == 3


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

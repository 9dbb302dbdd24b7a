"""The CPU stages on worker processes: what they give is what the calling process gives; a
page whose reading never ends, or a worker that dies, costs that page a retry, not the run;
and a killed run leaves no worker behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from pipeline import cpu
from pipeline.cpu import CpuStages, cpu_workers
from pipeline.records import FeedItem, ItemError
from pipeline.settings import CONFIG_DIR, PROJECT_ROOT
from tests.chaos.server import endless_html
from tests.conftest import sample_articles

ARTICLES = sample_articles()[:8]
ENDLESS = endless_html()  # minutes in the parser


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
    here, pool = CpuStages(CONFIG_DIR, 0), CpuStages(CONFIG_DIR, 2)
    assert _reading(pool) == _reading(here)
    articles = [here.read(a.page(), _item(a.page().url), "Sample").article for a in ARTICLES]
    enriched_here, enriched_pool = here.enrich(articles), pool.enrich(articles)
    assert [a.url for a in enriched_pool] == [a.url for a in articles]  # in order
    assert [a.entities for a in enriched_pool] == [a.entities for a in enriched_here]
    assert any(a.entities for a in enriched_pool)


def test_a_page_without_an_article_fails_the_same_in_a_worker() -> None:
    page = replace(ARTICLES[0].page(), body=b"<html><body><p>Too short.</p></body></html>")
    for stages in (CpuStages(CONFIG_DIR, 0), CpuStages(CONFIG_DIR, 2)):
        with pytest.raises(ItemError) as failure:
            stages.read(page, _item(page.url), "Sample")
        assert failure.value.reason == "too_short" and not failure.value.transient


def test_a_page_whose_reading_does_not_end_fails_in_time_and_the_pages_after_it_are_read(
        ) -> None:
    # (the pages after it are read without a limit: a new worker loads its models first)
    limited, stages = CpuStages(CONFIG_DIR, 2, reading_timeout=5.0), CpuStages(CONFIG_DIR, 2)
    page = ARTICLES[0].page()
    stages.read(page, _item(page.url), "Sample")  # the pool is up
    workers = _worker_pids(2)
    started = time.monotonic()
    with pytest.raises(ItemError) as failure:
        limited.read(replace(page, body=ENDLESS), _item(page.url), "Sample")
    took = time.monotonic() - started
    assert failure.value.reason == "reading_timeout" and failure.value.transient
    assert 5.0 <= took < 5.0 + 5  # the stuck worker stopped at once
    stuck = workers - _worker_pids(2)
    assert len(stuck) == 1 and not any(_alive(pid) for pid in stuck)  # no core left burning
    assert stages.read(page, _item(page.url), "Sample").article.text
    deadline = time.monotonic() + 10
    while len(_worker_pids(2)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_worker_pids(2)) == 2  # replaced


def test_a_worker_that_dies_fails_its_page_for_a_retry_and_the_pool_goes_on() -> None:
    stages = CpuStages(CONFIG_DIR, 2)
    page = ARTICLES[0].page()
    stages.read(page, _item(page.url), "Sample")  # the pool is up
    failures: list[ItemError] = []

    def read_endless() -> None:
        try:
            stages.read(replace(page, body=ENDLESS), _item(page.url), "Sample")
        except ItemError as exc:
            failures.append(exc)

    reading = threading.Thread(target=read_endless)
    reading.start()
    time.sleep(1.0)  # a worker is deep in the page
    for pid in _worker_pids(2):
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    reading.join(timeout=30)
    assert not reading.is_alive()
    assert [(f.reason, f.transient) for f in failures] == [("reader_crashed", True)]
    assert stages.read(page, _item(page.url), "Sample").article.text


def test_a_killed_run_leaves_no_worker_behind() -> None:
    script = ("import sys, time\n"
              "from pipeline.cpu import _schedule\n"
              "from tests.test_cpu import _worker_pids\n"
              "if __name__ == '__main__':\n"
              "    _schedule(2, time.sleep, (0.1,)).result()  # the pool of two is up\n"
              "    print(*_worker_pids(2), flush=True)\n"
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


def test_pages_are_read_where_the_program_s_main_script_cannot_run_twice(tmp_path: Path) -> None:
    """A spawned process runs its parent's main script first, unless told not to; under
    Airflow 3 a task's main script is the `airflow` command, whose import needs the metadata
    database a task may not reach: every reader died at its start, every page
    `reader_crashed`. Here a main script that refuses to run twice stands in for it."""
    main = tmp_path / "host.py"
    main.write_text(
        "import sys\n"
        "if __name__ != '__main__':\n"
        "    sys.exit('the main script ran again in ' + __name__)\n"
        "from pipeline.cpu import CpuStages\n"
        "from pipeline.settings import CONFIG_DIR\n"
        "from tests.test_cpu import ARTICLES, _item\n"
        "page = ARTICLES[0].page()\n"
        "print(len(CpuStages(CONFIG_DIR, 1).read(page, _item(page.url), 'Sample').article.text))\n")
    run = subprocess.run([sys.executable, str(main)], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=120, check=False,
                         env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout) > 500


def test_a_daemonic_process_reads_its_pages_itself() -> None:
    """A daemonic process (a multiprocessing pool's worker, say) may start no processes of its
    own: there, no pool."""
    with multiprocessing.get_context("spawn").Pool(1) as daemonic:
        assert daemonic.apply(cpu_workers, (0,)) == 0
    assert cpu_workers(0) == (os.cpu_count() or 1) and cpu_workers(3) == 3


def _worker_pids(workers: int) -> set[int]:
    """The processes of the pool of `workers` (pebble keeps them by pid)."""
    pool = cpu._pools[workers]
    return set(pool._pool_manager.worker_manager.workers)  # type: ignore[attr-defined]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

"""Backfills: `newsroom backfill`, `airflow dags test news_backfill` for one day, and Airflow's
own `airflow backfill create` run by a real scheduler, each over the sample corpus's archive
listings, index exactly the articles published in the range, and nothing twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.archive import Window
from pipeline.settings import PROJECT_ROOT, Settings
from tests.conftest import sample_articles
from tests.sample_site.server import SampleSite
from tests.test_dag import _airflow
from tests.test_ingest import newsroom

TWO_WEEKS = Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))


def published_in(window: Window, base: str) -> set[str]:
    """The canonical URLs a backfill of `window` must index: the relevant articles (in a feed
    or archived) published in it, and copies of originals published outside it."""
    def when(raw: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(raw["published"])

    articles = sample_articles(None)
    by_page = {f"{a.outlet}/{a.raw['page']}": a for a in articles}
    def kept(raw: dict[str, Any]) -> bool:
        if raw["kind"] == "syndicated_copy":
            return when(by_page[raw["duplicate_of"]].raw) not in window
        return raw["kind"] in ("article", "archived") and bool(raw["relevant"])

    return {a.raw["canonical"].replace("{BASE_URL}", base) for a in articles
            if a.raw["published"] and when(a.raw) in window and kept(a.raw)}


def indexed(es: Elasticsearch, settings: Settings) -> dict[str, dict[str, Any]]:
    es.indices.refresh(index=settings.index_alias)
    hits = es.search(index=settings.index_alias, size=1000, source=["url", "ingest"],
                     query={"match_all": {}})["hits"]["hits"]
    return {hit["_source"]["url"]: hit["_source"]["ingest"] for hit in hits}


def test_newsroom_backfill_indexes_the_range_once(fresh_settings: Settings, es: Elasticsearch,
                                                  site: SampleSite, feeds_file: Path) -> None:
    args = ("backfill", "--from", "2026-10-19", "--to", "2026-11-01", "--feeds",
            str(feeds_file), "--json")
    dry = json.loads(newsroom(fresh_settings, *args, "--dry-run").stdout)
    assert dry["fetched"] == 0 and es.count(index=fresh_settings.index_alias)["count"] == 0
    planned = {url for source in dry["feeds"] for url in source["planned"]}

    first = newsroom(fresh_settings, *args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    expected = published_in(TWO_WEEKS, site.base_url)
    stored = indexed(es, fresh_settings)
    assert set(stored) == expected and report["indexed"] == len(expected)
    assert expected <= planned
    assert {(i["mode"], i["run_id"]) for i in stored.values()} == {
        ("backfill", report["run_id"])}
    ledger = es.search(index=fresh_settings.ledger_index, size=1000,
                       query={"term": {"run_id": report["run_id"]}})["hits"]["hits"]
    assert {hit["_source"]["mode"] for hit in ledger} == {"backfill"}

    again = json.loads(newsroom(fresh_settings, *args).stdout)
    assert again["indexed"] == again["duplicate"] == again["failed"] == 0
    assert indexed(es, fresh_settings) == stored  # same documents, same provenance

    # Reprocessing fetches and rewrites the same documents: still one per article.
    redo = json.loads(newsroom(fresh_settings, *args, "--reprocess").stdout)
    assert redo["indexed"] == len(expected)
    assert set(indexed(es, fresh_settings)) == expected


def test_a_manual_run_without_an_interval_fills_the_day_before_it_was_triggered() -> None:
    """The day comes from the run's `run_after`, fixed when it was triggered, so a retry after
    midnight fills the same day as the first try; a run with a data interval fills that."""
    from pipeline.backfill import run_window

    triggered = datetime(2026, 11, 20, 23, 58, tzinfo=UTC)
    first_try = run_window(None, None, now=triggered)
    assert first_try == Window.day(datetime(2026, 11, 19, tzinfo=UTC))
    assert run_window(TWO_WEEKS.start, TWO_WEEKS.end, now=triggered) == TWO_WEEKS


def test_unknown_source_is_a_clear_error(fresh_settings: Settings, feeds_file: Path) -> None:
    result = newsroom(fresh_settings, "backfill", "--from", "2026-10-19", "--to", "2026-10-20",
                      "--feeds", str(feeds_file), "--source", "Nowhere Gazette")
    assert result.returncode == 1
    assert "Nowhere Gazette" in result.stderr and len(result.stderr.splitlines()) == 1


def test_backfill_from_a_list_of_urls(fresh_settings: Settings, es: Elasticsearch,
                                      site: SampleSite, tmp_path: Path) -> None:
    """`--urls FILE`: of the pages listed (every sample article, relevant or not, of any
    date), exactly the relevant ones published in the range are indexed, each article's source
    named by its page; the rerun indexes nothing."""
    listed = [a for a in sample_articles(None) if a.raw["kind"] in ("article", "archived")]
    urls = tmp_path / "urls.txt"
    urls.write_text("# pages to backfill\n\n" + "\n".join(
        f"{site.base_url}/{a.outlet}/{a.raw['page']}" for a in listed) + "\n", encoding="utf-8")
    expected = {a.raw["canonical"].replace("{BASE_URL}", site.base_url) for a in listed
                if a.raw["relevant"] and a.raw["published"]
                and datetime.fromisoformat(a.raw["published"]) in TWO_WEEKS}
    args = ("backfill", "--from", "2026-10-19", "--to", "2026-11-01", "--urls", str(urls),
            "--json")

    first = newsroom(fresh_settings, *args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    stored = indexed(es, fresh_settings)
    assert set(stored) == expected and report["indexed"] == len(expected)
    assert report["feeds"][0]["out_of_window"] > 0
    sources = {hit["_source"]["source"]["name"] for hit in es.search(
        index=fresh_settings.index_alias, size=100, source=["source"])["hits"]["hits"]}
    assert "urls" not in sources and len(sources) > 1
    ledger = es.search(index=fresh_settings.ledger_index, size=1000,
                       query={"term": {"run_id": report["run_id"]}})["hits"]["hits"]
    assert {(h["_source"]["feed"], h["_source"]["mode"]) for h in ledger} == {
        ("urls", "backfill")}

    again = json.loads(newsroom(fresh_settings, *args).stdout)
    assert again["indexed"] == again["duplicate"] == again["failed"] == 0
    assert indexed(es, fresh_settings) == stored


def test_a_bad_url_list_is_a_clear_error(fresh_settings: Settings, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("https://example.org/a\nftp://example.org/b\nnot a url\n", encoding="utf-8")
    result = newsroom(fresh_settings, "backfill", "--from", "2026-10-19", "--to", "2026-10-20",
                      "--urls", str(urls))
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "line 2" in result.stderr and "line 3" in result.stderr


def _env(settings: Settings, feeds_file: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "NEWSROOM_FEEDS": str(feeds_file),
        "NEWSROOM_INDEX": settings.index_alias,
        "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
        "NEWSROOM_HOST_DELAY": "0",
        "ELASTICSEARCH_URL": settings.elasticsearch_url,
    }


def _run(env: dict[str, str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(_airflow()), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_airflow_dags_test_backfills_one_day(fresh_settings: Settings, es: Elasticsearch,
                                             site: SampleSite, feeds_file: Path,
                                             tmp_path: Path) -> None:
    env = _env(fresh_settings, feeds_file, tmp_path / "airflow")
    assert _run(env, "db", "migrate").returncode == 0
    # Params are validated: a wrong type is refused before any task runs.
    bad = _run(env, "dags", "test", "news_backfill", "2026-10-26", "-c", '{"reprocess": "yes"}')
    assert bad.returncode != 0 and es.count(index=fresh_settings.index_alias)["count"] == 0

    # A manual run's data interval is the day that ended at its logical date.
    run = _run(env, "dags", "test", "news_backfill", "2026-10-26")
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "state=success" in output, output[-5000:]
    day = Window(datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC))
    stored = indexed(es, fresh_settings)
    assert set(stored) == published_in(day, site.base_url) != set()
    assert {i["mode"] for i in stored.values()} == {"backfill"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_backfill(db: Path, backfill_id: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            row = conn.execute("select completed_at from backfill where id = ?",
                               (backfill_id,)).fetchone()
        if row and row[0]:
            return
        time.sleep(3)
    raise AssertionError(f"backfill {backfill_id} did not complete in {timeout} s")


def _runs(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select run_id, state from dag_run where dag_id = "
                                 "'news_backfill' and run_type = 'backfill'").fetchall())


@contextmanager
def _airflow_running(env: dict[str, str], port: int, logs: Path) -> Iterator[None]:
    """The API server (whose execution API the task processes call) and the scheduler."""
    servers = []
    for name, cmd in (("api", ["api-server", "--port", str(port)]), ("scheduler", ["scheduler"])):
        with (logs / f"{name}.log").open("a") as log:
            servers.append(subprocess.Popen([str(_airflow()), *cmd], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True))
    try:
        yield
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def test_airflow_backfill_create_fills_two_weeks_once(fresh_settings: Settings,
                                                      es: Elasticsearch, site: SampleSite,
                                                      feeds_file: Path, tmp_path: Path) -> None:
    """The operator's way: `airflow backfill create` over two past weeks, executed by a real
    scheduler and API server (LocalExecutor, SQLite); then the same range again, re-running
    every day, indexes nothing new. (With SQLite, one writer at a time: each backfill is
    created while the scheduler is stopped.)"""
    home = tmp_path / "airflow"
    port = _free_port()
    env = {**_env(fresh_settings, feeds_file, home),
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__PARALLELISM": "4",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex}
    assert _run(env, "db", "migrate").returncode == 0
    assert _run(env, "dags", "reserialize").returncode == 0
    db = home / "airflow.db"
    created = _run(env, "backfill", "create", "--dag-id", "news_backfill",
                   "--from-date", "2026-10-19", "--to-date", "2026-11-01")
    assert created.returncode == 0, created.stderr[-3000:]
    with _airflow_running(env, port, tmp_path):
        _wait_for_backfill(db, 1)
    runs = _runs(db)
    assert len(runs) == 14 and set(runs.values()) == {"success"}, runs
    expected = published_in(TWO_WEEKS, site.base_url)
    stored = indexed(es, fresh_settings)
    assert set(stored) == expected
    for url, ingest in stored.items():  # each brought in by a run of this backfill
        assert ingest["mode"] == "backfill" and ingest["run_id"] in runs, url

    again = _run(env, "backfill", "create", "--dag-id", "news_backfill",
                 "--from-date", "2026-10-19", "--to-date", "2026-11-01",
                 "--reprocess-behavior", "completed")
    assert again.returncode == 0, again.stderr[-3000:]
    with _airflow_running(env, port, tmp_path):
        _wait_for_backfill(db, 2)
    assert set(_runs(db).values()) == {"success"}
    assert indexed(es, fresh_settings) == stored

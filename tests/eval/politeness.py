"""`make bench`, politeness part: how long `newsroom ingest` takes where the per-host limits,
not the machine, set the pace; figures beside their bound, never a pass/fail.

- Politeness-bound: 50 hosts on loopback (each its own port), each answering after 200 ms,
  each listing 20 new pages, host delay 1 s. A host cannot be asked faster than once a second,
  so the bound is about 20 × 1 s + the latency; fetching one page after another would take
  over 1,000 s. The pages are short (our fetches and the ledger are measured, not extraction).
- The same through the DAG: `airflow dags test --use-executor news_ingest` over 50 fresh hosts,
  with the settings as shipped, its tasks run by the LocalExecutor (an API server of its own
  started for their execution API, and warmed by a run over two one-page hosts first, as a
  deployment's API server is warm), so the mapped tasks (four groups of whole sites) run at
  once as the scheduler runs them. Printed: the command's wall time (Airflow's own start, the
  report task, and the executor's shutdown, which waits for every task process to be reaped),
  the DAG run's duration as Airflow records it, the time from the first task's start to the
  last one's end, the longest group task's, and the seconds from the command's start to the
  run's (Airflow's imports and its DAG bag: none of it the pipeline's).
- Idle poll: 200 feeds on 200 hosts, already polled once, answering 304 to the conditional GET.

Each part runs on an alias of its own on the local node, removed afterwards.

    python -m tests.eval.politeness        # or: make bench
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline.ingest import ingest
from pipeline.localnode import LocalNode
from pipeline.settings import Feed, Settings, parse_nets
from pipeline.store import connect, ensure_indices
from tests.airflow_local import dags_test, execution_api

LATENCY = 0.2
EXIT_GRACE = 60.0  # seconds the `airflow dags test` command gets to exit once its run finished
MORE_WORKERS = 32, 8  # feeds and a feed's pages at once, beside the shipped settings


class _Host(BaseHTTPRequestHandler):
    """A site with a feed of `pages` short pages, answering after LATENCY; 304 to a feed
    request that sends back its ETag."""

    protocol_version = "HTTP/1.1"
    pages = 20

    def do_GET(self) -> None:
        time.sleep(LATENCY)
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/feed.xml":
            if self.headers.get("If-None-Match") == '"v1"':
                self._answer(304, b"", "application/rss+xml")
                return
            items = "".join(f"<item><title>Story {n}</title><link>{base}/story-{n}.html</link>"
                            "</item>" for n in range(self.pages))
            body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Host</title>'
                    f"<link>{base}/</link><description>d</description>{items}"
                    "</channel></rss>").encode()
            self._answer(200, body, "application/rss+xml", etag='"v1"')
        elif self.path == "/robots.txt":
            self._answer(404, b"", "text/plain")
        else:
            self._answer(200, b"<html><body><p>A short page.</p></body></html>", "text/html")

    def _answer(self, status: int, body: bytes, kind: str, etag: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _hosts_and_alias(base: Settings, name: str, delay: float, count: int, pages: int
                     ) -> Iterator[tuple[Settings, list[ThreadingHTTPServer]]]:
    """`count` hosts serving `pages` pages each, and settings (`base`'s workers) on an alias
    of their own; both gone afterwards."""
    settings = replace(base, index_alias=f"bench-polite-{name}-{uuid.uuid4().hex[:6]}",
                       http=replace(base.http, allow_nets=parse_nets("127.0.0.0/8"),
                                    per_host_delay=delay))
    es = connect(settings)
    ensure_indices(es, settings)
    handler = type("Host", (_Host,), {"pages": pages})
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(count)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield settings, servers
    finally:
        for server in servers:
            server.shutdown()
        es.options(ignore_status=404).indices.delete(index=f"{settings.index_alias}*")
        es.options(ignore_status=404).indices.delete_index_template(
            name=f"{settings.index_alias}-template")


def _run(settings: Settings, servers: list[ThreadingHTTPServer]) -> tuple[float, dict]:
    feeds = [Feed(name=f"host-{n}", url=f"http://127.0.0.1:{s.server_address[1]}/feed.xml")
             for n, s in enumerate(servers)]
    started = time.monotonic()
    summary = ingest(feeds, settings, f"bench-{uuid.uuid4().hex[:6]}")
    return time.monotonic() - started, summary


@contextmanager
def _airflow(base: Settings) -> Iterator[tuple[dict[str, str], Path]]:
    """The environment for `airflow dags test --use-executor` (the LocalExecutor), with an API
    server of its own for the tasks' execution API, running until the block ends, and a
    scratch folder for the runs' feed files."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
               "ELASTICSEARCH_URL": base.elasticsearch_url, "AIRFLOW__CORE__PARALLELISM": "8"}
        with execution_api(env, Path(folder) / "api-server.log") as served:
            yield served, Path(folder)


def _dag_run(airflow_env: tuple[dict[str, str], Path], settings: Settings,
             servers: list[ThreadingHTTPServer]
             ) -> tuple[float | None, float, float, float, int, float]:
    """`airflow dags test --use-executor news_ingest` over these hosts' feeds, its tasks run by
    the LocalExecutor (as the scheduler runs them: the groups at once): the command's seconds
    in all, the DAG run's as Airflow records them, from the first task's start to the last
    one's end, the longest `ingest_sites` task's, items the ledger recorded, and the seconds
    from the command's start to the run's. The command's seconds are None when it hung after
    the run (it is then stopped)."""
    env, folder = airflow_env
    feeds = folder / f"{settings.index_alias}.yaml"
    feeds.write_text("feeds:\n" + "".join(
        f"  - name: host-{n}\n    url: http://127.0.0.1:{s.server_address[1]}/feed.xml\n"
        for n, s in enumerate(servers)))
    run = dags_test({**env, "NEWSROOM_FEEDS": str(feeds), "NEWSROOM_INDEX": settings.index_alias,
                     "NEWSROOM_HOST_DELAY": str(settings.http.per_host_delay)},
                    "news_ingest", folder / f"{settings.index_alias}.log", timeout=1800,
                    linger=EXIT_GRACE)
    output = run.output
    if not run.succeeded:
        raise RuntimeError(f"the DAG run failed: {output[-3000:]}")
    if run.exit_code is None:
        print(f"  (the command did not exit {EXIT_GRACE:.0f} s after the DAG run finished: "
              "Airflow's LocalExecutor waited on a worker that never joined, "
              "apache/airflow#45683; it was stopped, and its wall time is no figure)")
    took = run.seconds if run.exit_code == 0 else None
    # "DagRun Finished: dag_id=..., run_start_date=..., run_end_date=..., run_duration=..."
    recorded = re.search(r"DagRun Finished: dag_id=news_ingest, .*?run_start_date=([^,]+), "
                         r".*?run_duration=([\d.]+)", output)
    # the executor's events: "TaskInstance Finished: dag_id=..., task_id=..., ...,
    # run_start_date=..., run_end_date=..., run_duration=..."
    tasks = [(task, datetime.fromisoformat(start), datetime.fromisoformat(end), float(seconds))
             for task, start, end, seconds in re.findall(
                 r"TaskInstance Finished: dag_id=news_ingest, task_id=(\w+), .*?"
                 r"run_start_date=([^,]+), run_end_date=([^,]+), run_duration=([\d.]+)", output)]
    if recorded is None or not any(task == "ingest_sites" for task, *_ in tasks):
        # never a figure of 0: the lines these figures are read from have changed
        raise RuntimeError("Airflow's output has no 'DagRun Finished' or 'TaskInstance "
                           "Finished' line for news_ingest in the form this bench reads: "
                           f"{output[-3000:]}")
    run_seconds = float(recorded.group(2))
    before_run = (datetime.fromisoformat(recorded.group(1)) - run.began).total_seconds()
    span = (max(end for _, _, end, _ in tasks) - min(start for _, start, _, _ in tasks)
            ).total_seconds()
    longest = max(seconds for task, _, _, seconds in tasks if task == "ingest_sites")
    es = connect(settings)
    es.indices.refresh(index=settings.ledger_index)
    return (took, run_seconds, span, longest, int(es.count(index=settings.ledger_index)["count"]),
            before_run)


def main() -> int:
    node = LocalNode.from_env()
    node.start()
    base = replace(Settings.load(), elasticsearch_url=node.url)
    hosts, pages, delay = 50, 20, 1.0
    bound = pages * delay + LATENCY
    print(f"Politeness: {hosts} hosts x {pages} new pages, {LATENCY * 1000:.0f} ms latency, host "
          f"delay {delay:.0f} s (bound {bound:.1f} s; one page after another would take over "
          f"{hosts * pages * (LATENCY + delay):.0f} s)")
    more = replace(base, feed_workers=MORE_WORKERS[0], fetch_workers=MORE_WORKERS[1])
    for workers in (base, more):
        with _hosts_and_alias(workers, "bound", delay, hosts, pages) as (settings, servers):
            took, summary = _run(settings, servers)
        print(f"  newsroom ingest, {workers.feed_workers} feeds and {workers.fetch_workers} of "
              f"a feed's pages at once{' (as shipped)' if workers is base else ''}: "
              f"{took:.1f} s for {summary['fetched']} pages, {took / bound:.2f}x the bound")
    with _airflow(base) as airflow_env:
        with _hosts_and_alias(base, "warm", delay, 2, 1) as (settings, servers):
            _dag_run(airflow_env, settings, servers)  # the API server's first requests
        with _hosts_and_alias(base, "dag", delay, hosts, pages) as (settings, servers):
            waited, run_seconds, span, longest, recorded, before_run = _dag_run(
                airflow_env, settings, servers)
        command = ("the command did not exit" if waited is None else
                   f"{waited:.1f} s, {waited / bound:.2f}x the bound")
        print(f"  the DAG (airflow dags test --use-executor news_ingest, LocalExecutor, as "
              f"shipped): {command}; the DAG run as Airflow records it {run_seconds:.1f} s "
              f"({recorded} items recorded), {run_seconds / bound:.2f}x; from its first task's "
              f"start to its last one's end {span:.1f} s, {span / bound:.2f}x; the longest of "
              f"the four group tasks, run at once, {longest:.1f} s, {longest / bound:.2f}x; "
              f"from the command's start to the run's {before_run:.1f} s")
    hosts = int(os.environ.get("BENCH_IDLE_FEEDS", "200"))
    with _hosts_and_alias(base, "idle", delay, hosts, 1) as (settings, servers):
        _run(settings, servers)  # the first poll keeps each feed's ETag
        took, summary = _run(settings, servers)
        unchanged = sum(1 for feed in summary["feeds"] if feed["status"] == "not_modified")
        print(f"  idle poll, as shipped: {hosts} feeds on {hosts} hosts, {unchanged} answering "
              f"304: {took:.1f} s (goal 10 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

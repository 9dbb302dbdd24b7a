"""`make bench`, politeness part: how long `newsroom ingest` takes where the per-host limits,
not the machine, set the pace; figures beside their bound, never a pass/fail.

- Politeness-bound: 50 hosts on loopback (each its own port), each answering after 200 ms,
  each listing 20 new pages, host delay 1 s. A host cannot be asked faster than once a second,
  so the bound is about 20 × 1 s + the latency; fetching one page after another would take
  over 1,000 s. The pages are short (our fetches and the ledger are measured, not extraction).
- The same through the DAG: `airflow dags test news_ingest` over 50 fresh hosts, with the
  settings as shipped. `dags test` runs the mapped tasks (four groups of whole sites) one after
  another in its own process, where the scheduler runs them at once; the wall time includes
  Airflow's own start and the prepare and report tasks, and the longest group's time is printed
  beside it.
- Idle poll: 200 feeds on 200 hosts, already polled once, answering 304 to the conditional GET.

Each part runs on an alias of its own on the local node, removed afterwards.

    python -m tests.eval.politeness        # or: make bench
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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

LATENCY = 0.2
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


def _dag_run(settings: Settings, servers: list[ThreadingHTTPServer]
             ) -> tuple[float, float, int]:
    """`airflow dags test news_ingest` over these hosts' feeds: seconds in all, the longest
    `ingest_sites` task's seconds, and items the ledger recorded."""
    airflow = Path(sys.executable).parent / "airflow"
    with tempfile.TemporaryDirectory() as folder:
        feeds = Path(folder) / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - name: host-{n}\n    url: http://127.0.0.1:{s.server_address[1]}/feed.xml\n"
            for n, s in enumerate(servers)))
        env = {**os.environ, "NEWSROOM_FEEDS": str(feeds), "NEWSROOM_INDEX": settings.index_alias,
               "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
               "NEWSROOM_HOST_DELAY": str(settings.http.per_host_delay),
               "ELASTICSEARCH_URL": settings.elasticsearch_url}
        started = time.monotonic()
        run = subprocess.run([str(airflow), "dags", "test", "news_ingest"],
                             env=env, capture_output=True, text=True, timeout=1800, check=False)
        took = time.monotonic() - started
    if run.returncode != 0 or "state=success" not in run.stdout + run.stderr:
        raise RuntimeError(f"the DAG run failed: {(run.stdout + run.stderr)[-3000:]}")
    # `dags test` logs "[DAG TEST] starting task_id=... map_index=N" and "... end task ..."
    marks: dict[tuple[str, str], datetime] = {}
    for when, what, index in re.findall(r"^(\S+) .*\[DAG TEST\] (starting|end task) "
                                        r"task_id=ingest_sites map_index=(\d+)",
                                        run.stdout + run.stderr, re.MULTILINE):
        marks[(what, index)] = datetime.fromisoformat(when)
    tasks = [(marks[("end task", index)] - start).total_seconds()
             for (what, index), start in marks.items()
             if what == "starting" and ("end task", index) in marks]
    es = connect(settings)
    es.indices.refresh(index=settings.ledger_index)
    return took, max(tasks, default=0.0), int(es.count(index=settings.ledger_index)["count"])


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
    with _hosts_and_alias(base, "dag", delay, hosts, pages) as (settings, servers):
        took, longest, recorded = _dag_run(settings, servers)
        print(f"  the DAG (airflow dags test news_ingest, as shipped): {took:.1f} s for "
              f"{recorded} items recorded, {took / bound:.2f}x the bound, its four group tasks "
              f"one after another; the longest task {longest:.1f} s, {longest / bound:.2f}x "
              "the bound (the scheduler runs the four at once)")
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

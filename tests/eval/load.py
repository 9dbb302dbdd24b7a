"""`make bench`, load part: `newsroom ingest` end to end over a generated corpus served
locally (20 feeds, 2,000 then 10,000 pages by default; BENCH_LOAD_SIZES to change): pages per
second, peak memory (max RSS) of the ingest process, and Elasticsearch bulk throughput. Each
size runs in a fresh process on a fresh alias, so the peaks compare.

    python -m tests.eval.load            # or: make bench
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from elasticsearch import helpers

from pipeline.localnode import LocalNode
from pipeline.settings import Settings
from pipeline.store import connect, ensure_indices
from tests.chaos.es_proxy import FaultyProxy

FEEDS = 20
COUNTED_PAGES = 400  # the run whose Elasticsearch requests are counted (through a proxy)
_TOPIC = ["Russia", "China", "Moscow", "Beijing", "Kremlin", "Putin", "Xi Jinping", "Lavrov",
          "Wang Yi", "Gazprom", "CNPC", "yuan", "rouble", "Power of Siberia", "SCO", "BRICS",
          "sanctions", "pipeline", "summit", "drills", "Arctic", "trade", "talks", "Ukraine"]
_WORDS = [f"{stem}{suffix}" for stem in (
    "analyst", "official", "ministr", "statement", "agreement", "cooperat", "export", "import",
    "delegat", "meeting", "energ", "invest", "border", "railway", "port", "freight", "grain",
    "payment", "bank", "currenc", "settlement", "securit", "exercise", "nav", "region",
    "partner", "visit", "forum", "negotiat", "suppl", "contract", "volume", "growth", "quarter",
    "figure", "custom", "polic", "market", "demand", "price", "shipment", "capacit", "project",
    "agenc", "spokes", "week", "terminal", "tariff", "quota", "tanker", "refiner", "steel")
    for suffix in ("", "s", "ed", "ing", "al")]


def article(feed: int, number: int) -> bytes:
    """A page with a unique, relevant article (no two share their text)."""
    rng = random.Random(feed * 1_000_003 + number)
    title = (f"{rng.choice(['Russia', 'Moscow', 'The Kremlin'])} and "
             f"{rng.choice(['China', 'Beijing'])} {rng.choice(['agree', 'discuss', 'expand'])} "
             f"{rng.choice(['energy', 'trade', 'rail', 'payments', 'security'])} ties, "
             f"report {feed}-{number}")
    paragraphs = [(f"<p>Russian President Vladimir Putin and Chinese President Xi Jinping's "
                  f"governments signed a new {rng.choice(['energy', 'trade', 'rail'])} accord "
                  "in Beijing, officials in Moscow and Beijing said, as Russia–China relations "
                  "deepen.</p>")]
    for _ in range(5):
        words = [rng.choice(_TOPIC if rng.random() < 0.2 else _WORDS) for _ in range(60)]
        paragraphs.append(f"<p>{' '.join(words).capitalize()}.</p>")
    day = 1 + number % 28
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
            f'<meta property="article:published_time" content="2026-10-{day:02d}T08:00:00Z">'
            f"</head><body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>"
            f"{''.join(paragraphs)}</article><footer>© Generated Wire</footer></body></html>"
            ).encode()


def feed(number: int, pages: int, base: str) -> bytes:
    items = "".join(
        f"<item><title>Report {number}-{i}</title><link>{base}/p/{number}/{i}.html</link>"
        f"<pubDate>Thu, {1 + i % 28:02d} Oct 2026 08:00:00 GMT</pubDate></item>"
        for i in range(pages))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title>'
            f"<link>{base}</link><description>generated</description>{items}</channel></rss>"
            ).encode()


class GeneratedSite:
    """Serves `pages` generated pages across `FEEDS` feeds on 127.0.0.1."""

    def __init__(self, pages: int) -> None:
        site = self
        self.per_feed = pages // FEEDS

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if parts[0].startswith("feed-"):
                    body = feed(int(parts[0][5:-4]), site.per_feed, site.base_url)
                elif parts[0] == "p" and len(parts) == 3:
                    body = article(int(parts[1]), int(parts[2].split(".")[0]))
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8"
                                 if parts[0] == "p" else "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def feeds_file(self, folder: Path) -> Path:
        path = folder / "feeds.yaml"
        path.write_text("feeds:\n" + "".join(
            f"  - name: Generated {n}\n    url: {self.base_url}/feed-{n}.xml\n"
            for n in range(FEEDS)))
        return path

    def close(self) -> None:
        self._server.shutdown()


_MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)")


class RequestCount:
    """Counts the requests that reach Elasticsearch through a proxy: in all, by kind, and how
    many wait for a refresh."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.refresh_waits = 0
        self.kinds: Counter[str] = Counter()

    def __call__(self, method: str, path: str, body: bytes) -> None:
        route = urlsplit(path)
        kind = next((part for part in route.path.split("/") if part.startswith("_")), "other")
        with self.lock:
            self.total += 1
            self.kinds[f"{method} {kind}"] += 1
            if "refresh=wait_for" in route.query or "refresh=true" in route.query \
                    or kind == "_refresh":
                self.refresh_waits += 1


def ingest_run(settings: Settings, pages: int, es_url: str | None = None) -> dict[str, float]:
    """One `newsroom ingest` over `pages` generated pages: seconds, peak RSS in MB, counts
    (through `es_url`, a counting proxy, when given)."""
    site = GeneratedSite(pages)
    try:
        with tempfile.TemporaryDirectory() as folder:
            feeds = site.feeds_file(Path(folder))
            report_file = Path(folder) / "report.json"
            env = {**os.environ, "ELASTICSEARCH_URL": es_url or settings.elasticsearch_url,
                   "NEWSROOM_INDEX": settings.index_alias, "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
                   "NEWSROOM_HOST_DELAY": "0"}
            command = (f'"{sys.executable}" -m pipeline.cli ingest --feeds "{feeds}" --json '
                       f'> "{report_file}"')
            started = time.perf_counter()
            measured = subprocess.run([sys.executable, "-c", _MEASURE, "sh", "-c", command],
                                      env=env, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - started
            max_rss_kb, code = measured.stdout.split()
            if code != "0":
                raise RuntimeError(f"ingest failed: {measured.stderr[-2000:]}")
            report = json.loads(report_file.read_text())
    finally:
        site.close()
    return {"pages": pages, "seconds": seconds, "pages_per_s": pages / seconds,
            "peak_mb": int(max_rss_kb) / 1024, **{key: report[key] for key in (
                "indexed", "duplicate", "irrelevant", "failed")}}


def request_counts(settings: Settings, pages: int) -> tuple[dict[str, float], RequestCount]:
    """A run over `pages` pages with every request to Elasticsearch counted."""
    count = RequestCount()
    with FaultyProxy(settings.elasticsearch_url, count) as proxy:
        return ingest_run(settings, pages, es_url=proxy.url), count


def bulk_throughput(settings: Settings, documents: int = 20_000) -> float:
    """Documents per second of plain bulk indexing of small article-like documents."""
    es = connect(settings)
    rng = random.Random(7)
    actions = ({"_index": settings.index_alias, "_id": f"bulk-{n}",
                "_source": {"url": f"https://example.org/{n}", "title": f"Story {n}",
                            "text": " ".join(rng.choice(_WORDS) for _ in range(300)),
                            "language": "en", "published_at": "2026-10-01T00:00:00Z"}}
               for n in range(documents))
    started = time.perf_counter()
    helpers.bulk(es, actions, chunk_size=500)
    es.indices.refresh(index=settings.index_alias)
    return documents / (time.perf_counter() - started)


def main() -> int:
    node = LocalNode.from_env()
    node.start()
    base = replace(Settings.load(), elasticsearch_url=node.url)
    sizes = [int(n) for n in os.environ.get("BENCH_LOAD_SIZES", "2000,10000").split(",")]
    results = []
    aliases = []
    try:
        for pages in sizes:
            settings = replace(base, index_alias=f"load-{uuid.uuid4().hex[:8]}")
            aliases.append(settings.index_alias)
            ensure_indices(connect(settings), settings)
            results.append(ingest_run(settings, pages))
        counted_settings = replace(base, index_alias=f"load-{uuid.uuid4().hex[:8]}")
        aliases.append(counted_settings.index_alias)
        ensure_indices(connect(counted_settings), counted_settings)
        counted, count = request_counts(counted_settings, COUNTED_PAGES)
        bulk = replace(base, index_alias=f"load-{uuid.uuid4().hex[:8]}")
        aliases.append(bulk.index_alias)
        ensure_indices(connect(bulk), bulk)
        docs_per_s = bulk_throughput(bulk)
    finally:
        es = connect(base)
        for alias in aliases:
            es.options(ignore_status=404).indices.delete(index=f"{alias}*",
                                                         expand_wildcards="all")
            es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")
    print(f"\nEnd to end, `newsroom ingest` over generated pages ({FEEDS} feeds, served locally):")
    print(f"  {'pages':>7} {'seconds':>8} {'pages/s':>8} {'peak MB':>8} {'indexed':>8} "
          f"{'duplicate':>9} {'irrelevant':>10} {'failed':>7}")
    for r in results:
        print(f"  {r['pages']:>7,} {r['seconds']:>8.1f} {r['pages_per_s']:>8.1f} "
              f"{r['peak_mb']:>8.0f} {r['indexed']:>8,} {r['duplicate']:>9} "
              f"{r['irrelevant']:>10} {r['failed']:>7}")
    if len(results) >= 2:
        print(f"  peak memory at {results[-1]['pages']:,} / at {results[0]['pages']:,} pages: "
              f"{results[-1]['peak_mb'] / results[0]['peak_mb']:.2f}")
    indexed = max(1, int(counted["indexed"]))
    batches = FEEDS * math.ceil(COUNTED_PAGES // FEEDS / base.batch_size)
    print(f"Elasticsearch requests over {COUNTED_PAGES:,} pages ({counted['indexed']:,} indexed, "
          f"{batches} batches of up to {base.batch_size}): {count.total:,} in all, "
          f"{count.total / indexed:.2f} per indexed article; {count.refresh_waits:,} wait for "
          f"a refresh, {count.refresh_waits / batches:.2f} per batch")
    print("  by kind: " + ", ".join(f"{kind} {n:,}" for kind, n in count.kinds.most_common()))
    print(f"Elasticsearch bulk throughput: {docs_per_s:,.0f} documents/s (20,000 small "
          "documents, chunks of 500)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

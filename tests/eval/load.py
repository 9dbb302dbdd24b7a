"""`make bench`, load part: `newsroom ingest` end to end over a generated corpus served
locally (20 feeds, 2,000 then 10,000 pages by default; BENCH_LOAD_SIZES to change): pages per
second, peak memory (max RSS) of the ingest process, and Elasticsearch bulk throughput. Each
size runs in a fresh process on a fresh alias, so the peaks compare. Then copies first: a corpus
where every article also has a syndicated copy on another feed, published later, polled with the
copies' feeds first (each copy is indexed, then demoted when its original comes) and with the
originals' first (each copy is judged a duplicate on arrival), in pages per second and their
ratio (BENCH_COPIES_PAGES articles, 600 by default, so twice that many pages).

    python -m tests.eval.load            # or: make bench
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
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

import psutil
import yaml
from elasticsearch import helpers

from pipeline.cpu import cpu_workers
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


def article(feed: int, number: int, copy: bool = False) -> bytes:
    """A page with a unique, relevant article (no two share their text); or, as `copy`, the
    same article as another outlet republishes it two hours later, under its own byline."""
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
    if copy:
        paragraphs.append("<p>This report was republished from the Generated Wire.</p>")
    day = 1 + number % 28
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
            f'<meta property="article:published_time" '
            f'content="2026-10-{day:02d}T{10 if copy else 8}:00:00Z">'
            f"</head><body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>"
            f"{''.join(paragraphs)}</article><footer>© Generated Wire</footer></body></html>"
            ).encode()


def feed(number: int, pages: int, base: str, kind: str = "p") -> bytes:
    """A feed listing `pages` articles of feed `number` (`kind` p) or their copies (c)."""
    items = "".join(
        f"<item><title>Report {number}-{i}</title><link>{base}/{kind}/{number}/{i}.html</link>"
        f"<pubDate>Thu, {1 + i % 28:02d} Oct 2026 08:00:00 GMT</pubDate></item>"
        for i in range(pages))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title>'
            f"<link>{base}</link><description>generated</description>{items}</channel></rss>"
            ).encode()


class GeneratedSite:
    """Serves `pages` generated pages across `FEEDS` feeds on 127.0.0.1, and a copy of each
    across `FEEDS` more feeds."""

    def __init__(self, pages: int) -> None:
        site = self
        self.per_feed = pages // FEEDS

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if parts[0].startswith(("feed-", "copies-")) and parts[0].endswith(".xml"):
                    kind, number = parts[0][:-4].split("-")
                    body = feed(int(number), site.per_feed, site.base_url,
                                "p" if kind == "feed" else "c")
                elif parts[0] in ("p", "c") and len(parts) == 3:
                    body = article(int(parts[1]), int(parts[2].split(".")[0]),
                                   copy=parts[0] == "c")
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml"
                                 if parts[0].endswith(".xml") else "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def feeds_file(self, folder: Path, copies: str | None = None) -> Path:
        """The feeds; with `copies` "first" or "last", the copies' feeds too, there."""
        path = folder / "feeds.yaml"
        originals = [f"  - name: Generated {n}\n    url: {self.base_url}/feed-{n}.xml\n"
                     for n in range(FEEDS)]
        copied = [f"  - name: Republisher {n}\n    url: {self.base_url}/copies-{n}.xml\n"
                  for n in range(FEEDS)]
        feeds = {None: originals, "first": copied + originals, "last": originals + copied}
        path.write_text("feeds:\n" + "".join(feeds[copies]))
        return path

    def close(self) -> None:
        self._server.shutdown()


def _run_measured(argv: list[str], env: dict[str, str], stdout: Path) -> float:
    """Run `argv` to the end; the peak, in MB, of the memory it and its worker processes use
    together (their resident sets summed, sampled every 50 ms)."""
    peak = 0
    with stdout.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.PIPE)
        tree = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                members = [tree, *tree.children(recursive=True)]
                peak = max(peak, sum(member.memory_info().rss for member in members))
            except psutil.Error:  # a member ended while being measured
                pass
            time.sleep(0.05)
        errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"ingest failed: {errors[-2000:]}")
    return peak / 2**20


class RequestCount:
    """Counts the requests that reach Elasticsearch through a proxy: in all, by kind, how many
    writes wait for a refresh (or force one), and how many refreshes are asked for on their
    own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.refresh_waits = 0
        self.refreshes = 0
        self.kinds: Counter[str] = Counter()

    def __call__(self, method: str, path: str, body: bytes) -> None:
        route = urlsplit(path)
        kind = next((part for part in route.path.split("/") if part.startswith("_")), "other")
        with self.lock:
            self.total += 1
            self.kinds[f"{method} {kind}"] += 1
            if kind == "_refresh":
                self.refreshes += 1
            elif "refresh=wait_for" in route.query or "refresh=true" in route.query:
                self.refresh_waits += 1


def ingest_run(settings: Settings, pages: int, es_url: str | None = None,
               copies: str | None = None, config_dir: Path | None = None) -> dict[str, float]:
    """One `newsroom ingest` over `pages` generated pages (and as many copies, their feeds
    polled `copies` "first" or "last"), with the settings of `config_dir` when given: seconds,
    peak memory in MB, counts (through `es_url`, a counting proxy, when given)."""
    site = GeneratedSite(pages)
    pages *= 2 if copies else 1
    try:
        with tempfile.TemporaryDirectory() as folder:
            feeds = site.feeds_file(Path(folder), copies)
            report_file = Path(folder) / "report.json"
            env = {**os.environ, "ELASTICSEARCH_URL": es_url or settings.elasticsearch_url,
                   "NEWSROOM_INDEX": settings.index_alias, "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
                   "NEWSROOM_HOST_DELAY": "0",
                   **({"NEWSROOM_CONFIG_DIR": str(config_dir)} if config_dir else {})}
            started = time.perf_counter()
            peak_mb = _run_measured([sys.executable, "-m", "pipeline.cli", "ingest", "--feeds",
                                     str(feeds), "--json"], env, report_file)
            seconds = time.perf_counter() - started
            report = json.loads(report_file.read_text())
    finally:
        site.close()
    return {"pages": pages, "seconds": seconds, "pages_per_s": pages / seconds,
            "peak_mb": peak_mb, **{key: report[key] for key in (
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


def serial_config(folder: Path) -> Path:
    """A copy of the config folder with one feed, one page and one reading process at a time:
    the design before concurrency, measured beside today's in the same run."""
    config = Path(folder) / "config"
    shutil.copytree(Settings.load().config_dir, config)
    settings_file = config / "newsroom.yaml"
    raw = yaml.safe_load(settings_file.read_text())
    raw["ingest"].update(feed_workers=1, fetch_workers=1, cpu_workers=1)
    settings_file.write_text(yaml.safe_dump(raw))
    return config


def main() -> int:
    node = LocalNode.from_env()
    node.start()
    base = replace(Settings.load(), elasticsearch_url=node.url)
    sizes = [int(n) for n in os.environ.get("BENCH_LOAD_SIZES", "2000,10000").split(",")]
    copied = int(os.environ.get("BENCH_COPIES_PAGES", "600"))
    results, copies = [], {}
    aliases = []

    def fresh() -> Settings:
        settings = replace(base, index_alias=f"load-{uuid.uuid4().hex[:8]}")
        aliases.append(settings.index_alias)
        ensure_indices(connect(settings), settings)
        return settings

    try:
        for pages in sizes:
            results.append(ingest_run(fresh(), pages))
        with tempfile.TemporaryDirectory() as folder:
            serial = ingest_run(fresh(), sizes[0], config_dir=serial_config(Path(folder)))
        counted, count = request_counts(fresh(), COUNTED_PAGES)
        for order in ("last", "first"):
            copies[order] = ingest_run(fresh(), copied, copies=order)
        docs_per_s = bulk_throughput(fresh())
    finally:
        es = connect(base)
        for alias in aliases:
            es.options(ignore_status=404).indices.delete(index=f"{alias}*",
                                                         expand_wildcards="all")
            es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")
    workers = (f"feed_workers {base.feed_workers}, fetch_workers {base.fetch_workers}, "
               f"cpu_workers {cpu_workers(base.cpu_workers)}")
    print(f"\nEnd to end, `newsroom ingest` over generated pages ({FEEDS} feeds, served locally;"
          f" {workers}):")
    print(f"  {'pages':>7} {'seconds':>8} {'pages/s':>8} {'peak MB':>8} {'indexed':>8} "
          f"{'duplicate':>9} {'irrelevant':>10} {'failed':>7}")
    for r in [*results, serial]:
        print(f"  {r['pages']:>7,} {r['seconds']:>8.1f} {r['pages_per_s']:>8.1f} "
              f"{r['peak_mb']:>8.0f} {r['indexed']:>8,} {r['duplicate']:>9} "
              f"{r['irrelevant']:>10} {r['failed']:>7}" + ("  one at a time (1, 1, 1)"
                                                          if r is serial else ""))
    print(f"  at {sizes[0]:,} pages: {results[0]['pages_per_s'] / serial['pages_per_s']:.2f}x "
          "the pages/s of one feed, one page and one process at a time")
    if len(results) >= 2:
        print(f"  peak memory (the ingest process and its workers) at {results[-1]['pages']:,} "
              f"/ at {results[0]['pages']:,} pages: "
              f"{results[-1]['peak_mb'] / results[0]['peak_mb']:.2f}")
    print(f"Copies first: {copied:,} articles and a later copy of each ({2 * copied:,} pages):")
    for order, label in (("last", "originals' feeds first"), ("first", "copies' feeds first")):
        r = copies[order]
        print(f"  {label:<24} {r['seconds']:>6.1f} s {r['pages_per_s']:>6.1f} pages/s, "
              f"indexed {r['indexed']:,}, duplicate {r['duplicate']:,}, failed {r['failed']}")
    print(f"  copies first / originals first: "
          f"{copies['first']['pages_per_s'] / copies['last']['pages_per_s']:.2f}")
    indexed = max(1, int(counted["indexed"]))
    batches = FEEDS * math.ceil(COUNTED_PAGES // FEEDS / base.batch_size)
    print(f"Elasticsearch requests over {COUNTED_PAGES:,} pages ({counted['indexed']:,} indexed, "
          f"{batches} batches of up to {base.batch_size}): {count.total:,} in all, "
          f"{count.total / indexed:.2f} per indexed article; {count.refresh_waits:,} writes "
          f"wait for a refresh, {count.refresh_waits / batches:.2f} per batch, and "
          f"{count.refreshes:,} refreshes are asked for on their own (the run's, at its start "
          "and end)")
    print("  by kind: " + ", ".join(f"{kind} {n:,}" for kind, n in count.kinds.most_common()))
    print(f"Elasticsearch bulk throughput: {docs_per_s:,.0f} documents/s (20,000 small "
          "documents, chunks of 500)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

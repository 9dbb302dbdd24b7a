"""The chaos suite: the real pipeline against a misbehaving web, one fault per scenario.

Each scenario serves a small RSS feed from a `ChaosServer` on loopback whose items exercise one
fault, plus (in most) one healthy, relevant article that must land. It runs the real
`Ingestor(settings, es=es).ingest_feed(feed, run_id)` against the real Elasticsearch node, as
many runs as the fault needs to resolve, then once more (the rerun, which must index nothing
new), and reports:

- what the product did, in a few words;
- `lost`: items the feed listed that have no ledger record, or whose record is neither a final
  outcome (indexed, duplicate, irrelevant) nor a failure with a reason;
- `duplicated`: documents in the alias sharing a URL or a content hash with another, plus items
  indexed again by the rerun;
- the scenario's own check (e.g. a refused redirect target recorded zero hits).

Every scenario runs under an index alias of its own (`<alias>-<scenario>`), removed when it is
done. Nothing leaves loopback: redirects to non-loopback addresses are only ever handed to the
pipeline after `check_address` has been seen to refuse them (a guard that would let one
through fails the scenario without sending anything), and the second server that must record
zero hits listens on 127.0.0.2.

    python -m tests.chaos.suite            # full budget against the local node; exit 1 on failure
    python -m tests.chaos.suite --small    # the budget the pytest run uses
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import random
import re
import resource
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from elasticsearch import Elasticsearch

from pipeline.discover import parse_feed
from pipeline.extract import extract_article
from pipeline.fetch import check_address
from pipeline.ingest import FeedReport, Ingestor
from pipeline.ledger import ledger_id
from pipeline.records import ItemError, Page
from pipeline.settings import Feed, Settings, parse_nets
from pipeline.store import connect, ensure_indices
from pipeline.urls import url_id
from tests.chaos import server as chaos
from tests.chaos.es_proxy import (
    Fault,
    FaultyProxy,
    dead_url,
    first_bulk_rejected,
    gone_at_bulk,
    one_document_unmappable,
)
from tests.chaos.server import ChaosServer, SlowAcceptServer
from tests.eval.corpus import SAMPLE

FINAL = {"indexed", "duplicate", "irrelevant"}
HEALTHY = "northwire/stories/2026/11/18/putin-xi-phone-call.html"
READ_TIMEOUT = 1.5
CONNECT_TIMEOUT = 1.5
TOTAL_TIMEOUT = 3 * READ_TIMEOUT
MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class Budget:
    feed_items: int  # items in the huge feed
    feed_seconds: float  # time the huge feed's first run may take
    big_page: int  # bytes of the huge article page
    big_page_seconds: float
    drip_seconds: float  # how long the slow-drip body keeps coming


BUDGETS = {
    "small": Budget(feed_items=1_000, feed_seconds=30, big_page=1_000_000,
                    big_page_seconds=30, drip_seconds=10),
    "full": Budget(feed_items=10_000, feed_seconds=180, big_page=5_000_000,
                   big_page_seconds=60, drip_seconds=30),
}


@dataclass(frozen=True)
class Item:
    url: str
    title: str = "Item"
    description: str = ""  # raw XML, inserted as it is


@dataclass
class Stage:
    """What a scenario sets up before the runs: routes, the feed's items, settings."""

    server: ChaosServer
    sentinel: ChaosServer  # on 127.0.0.2: must record zero hits
    budget: Budget
    items: list[Item] = field(default_factory=list)
    http: dict[str, Any] = field(default_factory=dict)  # HttpSettings overrides
    ingest: dict[str, Any] = field(default_factory=dict)  # Settings overrides
    runs: int = 1  # runs before the rerun
    # Runs that reach Elasticsearch through a `FaultyProxy` with this fault (None: the node is
    # stopped, connections refused), and runs that may end in an Elasticsearch error.
    es_faults: dict[int, Fault | None] = field(default_factory=dict)
    may_raise: set[int] = field(default_factory=set)
    feed_body: bytes | None = None  # a feed document of its own, else RSS of `items`
    listed: list[str] | None = None  # what the feed validly lists, else the items' URLs
    healthy: str | None = None  # the healthy item's URL: it must be indexed by the first run
    problems: list[str] = field(default_factory=list)  # found while setting up
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def article(self, key: str, path: str | None = None) -> str:
        """Serve the sample article `key` (outlet/page) at its own path (or `path`); its URL."""
        path = path or f"/{key}"
        self.server.route(path, chaos.page(sample_page(key, self.server.base_url)))
        return self.server.url(path)

    def add_healthy(self) -> str:
        """The healthy relevant article, appended last so that it landing shows the run went
        on past the faults."""
        self.healthy = self.article(HEALTHY)
        self.items.append(Item(self.healthy, "Putin and Xi talk"))
        return self.healthy

    def refused_by_guard(self, url: str, allow: str) -> bool:
        """Whether `check_address` refuses `url` under `allow`; a URL it would let through is
        a problem, and must not be handed to the pipeline (it might leave loopback)."""
        try:
            check_address(url, parse_nets(allow))
        except ItemError:
            return True
        self.problems.append(f"guard lets {url} through (not sent)")
        return False


@dataclass
class Outcome:
    """What the runs left: reports, ledger records, the servers' logs, timings."""

    stage: Stage
    settings: Settings
    es: Elasticsearch
    reports: list[FeedReport]
    records: dict[str, dict[str, Any] | None]  # by listed URL, after the last run
    before_rerun: dict[str, dict[str, Any] | None]
    run_spans: list[tuple[float, float]]  # monotonic start and end of each run
    rss_growth_mb: list[float]  # growth of the process's peak RSS during each run
    run_errors: list[str | None]  # what each run raised, if it did

    def record(self, url: str) -> dict[str, Any]:
        found = self.records.get(url)
        if found is None:
            answer = self.es.options(ignore_status=404).get(
                index=self.settings.ledger_index, id=ledger_id(url))
            found = answer["_source"] if answer.get("found") else None
        return found or {}

    def status(self, url: str) -> str:
        record = self.record(url)
        if not record:
            return "no record"
        return f"{record['status']}:{record.get('reason') or ''}".rstrip(":")

    def doc(self, url: str, fields: list[str]) -> dict[str, Any]:
        found = self.es.options(ignore_status=404).get(
            index=self.settings.index_alias, id=url_id(url), source_includes=fields)
        return found["_source"] if found.get("found") else {}

    def spent_on(self, path: str, run: int = 0, server: ChaosServer | None = None) -> float:
        """Seconds from the request for `path` in `run` to the next request the server saw in
        that run (or the run's end): the time the pipeline spent on that item."""
        server = server or self.stage.server
        hits = [h for h in server.content_hits() if h.run == run]
        mine = [h for h in hits if h.path == path]
        if not mine:
            return 0.0
        later = [h.at for h in hits if h.at > mine[0].at and h.path != path]
        return (min(later) if later else self.run_spans[run][1]) - mine[0].at

    def run_seconds(self, run: int) -> float:
        start, end = self.run_spans[run]
        return end - start


Check = Callable[[Outcome], tuple[str, list[str]]]  # what the product did, problems


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: str
    setup: Callable[[Stage], Check]

    @property
    def doc(self) -> str:
        return (self.setup.__doc__ or "").strip()


@dataclass
class Result:
    name: str
    fault: str
    did: str
    lost: int
    duplicated: int
    ok: bool
    problems: list[str]
    seconds: float


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, fault: str) -> Callable[[Callable[[Stage], Check]],
                                                   Callable[[Stage], Check]]:
    def register(setup: Callable[[Stage], Check]) -> Callable[[Stage], Check]:
        SCENARIOS[name] = Scenario(name, fault, setup)
        return setup
    return register


# --- helpers ---------------------------------------------------------------------------------

@functools.cache
def _sample_bytes(key: str) -> bytes:
    return (SAMPLE / "www" / key).read_bytes()


def sample_page(key: str, base: str) -> bytes:
    """A sample corpus page as the sample server serves it under `base`."""
    return _sample_bytes(key).replace(b"{BASE_URL}", base.encode())


def rss(items: Iterable[Item], doctype: str = "", channel_extra: str = "") -> bytes:
    head = (f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}'
            '<rss version="2.0"><channel><title>Chaos</title><link>http://127.0.0.1/</link>'
            f"<description>faults</description>{channel_extra}\n")
    parts = [head]
    for item in items:
        parts.append(f"<item><title>{item.title}</title><link>{escape(item.url)}</link>"
                     f"<description>{item.description}</description></item>\n")
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


def reached_healthy(stage: Stage, out: Outcome, limit: float, problems: list[str]) -> float:
    """Seconds from the first run's start to its request for the healthy item (which comes
    after the faulty ones); a problem is added when that took longer than `limit`."""
    healthy = stage.server.hits_for(path_of(stage.healthy or ""), 0)
    took = healthy[0].at - out.run_spans[0][0] if healthy else float("inf")
    if took > limit:
        problems.append(f"the run reached the healthy item after {took:.1f}s "
                        f"(limit {limit:.1f}s)")
    return took


def path_of(url: str) -> str:
    return urlsplit(url).path


def reasons(out: Outcome, urls: Iterable[str]) -> str:
    return ", ".join(sorted({out.status(u) for u in urls}))


def expect(out: Outcome, url: str, status: str, reason: str | None = None,
           retryable: bool | None = None) -> list[str]:
    """Problems with `url`'s record (empty when it is as expected)."""
    record = out.record(url)
    got = f"{record.get('status')}:{record.get('reason')}:retryable={record.get('retryable')}"
    if record.get("status") != status or (reason is not None and record.get("reason") != reason) \
            or (retryable is not None and record.get("retryable") is not retryable):
        want = f"{status}:{reason}:retryable={retryable}"
        return [f"{path_of(url)}: want {want}, got {got}"]
    return []


_MOJIBAKE = re.compile(
    "[ÃÂÐÑ][\u0080-\u00ff]"  # UTF-8 read as Latin-1 / cp1252
    "|[РС][\u0402-\u040f\u0450-\u045f\u00a0-\u00bf\u2018-\u203a]"  # UTF-8 read as cp1251
    "|вЂ|\ufffd")


def mojibake(text: str) -> list[str]:
    """Tell-tale sequences of text decoded with the wrong charset."""
    return sorted(set(_MOJIBAKE.findall(text)))[:8]


# --- scenarios -------------------------------------------------------------------------------
# In priority order: the address guard, then timeouts and resets, retries, size caps, feed
# parsing, charsets, volume.

@scenario("redirect_to_private", "redirect to metadata/private/non-http")
def redirect_to_private(stage: Stage) -> Check:
    """Items that redirect (or link straight) to the cloud metadata address, private, CGNAT,
    link-local and IPv4-mapped addresses, and to file: and ftp: URLs fail `blocked_address` /
    `blocked_scheme` (permanent) after the one hop on our server, and are not fetched again.
    Each target is first checked with `check_address`; one it would let through is not sent."""
    targets = {
        "http://169.254.169.254/latest/meta-data/": "blocked_address",
        "http://10.0.0.1/": "blocked_address",
        "http://192.168.1.1/admin": "blocked_address",
        "http://100.64.0.1/": "blocked_address",
        "http://[::ffff:10.0.0.1]/": "blocked_address",
        "http://[fe80::1]/": "blocked_address",
        "http://0.0.0.0/": "blocked_address",
        "file:///etc/passwd": "blocked_scheme",
        "ftp://127.0.0.1/pub/": "blocked_scheme",
    }
    expected: dict[str, str] = {}
    for i, (target, reason) in enumerate(targets.items()):
        if reason == "blocked_address" and not stage.refused_by_guard(target, ""):
            continue
        url = stage.server.route(f"/to/{i}", chaos.redirect(target))
        stage.items.append(Item(url, f"redirect {i}"))
        expected[url] = reason
    direct = "http://169.254.169.254/latest/user-data"
    if stage.refused_by_guard(direct, ""):
        stage.items.append(Item(direct, "direct metadata link"))
        expected[direct] = "blocked_address"
    stage.add_healthy()
    stage.http["allow_nets"] = parse_nets("127.0.0.0/8")

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = [p for url, reason in expected.items()
                    for p in expect(out, url, "failed", reason, retryable=False)]
        for url in expected:
            if url.startswith(stage.server.base_url):
                runs = [len(stage.server.hits_for(path_of(url), r)) for r in range(2)]
                if runs != [1, 0]:
                    problems.append(f"{path_of(url)} requested {runs} times in runs 0/1")
        return f"refused before connecting: {reasons(out, expected)}", problems
    return check


@scenario("redirect_to_loopback_spellings", "redirect to 127.0.0.2 spelt 6 ways")
def redirect_to_loopback_spellings(stage: Stage) -> Check:
    """With only 127.0.0.1/32 let through, items that redirect to a second recording server on
    127.0.0.2, spelt plainly, as a decimal, hex, octal or short integer, or IPv4-mapped IPv6,
    and an item linking to it directly, all fail `blocked_address` (the octal spelling, which
    httpx cannot parse in a Location header, fails `bad_redirect`): all permanent, and that
    server records zero hits (robots.txt included)."""
    port = stage.sentinel.port
    spellings = [f"http://127.0.0.2:{port}/plain", f"http://2130706434:{port}/decimal",
                 f"http://0x7f000002:{port}/hex", f"http://0177.0.0.2:{port}/octal",
                 f"http://127.2:{port}/short", f"http://[::ffff:127.0.0.2]:{port}/mapped"]
    for path in ("/plain", "/decimal", "/hex", "/octal", "/short", "/mapped", "/direct"):
        stage.sentinel.route(path, chaos.page(b"<html>you should not be here</html>"))
    expected: dict[str, str] = {}
    for i, target in enumerate(spellings):
        host = target.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        try:  # numeric forms only: never a DNS query
            socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            stage.problems.append(f"{host} is not a numeric address here (not sent)")
            continue
        if not stage.refused_by_guard(target, "127.0.0.1/32"):
            continue
        url = stage.server.route(f"/to/{i}", chaos.redirect(target))
        expected[url] = "bad_redirect" if target.endswith("/octal") else "blocked_address"
        stage.items.append(Item(url, f"redirect {i}"))
    direct = f"http://127.0.0.2:{port}/direct"
    if stage.refused_by_guard(direct, "127.0.0.1/32"):
        expected[direct] = "blocked_address"
        stage.items.append(Item(direct, "direct"))
    stage.add_healthy()
    stage.http["allow_nets"] = parse_nets("127.0.0.1/32")

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = [p for url, reason in expected.items()
                    for p in expect(out, url, "failed", reason, retryable=False)]
        if stage.sentinel.hits:
            problems.append(f"127.0.0.2 server got {[h.path for h in stage.sentinel.hits]}")
        return (f"{reasons(out, expected)}; 127.0.0.2 hits: {len(stage.sentinel.hits)}",
                problems)
    return check


@scenario("redirect_loop", "redirect loop")
def redirect_loop(stage: Stage) -> Check:
    """A page redirecting to itself fails `too_many_redirects` (permanent) after exactly
    max_redirects + 1 requests, and is not requested again on the rerun."""
    loop = stage.server.route("/loop", chaos.redirect("/loop", 301))
    stage.items.append(Item(loop, "loop"))
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = expect(out, loop, "failed", "too_many_redirects", retryable=False)
        runs = [len(stage.server.hits_for("/loop", r)) for r in range(2)]
        limit = out.settings.http.max_redirects + 1
        if runs != [limit, 0]:
            problems.append(f"/loop requested {runs} times in runs 0/1 (want [{limit}, 0])")
        return f"{out.status(loop)} after {runs[0]} requests", problems
    return check


@scenario("redirect_chain", "redirect chains of 3 and of max+1 hops")
def redirect_chain(stage: Stage) -> Check:
    """A chain of 3 redirects ends at an article that is indexed under its canonical URL; a
    chain one hop longer than max_redirects fails `too_many_redirects`."""
    target_key = "northwire/stories/2026/11/11/lavrov-wang-yi-beijing-talks.html"
    target = stage.article(target_key)
    limit = 5  # HttpSettings.max_redirects
    for path, route in {**chaos.redirect_chain("/short/", 3, path_of(target)),
                        **chaos.redirect_chain("/long/", limit + 1, path_of(target))}.items():
        stage.server.route(path, route)
    short, long = stage.server.url("/short/0"), stage.server.url("/long/0")
    stage.items += [Item(short, "short chain"), Item(long, "long chain")]
    stage.add_healthy()
    stage.http["max_redirects"] = limit

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = expect(out, short, "indexed") + expect(out, long, "failed",
                                                         "too_many_redirects", retryable=False)
        doc = out.doc(target, ["url"])
        if doc.get("url") != target:
            problems.append(f"article at the chain's end not indexed under {target}: {doc}")
        return f"3 hops: {out.status(short)}; {limit + 1} hops: {out.status(long)}", problems
    return check


@scenario("stall", "stalled body / no headers")
def stall(stage: Stage) -> Check:
    """A response whose body stops coming after its headers, and one whose status line never
    comes, each fail `timeout` (retryable) within about the read timeout, and the run goes on
    to land the healthy article."""
    body = sample_page(HEALTHY, stage.server.base_url)
    stalled = stage.server.route("/stall/body", chaos.stall(body[:2000], len(body), 30))
    silent = stage.server.route("/stall/headers",
                                chaos.delayed_headers(30, chaos.page(body)))
    stage.items += [Item(stalled, "stalled body"), Item(silent, "no headers")]
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = (expect(out, stalled, "failed", "timeout", retryable=True)
                    + expect(out, silent, "failed", "timeout", retryable=True))
        # the stalls last 30 s: a time near the read timeout shows it fired (the margin is for
        # a busy machine, where the next request may start a little later)
        limit = READ_TIMEOUT + 3.0
        for path in ("/stall/body", "/stall/headers"):
            spent = out.spent_on(path)
            if spent > limit:
                problems.append(f"{path}: {spent:.1f}s spent (limit {limit:.1f}s)")
        spent = max(out.spent_on("/stall/body"), out.spent_on("/stall/headers"))
        return (f"{reasons(out, [stalled, silent])} after {spent:.1f}s, retryable, run went on",
                problems)
    return check


@scenario("slow_drip", "body dripping 1 byte/s, never ending")
def slow_drip(stage: Stage) -> Check:
    """A body that keeps coming, one byte a second (each read well inside the read timeout) and
    never ends fails `timeout` (retryable) once the response has taken `total_timeout`, and
    the run goes on. (The server gives up after `drip_seconds`, well after that, and answers
    503 later: the item stays a retryable failure.)"""
    return _never_ending(stage, "/drip", chaos.drip)


@scenario("slow_headers", "headers dripping 1 line/s, never ending")
def slow_headers(stage: Stage) -> Check:
    """The same with the status line and then the headers dripping, a line a second, never
    ended: the deadline holds for the whole request, not only its body."""
    return _never_ending(stage, "/drip/headers", chaos.drip_headers)


def _never_ending(stage: Stage, path: str,
                  fault: Callable[[float, float, chaos.Route], chaos.Route]) -> Check:
    drip = stage.server.route(path, fault(1.0, stage.budget.drip_seconds,
                                          chaos.page(b"gone", status=503)))
    stage.items.append(Item(drip, path.strip("/")))
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        spent = out.spent_on(path)
        limit = TOTAL_TIMEOUT + READ_TIMEOUT
        first = [e["reason"] for e in out.reports[0].errors if e.get("url") == drip]
        problems = [] if first == ["timeout"] else [f"{path}: first run gave {first}"]
        problems += [f"{path}: {out.status(drip)}"] if not out.record(drip).get("retryable") else []
        if spent > limit:
            problems.append(f"{path} held the run {spent:.1f}s (limit {limit:.1f}s; only the "
                            f"server giving up after {stage.budget.drip_seconds:.0f}s ended it)")
        return f"{first} after {spent:.1f}s, retryable, run went on", problems
    return check


@scenario("stalled_host", "a host that accepts, then stalls, for a dozen items")
def stalled_host(stage: Stage) -> Check:
    """A host that accepts connections and then sends nothing, listed for 12 items: after
    `host_strikes` (2) timeouts in a row it rests, so its other items fail `host_unresponsive`
    at once (retryable, no attempt spent), the run reaches the healthy item within a few
    timeouts, not twelve, and the rerun leaves the resting host alone. (Pages are fetched a
    few at once: a request that took its slot as the first timeout came in is sent too, so
    the host is asked at most `host_strikes` + `per_host_concurrency` - 1 times.)"""
    slow = ChaosServer().start()
    stage.cleanups.append(slow.stop)
    stage.http.update(host_strikes=2, host_rest=600.0, per_host_concurrency=2)
    slow.route("/robots.txt", chaos.page(b"", "text/plain", status=404))
    stalled = [slow.route(f"/stall/{n}", chaos.delayed_headers(30, chaos.page(b"late")))
               for n in range(12)]
    stage.items += [Item(url, f"stalled {n}") for n, url in enumerate(stalled)]
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        for url in stalled:
            problems += expect(out, url, "failed", retryable=True)
        asked = [(h.run, h.path) for h in slow.content_hits()]
        most = 2 + 2 - 1  # host_strikes + per_host_concurrency - 1
        if not 2 <= len(asked) <= most or {run for run, _ in asked} != {0}:
            # (and the rerun leaves the host alone)
            problems.append(f"the stalled host was asked for {asked}")
        spent = {url: out.record(url).get("attempts") for url in stalled}
        paths = {path for _, path in asked}
        wrong = {url: n for url, n in spent.items()
                 if n != (1 if urlsplit(url).path in paths else 0)}
        if wrong:  # the items asked spent one attempt; the rest none
            problems.append(f"attempts spent: {wrong}")
        took = reached_healthy(stage, out, 2 * READ_TIMEOUT + 3.0, problems)
        return (f"2 timeouts, then host_unresponsive at once; healthy item reached after "
                f"{took:.1f}s"), problems
    return check


@scenario("slow_accept", "connection not accepted (SYN dropped)")
def slow_accept(stage: Stage) -> Check:
    """A host whose accept queue is full (connections not accepted for 30 s) fails `timeout`
    (retryable) within the connect timeout (twice: robots.txt, then the page), and the run goes
    on."""
    slow = SlowAcceptServer(accept_after=30).start()
    stage.cleanups.append(slow.stop)
    url = f"{slow.base_url}/article.html"
    stage.items.append(Item(url, "slow accept"))
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = expect(out, url, "failed", "timeout", retryable=True)
        # The healthy item's request comes after the slow one: the run went on.
        spent = reached_healthy(stage, out, 2 * CONNECT_TIMEOUT + 2.0, problems)
        return f"{out.status(url)} after {spent:.1f}s, run went on", problems
    return check


@scenario("connection_reset", "TCP RST mid-body / before answer")
def connection_reset(stage: Stage) -> Check:
    """A connection reset in the middle of the body, and one reset before any answer, each fail
    `connection_error` (retryable) and the run goes on."""
    body = sample_page(HEALTHY, stage.server.base_url)
    mid = stage.server.route("/reset/mid", chaos.reset(body[:3000], len(body)))
    early = stage.server.route("/reset/early", chaos.reset_before_answer())
    stage.items += [Item(mid, "reset mid"), Item(early, "reset early")]
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = (expect(out, mid, "failed", "connection_error", retryable=True)
                    + expect(out, early, "failed", "connection_error", retryable=True))
        return f"{reasons(out, [mid, early])}, retryable, run went on", problems
    return check


@scenario("server_errors_then_ok", "503, 500 then 200; 503 forever")
def server_errors_then_ok(stage: Stage) -> Check:
    """An article answering 503, then 500, then 200 is retried on later runs (one request per
    run) and indexed on the third, once; one answering 503 forever stops being fetched after
    max_attempts (3) and stays a recorded, retryable failure."""
    key = "northwire/stories/2026/11/05/yuan-ruble-trade-settlement.html"
    body = sample_page(key, stage.server.base_url)
    flaky = stage.server.route("/" + key, chaos.fail_then([(503, {}), (500, {})],
                                                          chaos.page(body)))
    down = stage.server.route("/down", chaos.page(b"down", "text/plain", status=503))
    stage.items += [Item(flaky, "flaky"), Item(down, "down")]
    stage.add_healthy()
    stage.runs = 3

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = expect(out, flaky, "indexed")
        record = out.record(down)
        if (record.get("status"), record.get("reason"), record.get("attempts")) != (
                "failed", "http_503", out.settings.max_attempts):
            problems.append(f"/down: {record.get('status')} {record.get('reason')} "
                            f"attempts={record.get('attempts')}")
        flaky_runs = [len(stage.server.hits_for(path_of(flaky), r)) for r in range(4)]
        down_runs = [len(stage.server.hits_for("/down", r)) for r in range(4)]
        if flaky_runs != [1, 1, 1, 0]:
            problems.append(f"flaky article requested {flaky_runs} times in runs 0-3")
        if down_runs != [1, 1, 1, 0]:
            problems.append(f"/down requested {down_runs} times in runs 0-3")
        landed = next((i for i, r in enumerate(out.reports) if r.indexed and i > 0), None)
        return (f"503/500 retried, indexed on run {landed}; 503 forever: "
                f"failed after {record.get('attempts')} attempts"), problems
    return check


@scenario("rate_limited", "429 with Retry-After (short; an hour)")
def rate_limited(stage: Stage) -> Check:
    """An article answering 429 with `Retry-After: 2` pauses its host: the next item there is
    requested no sooner than 2 s later, in the same run, and the next run indexes the article,
    once. A second host answering 429 with `Retry-After: 3600` (over `max_pause`) is not
    waited for: its other item fails `rate_limited` (retryable) without a request and without
    spending one of its attempts, and neither is asked for again by the later runs (the ledger
    holds them until the hour is up)."""
    # one request at a time to a host: the next one starts after the 429 has come back
    stage.http.update(per_host_concurrency=1)
    key = "northwire/stories/2026/10/22/power-of-siberia-2-talks.html"
    body = sample_page(key, stage.server.base_url)
    busy = stage.server.route("/" + key, chaos.fail_then([(429, {"Retry-After": "2"})],
                                                         chaos.page(body)))
    stage.items.append(Item(busy, "busy"))
    stage.add_healthy()
    other = ChaosServer().start()
    stage.cleanups.append(other.stop)
    closed = other.route("/slow-down", chaos.page(b"slow down", "text/plain", status=429,
                                                  headers={"Retry-After": "3600"}))
    waiting = other.route("/" + HEALTHY, chaos.page(sample_page(HEALTHY, other.base_url)))
    stage.items += [Item(closed, "closed for an hour"), Item(waiting, "same host, waits")]
    stage.runs = 2

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = expect(out, busy, "indexed")
        problems += expect(out, closed, "failed", "http_429", retryable=True)
        problems += expect(out, waiting, "failed", "rate_limited", retryable=True)
        if out.record(waiting).get("attempts") != 0:  # never asked: no attempt spent
            problems.append(f"the item never asked spent {out.record(waiting).get('attempts')} "
                            "of its attempts")
        runs = [len(stage.server.hits_for(path_of(busy), r)) for r in range(3)]
        if runs != [1, 1, 0]:
            problems.append(f"the 429 page was requested {runs} times in runs 0-2")
        (first,) = stage.server.hits_for(path_of(busy), 0)
        after = [h.at - first.at for h in stage.server.hits_for(path_of(stage.healthy or ""), 0)]
        if not after or after[0] < 1.9:
            problems.append(f"the next request to the paused host came {after} s later")
        asked = [h.path for h in other.content_hits()]
        if asked != ["/slow-down"]:
            problems.append(f"the host closed for an hour was asked for {asked}")
        return (f"http_429 waited out ({after[0] if after else 0:.1f}s), indexed on run 1; "
                f"an hour's pause: {out.status(waiting)}, no request"), problems
    return check


@functools.lru_cache(maxsize=2)
def _bomb(inflated: int) -> bytes:
    return chaos.gzip_bomb_body(inflated)


@scenario("size_cap", "bodies over the cap; gzip bombs")
def size_cap(stage: Stage) -> Check:
    """Bodies over `max_bytes` (2 MB), with a Content-Length and without one, and gzip bombs
    (a 200 KB body inflating to 200 MB), with and without a Content-Length, all fail
    `too_large` (permanent) quickly and without holding the inflated body in memory."""
    size = 3 * MAX_BYTES // 2
    bomb = _bomb(200 * 1024 * 1024)
    routes = {
        "/big/declared": chaos.oversized(size, declare_length=True),
        "/big/undeclared": chaos.oversized(size, declare_length=False),
        "/bomb/declared": chaos.gzip_bomb(bomb, declare_length=True),
        "/bomb/undeclared": chaos.gzip_bomb(bomb, declare_length=False),
    }
    urls = [stage.server.route(path, route) for path, route in routes.items()]
    stage.items += [Item(url, path_of(url)) for url in urls]
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = [p for url in urls
                    for p in expect(out, url, "failed", "too_large", retryable=False)]
        if out.run_seconds(0) > 15:
            problems.append(f"first run took {out.run_seconds(0):.1f}s")
        if out.rss_growth_mb[0] > 300:
            problems.append(f"peak memory grew {out.rss_growth_mb[0]:.0f} MB")
        return (f"{reasons(out, urls)}; peak RSS +{out.rss_growth_mb[0]:.0f} MB, "
                f"{out.run_seconds(0):.1f}s"), problems
    return check


@scenario("endless_page", "a page its parser would take hours over")
def endless_page(stage: Stage) -> Check:
    """An article page with one element of 100,000 attributes (libxml2 checks each against
    all before it: minutes, hours at 5 MB) fails `reading_timeout` once its reading has taken
    `ingest.reading_timeout_s` (3 s here), retried on the next run; the feed's other pages
    are read meanwhile, and the run ends."""
    url = stage.server.route("/endless.html", chaos.page(chaos.endless_html()))
    stage.items.append(Item(url, "endless"))
    stage.add_healthy()
    stage.ingest["reading_timeout_s"] = 3.0

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = expect(out, url, "failed", "reading_timeout", retryable=True)
        if out.record(url).get("attempts") != 2:
            problems.append(f"attempts after the rerun: {out.record(url).get('attempts')}")
        if max(out.run_seconds(0), out.run_seconds(1)) > 20:
            problems.append(f"runs took {out.run_seconds(0):.1f}s and {out.run_seconds(1):.1f}s")
        return (f"{out.status(url)} after {out.record(url).get('attempts')} runs of "
                f"{out.run_seconds(0):.1f}s and {out.run_seconds(1):.1f}s"), problems
    return check


@scenario("wrong_content", "binary as text/html; png; pdf")
def wrong_content(stage: Stage) -> Check:
    """Random bytes served as text/html, an empty text/html page, a PNG and a PDF fail with a
    clear, permanent reason (`not_html`, `bad_html` or `too_short`), never `internal_error`."""
    rng = random.Random(7)
    noise = bytes(rng.getrandbits(8) for _ in range(50_000))
    png = b"\x89PNG\r\n\x1a\n" + noise[:5000]
    pdf = b"%PDF-1.7\n" + noise[:5000] + b"\n%%EOF\n"
    routes = {
        "/binary.html": chaos.page(noise, "text/html; charset=utf-8"),
        "/empty.html": chaos.page(b"", "text/html"),
        "/nul.html": chaos.page(b"<html><body>\x00\x00<p>\x00</p></body></html>", "text/html"),
        "/image": chaos.page(png, "image/png"),
        "/doc": chaos.page(pdf, "application/pdf"),
    }
    urls = [stage.server.route(path, route) for path, route in routes.items()]
    stage.items += [Item(url, path_of(url)) for url in urls]
    stage.add_healthy()
    allowed = {"not_html", "bad_html", "too_short"}

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        for url in urls:
            record = out.record(url)
            if record.get("status") != "failed" or record.get("reason") not in allowed \
                    or record.get("retryable"):
                problems.append(f"{path_of(url)}: {out.status(url)} {record.get('error')}")
        for path, want in (("/image", "not_html"), ("/doc", "not_html")):
            if out.record(stage.server.url(path)).get("reason") != want:
                problems.append(f"{path}: want {want}")
        return reasons(out, urls), problems
    return check


def _lol_doctype() -> str:
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    return "<!DOCTYPE rss [\n" + "\n".join(lines) + "\n]>\n"


@scenario("control_characters", "one ESC byte in an article's text")
def control_characters(stage: Stage) -> Check:
    """A relevant article whose text carries one stray control character (an ESC, U+001B,
    which pages pasted from terminals or old CMSs do carry) is still extracted and indexed,
    with the character dropped."""
    key = "northwire/stories/2026/10/09/russia-china-naval-drill.html"
    body = sample_page(key, stage.server.base_url).replace(b"</p>", b"\x1b</p>", 1)
    url = stage.server.route("/" + key, chaos.page(body))
    stage.items.append(Item(url, "control character"))
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        record = out.record(url)
        problems = expect(out, url, "indexed")
        if problems:
            problems.append(f"error: {record.get('error')}")
        return out.status(url), problems
    return check


@scenario("feed_billion_laughs", "feed: billion laughs entities")
def feed_billion_laughs(stage: Stage) -> Check:
    """A feed whose DOCTYPE nests entities ten deep (10^9 'lol's) and uses the deepest in an
    item's description and title is read without expanding them: quickly, in little memory,
    and the items (the healthy one included) still land."""
    stage.add_healthy()
    stage.items[-1] = Item(stage.items[-1].url, "Putin and Xi &lol9;", "&lol9; &lol8;")
    stage.feed_body = rss(stage.items, doctype=_lol_doctype())

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        doc = out.doc(stage.healthy or "", ["summary"])
        summary = doc.get("summary") or ""
        if len(summary) > 10_000 or "lollollol" in summary:
            problems.append(f"summary expanded to {len(summary)} characters")
        if out.run_seconds(0) > 20 or out.rss_growth_mb[0] > 300:
            problems.append(f"run took {out.run_seconds(0):.1f}s, "
                            f"+{out.rss_growth_mb[0]:.0f} MB peak")
        warned = any(e.get("reason") == "feed_warning" for e in out.reports[0].errors)
        did = (f"entities not expanded (summary {len(summary)} chars)"
               f"{', feed_warning' if warned else ''}; {out.status(stage.healthy or '')}")
        return did, problems
    return check


@scenario("feed_quadratic_blowup", "feed: one 5 KB entity used 2,000 times")
def feed_quadratic_blowup(stage: Stage) -> Check:
    """A 16 KB feed defining one plain 5 KB entity and referring to it 2,000 times in an item's
    description (the "quadratic blowup", which has no nesting) must not be expanded into a
    10 MB summary: the entity is not expanded, and what the feed says of an item stays within
    the size of the feed."""
    stage.add_healthy()
    entity = "A" * 5_000
    stage.items[-1] = Item(stage.items[-1].url, "Putin and Xi", "&a;" * 2_000)
    stage.feed_body = rss(stage.items, doctype=f'<!DOCTYPE rss [\n<!ENTITY a "{entity}">\n]>\n')

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        feed_size = len(stage.feed_body or b"")
        feed = Feed(name="probe", url=stage.server.url("/feed.xml"))
        read = {i.url: i for i in parse_feed(stage.feed_body or b"", "utf-8", feed)[0]}
        summary = read[stage.healthy or ""].summary or "" if stage.healthy in read else ""
        stored = out.doc(stage.healthy or "", ["summary"]).get("summary") or ""
        if "A" * 100 in summary + stored:
            problems.append("the entity was expanded into the summary")
        if max(len(summary), len(stored)) > feed_size:
            problems.append(f"a {feed_size // 1000} KB feed gives the item a summary of "
                            f"{len(summary):,} characters ({len(stored):,} stored)")
        return (f"not expanded: a {len(summary):,}-char summary from a {feed_size // 1000} KB "
                f"feed; {out.status(stage.healthy or '')}"), problems
    return check


@scenario("feed_doctype_flood", "feed: 2.5 MB of unterminated DOCTYPEs (small: 0.5 MB)")
def feed_doctype_flood(stage: Stage) -> Check:
    """A feed followed by `<!DOCTYPE a [` over and over, never closed (half the big-page budget):
    dropping the internal subset takes time in proportion to the feed, not its square (a
    pattern tried from every DOCTYPE took 28 s for 260 KB), the items before it are read and the
    healthy one lands within the time budget."""
    stage.add_healthy()
    flood = b"<!DOCTYPE a [" * (stage.budget.big_page // 2 // 13)
    stage.feed_body = rss(stage.items) + flood

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        if out.run_seconds(0) > stage.budget.feed_seconds:
            problems.append(f"first run took {out.run_seconds(0):.1f}s "
                            f"(budget {stage.budget.feed_seconds:.0f}s)")
        return (f"{len(flood) // 1000} KB flood read in {out.run_seconds(0):.1f}s; "
                f"{out.status(stage.healthy or '')}"), problems
    return check


@scenario("feed_external_entity", "feed: external entities (file, http)")
def feed_external_entity(stage: Stage) -> Check:
    """A feed declaring external entities (file:///etc/passwd; http:// URLs on a second local
    server, as an entity, a parameter entity and the external DTD) and using them in an item is
    read without resolving any: the second server records zero hits, no stored text carries the
    file, and the healthy item lands."""
    base = stage.sentinel.base_url
    for path in ("/xxe", "/dtd", "/param"):
        stage.sentinel.route(path, chaos.page(b"<!ENTITY leak 'LEAKED'>", "application/xml"))
    doctype = (f'<!DOCTYPE rss SYSTEM "{base}/dtd" [\n'
               '<!ENTITY file SYSTEM "file:///etc/passwd">\n'
               f'<!ENTITY web SYSTEM "{base}/xxe">\n'
               f'<!ENTITY % param SYSTEM "{base}/param">\n%param;\n]>\n')
    stage.add_healthy()
    stage.items[-1] = Item(stage.items[-1].url, "Putin and Xi &web;", "&file; &web; &leak;")
    stage.feed_body = rss(stage.items, doctype=doctype)

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        if stage.sentinel.hits:
            problems.append(f"second server got {[h.path for h in stage.sentinel.hits]}")
        doc = out.doc(stage.healthy or "", ["summary", "title"])
        stored = f"{doc.get('summary')} {doc.get('title')}"
        if "root:" in stored or "LEAKED" in stored:
            problems.append(f"stored text carries an external entity: {stored[:120]!r}")
        return (f"not resolved; second server hits {len(stage.sentinel.hits)}; "
                f"{out.status(stage.healthy or '')}"), problems
    return check


@scenario("feed_malformed", "feed: malformed XML")
def feed_malformed(stage: Stage) -> Check:
    """A feed with undeclared entities, a bare ampersand, mismatched and stray tags still
    yields its items (with a feed_warning), every one of which is accounted for."""
    gone = stage.server.url("/gone/1")
    stage.add_healthy()
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Broken &nbsp; feed & co</title><link>http://127.0.0.1/</link>"
        f"<item><title>First <b>bold</i></title><link>{gone}</link>"
        "<description>a &mdash; b & c</description></bogus></item>\n"
        f"<item><title>Putin and Xi</title><link>{stage.healthy}</link></item>\n"
        "<item><title>no link</title></item>\n"
        "</channel>"  # </rss> missing
    )
    stage.items.insert(0, Item(gone))
    stage.feed_body = body.encode("utf-8")

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = expect(out, gone, "failed", "http_404")
        warned = [e for e in out.reports[0].errors if e.get("reason") == "feed_warning"]
        return (f"{out.reports[0].seen} items read{' with feed_warning' if warned else ''}; "
                f"{reasons(out, [gone, stage.healthy or ''])}"), problems
    return check


@scenario("feed_truncated", "feed: truncated mid-item")
def feed_truncated(stage: Stage) -> Check:
    """A feed cut off in the middle of its third item yields the complete items before the cut
    (the healthy one lands); whatever it reads of the cut item is accounted for."""
    gone = stage.server.url("/gone/2")
    stage.items.append(Item(gone, "complete but gone"))
    stage.add_healthy()
    stage.items.append(Item(stage.server.url("/gone/cut"), "cut off"))
    whole = rss(stage.items)
    cut = whole.index(b"/gone/cut") - 10
    stage.feed_body = whole[:cut]
    stage.listed = [gone, stage.healthy or ""]

    def check(out: Outcome) -> tuple[str, list[str]]:
        return (f"{out.reports[0].seen} items read from the cut feed; "
                f"{reasons(out, stage.listed or [])}"), []
    return check


@scenario("feed_not_a_feed", "feed URL answers binary junk")
def feed_not_a_feed(stage: Stage) -> Check:
    """A feed URL answering random bytes fails the feed with `bad_feed`, records the failure
    and backs the feed off (the rerun is `backed_off`); no item is invented."""
    rng = random.Random(11)
    stage.feed_body = bytes(rng.getrandbits(8) for _ in range(20_000))
    stage.listed = []

    def check(out: Outcome) -> tuple[str, list[str]]:
        first, rerun = out.reports[0], out.reports[-1]
        problems = []
        reason = first.errors[0]["reason"] if first.errors else None
        if (first.status, reason, first.seen) != ("failed", "bad_feed", 0):
            problems.append(f"first run: {first.status} {reason} seen={first.seen}")
        if rerun.status != "backed_off":
            problems.append(f"rerun: {rerun.status}")
        return f"feed {first.status}:{reason}, then {rerun.status}", problems
    return check


def _charset_scenario(name: str, key: str, encoding: str, declared: str,
                      prepare: Callable[[str], str] = lambda text: text,
                      note: str = "") -> None:
    def setup(stage: Stage) -> Check:
        base = stage.server.base_url
        text = sample_page(key, base).decode("utf-8")
        body = prepare(text).encode(encoding, errors="xmlcharrefreplace")
        url = stage.server.route("/" + key, chaos.page(body, f"text/html; charset={declared}"))
        stage.items.append(Item(url, "wrong charset"))
        stage.add_healthy()
        reference = extract_article(Page(url=url, final_url=url, status=200,
                                         content_type="text/html", charset="utf-8",
                                         body=text.encode("utf-8"),
                                         fetched_at=datetime.now(UTC)))

        def check(out: Outcome) -> tuple[str, list[str]]:
            record = out.record(url)
            doc = out.doc(reference.url, ["title", "text"])
            stored = f"{doc.get('title', '')}\n{doc.get('text', '')}"
            problems = []
            if record.get("status") != "indexed":
                problems.append(f"the relevant article was recorded {out.status(url)} "
                                f"({record.get('error')})")
            if doc and (doc.get("title") != reference.title or doc.get("text") != reference.text):
                problems.append(f"stored text differs from the page's: {stored[:60]!r}")
            markers = mojibake(stored)
            if markers:
                problems.append(f"mojibake in stored text: {markers}")
            if not doc:
                decoded = body.decode(declared, errors="replace")
                problems.append(f"nothing stored; decoding as {declared} gives "
                                f"{mojibake(decoded)}")
            did = (f"{out.status(url)}, text intact" if not problems
                   else f"{out.status(url)}" + (", mojibake" if doc and markers else ""))
            return did, problems
        return check

    setup.__doc__ = (f"A relevant page whose bytes are {encoding} but whose Content-Type says "
                     f"charset={declared} is decoded right: it is indexed with the same title "
                     f"and text as the correctly labelled page, without mojibake. {note}")
    scenario(name, f"{encoding} bytes declared {declared}")(setup)


_charset_scenario("charset_cp1251_as_utf8",
                  "volga-vestnik/v-mire/2026/11/17/putin-si-tszinpin-shenzhen.html",
                  "cp1251", "utf-8")
_charset_scenario("charset_gbk_as_utf8", "huaxia-review/gj/2026-11/17/content_30071706.html",
                  "gbk", "utf-8")
_charset_scenario("charset_big5_as_utf8", "huaxia-review/gj/2026-11/17/content_30071706.html",
                  "big5", "utf-8", note="(Characters Big5 lacks are written as &#NNNN;.)")
_charset_scenario(
    "charset_utf8_as_cp1251",
    "volga-vestnik/ekonomika/2026/10/14/raschety-v-yuanyakh-i-rublyakh.html",
    "utf-8", "windows-1251", prepare=lambda text: text.replace("И", "&#1048;"),
    note="The page writes its one capital И as &#1048; (the same text), so that no byte is "
         "0x98, the one byte cp1251 leaves undefined: as in most Russian UTF-8 pages without "
         "a capital И, decoding it as cp1251 succeeds.")

_charset_scenario("charset_utf8_as_gbk", "huaxia-review/gj/2026-11/17/content_30071706.html",
                  "utf-8", "gbk")
_charset_scenario("charset_utf8_as_big5", "huaxia-review/gj/2026-11/17/content_30071706.html",
                  "utf-8", "big5")


@scenario("huge_feed", "feed with 10,000 items (small: 1,000)")
def huge_feed(stage: Stage) -> Check:
    """A feed listing N items (10,000; 1,000 in the small budget), each a 404, plus the healthy
    article: all N+1 are seen and accounted for within the time budget, and the rerun fetches
    none of them again."""
    count = stage.budget.feed_items
    stage.items += [Item(stage.server.url(f"/gone/{i}"), f"item {i}") for i in range(count)]
    stage.add_healthy()

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        first = out.reports[0]
        if first.seen != count + 1:
            problems.append(f"first run saw {first.seen} items, want {count + 1}")
        if out.run_seconds(0) > stage.budget.feed_seconds:
            problems.append(f"first run took {out.run_seconds(0):.1f}s "
                            f"(budget {stage.budget.feed_seconds:.0f}s)")
        refetched = [h for h in stage.server.content_hits()
                     if h.run == len(out.reports) - 1 and h.path.startswith("/gone/")]
        if refetched:
            problems.append(f"rerun fetched {len(refetched)} settled items again")
        return (f"{first.seen} seen in {out.run_seconds(0):.1f}s, rerun "
                f"{out.run_seconds(len(out.reports) - 1):.1f}s"), problems
    return check


@scenario("huge_article", "article page of 5 MB of text (small: 1 MB)")
def huge_article(stage: Stage) -> Check:
    """A relevant article page of 5 MB of text (1 MB in the small budget; the size cap raised
    above it) is extracted and indexed, or fails with a clear reason, within its time budget
    and without exhausting memory."""
    size = stage.budget.big_page
    url = stage.server.url("/big/article.html")
    sentence = ("Russia and China agreed on {i} new measures to expand energy trade, officials "
                "in Moscow and Beijing said, as Vladimir Putin and Xi Jinping pressed ahead "
                "with the Power of Siberia 2 pipeline and yuan settlement in clause {i}.")
    head = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Russia and China sign a long list of energy accords</title>"
            f'<link rel="canonical" href="{url}"></head><body><article>'
            "<h1>Russia and China sign a long list of energy accords</h1>\n")
    parts = [head]
    length, i = len(parts[0]), 0
    while length < size:
        parts.append(f"<p>{sentence.format(i=i)}</p>\n")
        length += len(parts[-1])
        i += 1
    parts.append("</article></body></html>")
    stage.server.route("/big/article.html", chaos.page("".join(parts).encode("utf-8")))
    stage.items.append(Item(url, "huge"))
    stage.add_healthy()
    stage.http["max_bytes"] = size + 1_000_000

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = []
        record = out.record(url)
        if not (record.get("status") == "indexed" or (
                record.get("status") == "failed" and record.get("reason")
                and record.get("reason") != "internal_error")):
            problems.append(f"{out.status(url)}: {record.get('error')}")
        if out.run_seconds(0) > stage.budget.big_page_seconds:
            problems.append(f"first run took {out.run_seconds(0):.1f}s")
        if out.rss_growth_mb[0] > 1500:
            problems.append(f"peak memory grew {out.rss_growth_mb[0]:.0f} MB")
        words = out.doc(url, ["word_count"]).get("word_count")
        return (f"{out.status(url)} ({words} words) in {out.run_seconds(0):.1f}s, "
                f"peak RSS +{out.rss_growth_mb[0]:.0f} MB"), problems
    return check


# Elasticsearch faults: the same feed of relevant articles, with the node misbehaving in the
# first run and back (answering normally) afterwards.

ES_ARTICLES = ["northwire/stories/2026/11/11/lavrov-wang-yi-beijing-talks.html",
               "northwire/stories/2026/11/05/yuan-ruble-trade-settlement.html",
               "northwire/stories/2026/10/22/power-of-siberia-2-talks.html", HEALTHY]


def _es_stage(stage: Stage, fault: Fault | None, raises: bool) -> list[str]:
    urls = [stage.article(key) for key in ES_ARTICLES]
    stage.items += [Item(url, "article") for url in urls]
    stage.es_faults[0] = fault
    if raises:
        stage.may_raise.add(0)
        stage.runs = 2  # the faulty run, the run after the node is back, then the rerun
    return urls


def _all_indexed(out: Outcome, urls: list[str]) -> list[str]:
    return [p for url in urls for p in expect(out, url, "indexed")]


@scenario("es_down_before_run", "Elasticsearch stopped before a run")
def es_down_before_run(stage: Stage) -> Check:
    """With the node stopped, the run fails at once with a connection error, before fetching
    anything (nothing fetched to lose); once the node is back the next run indexes every
    article, once."""
    urls = _es_stage(stage, None, raises=True)

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = _all_indexed(out, urls)
        fetched = [h.path for h in stage.server.content_hits() if h.run == 0]
        if out.run_errors[0] is None:
            problems.append("the run with the node stopped did not fail")
        if fetched:
            problems.append(f"fetched {fetched[:3]} with nowhere to write them")
        return (f"run stopped ({(out.run_errors[0] or '').split(':')[0]}), nothing fetched; "
                f"node back: {out.reports[1].indexed} indexed"), problems
    return check


@scenario("es_gone_mid_bulk", "Elasticsearch gone mid-bulk")
def es_gone_mid_bulk(stage: Stage) -> Check:
    """The node writes the run's bulk, then the connection drops before it answers: the run
    fails with a transport error and records no outcome it cannot vouch for; the next run
    indexes every article exactly once (the documents written before the drop are not
    doubled)."""
    urls = _es_stage(stage, gone_at_bulk, raises=True)

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = _all_indexed(out, urls)
        if out.run_errors[0] is None:
            problems.append("the run whose bulk was cut did not fail")
        return (f"run stopped ({(out.run_errors[0] or '').split(':')[0]}); node back: "
                f"{out.reports[1].indexed} indexed, once each"), problems
    return check


@scenario("es_bulk_429", "Elasticsearch bulk items answer 429")
def es_bulk_429(stage: Stage) -> Check:
    """Every item of the first bulk answers 429 `es_rejected_execution_exception`: they are
    retried with back-off within the same run and all land."""
    rejected: list[dict[str, object]] = []
    urls = _es_stage(stage, first_bulk_rejected(rejected), raises=False)

    def check(out: Outcome) -> tuple[str, list[str]]:
        problems = _all_indexed(out, urls)
        if not rejected:
            problems.append("no bulk item was rejected: the fault did not fire")
        return (f"{len(rejected)} items rejected with 429, retried: {out.reports[0].indexed} "
                f"indexed in the same run"), problems
    return check


@scenario("es_mapping_conflict", "a document the mapping refuses")
def es_mapping_conflict(stage: Stage) -> Check:
    """One document of the bulk carries a value its field's mapping refuses: it fails
    `index_rejected` (permanent) and is kept in the quarantine index with its reason; the other
    articles land."""
    victim: list[str] = []
    urls = _es_stage(stage, one_document_unmappable(victim), raises=False)

    def check(out: Outcome) -> tuple[str, list[str]]:
        if not victim:
            return "the fault did not fire", ["no document was altered"]
        (bad,) = [url for url in urls if url_id(url) == url_id(victim[0])]
        problems = _all_indexed(out, [u for u in urls if u != bad])
        problems += expect(out, bad, "failed", "index_rejected", retryable=False)
        held = out.es.options(ignore_status=404).get(index=out.settings.quarantine_index,
                                                     id=url_id(bad))
        if not held.get("found"):
            problems.append("the refused document is not in the quarantine index")
        return (f"{out.status(bad)}, quarantined with its reason; "
                f"{out.reports[0].indexed} others indexed"), problems
    return check


# --- running ---------------------------------------------------------------------------------

def scenario_settings(settings: Settings, alias: str, overrides: dict[str, Any],
                      ingest: dict[str, Any] | None = None) -> Settings:
    # One server serves every fault of a scenario beside its healthy items: its host never
    # rests after timeouts here (`stalled_host` is the scenario where it does).
    http = replace(settings.http, allow_nets=parse_nets("127.0.0.0/8"), per_host_delay=0.0,
                   read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT,
                   total_timeout=TOTAL_TIMEOUT,
                   max_bytes=MAX_BYTES, respect_robots=True, host_strikes=1_000_000)
    return replace(replace(settings, max_attempts=3), index_alias=alias,
                   http=replace(http, **overrides), **(ingest or {}))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lookup(es: Elasticsearch, index: str, urls: list[str]) -> dict[str, dict[str, Any] | None]:
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(urls)
    ids = {ledger_id(url): url for url in urls}
    for start in range(0, len(urls), 1000):
        chunk = list(ids)[start:start + 1000]
        for doc in es.mget(index=index, ids=chunk)["docs"]:
            if doc.get("found"):
                found[ids[doc["_id"]]] = doc["_source"]
    return found


def lost_items(records: dict[str, dict[str, Any] | None]) -> list[str]:
    """Listed items without a final outcome or a recorded failure with a reason."""
    return [url for url, record in records.items()
            if record is None or not (record.get("status") in FINAL or (
                record.get("status") == "failed" and record.get("reason")))]


def duplicated_docs(es: Elasticsearch, alias: str) -> list[str]:
    """Documents sharing a URL or a content hash with another (each beyond the first)."""
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=10_000, source_includes=["url", "dedup.content_hash"],
                     query={"match_all": {}})["hits"]["hits"]
    seen: set[tuple[str, str]] = set()
    extra = []
    for hit in hits:
        keys = [("url", hit["_source"].get("url")),
                ("hash", hit["_source"].get("dedup", {}).get("content_hash"))]
        if any(key in seen for key in keys if key[1]):
            extra.append(hit["_source"].get("url"))
        seen.update(key for key in keys if key[1])
    return extra


def run_scenario(item: Scenario, settings: Settings, es: Elasticsearch,
                 budget: str = "small") -> Result:
    started = time.monotonic()
    alias = f"{settings.index_alias}-{item.name.replace('_', '-')}"
    try:
        with ChaosServer() as server, ChaosServer(host="127.0.0.2") as sentinel:
            stage = Stage(server=server, sentinel=sentinel, budget=BUDGETS[budget])
            check = item.setup(stage)
            try:
                return _run(item, stage, check,
                            scenario_settings(settings, alias, stage.http, stage.ingest),
                            es, started)
            finally:
                for cleanup in stage.cleanups:
                    cleanup()
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{alias}-*",
                                                     expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")


def _run(item: Scenario, stage: Stage, check: Check, settings: Settings, es: Elasticsearch,
         started: float) -> Result:
    server = stage.server
    ensure_indices(es, settings)
    feed_body = stage.feed_body if stage.feed_body is not None else rss(stage.items)
    server.route("/feed.xml", chaos.page(feed_body, "application/rss+xml; charset=utf-8"))
    feed = Feed(name=f"chaos-{item.name}", url=server.url("/feed.xml"))
    listed = stage.listed if stage.listed is not None else [i.url for i in stage.items]
    try:  # what the pipeline's own parser reads from the feed must be accounted for too
        parsed = [i.url for i in parse_feed(feed_body, "utf-8", feed)[0]]
    except ItemError:
        parsed = []
    listed = list(dict.fromkeys([*listed, *parsed]))

    reports: list[FeedReport] = []
    spans: list[tuple[float, float]] = []
    growth: list[float] = []
    before_rerun: dict[str, dict[str, Any] | None] = {}
    healthy_first: dict[str, Any] | None = None
    run_errors: list[str | None] = []
    problems = list(stage.problems)
    with Ingestor(settings, es=es) as ingestor:
        for run in range(stage.runs + 1):
            if run == stage.runs:
                before_rerun = _lookup(es, settings.ledger_index, listed)
            server.run = stage.sentinel.run = run
            peak, start = _peak_rss_mb(), time.monotonic()
            run_id = f"chaos-{item.name}-{run}"
            try:
                if run in stage.es_faults:
                    reports.append(_run_through(stage.es_faults[run], settings, feed, run_id))
                else:
                    reports.append(ingestor.ingest_feed(feed, run_id))
                run_errors.append(None)
            except Exception as exc:  # noqa: BLE001 - a run dying on a fault is a finding
                run_errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if run not in stage.may_raise:
                    problems.append(f"run {run} raised {run_errors[-1]}")
                reports.append(FeedReport(name=feed.name, url=feed.url, status="crashed"))
            spans.append((start, time.monotonic()))
            growth.append(max(0.0, _peak_rss_mb() - peak))
            if run == 0 and stage.healthy:
                healthy_first = _lookup(es, settings.ledger_index, [stage.healthy])[stage.healthy]
    records = _lookup(es, settings.ledger_index, listed)

    lost = lost_items(records)
    duplicated = duplicated_docs(es, settings.index_alias)
    rerun = reports[-1]
    reindexed = [url for url, record in records.items()
                 if record and record.get("status") == "indexed"
                 and record.get("run_id") == f"chaos-{item.name}-{stage.runs}"]
    if lost:
        problems.append(f"lost {len(lost)}: {[path_of(u) for u in lost[:5]]}")
    if duplicated:
        problems.append(f"duplicate documents: {duplicated[:5]}")
    if rerun.indexed or reindexed:
        problems.append(f"the rerun indexed {rerun.indexed} item(s) again: {reindexed[:5]}")
    if stage.healthy and (healthy_first or {}).get("status") != "indexed":
        record = healthy_first or {}
        problems.append(f"healthy article not indexed by the first run: {record.get('status')}"
                        f" {record.get('reason')} {str(record.get('error'))[:160]}")
    if stage.sentinel.hits:
        problems.append(f"127.0.0.2 server hit: {[h.path for h in stage.sentinel.hits]}")
    settled_before = {url for url, record in before_rerun.items()
                      if record and (record.get("status") in FINAL or not record.get("retryable")
                                     or record.get("attempts", 0) >= settings.max_attempts)}
    refetched = {h.path for h in server.content_hits() if h.run == stage.runs} & {
        path_of(url) for url in settled_before if url.startswith(server.base_url)}
    if refetched:
        problems.append(f"rerun fetched settled items again: {sorted(refetched)[:5]}")

    outcome = Outcome(stage=stage, settings=settings, es=es, reports=reports, records=records,
                      before_rerun=before_rerun, run_spans=spans, rss_growth_mb=growth,
                      run_errors=run_errors)
    try:
        did, own = check(outcome)
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        did, own = "check raised", [f"{type(exc).__name__}: {exc}"[:300]]
    problems += own
    return Result(name=item.name, fault=item.fault, did=did, lost=len(lost),
                  duplicated=len(duplicated) + max(rerun.indexed, len(reindexed)),
                  ok=not problems, problems=problems, seconds=time.monotonic() - started)


def _run_through(fault: Fault | None, settings: Settings, feed: Feed,
                 run_id: str) -> FeedReport:
    """One run whose Elasticsearch misbehaves as `fault` says (None: the node is stopped)."""
    with contextlib.ExitStack() as stack:
        url = dead_url() if fault is None else stack.enter_context(
            FaultyProxy(settings.elasticsearch_url, fault)).url
        through = replace(settings, elasticsearch_url=url)
        ingestor = stack.enter_context(Ingestor(through, es=connect(through)))
        return ingestor.ingest_feed(feed, run_id)


def run_scenarios(settings: Settings, es: Elasticsearch, names: Iterable[str] | None = None,
                  budget: str = "small") -> list[Result]:
    """Run the named scenarios (all by default), each under an alias of its own derived from
    `settings.index_alias`, against the node `es` talks to."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {sorted(BUDGETS)}")
    chosen = list(names) if names is not None else list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise KeyError(f"no such scenario: {unknown}")
    return [run_scenario(SCENARIOS[name], settings, es, budget) for name in chosen]


def print_table(results: list[Result], out: Any = None) -> None:
    """fault | what the product did | lost | duplicated | ok, then the problems found."""
    out = out or sys.stdout
    widths = (40, 72, 4, 10, 4)
    heads = ("fault", "what the product did", "lost", "duplicated", "ok")

    def row(cells: tuple[str, ...]) -> str:
        return " | ".join(cell[:w].ljust(w) for cell, w in zip(cells, widths, strict=True))

    print(row(heads), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for result in results:
        did = result.did
        lines = [did[i:i + widths[1]] for i in range(0, max(len(did), 1), widths[1])]
        print(row((result.fault, lines[0], str(result.lost), str(result.duplicated),
                   "yes" if result.ok else "NO")), file=out)
        for more in lines[1:]:
            print(row(("", more, "", "", "")), file=out)
    failed = [r for r in results if not r.ok]
    total = sum(r.seconds for r in results)
    print(f"\n{len(results) - len(failed)}/{len(results)} scenarios ok in {total:.0f}s",
          file=out)
    for result in failed:
        print(f"\n{result.name} ({result.fault}):", file=out)
        for problem in result.problems:
            print(f"  - {problem}", file=out)


def main(argv: list[str] | None = None) -> int:
    from pipeline.localnode import LocalNode
    from pipeline.store import connect

    parser = argparse.ArgumentParser(description="Run the chaos suite against the local node.")
    parser.add_argument("--small", action="store_true", help="the small (pytest) budget")
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    args = parser.parse_args(argv)
    node = LocalNode.from_env()
    node.start()
    alias = f"chaos-{uuid.uuid4().hex[:8]}"
    base = Settings.load()
    settings = replace(base, elasticsearch_url=node.url, index_alias=alias)
    es = connect(settings)
    try:
        results = run_scenarios(settings, es, names=args.names or None,
                                budget="small" if args.small else "full")
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{alias}*", expand_wildcards="all")
    print_table(results)
    return 0 if all(r.ok and not r.lost and not r.duplicated for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

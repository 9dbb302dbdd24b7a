"""Politeness towards the sites we fetch from: robots.txt honoured per host (cached), at most
`per_host_concurrency` requests to one host at a time, at least `per_host_delay` seconds
between the starts of two requests to it, and none while the host has asked for a pause
(`Retry-After`) or rests after timing out several times in a row.

The limits hold for every HttpClient of a process (threads share them); Airflow workers in
other processes each keep their own, so the per-host cap of a deployment is this cap times the
number of workers fetching that host.
"""

from __future__ import annotations

import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

ROBOTS_TTL = 3600.0  # seconds a host's robots.txt is trusted


@dataclass
class _Host:
    slots: threading.Semaphore
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_start: float = 0.0
    why_paused: str = "rate_limited"
    failures: int = 0  # requests in a row that timed out or could not connect


class HostLimiter:
    """Per-host concurrency cap and minimum delay, shared by the threads of a process."""

    _registry: ClassVar[dict[tuple[int, float, int, float], HostLimiter]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, concurrency: int, delay: float, strikes: int = 2,
                 rest: float = 600.0) -> None:
        self._concurrency = max(1, concurrency)
        self._delay = max(0.0, delay)
        self._strikes = max(1, strikes)
        self._rest = max(0.0, rest)
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, concurrency: int, delay: float, strikes: int = 2,
               rest: float = 600.0) -> HostLimiter:
        """The process-wide limiter for these settings."""
        with cls._registry_lock:
            key = (concurrency, delay, strikes, rest)
            if key not in cls._registry:
                cls._registry[key] = cls(concurrency, delay, strikes, rest)
            return cls._registry[key]

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of the host's slots for the duration of a request, starting it no sooner
        than `delay` after the previous start on that host."""
        host = self._host(urlsplit(url).netloc.lower())
        with host.slots:
            with host.lock:
                wait = host.next_start - time.monotonic()
                host.next_start = max(host.next_start, time.monotonic()) + self._delay
            if wait > 0:
                time.sleep(wait)
            yield

    def pause(self, url: str, seconds: float, why: str = "rate_limited") -> None:
        """No request to `url`'s host starts in the next `seconds`."""
        host = self._host(urlsplit(url).netloc.lower())
        with host.lock:
            if time.monotonic() + seconds > host.next_start:
                host.next_start, host.why_paused = time.monotonic() + seconds, why

    def wait_left(self, url: str) -> tuple[float, str]:
        """Seconds until a request to `url`'s host may start, and why it waits: `rate_limited`
        (it asked for a pause) or `host_unresponsive` (it stopped answering)."""
        host = self._host(urlsplit(url).netloc.lower())
        with host.lock:
            return max(0.0, host.next_start - time.monotonic()), host.why_paused

    def answered(self, url: str, ok: bool) -> None:
        """Count a request that was answered (`ok`) or timed out / could not connect; after
        `strikes` of those in a row the host rests for `rest` seconds: one stalled host costs a
        run a few timeouts, not one per item."""
        host = self._host(urlsplit(url).netloc.lower())
        with host.lock:
            host.failures = 0 if ok else host.failures + 1
            stalled = host.failures >= self._strikes
        if stalled:
            self.pause(url, self._rest, why="host_unresponsive")

    def _host(self, netloc: str) -> _Host:
        with self._lock:
            if netloc not in self._hosts:
                self._hosts[netloc] = _Host(slots=threading.Semaphore(self._concurrency))
            return self._hosts[netloc]


class RobotsCache:
    """robots.txt per host, fetched through `fetch` (which returns status and body, or None
    when the host could not be reached) and kept for an hour."""

    def __init__(self, agent: str, fetch: Callable[[str], tuple[int, bytes] | None]) -> None:
        self._agent = agent
        self._fetch = fetch
        self._rules: dict[str, tuple[float, urllib.robotparser.RobotFileParser | None]] = {}
        self._lock = threading.Lock()

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            cached = self._rules.get(origin)
        if cached is None or cached[0] < time.monotonic():
            cached = (time.monotonic() + ROBOTS_TTL, self._load(origin))
            with self._lock:
                self._rules[origin] = cached
        parser = cached[1]
        return parser is None or parser.can_fetch(self._agent, url)

    def _load(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        """The host's rules; None (everything allowed) when it has no robots.txt. A host whose
        robots.txt fails with a server error is treated as disallowing everything (RFC 9309),
        until the cache entry expires."""
        answer = self._fetch(f"{origin}/robots.txt")
        parser = urllib.robotparser.RobotFileParser()
        if answer is None:
            return None
        status, body = answer
        if 400 <= status < 500:
            return None
        if status >= 500:
            parser.parse(["User-agent: *", "Disallow: /"])
            return parser
        parser.parse(body.decode("utf-8", errors="replace").splitlines())
        return parser

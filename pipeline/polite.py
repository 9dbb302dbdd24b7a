"""Politeness towards the sites we fetch from: robots.txt honoured per host (RFC 9309, cached,
and kept for the next run where there is a `RobotsStore`),
at most `per_host_concurrency` requests to one host at a time, at least `per_host_delay` seconds
between the starts of two requests to it, and none while the host has asked for a pause
(`Retry-After`) or rests after timing out several times in a row. Items fetched at once take
their turns at a host in the order they were queued (`HostLimiter.turn`): a host's pages are
asked in the feed's order, so an answer that pauses the host is heard before the next page.

The limits hold for every HttpClient of a process (threads share them). Processes fetching at
once (the DAGs' tasks, runs of several days, a backfill beside the polls, workers on other
machines) share both limits through a `HostClock` (`pipeline.ledger.HostStarts`, kept in
Elasticsearch): every start at a host, whichever process makes it, is taken from it, at least
`per_host_delay` after the one before, and with it one of the host's `per_host_concurrency`
places, given back when the request ends; a pause a host asked one process for holds for all.
(With a host delay of 0, as in tests and the load bench, each process keeps its own limits.)
The DAG still gives all of a site's feeds to one task (`ingest.site_groups`), so that its
tasks seldom wait on one another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, Self
from urllib.parse import urlsplit

from protego import Protego

ROBOTS_TTL = 3600.0  # seconds a host's robots.txt is trusted
ROBOTS_ERROR_TTL = 60.0  # seconds a robots.txt answering a server error is not asked again
ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309: parse at least 500 KiB; what is kept of one
LATE = 0.05  # seconds a request may start after the start it took before the next start moves
FULL_POLL = 0.25  # seconds between looks at a host whose every place other processes hold


class HostClock(Protocol):
    """When the next request to each host may start, and which requests hold its places,
    shared by the processes fetching at once (`pipeline.ledger.HostStarts`); times are the wall
    clock's (`time.time()`)."""

    def reserve(self, host: str, earliest: float, delay: float,
                places: int) -> tuple[float, str | None] | None:
        """Take the next start at `host`, no sooner than `earliest`, leave `delay` seconds after
        it before the next one, and hold one of the host's `places` until `release`: the start
        taken (no other process takes the same) and the place's name (None where it could not
        be shared); None where requests of any process hold every place (ask again later)."""
        ...

    def release(self, host: str, lease: str) -> None:
        """Give back the place `reserve` named (the request is over)."""
        ...

    def hold_off(self, host: str, until: float) -> None:
        """No start at `host` before `until` (the host asked for a pause, or stopped
        answering)."""
        ...


class RobotsStore(Protocol):
    """Where robots.txt answers outlive the process that fetched them (`pipeline.ledger`'s
    `RobotsAnswers`): each origin's status and body, and how many seconds ago they came."""

    def load(self, origin: str) -> tuple[float, int, bytes] | None: ...

    def save(self, origin: str, status: int, body: bytes) -> None: ...


@dataclass(frozen=True)
class Unavailable:
    """A robots.txt that could not be read (RFC 9309: everything disallowed meanwhile): why,
    as an item failure's reason (`timeout`, `connection_error`, `dns_error` when the host could
    not be reached; `robots_unavailable` for a server error or a refused redirect) and detail."""

    reason: str
    detail: str
    asked: bool = True  # whether the host was asked at all (not when it was resting)


Verdict = Literal["allowed", "disallowed"] | Unavailable


class HostPaused(Exception):
    """A request would wait longer than it may for its host (`seconds`, and `why`:
    `rate_limited` or `host_unresponsive`)."""

    def __init__(self, seconds: float, why: str) -> None:
        super().__init__(f"{why}: {seconds:.0f} s left")
        self.seconds = seconds
        self.why = why


@dataclass
class _Host:
    slots: threading.Semaphore
    lock: threading.Lock = field(default_factory=threading.Lock)
    taking: threading.Lock = field(default_factory=threading.Lock)  # a request taking its start
    next_start: float = 0.0
    why_paused: str = "rate_limited"
    failures: int = 0  # requests in a row that timed out or could not connect
    turns: list[int] = field(default_factory=list)  # the turns queued and not yet over, in order
    last_turn: int = 0
    turn_changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.turn_changed = threading.Condition(self.lock)


class Turn:
    """An item's turn at its host (`HostLimiter.turn`): entering waits until fewer than
    `per_host_concurrency` turns queued before it are still going; leaving, or `give_up` for
    an item that will never enter, lets the next one go. Either may be called more than once."""

    def __init__(self, host: _Host, number: int, concurrency: int) -> None:
        self._host = host
        self._number = number
        self._concurrency = concurrency
        self._over = False

    def __enter__(self) -> Self:
        host = self._host
        with host.turn_changed:
            # the host's turns are in the order queued: this one may go once it is among the
            # first `concurrency` of them
            host.turn_changed.wait_for(
                lambda: self._over or len(host.turns) <= self._concurrency
                or self._number <= host.turns[self._concurrency - 1])
        return self

    def __exit__(self, *exc: object) -> None:
        self.give_up()

    def give_up(self) -> None:
        host = self._host
        with host.turn_changed:
            if not self._over:
                self._over = True
                host.turns.remove(self._number)
                host.turn_changed.notify_all()


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

    def turn(self, url: str) -> Turn:
        """Queue a turn at `url`'s host, behind the turns queued before it (taken in the order
        the items are to be asked; entered around the item's fetch)."""
        host = self._host(urlsplit(url).netloc.lower())
        with host.lock:
            host.last_turn += 1
            host.turns.append(host.last_turn)
            return Turn(host, host.last_turn, self._concurrency)

    @contextmanager
    def slot(self, url: str, max_wait: float | None = None,
             clock: HostClock | None = None) -> Iterator[None]:
        """Hold one of the host's places for the duration of a request, starting it no sooner
        than `delay` after the previous start on that host, this process's or, with a `clock`,
        any process's (and then only while fewer than `concurrency` requests of any process
        are going there). Raises `HostPaused` instead of waiting longer than `max_wait` (the
        host was paused or put to rest while this request waited for its place)."""
        netloc = urlsplit(url).netloc.lower()
        host = self._host(netloc)
        with host.slots:
            lease = None
            # one request of this process at a time takes its start, so that the starts are
            # taken in the order this process gives them (none is left unused between two)
            with host.taking:
                with host.lock:
                    wait = host.next_start - time.monotonic()
                    if max_wait is not None and wait > max_wait:
                        raise HostPaused(wait, host.why_paused)
                    host.next_start = max(host.next_start, time.monotonic()) + self._delay
                if clock is not None and self._delay > 0:
                    wait, lease = self._shared_start(netloc, host, clock, wait)
                    if max_wait is not None and wait > max_wait:
                        if lease is not None:
                            clock.release(netloc, lease)
                        raise HostPaused(wait, "rate_limited")
            try:
                if wait > 0:
                    time.sleep(wait)
                yield
            finally:
                if clock is not None and lease is not None:  # before the place is free here
                    clock.release(netloc, lease)

    def _shared_start(self, netloc: str, host: _Host, clock: HostClock,
                      wait: float) -> tuple[float, str | None]:
        """Take this request's start and place from `clock`, no sooner than this process's own
        `wait` allows, waiting while requests of other processes hold the host's every place:
        the seconds left to wait for the start, and the place's name. This process's next start
        comes `delay` after it, or after now where taking it took longer than the wait (then
        the clock hears so)."""
        earliest = time.time() + max(0.0, wait)
        while (taken := clock.reserve(netloc, max(earliest, time.time()), self._delay,
                                      self._concurrency)) is None:
            time.sleep(FULL_POLL)
        start, lease = taken
        wall, now = time.time(), time.monotonic()
        self._not_before(host, now + start - wall + self._delay)
        wait = start - time.time()  # (the time taking it took is part of the wait)
        if wait < -LATE:  # it starts now, later than the start taken: the next a delay after
            clock.hold_off(netloc, time.time() + self._delay)
            self._not_before(host, time.monotonic() + self._delay)
        return wait, lease

    @staticmethod
    def _not_before(host: _Host, moment: float) -> None:
        """No request of this process to `host` starts before `moment` (monotonic)."""
        with host.lock:
            host.next_start = max(host.next_start, moment)

    def pause(self, url: str, seconds: float, why: str = "rate_limited",
              clock: HostClock | None = None) -> None:
        """No request to `url`'s host starts in the next `seconds` (from any process, with a
        `clock`)."""
        netloc = urlsplit(url).netloc.lower()
        host = self._host(netloc)
        with host.lock:
            if time.monotonic() + seconds > host.next_start:
                host.next_start, host.why_paused = time.monotonic() + seconds, why
        if clock is not None:
            clock.hold_off(netloc, time.time() + seconds)

    def wait_left(self, url: str) -> tuple[float, str]:
        """Seconds until a request to `url`'s host may start, and why it waits: `rate_limited`
        (it asked for a pause) or `host_unresponsive` (it stopped answering)."""
        host = self._host(urlsplit(url).netloc.lower())
        with host.lock:
            return max(0.0, host.next_start - time.monotonic()), host.why_paused

    def answered(self, url: str, ok: bool, clock: HostClock | None = None) -> None:
        """Count a request that was answered (`ok`) or timed out / could not connect; after
        `strikes` of those in a row the host rests for `rest` seconds: one stalled host costs a
        run a few timeouts, not one per item."""
        host = self._host(urlsplit(url).netloc.lower())
        with host.lock:
            host.failures = 0 if ok else host.failures + 1
            stalled = host.failures >= self._strikes
        if stalled:
            self.pause(url, self._rest, why="host_unresponsive", clock=clock)

    def _host(self, netloc: str) -> _Host:
        with self._lock:
            if netloc not in self._hosts:
                self._hosts[netloc] = _Host(slots=threading.Semaphore(self._concurrency))
            return self._hosts[netloc]


class RobotsCache:
    """robots.txt per host, read as RFC 9309 says (Protego: `*` and `$` patterns, the longest
    match wins, `Allow` over `Disallow` on a tie), fetched through `fetch` (status and body
    after following up to five redirects, or `Unavailable` when the host could not be reached)
    and kept for an hour.

    - 2xx: its rules for our product token.
    - 4xx (none there, or more than five redirects): everything allowed.
    - 5xx, or unreachable: everything disallowed for now (`Unavailable`): the item is not
      fetched, and is tried again later, not settled as disallowed. A server error is kept a
      minute; an unreachable host is asked again by the next item (its timeouts and refusals
      count as the host's strikes, so a dead host soon rests: `HostLimiter`).

    With a `store`, a 2xx or 4xx answer is kept there too, and an answer stored less than an
    hour ago is used without asking the host: a poll every 15 minutes, each in a new process,
    asks a site for its robots.txt once an hour, not four times.
    """

    def __init__(self, agent: str,
                 fetch: Callable[[str], tuple[int, bytes] | Unavailable],
                 store: RobotsStore | None = None) -> None:
        self._agent = agent
        self._fetch = fetch
        self._store = store
        self._rules: dict[str, tuple[float, Protego | Verdict]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one load per origin at a time

    def verdict(self, url: str) -> tuple[Verdict, bool]:
        """Whether `url` may be fetched, and whether the host was asked for its robots.txt
        just now (or the answer came from the cache)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            cached = self._rules.get(origin)
        asked = False
        if cached is None or cached[0] < time.monotonic():
            # a site's feeds polled at once (or an item that redirects there): one of them
            # asks, the others wait for its answer (the host's items still go in their turns)
            with self._lock:
                loading = self._loading.setdefault(origin, threading.Lock())
            with loading:
                with self._lock:
                    cached = self._rules.get(origin)
                if cached is None or cached[0] < time.monotonic():
                    cached, asked = self._stored_or_fetched(origin)
                    with self._lock:
                        self._rules[origin] = cached
        rules = cached[1]
        if isinstance(rules, Protego):
            return ("allowed" if rules.can_fetch(url, self._agent) else "disallowed"), asked
        return rules, asked

    def _stored_or_fetched(self, origin: str) -> tuple[tuple[float, Protego | Verdict], bool]:
        """`origin`'s rules with the monotonic time they expire, and whether the host was asked:
        from the store while the answer there is fresh, else from the host."""
        stored = self._store.load(origin) if self._store else None
        if stored is not None and stored[0] < ROBOTS_TTL:
            age, status, body = stored
            return (time.monotonic() + ROBOTS_TTL - age, _rules(origin, status, body)), False
        rules = self._load(origin)
        return (time.monotonic() + _ttl(rules), rules), True

    def _load(self, origin: str) -> Protego | Verdict:
        answer = self._fetch(f"{origin}/robots.txt")
        if isinstance(answer, Unavailable):
            return answer
        status, body = answer[0], answer[1][:ROBOTS_MAX_BYTES]
        rules = _rules(origin, status, body)
        if self._store and not isinstance(rules, Unavailable):
            self._store.save(origin, status, body)
        return rules


def _rules(origin: str, status: int, body: bytes) -> Protego | Verdict:
    """What a robots.txt answer means (RFC 9309): its rules (2xx), everything allowed (4xx, none
    there), or nothing for now (5xx)."""
    if status >= 500:
        return Unavailable("robots_unavailable", f"{origin}/robots.txt answers HTTP {status}")
    if not 200 <= status < 300:
        return "allowed"
    # RFC 9309 robots.txt is UTF-8; a byte order mark before it would hide its first line
    return Protego.parse(body.decode("utf-8-sig", errors="replace"))


def _ttl(rules: Protego | Verdict) -> float:
    """How long a robots.txt answer is kept."""
    if not isinstance(rules, Unavailable):
        return ROBOTS_TTL
    return ROBOTS_ERROR_TTL if rules.reason == "robots_unavailable" else 0.0

"""fetch: polite, bounded HTTP GETs that refuse to reach private addresses.

Politeness (robots.txt, per-host concurrency and delay) is `pipeline.polite`.

Every request (and every redirect hop) is checked by `check_address`: only http and https, and
the host must resolve to public addresses unless an address range is let through by
`NEWSROOM_ALLOW_NETS`; an IPv6 address carrying an IPv4 one (mapped, NAT64, 6to4, Teredo) must
carry a public one. Bodies are read in chunks and cut off at `max_bytes`; connect and read time
out, and a whole response must arrive within `total_timeout`. Errors come back as `ItemError`
with a stable reason code.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from pipeline.polite import (
    HostClock,
    HostLimiter,
    HostPaused,
    RobotsCache,
    RobotsStore,
    Turn,
    Unavailable,
)
from pipeline.records import ItemError, Page
from pipeline.settings import HttpSettings, IPNetwork

_TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 86_400.0  # a longer Retry-After is taken as a day
ROBOTS_REDIRECTS = 5  # RFC 9309: follow at least five redirects to a robots.txt
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the IPv4 address is the last 32 bits
# IPv4-compatible addresses (deprecated, ::/96) and local-use NAT64: never a public host.
_NON_PUBLIC_V6 = (ipaddress.IPv6Network("::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


@dataclass
class WireTime:
    """Milliseconds a thread's requests spent on the wire: from sending each request until its
    body was read (or it failed), summed; never the waits for a host's turn, slot or delay."""

    ms: float = 0.0
    requests: int = 0


def check_address(url: str, allow_nets: tuple[IPNetwork, ...]) -> str:
    """The address to connect to for `url` (IPv4 first), every address its host resolves to
    having been checked; `ItemError('blocked_address')` unless they are all public (or inside
    `allow_nets`) and the scheme is http(s). The request then goes to that address: the name
    is never resolved again, so a second answer (DNS rebinding) cannot route around the
    check."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ItemError("blocked_scheme", f"refusing to fetch {parts.scheme or 'relative'}: URL")
    host = parts.hostname
    if not host:
        raise ItemError("bad_url", f"no host in {url!r}")
    try:
        infos = socket.getaddrinfo(host, parts.port or 0, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ItemError("dns_error", f"cannot resolve {host}: {exc}", transient=True) from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not is_public(address) and not any(address in net for net in allow_nets):
            raise ItemError("blocked_address",
                            f"{host} resolves to non-public address {address}")
    if not addresses:
        raise ItemError("dns_error", f"{host} resolves to no address", transient=True)
    return str(min(addresses, key=lambda a: a.version))


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `address` is a public unicast host, counting the IPv4 address an IPv6 one
    carries (`64:ff9b::a00:1` is 10.0.0.1 through a NAT64 gateway)."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in _NON_PUBLIC_V6):
            return False
        return all(is_public(inner) for inner in _embedded_ipv4(address))
    return True


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [inner for inner in (address.ipv4_mapped, address.sixtofour) if inner is not None]
    found += address.teredo or ()
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


class HttpClient:
    """A small HTTP client holding one connection pool; use as a context manager. With a
    `robots_store`, robots.txt answers are kept there for the next run (`RobotsCache`); with a
    `host_clock`, the starts of requests to a host are spaced across every process fetching at
    once (`HostLimiter.slot`)."""

    def __init__(self, settings: HttpSettings, robots_store: RobotsStore | None = None,
                 host_clock: HostClock | None = None) -> None:
        self._settings = settings
        self._clock = host_clock
        self._client = httpx.Client(
            # the codings `_Inflater` undoes (httpx would add br or zstd where their packages
            # are installed)
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=False,
            trust_env=False,  # no proxy variables or .netrc routing around the address guard
            transport=_deadline_transport(),
        )
        self._limiter = HostLimiter.shared(settings.per_host_concurrency,
                                           settings.per_host_delay, settings.host_strikes,
                                           settings.host_rest)
        self._robots = RobotsCache(settings.robots_agent, self._fetch_robots, robots_store)
        self._timers = threading.local()  # the WireTime of each thread inside `timed`

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def max_bytes(self) -> int:
        """The size cap on a response body (and on what a compressed body may inflate to)."""
        return self._settings.max_bytes

    def turn(self, url: str) -> Turn:
        """A turn at `url`'s host for a fetch to enter, queued behind those taken before it
        (`HostLimiter.turn`)."""
        return self._limiter.turn(url)

    @contextmanager
    def timed(self) -> Iterator[WireTime]:
        """The time this thread's requests (each redirect hop and robots.txt too) spend on the
        wire while in the block: how fast the site answers, without our own waits."""
        timer = WireTime()
        self._timers.current = timer
        try:
            yield timer
        finally:
            self._timers.current = None

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Page:
        """GET `url`, following redirects hop by hop through the address guard and the host's
        robots.txt, within the per-host limits.

        Returns the page for 2xx and 304 answers; raises `ItemError` for everything else."""
        current = url
        for _ in range(self._settings.max_redirects + 1):
            address = check_address(current, self._settings.allow_nets)
            paused, why = self._limiter.wait_left(current)
            if paused > self._settings.max_pause:
                said = ("asked for a pause" if why == "rate_limited"
                        else "stopped answering; left alone")
                raise ItemError(why, f"{urlsplit(current).netloc} {said} ({paused:.0f} s left)",
                                transient=True, retry_after=paused, attempted=False)
            if self._settings.respect_robots:
                verdict, asked = self._robots.verdict(current)
                if verdict == "disallowed":
                    raise ItemError("robots_disallowed", f"robots.txt disallows {current}")
                if isinstance(verdict, Unavailable):  # RFC 9309: disallow until it can be read
                    raise ItemError(verdict.reason, verdict.detail, transient=True,
                                    attempted=asked and verdict.asked)
            status, response_headers, body = self._get_once(current, address, headers or {})
            if status in (301, 302, 303, 307, 308):
                location = response_headers.get("location")
                if not location:
                    raise ItemError("bad_redirect", f"HTTP {status} without Location from {current}")
                current = urljoin(current, location)
                continue
            if status == 304 or 200 <= status < 300:
                content_type = response_headers.get("content-type")
                return Page(
                    url=url,
                    final_url=current,
                    status=status,
                    content_type=_mime(content_type),
                    charset=_charset(content_type),
                    body=body,
                    fetched_at=datetime.now(UTC),
                    etag=response_headers.get("etag"),
                    last_modified=response_headers.get("last-modified"),
                )
            wait = retry_after(response_headers.get("retry-after"), datetime.now(UTC)) \
                if status in (429, 503) else None  # (the host is paused for it already)
            raise ItemError(f"http_{status}", f"HTTP {status} from {current}"
                            + (f" (Retry-After {wait:.0f} s)" if wait else ""),
                            transient=status in _TRANSIENT_STATUSES, retry_after=wait)
        raise ItemError("too_many_redirects",
                        f"more than {self._settings.max_redirects} redirects from {url}")

    def _fetch_robots(self, url: str) -> tuple[int, bytes] | Unavailable:
        """robots.txt at `url`: status and body after up to five redirects (RFC 9309), each
        hop through the address guard; (404, b"") after more; `Unavailable` when it cannot be
        reached (the network failure's own reason) or a hop is refused."""
        current = url
        for _ in range(ROBOTS_REDIRECTS + 1):
            try:
                address = check_address(current, self._settings.allow_nets)
                status, headers, body = self._get_once(current, address, {})
            except ItemError as exc:
                unreachable = exc.reason in ("timeout", "connection_error", "dns_error",
                                             "rate_limited", "host_unresponsive")
                return Unavailable(exc.reason if unreachable else "robots_unavailable",
                                   f"robots.txt at {current}: {exc.detail}", exc.attempted)
            location = headers.get("location")
            if status not in (301, 302, 303, 307, 308) or not location:
                return status, body
            current = urljoin(current, location)
        return 404, b""  # more redirects than RFC 9309 asks us to follow: unavailable

    def _get_once(self, url: str, address: str,
                  headers: Mapping[str, str]) -> tuple[int, httpx.Headers, bytes]:
        try:
            with self._limiter.slot(url, max_wait=self._settings.max_pause, clock=self._clock):
                sent = time.monotonic()
                try:
                    answer = self._request(url, address, headers)
                except ItemError as exc:
                    if exc.reason in ("timeout", "connection_error"):
                        self._limiter.answered(url, ok=False, clock=self._clock)
                    raise
                finally:
                    timer = getattr(self._timers, "current", None)
                    if timer is not None:
                        timer.ms += (time.monotonic() - sent) * 1000
                        timer.requests += 1
                self._limiter.answered(url, ok=True, clock=self._clock)
                status, response_headers, _ = answer
                wait = retry_after(response_headers.get("retry-after"), datetime.now(UTC)) \
                    if status in (429, 503) else None
                if wait:  # before the slot is free: no request waiting for it starts sooner
                    self._limiter.pause(url, wait, clock=self._clock)
                return answer
        except HostPaused as paused:  # paused or put to rest while this request waited
            said = ("asked for a pause" if paused.why == "rate_limited"
                    else "stopped answering; left alone")
            raise ItemError(paused.why, f"{urlsplit(url).netloc} {said} "
                                        f"({paused.seconds:.0f} s left)", transient=True,
                            retry_after=paused.seconds, attempted=False) from paused

    def _request(self, url: str, address: str,
                 headers: Mapping[str, str]) -> tuple[int, httpx.Headers, bytes]:
        """GET `url` from `address` (checked by `check_address`): the connection goes to the
        address, the Host header and TLS (SNI, certificate) name the URL's host."""
        deadline = time.monotonic() + self._settings.total_timeout
        _DEADLINE.set(deadline)  # for every read and write of this thread's request
        parts = urlsplit(url)
        host = parts.hostname or ""
        host_header = parts.netloc.rpartition("@")[2]  # never the user info
        literal = f"[{address}]" if ":" in address else address
        wire = parts._replace(netloc=literal if parts.port is None
                              else f"{literal}:{parts.port}").geturl()
        try:
            # Connections are pooled by address: a TLS connection verified for one host name
            # must never carry another's request, so none is kept open for reuse.
            close = {"Connection": "close"} if parts.scheme == "https" else {}
            with self._client.stream("GET", wire,
                                     headers={**headers, "Host": host_header, **close},
                                     extensions={"sni_hostname": host}) as response:
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self._settings.max_bytes:
                    raise ItemError("too_large", f"{url} declares {declared} bytes, "
                                                 f"over the {self._settings.max_bytes} cap")
                chunks: list[bytes] = []
                size = 0
                inflater = _Inflater(response.headers.get("content-encoding"), url)
                for raw in response.iter_raw():
                    chunk = inflater.inflate(raw, self._settings.max_bytes - size + 1)
                    size += len(chunk)
                    if size > self._settings.max_bytes:
                        raise ItemError("too_large",
                                        f"{url} is over the {self._settings.max_bytes} byte cap")
                    if time.monotonic() > deadline:
                        raise self._overtime(url)
                    chunks.append(chunk)
                return response.status_code, response.headers, b"".join(chunks)
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline:
                raise self._overtime(url) from exc
            raise ItemError("timeout", f"{url}: {type(exc).__name__}", transient=True) from exc
        except httpx.ConnectError as exc:
            if _caused_by(exc, ssl.SSLCertVerificationError):
                # TLS is verified, always: a site whose certificate fails is not fetched.
                raise ItemError("tls_error", f"{url}: certificate verification failed: "
                                             f"{exc}") from exc
            raise ItemError("connection_error", f"{url}: {exc}", transient=True) from exc
        except httpx.RemoteProtocolError as exc:
            if "location header" in str(exc):  # a Location httpx cannot parse is never followed
                raise ItemError("bad_redirect", f"{url}: {exc}") from exc
            raise ItemError("connection_error", f"{url}: {exc}", transient=True) from exc
        except httpx.HTTPError as exc:
            raise ItemError("connection_error", f"{url}: {exc}", transient=True) from exc
        finally:
            _DEADLINE.set(None)


    def _overtime(self, url: str) -> ItemError:
        return ItemError("timeout", f"{url}: the response took longer than "
                                    f"{self._settings.total_timeout:g} s", transient=True)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks for (delay-seconds or an HTTP date), at most a day;
    None when absent, unreadable or already past."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError, IndexError):
            return None
    return min(seconds, MAX_RETRY_AFTER) if seconds > 0 else None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore, which wraps the ssl error
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# When the request the current thread is making must be over (time.monotonic()), or None.
_DEADLINE: ContextVar[float | None] = ContextVar("fetch_deadline", default=None)


def _deadline_transport() -> httpx.HTTPTransport:
    """httpx's transport, with each socket read and write waiting no longer than what is left
    of its request's `total_timeout` (`_DEADLINE`): httpx's own timeouts are per read, so a
    server dripping its status line and headers a byte at a time, each within the read
    timeout, would hold a request for hours. (httpx has no setting for this: the wrapper is
    put around the network backend of its connection pool, as httpx 0.28 builds it.)"""
    transport = httpx.HTTPTransport(verify=True, trust_env=False)
    pool = transport._pool
    if not isinstance(pool, httpcore.ConnectionPool):  # httpx has changed how it builds it
        raise TypeError(f"httpx's transport holds a {type(pool).__name__}, not the "
                        "connection pool whose reads are bounded here")
    pool._network_backend = _DeadlineBackend(pool._network_backend)
    return transport


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_tcp(
            host, port, _time_left(timeout), local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(
            path, _time_left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      _time_left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _time_left(timeout: float | None) -> float | None:
    """`timeout`, but no longer than what is left of the current request's deadline (a read
    past it times out at once)."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = max(0.001, deadline - time.monotonic())
    return left if timeout is None else min(timeout, left)


class _Inflater:
    """A body's gzip or deflate Content-Encoding undone as the body arrives, never inflating
    more than the room left under the size cap at once: a small body that inflates to
    gigabytes is cut off at the cap, instead of each network chunk being inflated whole (64 KB
    of zeros is 64 MB inflated). Another coding, which we never ask for (or two codings), is
    passed on as it came."""

    def __init__(self, encoding: str | None, url: str) -> None:
        self._url = url
        coding = (encoding or "").strip().lower()
        self._inflater = (zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                          if coding in ("gzip", "x-gzip") else
                          zlib.decompressobj() if coding == "deflate" else None)
        # "deflate" is zlib-wrapped, but some servers send it bare: told by the first bytes
        self._bare_deflate_possible = coding == "deflate"

    def inflate(self, raw: bytes, room: int) -> bytes:
        """What `raw` inflates to, up to `room` bytes (more is left unread: the cap is
        passed once `room` bytes come out)."""
        if self._inflater is None:
            return raw
        try:
            try:
                inflated = self._inflater.decompress(raw, room)
            except zlib.error:
                if not self._bare_deflate_possible:
                    raise
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                inflated = self._inflater.decompress(raw, room)
        except zlib.error as exc:
            raise ItemError("connection_error", f"{self._url}: the body's compression is "
                                                f"broken: {exc}", transient=True) from exc
        if raw:
            self._bare_deflate_possible = False
        return inflated


def _mime(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower() or None
    return None

"""fetch: polite, bounded HTTP GETs that refuse to reach private addresses.

Politeness (robots.txt, per-host concurrency and delay) is `pipeline.polite`.

Every request (and every redirect hop) is checked by `check_address`: only http and https, and
the host must resolve to public addresses unless an address range is let through by
`NEWSROOM_ALLOW_NETS`. Bodies are read in chunks and cut off at `max_bytes`; connect and read
time out. Errors come back as `ItemError` with a stable reason code.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Self
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline.polite import HostLimiter, RobotsCache
from pipeline.records import ItemError, Page
from pipeline.settings import HttpSettings, IPNetwork

_TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


def check_address(url: str, allow_nets: tuple[IPNetwork, ...]) -> None:
    """Raise `ItemError('blocked_address')` unless `url` is http(s) to a public address
    (or to one inside `allow_nets`)."""
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
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in net for net in allow_nets):
            continue
        if not address.is_global or address.is_multicast:
            raise ItemError("blocked_address",
                            f"{host} resolves to non-public address {address}")


class HttpClient:
    """A small HTTP client holding one connection pool; use as a context manager."""

    def __init__(self, settings: HttpSettings) -> None:
        self._settings = settings
        self._client = httpx.Client(
            headers={"User-Agent": settings.user_agent},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=False,
        )
        self._limiter = HostLimiter.shared(settings.per_host_concurrency,
                                           settings.per_host_delay)
        self._robots = RobotsCache(settings.robots_agent, self._fetch_robots)

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

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Page:
        """GET `url`, following redirects hop by hop through the address guard and the host's
        robots.txt, within the per-host limits.

        Returns the page for 2xx and 304 answers; raises `ItemError` for everything else."""
        current = url
        for _ in range(self._settings.max_redirects + 1):
            check_address(current, self._settings.allow_nets)
            if self._settings.respect_robots and not self._robots.allowed(current):
                raise ItemError("robots_disallowed", f"robots.txt disallows {current}")
            status, response_headers, body = self._get_once(current, headers or {})
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
            raise ItemError(f"http_{status}", f"HTTP {status} from {current}",
                            transient=status in _TRANSIENT_STATUSES)
        raise ItemError("too_many_redirects",
                        f"more than {self._settings.max_redirects} redirects from {url}")

    def _fetch_robots(self, url: str) -> tuple[int, bytes] | None:
        try:
            check_address(url, self._settings.allow_nets)
            status, _, body = self._get_once(url, {})
        except ItemError:
            return None
        return status, body

    def _get_once(self, url: str, headers: Mapping[str, str]) -> tuple[int, httpx.Headers, bytes]:
        with self._limiter.slot(url):
            return self._request(url, headers)

    def _request(self, url: str, headers: Mapping[str, str]) -> tuple[int, httpx.Headers, bytes]:
        try:
            with self._client.stream("GET", url, headers=dict(headers)) as response:
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self._settings.max_bytes:
                    raise ItemError("too_large", f"{url} declares {declared} bytes, "
                                                 f"over the {self._settings.max_bytes} cap")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self._settings.max_bytes:
                        raise ItemError("too_large",
                                        f"{url} is over the {self._settings.max_bytes} byte cap")
                    chunks.append(chunk)
                return response.status_code, response.headers, b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise ItemError("timeout", f"{url}: {type(exc).__name__}", transient=True) from exc
        except httpx.ConnectError as exc:
            if _caused_by(exc, ssl.SSLCertVerificationError):
                # TLS is verified, always: a site whose certificate fails is not fetched.
                raise ItemError("tls_error", f"{url}: certificate verification failed: "
                                             f"{exc}") from exc
            raise ItemError("connection_error", f"{url}: {exc}", transient=True) from exc
        except httpx.HTTPError as exc:
            raise ItemError("connection_error", f"{url}: {exc}", transient=True) from exc


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore, which wraps the ssl error
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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

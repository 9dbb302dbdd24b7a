"""A misbehaving HTTP server on loopback for the chaos suite.

`ChaosServer` is a `ThreadingHTTPServer` that records every request (path, arrival time, the
run it arrived in) and answers each path with a `Route`: a callable given the request handler
and how many times that path has been asked for (1 for the first request). The factories below
build the faults: stalls, slow drips (of a body or of the headers), connection resets, 5xx-then-200, 429 with Retry-After,
redirects (loops, chains, to any Location), bodies over a size cap (with and without
Content-Length), gzip bombs, wrong content types, binary bodies.

`SlowAcceptServer` is a raw listening socket whose accept queue is kept full, so that new
connections are not accepted (the SYN is dropped) until it lets them in.

Every server binds a loopback address only (127.0.0.1 by default; 127.0.0.2 for the second,
"must record zero hits" servers). Unknown paths are 404, `/robots.txt` included.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

Route = Callable[["ChaosHandler", int], None]

HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Hit:
    """One request the server received."""

    path: str
    at: float  # time.monotonic() when the request line had been read
    run: int  # the server's `run` counter when it arrived (set by the suite between runs)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    chaos: ChaosServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up on a fault is the point, not an error


class ChaosHandler(BaseHTTPRequestHandler):
    """Answers a request with the route registered for its path."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive where a route sends a length, as sites do
    disable_nagle_algorithm = True  # headers and body go out at once (no delayed-ACK stalls)
    server_version = "chaos/1"

    def do_GET(self) -> None:
        chaos = self.server.chaos
        path = urlsplit(self.path).path
        count = chaos.record(path)
        route = chaos.routes.get(path)
        if route is None:
            send(self, 404, b"not found\n", "text/plain")
            return
        route(self, count)

    @property
    def stopping(self) -> threading.Event:
        return self.server.chaos.stopping

    def log_message(self, format: str, *args: object) -> None:
        pass


class ChaosServer:
    """A recording, misbehaving HTTP server; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.run = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._server = _Server((host, port), ChaosHandler)
        self._server.chaos = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def route(self, path: str, route: Route) -> str:
        """Serve `route` at `path`; its full URL."""
        self.routes[path] = route
        return self.url(path)

    def record(self, path: str) -> int:
        with self._lock:
            self.hits.append(Hit(path=path, at=time.monotonic(), run=self.run))
            self._counts[path] = self._counts.get(path, 0) + 1
            return self._counts[path]

    def hits_for(self, path: str, run: int | None = None) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path and (run is None or h.run == run)]

    def forget_counts(self) -> None:
        """Count every path from zero again, so that routes which fail the first request(s)
        fail them anew: a soak replays one web for several runs under the same URLs."""
        with self._lock:
            self._counts.clear()

    def content_hits(self) -> list[Hit]:
        """The requests other than for robots.txt."""
        with self._lock:
            return [h for h in self.hits if h.path != "/robots.txt"]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # stalled handlers give up at once
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SlowAcceptServer:
    """A port whose accept queue is full: connection attempts are not answered (the kernel drops
    their SYNs) until `accept_after` seconds have passed; then connections are accepted and
    closed. `attempts` counts the connections it eventually accepted (the fillers excluded)."""

    def __init__(self, accept_after: float, host: str = "127.0.0.1") -> None:
        self.accept_after = accept_after
        self.accepted = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(0)
        self._fillers: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_later, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        # Fill the accept queue (a backlog of 0 holds one connection, the kernel allows one
        # more) with connections nobody reads, so that further SYNs are dropped.
        address = self._listener.getsockname()
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(address)
            self._fillers.append(filler)
        time.sleep(0.2)
        self._thread.start()
        return self

    def _accept_later(self) -> None:
        if self._stop.wait(self.accept_after):
            return
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        for filler in self._fillers:
            filler.close()
        self._listener.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- answers ---------------------------------------------------------------------------------

def send(h: ChaosHandler, status: int, body: bytes, content_type: str | None = HTML,
         headers: dict[str, str] | None = None) -> None:
    """A complete answer with a Content-Length."""
    h.send_response(status)
    if content_type:
        h.send_header("Content-Type", content_type)
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def page(body: bytes, content_type: str | None = HTML, status: int = 200,
         headers: dict[str, str] | None = None) -> Route:
    """Always the same answer."""
    def route(h: ChaosHandler, n: int) -> None:
        send(h, status, body, content_type, headers)
    return route


def fail_then(failures: list[tuple[int, dict[str, str]]], then: Route) -> Route:
    """The n-th request gets the n-th (status, headers) of `failures`; later ones `then`."""
    def route(h: ChaosHandler, n: int) -> None:
        if n <= len(failures):
            status, headers = failures[n - 1]
            send(h, status, f"error {status}\n".encode(), "text/plain", headers)
        else:
            then(h, n)
    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(h: ChaosHandler, n: int) -> None:
        send(h, status, b"", "text/plain", {"Location": location})
    return route


def redirect_chain(prefix: str, hops: int, target: str) -> dict[str, Route]:
    """Routes `{prefix}0` -> `{prefix}1` -> ... -> `{prefix}{hops-1}` -> `target`: the item at
    `{prefix}0` needs `hops` redirects."""
    routes: dict[str, Route] = {}
    for i in range(hops):
        routes[f"{prefix}{i}"] = redirect(f"{prefix}{i + 1}" if i + 1 < hops else target)
    return routes


def stall(sent: bytes, declared: int, hold: float) -> Route:
    """Headers promising `declared` bytes, then `sent`, then nothing for `hold` seconds (or
    until the server stops), then the connection is closed."""
    def route(h: ChaosHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", HTML)
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        h.wfile.write(sent)
        h.wfile.flush()
        h.stopping.wait(hold)
        h.close_connection = True
    return route


def delayed_headers(delay: float, then: Route) -> Route:
    """Nothing at all (not even the status line) for `delay` seconds, then `then`."""
    def route(h: ChaosHandler, n: int) -> None:
        if h.stopping.wait(delay):
            return
        then(h, n)
    return route


def drip(every: float, duration: float, afterwards: Route) -> Route:
    """The first request gets a body that never stops coming: one byte every `every` seconds
    for `duration` seconds (no Content-Length), then the connection is cut. Later requests get
    `afterwards`."""
    def route(h: ChaosHandler, n: int) -> None:
        if n > 1:
            afterwards(h, n)
            return
        h.send_response(200)
        h.send_header("Content-Type", HTML)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b"<html><body>")
        h.wfile.flush()
        until = time.monotonic() + duration
        try:
            while time.monotonic() < until and not h.stopping.wait(every):
                h.wfile.write(b" ")
                h.wfile.flush()
        except OSError:
            pass  # the client hung up
        h.close_connection = True
    return route


def drip_headers(every: float, duration: float, afterwards: Route) -> Route:
    """The first request gets a status line and then a header line every `every` seconds for
    `duration` seconds, never the blank line that ends them; then the connection is cut.
    Later requests get `afterwards`."""
    def route(h: ChaosHandler, n: int) -> None:
        if n > 1:
            afterwards(h, n)
            return
        until = time.monotonic() + duration
        try:
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            h.wfile.flush()
            line = 0
            while time.monotonic() < until and not h.stopping.wait(every):
                line += 1
                h.wfile.write(b"X-Drip-%d: more\r\n" % line)
                h.wfile.flush()
        except OSError:
            pass  # the client hung up
        h.close_connection = True
    return route


def reset(after: bytes, declared: int) -> Route:
    """Headers and `after`, then a TCP RST (SO_LINGER 0) in the middle of the body."""
    def route(h: ChaosHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", HTML)
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        h.wfile.write(after)
        h.wfile.flush()
        time.sleep(0.05)
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True
    return route


def reset_before_answer() -> Route:
    """The request is read, then the connection is reset without a byte of answer."""
    def route(h: ChaosHandler, n: int) -> None:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True
    return route


def _filler(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    line = b"<p>" + b"filler text " * 40 + b"</p>\n"
    block = (line * (chunk // len(line) + 1))[:chunk]
    left = size
    while left > 0:
        piece = block[:left]
        left -= len(piece)
        yield piece


def oversized(size: int, declare_length: bool, content_type: str = HTML) -> Route:
    """An HTML body of `size` bytes, streamed; with its Content-Length, or without one (read
    until the connection closes)."""
    def route(h: ChaosHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        if declare_length:
            h.send_header("Content-Length", str(size))
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        try:
            for piece in _filler(size):
                h.wfile.write(piece)
        except OSError:
            pass  # the client stopped reading at its cap
        h.close_connection = True
    return route


def endless_html(attributes: int = 100_000) -> bytes:
    """A page whose parser never seems to end: one element with `attributes` attributes.
    libxml2 checks each against all before it: minutes at 100,000 (1 MB), hours at 300,000."""
    return (b"<html><head><title>Endless</title></head><body><p "
            + b" ".join(b'a%d="v"' % n for n in range(attributes)) + b">Text.</p></body></html>")


def gzip_bomb_body(inflated: int) -> bytes:
    """A gzip stream of `inflated` zero bytes (about 1000 times smaller)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as stream:
        zeros = bytes(1024 * 1024)
        left = inflated
        while left > 0:
            stream.write(zeros[:left])
            left -= min(left, len(zeros))
    return out.getvalue()


def gzip_bomb(body: bytes, declare_length: bool) -> Route:
    """`Content-Encoding: gzip` with a body that inflates far past any cap."""
    def route(h: ChaosHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", HTML)
        h.send_header("Content-Encoding", "gzip")
        if declare_length:
            h.send_header("Content-Length", str(len(body)))
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:
            pass
        h.close_connection = True
    return route


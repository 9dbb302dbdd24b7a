"""A small HTTP server for the sample corpus (the demo and the tests use it).

Serves `www/` under a base URL, replacing the placeholder `{BASE_URL}` in .html and .xml files
with that base, and answers conditional GETs (ETag / If-None-Match, Last-Modified /
If-Modified-Since) with 304 like a well-behaved news site. Missing files are 404.

    python tests/sample_site/server.py --port 8765       # serve until interrupted
"""

from __future__ import annotations

import argparse
import hashlib
import mimetypes
import threading
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

WWW = Path(__file__).resolve().parent / "www"
PLACEHOLDER = b"{BASE_URL}"
# .rss as many sites serve their feeds: a type without a charset, which the document's XML
# declaration gives
_TYPES = {".xml": "application/xml; charset=utf-8", ".html": "text/html; charset=utf-8",
          ".rss": "application/rss+xml"}


class SampleSite:
    """The sample corpus served on 127.0.0.1; use as a context manager or start/stop."""

    def __init__(self, port: int = 0, root: Path = WWW) -> None:
        self.root = root
        self.requests: list[tuple[str, int]] = []  # (path, status), for tests to inspect
        site = self

        class Handler(_Handler):
            pass

        Handler.site = site
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the demo's way)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    site: SampleSite
    server_version = "newsroom-sample-site/1"

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        file = (self.site.root / path.lstrip("/")).resolve()
        if not file.is_file() or self.site.root.resolve() not in file.parents:
            self._answer(404, b"not found\n", "text/plain")
            return
        body = file.read_bytes()
        if file.suffix in _TYPES:
            body = body.replace(PLACEHOLDER, self.site.base_url.encode())
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        mtime = file.stat().st_mtime
        if self._not_modified(etag, mtime):
            self._answer(304, b"", None, etag=etag, mtime=mtime)
            return
        ctype = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self._answer(200, body, ctype, etag=etag, mtime=mtime)

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return etag in [tag.strip() for tag in if_none_match.split(",")]
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return int(mtime) <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _answer(self, status: int, body: bytes, ctype: str | None, etag: str | None = None,
                mtime: float | None = None) -> None:
        self.site.requests.append((self.path, status))
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if etag:
            self.send_header("ETag", etag)
        if mtime is not None:
            self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test and demo output readable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    site = SampleSite(port=args.port)
    print(f"serving {site.root} at {site.base_url}", flush=True)
    site.serve_forever()


if __name__ == "__main__":
    main()

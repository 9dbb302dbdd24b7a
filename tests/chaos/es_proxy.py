"""Elasticsearch faults: a proxy in front of the real local node that passes requests through
unless its `Fault` says otherwise, and the faults the chaos suite and tests/test_es_faults.py
inject with it.

A `Fault` is called with each request's method, path and body and returns None to pass it
through, `(status, body)` to answer that instead, new body bytes to forward in its place, or
`"drop"` to forward it and then cut the connection before the answer (the node wrote, then went
away).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

Fault = Callable[[str, str, bytes], object]


class FaultyProxy:
    def __init__(self, upstream: str, fault: Fault) -> None:
        target = urlsplit(upstream)
        proxy = self
        self.bulks = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "/_bulk" in self.path:
                    proxy.bulks += 1
                action = fault(self.command, self.path, body)
                if isinstance(action, tuple):
                    self._answer(*action)
                    return
                if isinstance(action, bytes):
                    body = action
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._answer(response.status, data, response.getheader("Content-Type"))

            def _answer(self, status: int, data: bytes, kind: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def dead_url() -> str:
    """A loopback URL nothing listens on: the node stopped (connections refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def gone_at_bulk(method: str, path: str, body: bytes) -> object:
    """Every bulk is written by the node, then the connection drops before the answer."""
    return "drop" if "/_bulk" in path else None


def first_bulk_rejected(rejected: list[dict[str, object]]) -> Fault:
    """The first bulk's items all answer 429 `es_rejected_execution_exception` (a full write
    queue), appended to `rejected`; later bulks pass."""
    def fault(method: str, path: str, body: bytes) -> object:
        if "/_bulk" not in path or rejected:
            return None
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items = [{op: {"_index": meta.get("_index", "x"), "_id": meta["_id"], "status": 429,
                       "error": {"type": "es_rejected_execution_exception",
                                 "reason": "rejected execution (queue capacity 200)"}}}
                 for entry in lines[::2] for op, meta in entry.items()]
        rejected.extend(items)
        return 200, json.dumps({"took": 1, "errors": True, "items": items}).encode()
    return fault


def one_document_unmappable(victim: list[str]) -> Fault:
    """The first bulk's first document gets a `published_at` no date mapping accepts (a mapping
    conflict); its URL is appended to `victim`."""
    def fault(method: str, path: str, body: bytes) -> object:
        if "/_bulk" not in path or victim:
            return None
        lines = body.splitlines()
        doc = json.loads(lines[1])
        doc["doc"]["published_at"] = doc["upsert"]["published_at"] = "the day after tomorrow"
        victim.append(doc["doc"]["url"])
        return b"\n".join([lines[0], json.dumps(doc).encode(), *lines[2:]]) + b"\n"
    return fault


def articles_deleted_at_first_bulk(upstream: str, alias: str, deleted: list[str]) -> Fault:
    """Just before the first bulk of articles (to `alias`) reaches the node, the index behind
    the alias is deleted through `upstream` (as an operator would; the alias goes with it), its
    name appended to `deleted`; then the bulk passes."""
    def fault(method: str, path: str, body: bytes) -> object:
        if "/_bulk" not in path or deleted:
            return None
        meta = next(iter(json.loads(body.split(b"\n", 1)[0]).values()))
        if meta.get("_index") != alias:
            return None
        target = urlsplit(upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            conn.request("GET", f"/_alias/{alias}")
            (index,) = json.loads(conn.getresponse().read())  # {index: {"aliases": ...}}
            conn.request("DELETE", f"/{index}")
            answer = conn.getresponse()
            answer.read()
        finally:
            conn.close()
        if answer.status != 200:
            raise RuntimeError(f"could not delete {index}: HTTP {answer.status}")
        deleted.append(index)
        return None
    return fault


def one_ledger_record_refused(victim: list[str]) -> Fault:
    """The first ledger write's first record gets an `attempts` no integer mapping accepts;
    its URL is appended to `victim`."""
    def fault(method: str, path: str, body: bytes) -> object:
        if "/_bulk" not in path or victim:
            return None
        lines = body.splitlines()
        if b"-ledger" not in lines[0]:
            return None
        record = json.loads(lines[1])
        record["attempts"] = "many"
        victim.append(record["url"])
        return b"\n".join([lines[0], json.dumps(record).encode(), *lines[2:]]) + b"\n"
    return fault

"""Security: credentials only from the environment or an Airflow connection and never in logs
or messages; TLS verified by default (Elasticsearch client and page fetches); stored text is
plain text."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from elastic_transport import TlsError

from pipeline.extract import extract_article
from pipeline.fetch import HttpClient
from pipeline.records import ItemError, Page
from pipeline.settings import PROJECT_ROOT, HttpSettings, Settings, parse_nets
from pipeline.store import connect
from tests.sample_site.server import SampleSite
from tests.test_dag import _airflow
from tests.test_ingest import newsroom

SECRET = "n3wsr00m-Secret-7f3a9c"


def test_credentials_never_in_messages(fresh_settings: Settings, feeds_file: Path) -> None:
    """With the cluster unreachable, the one error line names the cluster, not the secret
    (whether it came in the URL, the password or the API key variable)."""
    for env in ({"ELASTICSEARCH_PASSWORD": SECRET, "ELASTICSEARCH_USERNAME": "newsroom"},
                {"ELASTICSEARCH_API_KEY": SECRET}):
        os.environ.update(env)
        try:
            result = newsroom(fresh_settings, "ingest", "--feeds", str(feeds_file),
                              url=f"http://newsroom:{SECRET}@127.0.0.1:9")
        finally:
            for key in env:
                os.environ.pop(key)
        assert result.returncode == 1
        assert "127.0.0.1:9" in result.stderr and SECRET not in result.stderr + result.stdout
    url = replace(fresh_settings, elasticsearch_url=f"https://u:{SECRET}@es.example:9243/")
    assert url.elasticsearch_display_url == "https://***@es.example:9243/"
    assert SECRET not in repr(replace(fresh_settings, elasticsearch_password=SECRET,
                                      elasticsearch_api_key=SECRET))


def test_airflow_run_logs_never_show_the_connection_password(
        fresh_settings: Settings, site: SampleSite, feeds_file: Path, tmp_path: Path) -> None:
    """A DAG run whose cluster credentials come from an Airflow connection (as in
    docker-compose): the password reaches the client, and no log line of the run shows it.
    The local node has no security, so it accepts the credentials it is sent."""
    port = fresh_settings.elasticsearch_url.rsplit(":", 1)[1].strip("/")
    connection = {"conn_type": "generic", "host": "127.0.0.1", "port": int(port),
                  "schema": "http", "login": "newsroom_ingest", "password": SECRET}
    env = {**os.environ,
           "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",  # (Airflow 3.3 prints secrets it is told to mask at DEBUG)
           "AIRFLOW_CONN_NEWSROOM_ES": json.dumps(connection),
           "NEWSROOM_ES_CONN_ID": "newsroom_es",
           "NEWSROOM_FEEDS": str(feeds_file), "NEWSROOM_INDEX": fresh_settings.index_alias,
           "NEWSROOM_ALLOW_NETS": "127.0.0.0/8", "NEWSROOM_HOST_DELAY": "0"}
    env.pop("ELASTICSEARCH_URL", None)
    assert subprocess.run([str(_airflow()), "db", "migrate"], env=env, capture_output=True,
                          timeout=300, check=False).returncode == 0
    run = subprocess.run([str(_airflow()), "dags", "test", "news_ingest"], env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "state=success" in output, output[-3000:]
    assert '"indexed": 0' not in output  # it did reach the cluster through the connection
    logs = [path.read_text(errors="replace")
            for path in (tmp_path / "airflow").rglob("*.log")] + [output]
    assert not [log for log in logs if SECRET in log]


def test_elasticsearch_client_verifies_tls(fresh_settings: Settings) -> None:
    client = connect(replace(fresh_settings, elasticsearch_url="https://es.example:9243"))
    (node,) = client.transport.node_pool.all()
    assert node.config.verify_certs is True


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that nothing trusts; the certificate
    is in `tmp_path/cert.pem`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.fixture
def tls_node(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An Elasticsearch-like node over HTTPS with a private CA's certificate (as the
    docker-compose stack's setup makes one): its URL and the CA file."""
    context = _self_signed(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "green", "number_of_nodes": 1}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", tmp_path / "cert.pem"
    server.shutdown()


def test_a_cluster_behind_a_private_ca_is_reached_with_that_ca_only(
        tls_node: tuple[str, Path]) -> None:
    url, ca = tls_node
    trusting = Settings.load({"ELASTICSEARCH_URL": url, "ELASTICSEARCH_CA_CERTS": str(ca)})
    assert connect(trusting).cluster.health()["status"] == "green"
    with pytest.raises(TlsError):
        connect(Settings.load({"ELASTICSEARCH_URL": url})).options(
            max_retries=0).cluster.health()


@pytest.fixture
def self_signed_site(tmp_path: Path) -> Iterator[str]:
    context = _self_signed(tmp_path)
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body><p>served</p></body></html>")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    assert hits == []  # no request ever got through the handshake


def test_pages_behind_an_untrusted_certificate_are_not_fetched(self_signed_site: str) -> None:
    settings = HttpSettings(allow_nets=parse_nets("127.0.0.0/8"), respect_robots=False)
    with HttpClient(settings) as http, pytest.raises(ItemError) as caught:
        http.get(f"{self_signed_site}/story.html")
    assert caught.value.reason == "tls_error" and not caught.value.transient


def test_stored_text_is_plain_text() -> None:
    body = b"""<html><head><title>Putin and Xi meet</title>
    <script>window.track('head')</script><style>p { color: red }</style></head><body>
    <article><h1>Putin and Xi meet in Beijing</h1>
    <p>Russian President Vladimir Putin and Chinese President Xi Jinping met in Beijing on
    Tuesday <b>for talks</b> on energy and trade, <a href="/x" onclick="steal()">officials</a>
    said.</p>
    <script>document.write('<p>injected paragraph</p>'); alert(1)</script>
    <p>The leaders discussed the Power of Siberia 2 pipeline and payments in yuan and rubles,
    according to statements from the Kremlin and the Chinese foreign ministry.</p>
    <iframe src="https://ads.example/frame"></iframe><noscript><img src="/pixel.gif"></noscript>
    <p>Analysts said the meeting showed &lt;script&gt; tags in copy are text, not markup, and
    that closer ties between Moscow and Beijing would shape the coming year.</p>
    <svg onload="alert(2)"><text>svg text</text></svg>
    </article></body></html>"""
    page = Page(url="https://example.org/a.html", final_url="https://example.org/a.html",
                status=200, content_type="text/html", charset="utf-8", body=body,
                fetched_at=dt.datetime.now(dt.UTC))
    text = extract_article(page).text
    assert "Vladimir Putin" in text and "Power of Siberia 2" in text
    for markup in ("<b>", "<a ", "onclick", "steal()", "alert(", "window.track", "color: red",
                   "injected paragraph", "<iframe", "pixel.gif", "<svg"):
        assert markup not in text, markup

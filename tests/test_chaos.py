"""Fault injection: the chaos scenarios (tests/chaos/suite.py, small budget) against the real
node, the address policy of `pipeline.fetch.check_address` over many addresses without sending
any traffic, and a redirect to a loopback address outside `allow_nets` end to end."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from typing import Any

import pytest
from elasticsearch import Elasticsearch

import pipeline.fetch
from pipeline.fetch import check_address
from pipeline.ingest import Ingestor
from pipeline.ledger import ledger_id
from pipeline.records import ItemError
from pipeline.settings import Feed, Settings, parse_nets
from tests.chaos import server as chaos
from tests.chaos.server import ChaosServer
from tests.chaos.suite import HEALTHY, SCENARIOS, Item, rss, run_scenarios, sample_page


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_chaos_scenario(name: str, fresh_settings: Settings, es: Elasticsearch) -> None:
    (result,) = run_scenarios(fresh_settings, es, names=[name], budget="small")
    detail = f"{result.fault}: {result.did}\n" + "\n".join(result.problems)
    assert result.lost == 0, detail
    assert result.duplicated == 0, detail
    assert result.ok, detail


# --- the address policy, without traffic -----------------------------------------------------

# Made-up names and what the patched resolver says they resolve to.
FAKE_DNS = {
    "metadata.internal.test": ["169.254.169.254"],
    "intranet.test": ["10.0.0.1"],
    "office.test": ["192.168.1.10"],
    "docker.test": ["172.17.0.1"],
    "carrier.test": ["100.64.0.1"],
    "loopback.test": ["127.0.0.1"],
    "any.test": ["0.0.0.0"],
    "v6loopback.test": ["::1"],
    "v6linklocal.test": ["fe80::1"],
    "v6ula.test": ["fd00::1"],
    "v6metadata.test": ["fd00:ec2::254"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "nat64.test": ["64:ff9b::a00:1"],
    "rebind.test": ["93.184.216.34", "10.0.0.1"],  # one public, one private answer
    "public.test": ["93.184.216.34"],
    "public6.test": ["2606:2800:220:1:248:1893:25c8:1946"],
}


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """`socket.getaddrinfo` as `pipeline.fetch` sees it: the made-up names above, numeric
    addresses parsed without any lookup, anything else unknown. Nothing reaches a resolver."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host in FAKE_DNS:
            infos: list[Any] = []
            for address in FAKE_DNS[host]:
                if ipaddress.ip_address(address).version == 6:
                    infos.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                                  (address, port or 0, 0, 0)))
                else:
                    infos.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                                  (address, port or 0)))
            return infos
        try:
            return real(host, port, proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: unknown (no DNS in tests)") \
                from None

    monkeypatch.setattr(pipeline.fetch.socket, "getaddrinfo", getaddrinfo)


NON_PUBLIC = [
    # private IPv4
    "http://10.0.0.1/", "http://10.255.255.254:8080/x", "http://172.16.0.1/",
    "http://172.31.255.254/", "http://192.168.0.1/", "http://192.168.255.254/",
    # loopback, "this host", link-local and the cloud metadata address, CGNAT
    "http://127.0.0.1/", "http://127.255.255.254/", "http://0.0.0.0/", "http://169.254.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://100.127.255.254/",
    # IPv6: loopback, unspecified, link-local, unique-local (AWS metadata), IPv4-mapped, NAT64
    "http://[::1]/", "http://[::]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://[fd00:ec2::254]/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b:1::a00:1]/",
    # IPv6 carrying a private IPv4 otherwise: 6to4, Teredo, IPv4-compatible (deprecated)
    "http://[2002:a00:1::]/", "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
    "http://[::a00:1]/", "http://[::7f00:1]/",
    # other spellings of loopback: decimal, hex, octal, short
    "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/",
    # names resolving to such addresses
    *(f"http://{name}/" for name in FAKE_DNS if not name.startswith("public")),
]


@pytest.mark.parametrize("url", NON_PUBLIC)
def test_non_public_addresses_are_refused(url: str, fake_dns: None) -> None:
    with pytest.raises(ItemError) as refused:
        check_address(url, ())
    assert refused.value.reason == "blocked_address", refused.value


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "https://93.184.216.34:8443/a",
                                 "http://public.test/news", "https://public6.test/",
                                 "http://[2606:2800:220:1:248:1893:25c8:1946]/",
                                 "http://[64:ff9b::5db8:d822]/", "http://[2002:5db8:d822::]/"])
def test_public_addresses_are_allowed(url: str, fake_dns: None) -> None:
    check_address(url, ())


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/pub/",
                                 "gopher://127.0.0.1:70/", "javascript:alert(1)",
                                 "/relative/path"])
def test_other_schemes_are_refused(url: str, fake_dns: None) -> None:
    with pytest.raises(ItemError) as refused:
        check_address(url, ())
    assert refused.value.reason == "blocked_scheme"


def test_allowing_loopback_lets_only_loopback_v4_through(fake_dns: None) -> None:
    loopback = parse_nets("127.0.0.0/8")
    for url in ["http://127.0.0.1:8765/", "http://127.0.0.2/", "http://2130706433/",
                "http://0x7f000001/", "http://127.1/", "http://loopback.test/"]:
        check_address(url, loopback)
    for url in ["http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://10.0.0.1/",
                "http://169.254.169.254/", "http://metadata.internal.test/",
                "http://rebind.test/", "http://0.0.0.0/"]:
        with pytest.raises(ItemError) as refused:
            check_address(url, loopback)
        assert refused.value.reason == "blocked_address", url


def test_unknown_names_fail_as_dns_errors(fake_dns: None) -> None:
    with pytest.raises(ItemError) as failed:
        check_address("http://no-such-host.test/", ())
    assert (failed.value.reason, failed.value.transient) == ("dns_error", True)


# --- a refused redirect, end to end ----------------------------------------------------------

def test_redirect_to_loopback_outside_allow_nets_is_refused(fresh_settings: Settings,
                                                            es: Elasticsearch) -> None:
    """With only 127.0.0.1/32 let through, an item redirecting to a second server on
    127.0.0.2 fails `blocked_address` and that server records zero hits; the healthy item in
    the same feed is indexed."""
    settings = replace(fresh_settings, http=replace(
        fresh_settings.http, allow_nets=parse_nets("127.0.0.1/32"), per_host_delay=0.0,
        read_timeout=2.0, connect_timeout=2.0))
    with ChaosServer() as site, ChaosServer(host="127.0.0.2") as other:
        other.route("/secret", chaos.page(b"<html>internal</html>"))
        target = f"http://127.0.0.2:{other.port}/secret"
        hop = site.route("/hop", chaos.redirect(target))
        healthy = site.route(f"/{HEALTHY}", chaos.page(sample_page(HEALTHY, site.base_url)))
        site.route("/feed.xml", chaos.page(rss([Item(hop, "hop"), Item(healthy, "ok")]),
                                           "application/rss+xml"))
        with Ingestor(settings, es=es) as ingestor:
            report = ingestor.ingest_feed(Feed(name="redirect", url=site.url("/feed.xml")),
                                          "redirect-1")
    record = es.get(index=settings.ledger_index, id=ledger_id(hop))["_source"]
    assert (record["status"], record["reason"], record["retryable"]) == (
        "failed", "blocked_address", False)
    assert "127.0.0.2" in record["error"]
    assert other.hits == []
    assert [h.path for h in site.content_hits()] == ["/feed.xml", "/hop", f"/{HEALTHY}"]
    assert (report.indexed, report.failed) == (1, 1)


def test_a_second_dns_answer_cannot_route_around_the_guard(
        fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a name answering an allowed address when checked, then a forbidden one
    (127.0.0.2, outside 127.0.0.1/32) to whoever asks next. The request goes to the address
    that was checked; the forbidden server records zero hits."""
    from pipeline.fetch import HttpClient

    http = replace(fresh_settings.http, allow_nets=parse_nets("127.0.0.1/32"),
                   per_host_delay=0.0, read_timeout=2.0, connect_timeout=2.0)
    real = socket.getaddrinfo
    answers: list[str] = []

    with ChaosServer(host="127.0.0.2") as other:
        other.route("/page", chaos.page(b"<html>internal</html>"))
        with ChaosServer(port=other.port) as site:
            site.route("/page", chaos.page(sample_page(HEALTHY, site.base_url)))

            def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
                if host != "rebinding.test":
                    return real(host, port, *args, **kwargs)
                answers.append("127.0.0.1" if not answers else "127.0.0.2")
                return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                         (answers[-1], port or 0))]

            monkeypatch.setattr(pipeline.fetch.socket, "getaddrinfo", getaddrinfo)
            with HttpClient(replace(http, respect_robots=False)) as client:
                page = client.get(f"http://rebinding.test:{other.port}/page")
    assert page.status == 200 and b"internal" not in page.body
    assert [h.path for h in site.content_hits()] == ["/page"]
    assert other.hits == []
    assert answers == ["127.0.0.1"]  # resolved once, for the check


def test_proxy_variables_do_not_route_around_the_guard(
        fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy named in the environment is not used: it would resolve and connect on its own,
    past the address guard."""
    from pipeline.fetch import HttpClient

    http = replace(fresh_settings.http, per_host_delay=0.0, respect_robots=False)
    with ChaosServer() as proxy, ChaosServer() as site:
        site.route("/page", chaos.page(sample_page(HEALTHY, site.base_url)))
        for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(variable, proxy.base_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with HttpClient(http) as client:
            assert client.get(site.url("/page")).status == 200
    assert proxy.hits == [] and [h.path for h in site.content_hits()] == ["/page"]


def test_an_https_request_goes_to_the_checked_address_under_its_own_name(
        fake_dns: None) -> None:
    """What reaches the wire for https://public.test/: the checked address as the connection's
    target, the host's name for the Host header and for TLS (SNI and certificate), and no
    connection kept for reuse (connections are pooled by address, and one verified for a name
    must not carry another's request)."""
    import httpx

    from pipeline.fetch import HttpClient
    from pipeline.settings import HttpSettings

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        # a body still to be read off the wire, as a transport's is
        return httpx.Response(200, headers={"Content-Type": "text/html"},
                              stream=httpx.ByteStream(b"<p>x</p>"))

    with HttpClient(HttpSettings(per_host_delay=0.0, respect_robots=False)) as client:
        client._client = httpx.Client(transport=httpx.MockTransport(answer))
        client.get("https://public.test/news?id=1")
        client.get("http://public.test/plain")
    secure, plain = seen
    assert str(secure.url) == "https://93.184.216.34/news?id=1"
    assert secure.headers["Host"] == "public.test"
    assert secure.extensions["sni_hostname"] == "public.test"
    assert secure.headers["Connection"] == "close"
    assert str(plain.url) == "http://93.184.216.34/plain" and plain.headers["Host"] == "public.test"

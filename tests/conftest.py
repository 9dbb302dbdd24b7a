"""Shared fixtures: the real local Elasticsearch node, the sample corpus and its server.

Every test session writes under its own index alias (`test-<random>`), removed at the end, so
the tests never touch the demo's `news-articles` corpus.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import Elasticsearch

from pipeline.localnode import LocalNode
from pipeline.polite import HostLimiter
from pipeline.records import Page
from pipeline.settings import Settings, parse_nets
from pipeline.store import connect, ensure_indices
from tests.eval.corpus import SAMPLE, SAMPLE_BASE
from tests.sample_site.server import SampleSite


@dataclass(frozen=True)
class SampleArticle:
    """One entry of a sample outlet's manifest (tests/sample_site/expected/*.yaml)."""

    outlet: str
    raw: dict[str, Any]

    @property
    def page_path(self) -> Path | None:
        return SAMPLE / "www" / self.outlet / self.raw["page"] if self.raw["page"] else None

    @property
    def gold_text(self) -> str:
        return (SAMPLE / "expected" / self.raw["gold"]).read_text(encoding="utf-8").strip()

    def url(self, base: str) -> str:
        return f"{base}/{self.outlet}/{self.raw['page']}"

    def page(self, base: str = SAMPLE_BASE) -> Page:
        """The page as the sample server would serve it under `base`."""
        assert self.page_path is not None
        body = self.page_path.read_bytes().replace(b"{BASE_URL}", base.encode())
        url = self.raw["feed_link"].replace("{BASE_URL}", base)
        return Page(url=url, final_url=url, status=200, content_type="text/html",
                    charset="utf-8", body=body, fetched_at=datetime.now(UTC))


def sample_articles(kind: str | None = "article") -> list[SampleArticle]:
    articles = []
    for manifest in sorted((SAMPLE / "expected").glob("*.yaml")):
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        for raw in data["articles"]:
            if kind is None or raw["kind"] == kind:
                articles.append(SampleArticle(outlet=data["slug"], raw=raw))
    return articles


def republished_later(article: SampleArticle, base: str, hours: int = 1) -> str:
    """The article's page as served under `base`, with every time it declares moved `hours`
    later: a copy republished elsewhere, as aggregators and mirrors do. (Of two copies
    published at the same minute, the lower id is the original, whichever site it is on.)"""
    page = article.page_path.read_text(encoding="utf-8").replace("{BASE_URL}", base)
    for stamp in set(re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", page)):
        page = page.replace(stamp, (datetime.fromisoformat(stamp)
                                    + timedelta(hours=hours)).isoformat())
    return page


def article_id(article: SampleArticle) -> str:
    return f"{article.outlet}/{Path(article.raw['page'] or 'missing').stem}"


def write_feeds_file(path: Path, base: str) -> Path:
    """The sample feeds file with its URLs pointing at a sample server on `base`."""
    text = (SAMPLE / "feeds.yaml").read_text(encoding="utf-8").replace(SAMPLE_BASE, base)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_host_state_between_tests() -> Iterator[None]:
    """Each test starts with no host paused or delayed. The limiter is process-wide, and test
    servers on loopback reuse ports: a `Retry-After: 3600` one test provoked would otherwise
    pause whichever later server gets the same port."""
    HostLimiter._registry.clear()
    yield
    HostLimiter._registry.clear()


@pytest.fixture(scope="session")
def es_node() -> LocalNode:
    node = LocalNode.from_env()
    node.start()
    return node


def pytest_sessionstart(session: pytest.Session) -> None:
    # Some tests check the node this checkout installs (its user, its plugin build): on a node
    # another checkout runs they would fail without saying why, so no test runs.
    if notice := LocalNode.from_env().not_ours():
        pytest.exit(f"cannot test: {notice}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def settings(es_node: LocalNode) -> Iterator[Settings]:
    alias = f"test-{uuid.uuid4().hex[:8]}"
    base = Settings.load()
    # The sample sites are ours, on loopback: no delay between requests to them.
    settings = replace(base, elasticsearch_url=es_node.url, index_alias=alias,
                       http=replace(base.http, allow_nets=parse_nets("127.0.0.0/8"),
                                    per_host_delay=0.0))
    yield settings
    es = connect(settings)
    es.options(ignore_status=404).indices.delete(index=f"{alias}*", expand_wildcards="all")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")


@pytest.fixture
def fresh_settings(settings: Settings) -> Iterator[Settings]:
    """Settings with an alias of its own, for tests that need an empty corpus."""
    alias = f"{settings.index_alias}-{uuid.uuid4().hex[:6]}"
    yield replace(settings, index_alias=alias)
    es = connect(settings)
    es.options(ignore_status=404).indices.delete(index=f"{alias}*", expand_wildcards="all")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")


@pytest.fixture
def es(fresh_settings: Settings) -> Elasticsearch:
    client = connect(fresh_settings)
    ensure_indices(client, fresh_settings)
    return client


@pytest.fixture
def site() -> Iterator[SampleSite]:
    with SampleSite() as running:
        yield running


@pytest.fixture
def feeds_file(tmp_path: Path, site: SampleSite) -> Path:
    return write_feeds_file(tmp_path / "feeds.yaml", site.base_url)


def assert_sample_corpus_landed(es: Elasticsearch, settings: Settings, base: str) -> set[str]:
    """Check what a run over the sample corpus (served at `base`) left in Elasticsearch:
    relevant articles indexed, off-topic ones and the AMP / tracking-URL copies not indexed as
    documents of their own (the ledger says `duplicate` and names the original), the 404 item
    failed with its error. Returns the indexed URLs."""
    from pipeline.ledger import ledger_id
    from pipeline.urls import url_id

    def at(url: str) -> str:
        return url.replace("{BASE_URL}", base)

    alias = settings.index_alias
    es.indices.refresh(index=alias)
    stored = {hit["_source"]["url"] for hit in es.search(
        index=alias, size=500, source=["url"], query={"match_all": {}})["hits"]["hits"]}
    assert len(stored) == es.count(index=alias)["count"]
    syndicated = {copy.raw["duplicate_of"]: copy for copy in sample_articles("syndicated_copy")}
    for article in sample_articles("article"):
        indexed = at(article.raw["canonical"]) in stored
        copy = syndicated.get(f"{article.outlet}/{article.raw['page']}")
        if copy is None:
            assert indexed is article.raw["relevant"], f"{article.raw['canonical']}: {indexed}"
            continue
        # A wire story and its syndicated copy (published later) are one document: the
        # original, with the copy recorded on it, whichever came first.
        original, copy_url = at(article.raw["canonical"]), at(copy.raw["canonical"])
        assert original in stored and copy_url not in stored
        duplicates = es.get(index=alias, id=url_id(original))["_source"]["duplicates"]
        assert [d["url"] for d in duplicates] == [copy_url]
    for copy_kind in ("amp_copy", "tracking_link"):
        # The copy and its original are one document under the canonical URL; whichever of
        # the two URLs came first (feed order, task order) is `indexed`, the other `duplicate`.
        (copy,) = sample_articles(copy_kind)
        canonical = at(copy.raw["canonical"])
        assert at(copy.raw["feed_link"]) not in stored and canonical in stored
        (original,) = [a for a in sample_articles("article")
                       if at(a.raw["canonical"]) == canonical]
        records = [es.get(index=settings.ledger_index, id=ledger_id(at(a.raw["feed_link"])))
                   ["_source"] for a in (copy, original)]
        assert sorted(r["status"] for r in records) == ["duplicate", "indexed"]
        assert {r["doc_id"] or r["duplicate_of"] for r in records} == {url_id(canonical)}
    (missing,) = sample_articles("missing")
    failed = es.get(index=settings.ledger_index, id=ledger_id(at(missing.raw["feed_link"])))
    assert failed["_source"]["status"] == "failed"
    assert failed["_source"]["reason"] == "http_404" and "404" in failed["_source"]["error"]
    return stored

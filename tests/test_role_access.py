"""The roles of config/security/roles.json, enforced on the pipeline's real traffic.

The local node has no security module, so a proxy in front of it plays Elasticsearch's
authorization for one role: each request is mapped to the privileges Elasticsearch checks for it
(tests/es_roles.py) and refused with 403 `security_exception` when the role lacks one. The
pipeline then runs as that role against the real node: the ingest role must carry a whole run
without creating, deleting or changing an index, and stop with what to do where it would need
to; the maintenance role must set up, reindex and lift a dead reindex's block.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from pipeline.ingest import Ingestor
from pipeline.maintenance import reindex
from pipeline.settings import CONFIG_DIR, Feed, Settings, load_feeds
from pipeline.store import (
    StoreUnavailable,
    alias_indices,
    articles_version,
    claim_for_reindex,
    connect,
    open_store,
    reindex_claim,
)
from tests.chaos.es_proxy import FaultyProxy
from tests.es_roles import INDEX_ADMIN_PRIVILEGES, Need, denied, load_roles, required
from tests.sample_site.server import SampleSite

VERSION = articles_version(CONFIG_DIR)  # the article mapping's version as shipped


@dataclass
class Enforced:
    """Settings that reach the node as `role`, and what that role's requests needed."""

    settings: Settings
    needed: list[Need] = field(default_factory=list)
    refused: list[Need] = field(default_factory=list)


@pytest.fixture
def as_role(fresh_settings: Settings) -> Iterator[Callable[[str], Enforced]]:
    proxies: list[FaultyProxy] = []
    roles = load_roles()
    alias = fresh_settings.index_alias

    def production_name(index: str) -> str:
        """The test's alias stands for the production one the roles name."""
        return "news-articles" + index[len(alias):] if index.startswith(alias) else index

    def make(role_name: str) -> Enforced:
        role = roles[role_name]
        enforced = Enforced(fresh_settings)

        def authorize(method: str, path: str, body: bytes) -> object:
            needs = required(method, path, body)
            enforced.needed.extend(needs)
            missing = denied(role, needs, production_name)
            if not missing:
                return None
            enforced.refused.extend(missing)
            reason = f"action is unauthorized for role [{role_name}]: {missing}"
            return 403, json.dumps({"error": {"type": "security_exception", "reason": reason},
                                    "status": 403}).encode()

        proxy = FaultyProxy(fresh_settings.elasticsearch_url, authorize)
        proxies.append(proxy)
        enforced.settings = replace(fresh_settings, elasticsearch_url=proxy.url)
        return enforced

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def northwire(site: SampleSite, feeds_file: Path) -> Feed:
    return next(f for f in load_feeds(feeds_file) if f.name == "Northern Wire")


def _admin(needs: list[Need]) -> list[Need]:
    return [(privilege, index) for privilege, index in needs
            if privilege in INDEX_ADMIN_PRIVILEGES or privilege == "manage_index_templates"]


def test_the_ingest_role_runs_the_pipeline_without_administering_an_index(
        as_role: Callable[[str], Enforced], northwire: Feed) -> None:
    maintenance = as_role("newsroom_maintenance")
    open_store(maintenance.settings)  # what `newsroom setup` and the DAGs' prepare task do
    assert maintenance.refused == [] and _admin(maintenance.needed)

    ingest = as_role("newsroom_ingest")
    for run in ("run-1", "run-2"):
        with Ingestor(ingest.settings, es=open_store(ingest.settings)) as ingestor:
            report = ingestor.ingest_feed(northwire, run)
        assert report.failed == 0, report.errors
    assert ingest.refused == []
    assert ingest.needed and _admin(ingest.needed) == []
    es = connect(maintenance.settings)
    assert es.count(index=ingest.settings.index_alias)["count"] > 0


def test_the_ingest_role_stops_with_what_to_do_when_the_indices_are_missing(
        as_role: Callable[[str], Enforced], fresh_settings: Settings) -> None:
    ingest = as_role("newsroom_ingest")
    with pytest.raises(StoreUnavailable, match="newsroom setup"):
        open_store(ingest.settings)
    assert ingest.refused and all(need in _admin(ingest.refused) for need in ingest.refused)
    assert alias_indices(connect(fresh_settings), fresh_settings.index_alias) == []


def test_a_dead_reindexs_block_waits_for_the_maintenance_role(
        as_role: Callable[[str], Enforced], fresh_settings: Settings, northwire: Feed,
        caplog: pytest.LogCaptureFixture) -> None:
    maintenance = as_role("newsroom_maintenance")
    es = open_store(maintenance.settings)
    source = f"{fresh_settings.index_alias}-v{VERSION}"
    claim_for_reindex(es, source)  # a reindex blocked the index, then died
    es.indices.put_settings(index=source, settings={"index.blocks.write": True})
    stale = 0.0  # every claim is older than the lease

    ingest = as_role("newsroom_ingest")
    with caplog.at_level(logging.ERROR, logger="pipeline.store"):
        ingest_es = open_store(replace(ingest.settings, reindex_lease_s=stale))
    assert "write-blocked by a reindex" in caplog.text
    assert reindex_claim(es, source) is not None
    with Ingestor(ingest.settings, es=ingest_es) as ingestor:
        report = ingestor.ingest_feed(northwire, "blocked")
    assert report.indexed == 0 and report.failed > 0
    assert {e["reason"] for e in report.errors} == {"index_blocked"}

    open_store(replace(maintenance.settings, reindex_lease_s=stale))  # lifts it
    assert reindex_claim(es, source) is None
    with Ingestor(ingest.settings, es=open_store(ingest.settings)) as ingestor:
        report = ingestor.ingest_feed(northwire, "unblocked")
    assert report.indexed > 0 and report.failed == 0
    assert maintenance.refused == []
    assert ingest.refused == [("manage", source)]  # its one try at lifting the block


def test_the_maintenance_role_reindexes(as_role: Callable[[str], Enforced],
                                        next_config: Path) -> None:
    maintenance = as_role("newsroom_maintenance")
    es: Elasticsearch = open_store(maintenance.settings)
    es.index(index=maintenance.settings.index_alias, id="one",
             document={"url": "https://example.org/one"}, refresh=True)
    moved = replace(maintenance.settings, config_dir=next_config)
    report = reindex(open_store(moved, reindexing=True), moved)
    assert (report.status, report.copied) == ("reindexed", 1)
    assert maintenance.refused == []


@pytest.fixture
def next_config(tmp_path: Path) -> Path:
    """A config directory whose article mapping is one version on."""
    import shutil

    from pipeline.settings import CONFIG_DIR

    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    path = config / "mappings" / "articles.json"
    body = json.loads(path.read_text())
    body["version"] += 1
    path.write_text(json.dumps(body))
    return config


def test_the_analyst_role_searches_with_the_command_line(
        as_role: Callable[[str], Enforced], northwire: Feed, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    maintenance = as_role("newsroom_maintenance")
    with Ingestor(maintenance.settings, es=open_store(maintenance.settings)) as ingestor:
        ingestor.ingest_feed(northwire, "run-1")
    analyst = as_role("newsroom_analyst")
    monkeypatch.setenv("ELASTICSEARCH_URL", analyst.settings.elasticsearch_url)
    monkeypatch.setenv("NEWSROOM_INDEX", analyst.settings.index_alias)
    assert main(["search", "Putin", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] > 0
    assert analyst.refused == [("monitor", None)]  # the cluster's health only, which it may skip

"""The Elasticsearch roles `newsroom setup` creates (config/security/roles.json), checked as data.

The local development node runs without the security module, so instead of asking Elasticsearch
these tests resolve the role definitions themselves, with an index-name matcher that behaves as
Elasticsearch's role index patterns do for `*` and `?` wildcards: the analyst reads the articles
and the feed health and nothing else, writes nothing and has no cluster privilege; the ingest
role reads and writes the documents of every index the pipeline uses but may not create, delete
or change an index; the maintenance role manages them. A deliberately loosened copy of the
analyst role shows that the checks catch what they are meant to. (tests/test_role_access.py
runs the pipeline against the real node as each role, through a proxy that enforces them.)
"""

from __future__ import annotations

import copy

import pytest

from tests.es_roles import (
    INDEX_ADMIN_PRIVILEGES,
    READ_ONLY_PRIVILEGES,
    WRITE_PRIVILEGES,
    Role,
    index_matches,
    index_privileges,
    load_roles,
)

ALIAS = "news-articles"
ARTICLE_INDICES = ("news-articles-v1", "news-articles-v2")
FEED_HEALTH = "news-articles-feed-health"
LEDGER = "news-articles-ledger"
FEED_STATE = "news-articles-feeds"
ANALYST_READS = (ALIAS, *ARTICLE_INDICES, FEED_HEALTH)
ANALYST_MAY_NOT_READ = (LEDGER, FEED_STATE)
PIPELINE_INDICES = (*ANALYST_READS, *ANALYST_MAY_NOT_READ)


def analyst_problems(role: Role) -> list[str]:
    """What is wrong with `role` as the read-only analyst role (empty: nothing)."""
    problems = []
    for index in ANALYST_READS:
        if "read" not in index_privileges(role, index):
            problems.append(f"cannot read {index}")
    for index in ANALYST_MAY_NOT_READ:
        if index_privileges(role, index):
            problems.append(f"has {sorted(index_privileges(role, index))} on {index}")
    for entry in role.get("indices", []):
        writes = set(entry["privileges"]) & WRITE_PRIVILEGES
        if writes:
            problems.append(f"may {sorted(writes)} on {entry['names']}")
        unexpected = set(entry["privileges"]) - READ_ONLY_PRIVILEGES
        if unexpected - writes:
            problems.append(f"has non-read privileges {sorted(unexpected - writes)}")
    if role.get("cluster"):
        problems.append(f"has cluster privileges {role['cluster']}")
    if role.get("run_as"):
        problems.append(f"may run as {role['run_as']}")
    for app in role.get("applications", []):
        for privilege in app["privileges"]:
            if privilege != "read" and not privilege.endswith(".read"):
                problems.append(f"{app['application']} privilege {privilege} is not read-only")
    return problems


@pytest.fixture(scope="module")
def roles() -> dict[str, Role]:
    return load_roles()


# --- the matcher ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "index", "expected"), [
    ("news-articles", "news-articles", True),
    ("news-articles", "news-articles-v1", False),
    ("news-articles-v*", "news-articles-v1", True),
    ("news-articles-v*", "news-articles-v", True),
    ("news-articles-v*", "news-articles", False),
    ("news-articles-v*", "news-articles-ledger", False),
    ("news-articles*", "news-articles", True),
    ("news-articles*", "news-articles-ledger", True),
    ("news-articles*", "news-articles-feeds", True),
    ("news-articles*", "other-news-articles", False),
    ("*", "news-articles-ledger", True),
    ("news-articles-v?", "news-articles-v2", True),
    ("news-articles-v?", "news-articles-v10", False),
    ("news.articles", "news-articles", False),
])
def test_matcher_follows_wildcard_semantics(pattern: str, index: str, expected: bool) -> None:
    assert index_matches(pattern, index) is expected


def test_matcher_refuses_patterns_it_cannot_judge() -> None:
    for pattern in ("/news-.*/", "-news-articles-ledger", "<news-articles-{now/d}>"):
        with pytest.raises(ValueError):
            index_matches(pattern, "news-articles")


# --- the roles -----------------------------------------------------------------------------------

def test_roles_file_defines_the_three_roles(roles: dict[str, Role]) -> None:
    assert set(roles) == {"newsroom_analyst", "newsroom_ingest", "newsroom_maintenance"}
    for role in roles.values():
        for entry in role.get("indices", []):
            for pattern in entry["names"]:
                index_matches(pattern, ALIAS)  # every pattern is one the matcher can judge


def test_analyst_reads_articles_and_feed_health_only(roles: dict[str, Role]) -> None:
    assert analyst_problems(roles["newsroom_analyst"]) == []


def test_analyst_read_privileges_in_detail(roles: dict[str, Role]) -> None:
    analyst = roles["newsroom_analyst"]
    for index in ANALYST_READS:
        assert "read" in index_privileges(analyst, index), index
        assert not index_privileges(analyst, index) & WRITE_PRIVILEGES, index
    for index in ANALYST_MAY_NOT_READ:
        assert index_privileges(analyst, index) == set(), index
    assert analyst.get("cluster", []) == []
    apps = analyst.get("applications", [])
    assert apps and all(app["application"] == "kibana-.kibana" for app in apps)


def test_the_analyst_check_catches_a_loosened_role(roles: dict[str, Role]) -> None:
    """A prefix wildcard (news-articles*) would expose the ledger and the feed state."""
    loose = copy.deepcopy(roles["newsroom_analyst"])
    loose["indices"][0]["names"] = ["news-articles*"]
    problems = analyst_problems(loose)
    assert any(LEDGER in problem for problem in problems), problems
    assert any(FEED_STATE in problem for problem in problems), problems


@pytest.mark.parametrize(("change", "expected"), [
    ("index_write", "may ['write']"),
    ("cluster", "cluster privileges"),
    ("kibana_all", "is not read-only"),
    ("no_feed_health", f"cannot read {FEED_HEALTH}"),
])
def test_the_analyst_check_catches_other_loosenings(roles: dict[str, Role], change: str,
                                                    expected: str) -> None:
    role = copy.deepcopy(roles["newsroom_analyst"])
    if change == "index_write":
        role["indices"][0]["privileges"].append("write")
    elif change == "cluster":
        role["cluster"] = ["monitor"]
    elif change == "kibana_all":
        role["applications"][0]["privileges"].append("feature_discover.all")
    else:
        role["indices"][0]["names"].remove(FEED_HEALTH)
    problems = analyst_problems(role)
    assert any(expected in problem for problem in problems), problems


def test_ingest_writes_documents_of_every_pipeline_index_and_administers_none(
        roles: dict[str, Role]) -> None:
    ingest = roles["newsroom_ingest"]
    for index in PIPELINE_INDICES:
        held = index_privileges(ingest, index)
        assert {"read", "write", "view_index_metadata"} <= held, f"{index}: {sorted(held)}"
        assert not held & INDEX_ADMIN_PRIVILEGES, f"{index}: {sorted(held)}"
    assert index_privileges(ingest, "other-index") == set()
    assert set(ingest["cluster"]) == {"monitor"}  # no templates, no security, no cluster settings


def test_maintenance_manages_every_pipeline_index_only(roles: dict[str, Role]) -> None:
    maintenance = roles["newsroom_maintenance"]
    for index in PIPELINE_INDICES:
        held = index_privileges(maintenance, index)
        assert {"create_index", "delete_index", "manage", "write"} <= held, index
    assert index_privileges(maintenance, "other-index") == set()
    assert set(maintenance["cluster"]) == {"monitor", "manage_index_templates"}

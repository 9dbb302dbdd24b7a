"""The local Elasticsearch node: a JDK that the version supports, idempotent start, status."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline.localnode import MIN_JAVA, LocalNode, _java_version, find_java_home


def test_java_home_is_new_enough() -> None:
    version = _java_version(find_java_home())
    assert version is not None and version >= MIN_JAVA


def test_start_is_idempotent_and_status_reports_health(es_node: LocalNode) -> None:
    pid = es_node.running_pid()
    health = es_node.start(timeout=30)  # already running: returns at once
    assert health["status"] in ("green", "yellow")
    assert es_node.running_pid() == pid
    status = subprocess.run([sys.executable, "-m", "pipeline.cli", "es", "status"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "ELASTICSEARCH_URL": es_node.url})
    assert status.returncode == 0
    assert "is green" in status.stdout or "is yellow" in status.stdout


def test_node_runs_as_unprivileged_user(es_node: LocalNode) -> None:
    pid = es_node.running_pid()
    assert pid is not None
    assert os.stat(f"/proc/{pid}").st_uid != 0


def test_client_major_version_matches_server(es_node: LocalNode) -> None:
    import elasticsearch
    import httpx

    # the minimal distribution has no `GET /`; the nodes API says the version
    nodes = httpx.get(f"{es_node.url}/_nodes/_local").json()["nodes"]
    server = next(iter(nodes.values()))["version"]
    assert elasticsearch.__versionstr__.split(".")[0] == server.split(".")[0]


def test_status_of_a_node_that_is_not_there() -> None:
    node = LocalNode(url="http://127.0.0.1:9")
    assert node.health() is None
    status = subprocess.run([sys.executable, "-m", "pipeline.cli", "es", "status"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "ELASTICSEARCH_URL": "http://127.0.0.1:9"})
    assert status.returncode == 1 and "not running" in status.stdout

"""The local Elasticsearch node: a JDK that the version supports, idempotent start, status, and
the project's analysis plugin built from its sources and installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pipeline.localnode import (
    MIN_JAVA,
    PLUGIN_NAME,
    PLUGIN_SOURCE,
    LocalNode,
    _java_version,
    find_java_home,
    plugin_digest,
)
from pipeline.settings import PROJECT_ROOT


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


def test_a_node_another_checkout_runs_is_named_and_stops_the_tests(es_node: LocalNode,
                                                                    tmp_path: Path) -> None:
    assert es_node.serving_home() == es_node.home
    assert es_node.not_ours() is None
    # a cluster elsewhere is not one `newsroom es` manages: nothing to say (and `es status` on
    # it does not fail for want of a local port)
    assert LocalNode(url="http://es.example.internal:9200").not_ours() is None
    # another checkout of the project, whose port this node already serves
    env = {**os.environ, "ELASTICSEARCH_URL": es_node.url,
           "NEWSROOM_LOCAL_DIR": str(tmp_path / "other-checkout")}
    other = LocalNode(url=es_node.url, base_dir=tmp_path / "other-checkout")
    notice = other.not_ours()
    assert notice is not None and str(es_node.home) in notice
    # `newsroom es start` there uses the node as it is and says whose it is
    start = subprocess.run([sys.executable, "-m", "pipeline.cli", "es", "start"],
                           capture_output=True, text=True, check=False, env=env)
    assert start.returncode == 0 and str(es_node.home) in start.stderr
    assert not (tmp_path / "other-checkout" / "downloads").exists()  # nothing installed
    # nor does `newsroom es stop` there stop it; it says whose it is
    stop = subprocess.run([sys.executable, "-m", "pipeline.cli", "es", "stop"],
                          capture_output=True, text=True, check=False, env=env)
    assert stop.stdout.strip() == "not running" and str(es_node.home) in stop.stderr
    assert es_node.health() is not None
    # its tests stop before the first with that notice, rather than fail one by one without
    # saying why (the first here needs no node)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_localnode.py::test_java_home_is_new_enough",
                          "tests/test_localnode.py::test_node_runs_as_unprivileged_user"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, env=env)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "not this checkout's node" in run.stdout + run.stderr
    assert "passed" not in run.stdout and "failed" not in run.stdout


def test_status_of_a_node_that_is_not_there() -> None:
    node = LocalNode(url="http://127.0.0.1:9")
    assert node.health() is None
    status = subprocess.run([sys.executable, "-m", "pipeline.cli", "es", "status"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "ELASTICSEARCH_URL": "http://127.0.0.1:9"})
    assert status.returncode == 1 and "not running" in status.stdout


def test_the_node_runs_the_analysis_plugin_of_these_sources(es_node: LocalNode) -> None:
    nodes = httpx.get(f"{es_node.url}/_nodes/_local/plugins").json()["nodes"]
    plugins = {plugin["name"] for plugin in next(iter(nodes.values()))["plugins"]}
    assert PLUGIN_NAME in plugins
    assert es_node.plugin_current()


def test_a_change_to_the_plugin_sources_calls_for_a_new_build(tmp_path: Path) -> None:
    source = tmp_path / "analysis"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("target"))
    before = plugin_digest(source)
    assert before == plugin_digest(PLUGIN_SOURCE)  # what Maven writes to target/ is not a source
    java = next((source / "src" / "main").rglob("*.java"))
    java.write_text(java.read_text() + "\n// changed\n")
    assert plugin_digest(source) != before

    node = LocalNode(url="http://127.0.0.1:9", base_dir=tmp_path / "local")
    node.__dict__["node_dir"] = tmp_path / "node"  # not a folder for the service user's sake
    (node.home / "plugins" / PLUGIN_NAME).mkdir(parents=True)
    node.plugin_stamp.write_text("an-older-build\n")
    assert not node.plugin_current()  # `start` rebuilds, reinstalls and restarts such a node
    node.plugin_stamp.write_text(plugin_digest() + "\n")
    assert node.plugin_current()

"""Crash safety: `newsroom ingest` killed with SIGKILL at several points of a run, then run
again, leaves the corpus an uninterrupted run leaves: the same ids, the same duplicates lists,
the same ledger outcomes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.settings import Settings
from pipeline.store import connect, ensure_indices
from tests.sample_site.server import SampleSite


def _ingest(settings: Settings, feeds_file: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ELASTICSEARCH_URL": settings.elasticsearch_url,
           "NEWSROOM_INDEX": settings.index_alias, "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
           "NEWSROOM_HOST_DELAY": "0"}
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "ingest", "--feeds",
                             str(feeds_file)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _corpus(es: Elasticsearch, settings: Settings) -> dict[str, Any]:
    es.indices.refresh(index=f"{settings.index_alias},{settings.ledger_index}")
    docs = {hit["_id"]: sorted(d["url"] for d in hit["_source"].get("duplicates") or [])
            for hit in es.search(index=settings.index_alias, size=500,
                                 source=["duplicates"])["hits"]["hits"]}
    ledger = {hit["_source"]["url"]: (hit["_source"]["status"], hit["_source"]["reason"],
                                      hit["_source"]["doc_id"], hit["_source"]["duplicate_of"])
              for hit in es.search(index=settings.ledger_index, size=500)["hits"]["hits"]}
    return {"documents": docs, "ledger": ledger}


def _alias(settings: Settings, name: str) -> tuple[Settings, Elasticsearch]:
    scoped = replace(settings, index_alias=f"{settings.index_alias}-{name}")
    es = connect(scoped)
    ensure_indices(es, scoped)
    return scoped, es


def test_sigkill_at_any_point_then_rerun_equals_an_uninterrupted_run(
        fresh_settings: Settings, site: SampleSite, feeds_file: Path) -> None:
    whole, whole_es = _alias(fresh_settings, "whole")
    started = time.monotonic()
    assert _ingest(whole, feeds_file).wait(timeout=600) == 0
    duration = time.monotonic() - started
    expected = _corpus(whole_es, whole)
    assert expected["documents"] and expected["ledger"]

    for n, fraction in enumerate((0.3, 0.55, 0.8)):
        killed, es = _alias(fresh_settings, f"kill{n}")
        run = _ingest(killed, feeds_file)
        time.sleep(duration * fraction)
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert _ingest(killed, feeds_file).wait(timeout=600) == 0
        got = _corpus(es, killed)
        assert got["documents"] == expected["documents"], f"killed at {fraction:.0%}"
        differ = {url: (got["ledger"].get(url), outcome)
                  for url, outcome in expected["ledger"].items() if got["ledger"].get(url) != outcome}
        assert differ == {} and got["ledger"].keys() == expected["ledger"].keys(), \
            f"killed at {fraction:.0%} of a run"

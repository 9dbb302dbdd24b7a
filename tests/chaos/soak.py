"""The soak: concurrent workers, a SIGKILL and a reindex at once leave what one serial run leaves.

Over the loopback web of `tests/chaos/soak_web.py` (four overlapping feeds of sample-corpus
articles, their AMP and tracking-URL variants, copies republished later on another host, a slow
host and a rate-limited one), each phase ingests under an index alias of its own with the real
command line (`python -m pipeline.cli ingest`) against the real node:

- serial (the reference): one `ingest` per feeds file, in turn;
- concurrent: four `ingest` workers at once, one per feeds file, started on a copy of config/
  whose article mapping `version` is one higher and whose batches are of 3 items; mid-run
  `newsroom reindex` moves the corpus to that version (the old index is write-blocked while it
  copies), and one worker, drawn by the
  seed, is killed with SIGKILL and started again: at a drawn moment, or a drawn fraction of a
  second after its first documents land (between its article writes and its ledger records);
- dag (full budget only): `airflow dags test news_ingest --use-executor` over all four feeds:
  one mapped task per feed, run at once by the LocalExecutor (through an Airflow API server the
  soak starts on loopback).

Each phase then runs all feeds again until no work is left: no transient failure to retry, no
listed item without a ledger record after a run that failed (at most `MAX_RERUNS` times,
waiting out the Retry-After the rate-limited host asked for). The checks,
printed as a table: every run ended well; every listed item URL has exactly one ledger record,
none left to retry, each `indexed` or `duplicate` record naming a document that exists, each
document named by one `indexed` record; and, against the serial run: the same document ids, the
same duplicates lists and content hashes, no quarantined item the serial run indexed, the same
outcome per item URL. Of the variants of one page (the page, its `?amp=1`, `/amp/` and
`?utm_...` URLs) the same one is `indexed` and the others `duplicate` whatever order or
concurrency they came in (README), so statuses are compared URL by URL, and counted per group.

    python -m tests.chaos.soak                   # full budget, with the DAG; exit 1 on failure
    python -m tests.chaos.soak --small           # the budget tests/test_soak.py runs
    python -m tests.chaos.soak --seed 1234       # the same draws again (print says the seed)
    python -m tests.chaos.soak --keep            # leave the aliases and the runs' logs to read

Every alias (`<prefix>-serial`, `-concurrent`, `-dag`) is deleted at the end (unless --keep).
The seed fixes the draws, not the interleavings: concurrency differs from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from elasticsearch import Elasticsearch, helpers

from pipeline.settings import CONFIG_DIR, PROJECT_ROOT, Settings
from pipeline.store import alias_indices, connect, ensure_indices
from tests.airflow_local import airflow_bin, dags_test, execution_api
from tests.chaos.soak_web import FEEDS, FeedFiles, SoakWeb, WebBudget

MAX_RERUNS = 4  # runs over all feeds after a phase, until nothing is left to retry
RUN_TIMEOUT = 900.0  # seconds any one process may take: a hang, not a slow machine
CONCURRENT_BATCH = 3  # items a concurrent worker fetches, then writes and records together
DAG_LINGER = 60.0  # seconds `airflow dags test` may take to exit after its DAG run finished
SETTLED = {"indexed", "duplicate", "irrelevant"}
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(PROJECT_ROOT / ".local" / "airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
}


@dataclass(frozen=True)
class SoakBudget:
    web: WebBudget
    dag: bool  # run the DAG phase too


BUDGETS = {
    "small": SoakBudget(web=WebBudget(articles=10, amp_params=2, tracking=3, copies=2, slow=2,
                                      limited=2, remote_copies=1), dag=False),
    "full": SoakBudget(web=WebBudget(articles=None, amp_params=6, tracking=8, copies=5, slow=5,
                                     limited=5, remote_copies=2), dag=True),
}


@dataclass(frozen=True)
class Check:
    name: str
    expected: str
    got: str
    ok: bool


@dataclass(frozen=True)
class Snapshot:
    """What an alias holds after a phase."""

    documents: dict[str, tuple[tuple[str, ...], str | None]]  # id -> (duplicate URLs, hash)
    records: dict[str, list[dict[str, Any]]]  # item URL -> its ledger records
    quarantined: list[dict[str, Any]]
    indices: list[str]  # behind the alias


@dataclass
class Phase:
    """One phase's alias, its processes' exits and what happened on the way."""

    name: str
    alias: str
    config_dir: Path = CONFIG_DIR
    exits: list[tuple[str, int]] = field(default_factory=list)  # runs not killed: label, code
    events: list[str] = field(default_factory=list)
    feed_seconds: list[float] = field(default_factory=list)  # serial: each feeds file's run
    reruns: int = 0
    seconds: float = 0.0
    killed_running: bool | None = None  # concurrent: whether the kill met a running worker
    reindex_met_workers: bool | None = None  # concurrent: whether workers ran at its start
    reindexed_to: str | None = None  # concurrent: the index the reindex reported
    snapshot: Snapshot | None = None


@dataclass
class Soak:
    """Everything the phases share."""

    budget: SoakBudget
    seed: int
    rng: random.Random
    prefix: str
    work: Path
    es: Elasticsearch
    es_url: str
    max_attempts: int
    web: SoakWeb
    files: FeedFiles

    def alias(self, phase: str) -> str:
        return f"{self.prefix}-{phase}"


@dataclass
class SoakResult:
    seed: int
    phases: list[Phase]
    checks: list[Check]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


# --- processes -------------------------------------------------------------------------------

def ingest_env(soak: Soak, alias: str, config_dir: Path) -> dict[str, str]:
    """The environment of a run under `alias`, as tests/test_crash.py gives its runs."""
    return {**os.environ, "ELASTICSEARCH_URL": soak.es_url, "NEWSROOM_INDEX": alias,
            "NEWSROOM_ALLOW_NETS": "127.0.0.0/8", "NEWSROOM_HOST_DELAY": "0",
            "NEWSROOM_CONFIG_DIR": str(config_dir)}


def start(soak: Soak, label: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `python -m pipeline.cli <args>`; its output goes to files named by `label`."""
    with (soak.work / f"{label}.out").open("w") as out, \
            (soak.work / f"{label}.err").open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env,
                                cwd=PROJECT_ROOT, stdout=out, stderr=err, text=True)


def finish(soak: Soak, phase: Phase, label: str, process: subprocess.Popen[str]) -> int:
    """Wait for a run; record its exit (and its last error line when it failed)."""
    code = process.wait(timeout=RUN_TIMEOUT)
    phase.exits.append((label, code))
    if code != 0:
        lines = (soak.work / f"{label}.err").read_text().strip().splitlines()
        phase.events.append(f"{label} exited {code}: {lines[-1][:300] if lines else ''}")
    return code


def ingest(soak: Soak, phase: Phase, label: str, feeds: Path) -> int:
    """One `ingest` run of `feeds` under the phase's alias, to its end."""
    env = ingest_env(soak, phase.alias, phase.config_dir)
    return finish(soak, phase, label, start(soak, label, ["ingest", "--feeds", str(feeds),
                                                         "--json"], env))


def settle(soak: Soak, phase: Phase) -> None:
    """Run all feeds again while work is left, after the time the sites asked for; at most
    `MAX_RERUNS` times. Work left: transient failures to retry, and listed items without a
    ledger record (a run that failed said "run again"; its exit is checked on its own)."""
    for n in range(MAX_RERUNS):
        pending = retry_pending(soak, phase.alias)
        unrecorded = unrecorded_items(soak, phase.alias)
        if not pending and not unrecorded:
            return
        waits = [datetime.fromisoformat(r["not_before"]) for r in pending if r.get("not_before")]
        wait = max((w - datetime.now(UTC)).total_seconds() for w in waits) if waits else 0.0
        time.sleep(max(0.0, wait) + 0.5)
        ingest(soak, phase, f"{phase.name}-rerun{n}", soak.files.together)
        phase.reruns += 1


def retry_pending(soak: Soak, alias: str) -> list[dict[str, Any]]:
    """Ledger records of transient failures a later run will retry."""
    ledger = f"{alias}-ledger"
    soak.es.indices.refresh(index=ledger)
    query = {"bool": {"filter": [{"term": {"status": "failed"}}, {"term": {"retryable": True}},
                                 {"range": {"attempts": {"lt": soak.max_attempts}}}]}}
    return [hit["_source"] for hit in helpers.scan(soak.es, index=ledger,
                                                   query={"query": query})]


def unrecorded_items(soak: Soak, alias: str) -> list[str]:
    """Listed item URLs the ledger has no record of."""
    ledger = f"{alias}-ledger"
    soak.es.indices.refresh(index=ledger)
    recorded = {hit["_source"]["url"] for hit in helpers.scan(soak.es, index=ledger,
                                                              _source=["url"])}
    return [url for url in soak.web.listed if url not in recorded]


# --- phases ----------------------------------------------------------------------------------

def run_serial(soak: Soak) -> Phase:
    """The reference: each feeds file in turn, then reruns until nothing is left to retry."""
    phase = Phase(name="serial", alias=soak.alias("serial"))
    soak.web.fresh_start()
    started = time.monotonic()
    for n, feeds in enumerate(soak.files.each):
        begun = time.monotonic()
        ingest(soak, phase, f"serial-feed{n}", feeds)
        phase.feed_seconds.append(time.monotonic() - begun)
    settle(soak, phase)
    phase.seconds = time.monotonic() - started
    return phase


def bumped_config(soak: Soak) -> Path:
    """A copy of config/ whose article mapping `version` is one higher, and whose batches are
    of `CONCURRENT_BATCH` items: a worker writes several times in its run (so a kill after its
    first documents land meets it running), and the batches end elsewhere than the serial
    run's, which must not change the outcome either."""
    folder = soak.work / "config-bumped"
    shutil.copytree(CONFIG_DIR, folder)
    mapping = folder / "mappings" / "articles.json"
    body = json.loads(mapping.read_text(encoding="utf-8"))
    body["version"] = int(body["version"]) + 1
    mapping.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    settings = folder / "newsroom.yaml"
    text, changed = re.subn(r"(?m)^(\s*batch_size:\s*)\d+", rf"\g<1>{CONCURRENT_BATCH}",
                            settings.read_text(encoding="utf-8"))
    if changed != 1:
        raise RuntimeError(f"{settings}: no `batch_size` to set")
    settings.write_text(text, encoding="utf-8")
    return folder


@dataclass
class _Plan:
    """When the concurrent phase reindexes (a drawn fraction of a second after the first
    documents land in the alias: the workers are writing then), and which worker it kills when:
    at a drawn moment (at the latest when its first documents land, so that it is still
    running), or a drawn fraction of a second after its first documents land (between its
    article writes and its ledger records, the window crash safety is about)."""

    reindex_after: float
    victim: int
    kill_at: float | None = None
    after_write: float | None = None
    first_write: float | None = None  # when the victim's first documents were seen

    def describe(self) -> str:
        when = (f"at {self.kill_at:.1f}s (or when its first documents land)"
                if self.kill_at is not None
                else f"{self.after_write:.2f}s after its first documents land")
        return (f"reindex {self.reindex_after:.2f}s after the first documents land, "
                f"SIGKILL worker {self.victim} {when}")


def concurrent_plan(soak: Soak, reference: Phase) -> _Plan:
    """Seeded moments while the workers run: four workers sharing two cores take about half
    as long as the serial run's feeds files took one after the other (less on more cores), and
    spend their first seconds starting up."""
    serial = sum(reference.feed_seconds)
    plan = _Plan(reindex_after=soak.rng.uniform(0.0, 0.5), victim=soak.rng.randrange(FEEDS))
    if soak.rng.random() < 0.5:
        plan.kill_at = soak.rng.uniform(0.2, 0.45) * serial
    else:
        plan.after_write = soak.rng.uniform(0.0, 0.3)
    return plan


def run_concurrent(soak: Soak, reference: Phase) -> Phase:
    """Four workers at once on the bumped config, over the alias set up on the current one; a
    reindex and a SIGKILL (then a restart) mid-run; then reruns until nothing is left."""
    phase = Phase(name="concurrent", alias=soak.alias("concurrent"),
                  config_dir=bumped_config(soak))
    base = Settings.load({"ELASTICSEARCH_URL": soak.es_url, "NEWSROOM_INDEX": phase.alias})
    ensure_indices(soak.es, base)  # the corpus starts on the mapping version config/ has
    plan = concurrent_plan(soak, reference)
    phase.events.append(f"plan: {plan.describe()}")
    soak.web.fresh_start()
    started = time.monotonic()
    env = ingest_env(soak, phase.alias, phase.config_dir)
    workers = {f"concurrent-feed{n}": start(soak, f"concurrent-feed{n}",
                                            ["ingest", "--feeds", str(feeds), "--json"], env)
               for n, feeds in enumerate(soak.files.each)}
    reindex = _drive(soak, phase, plan, workers, started)
    for label, process in workers.items():
        finish(soak, phase, label, process)
    finish(soak, phase, "concurrent-reindex", reindex)
    phase.reindexed_to = _reindex_target(soak)
    settle(soak, phase)
    phase.seconds = time.monotonic() - started
    return phase


def _drive(soak: Soak, phase: Phase, plan: _Plan,
           workers: dict[str, subprocess.Popen[str]], started: float) -> subprocess.Popen[str]:
    """Start the reindex and kill the victim when their moments come; the reindex's process.
    The killed worker is replaced in `workers` by its restart."""
    reindex: subprocess.Popen[str] | None = None
    killed = False
    landed: float | None = None  # when the first documents were seen in the alias
    looked = 0.0
    while reindex is None or not killed:
        now = time.monotonic() - started
        if landed is None and now - looked >= 0.1:  # a count ten times a second
            looked = now
            if (soak.es.options(ignore_status=404).count(index=phase.alias).get("count", 0)
                    or all(p.poll() is not None for p in workers.values())):
                landed = now
        if reindex is None and landed is not None and now >= landed + plan.reindex_after:
            running = sum(p.poll() is None for p in workers.values())
            phase.reindex_met_workers = running > 0
            reindex = start(soak, "concurrent-reindex", ["reindex", "--json"],
                            ingest_env(soak, phase.alias, phase.config_dir))
            phase.events.append(f"reindex started at {now:.1f}s, {running} workers running")
        if not killed and _kill_due(soak, phase, plan, workers, now):
            _kill(soak, phase, workers, plan, now)
            killed = True
        time.sleep(0.02)
    return reindex


def _kill_due(soak: Soak, phase: Phase, plan: _Plan, workers: dict[str, subprocess.Popen[str]],
              now: float) -> bool:
    if workers[f"concurrent-feed{plan.victim}"].poll() is not None:
        return True  # it has finished: `_kill` takes another
    if plan.kill_at is not None and now >= plan.kill_at:
        return True
    if plan.first_write is None:
        feed = soak.web.feed_urls[plan.victim]
        found = soak.es.options(ignore_status=404).count(
            index=phase.alias, query={"term": {"source.feed": feed}})
        if found.meta.status == 200 and found["count"]:
            plan.first_write = now
    # a drawn moment comes at the latest when the victim's documents land: it is still running
    return plan.first_write is not None and now >= plan.first_write + (plan.after_write or 0)


def _kill(soak: Soak, phase: Phase, workers: dict[str, subprocess.Popen[str]], plan: _Plan,
          now: float) -> None:
    """SIGKILL the victim (or, if it has finished, a drawn worker still running) and start it
    again on the same feeds file."""
    running = [n for n in range(FEEDS) if workers[f"concurrent-feed{n}"].poll() is None]
    victim = plan.victim
    if victim not in running and running:
        victim = soak.rng.choice(running)
    label = f"concurrent-feed{victim}"
    phase.killed_running = victim in running
    workers[label].send_signal(signal.SIGKILL)
    workers[label].wait()
    soak.es.indices.refresh(index=f"{phase.alias},{phase.alias}-ledger")
    records = soak.es.count(index=f"{phase.alias}-ledger")["count"]
    documents = soak.es.count(index=phase.alias)["count"]
    phase.events.append(f"SIGKILL worker {victim} at {now:.1f}s "
                        f"({'running' if phase.killed_running else 'had finished'}; the alias "
                        f"held {documents} documents, the ledger {records} records); "
                        "started it again")
    del workers[label]
    workers[f"{label}-restart"] = start(
        soak, f"{label}-restart", ["ingest", "--feeds", str(soak.files.each[victim]), "--json"],
        ingest_env(soak, phase.alias, phase.config_dir))


def _reindex_target(soak: Soak) -> str | None:
    """The index the reindex reported moving the alias to, from its --json output."""
    text = (soak.work / "concurrent-reindex.out").read_text().strip()
    try:
        return str(json.loads(text.splitlines()[-1])["target"]) if text else None
    except (ValueError, KeyError):
        return None


def run_dag(soak: Soak) -> Phase:
    """`airflow dags test news_ingest --use-executor` over all four feeds: the LocalExecutor
    runs the four mapped tasks at once, as a deployment does (plain `dags test` runs them one
    after another in its own process); its task processes reach Airflow through an API server
    of our own on loopback. Then reruns until nothing is left to retry."""
    phase = Phase(name="dag", alias=soak.alias("dag"))
    soak.web.fresh_start()
    started = time.monotonic()
    env = {**ingest_env(soak, phase.alias, phase.config_dir),
           **{key: os.environ.get(key, value) for key, value in AIRFLOW_ENV.items()},
           "NEWSROOM_FEEDS": str(soak.files.together)}
    if _airflow_migrate(soak, phase, env) == 0:
        try:
            with execution_api(env, soak.work / "dag-api-server.out") as served:
                _dag_test(soak, phase, served)
        except RuntimeError as exc:
            phase.exits.append(("dag-api-server", 1))
            phase.events.append(str(exc))
    settle(soak, phase)
    phase.seconds = time.monotonic() - started
    return phase


def _airflow_migrate(soak: Soak, phase: Phase, env: dict[str, str]) -> int:
    """`airflow db migrate` (idempotent: `make soak` does not ask for `airflow-db`)."""
    log = soak.work / "dag-db-migrate.out"
    with log.open("w") as out:
        code = subprocess.run([airflow_bin(), "db", "migrate"], env=env, cwd=PROJECT_ROOT,
                              stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT,
                              check=False).returncode
    phase.exits.append(("dag-db-migrate", code))
    if code != 0:
        phase.events.append(f"airflow db migrate exited {code}: "
                            f"{log.read_text(errors='replace').strip()[-300:]}")
    return code


def _dag_test(soak: Soak, phase: Phase, env: dict[str, str]) -> None:
    """Run the DAG and record whether its run succeeded, as Airflow logs it ("DagRun Finished:
    ... state=success"); a command still shutting its LocalExecutor down `DAG_LINGER` seconds
    after that is stopped, and the logged outcome stands (`tests.airflow_local.dags_test`)."""
    run = dags_test(env, "news_ingest", soak.work / "dag-test.out", RUN_TIMEOUT, DAG_LINGER)
    if run.exit_code is None:
        phase.events.append(f"airflow dags test was still running {DAG_LINGER:.0f}s after "
                            "its DAG run finished (its LocalExecutor shutting down); "
                            "stopped it")
    phase.exits.append(("dag-test", 0 if run.succeeded else (run.exit_code or -1)))
    if not run.succeeded:
        phase.events.append(f"airflow dags test: {run.finished or 'no run finished'} "
                            f"(exit {run.exit_code}): {run.output.strip()[-300:]}")


# --- what an alias holds ---------------------------------------------------------------------

def snapshot(es: Elasticsearch, alias: str) -> Snapshot:
    """Read back everything the checks compare: documents, ledger, quarantine, indices."""
    indices = f"{alias},{alias}-ledger,{alias}-quarantine"
    es.indices.refresh(index=indices)
    documents = {
        hit["_id"]: (tuple(sorted(d["url"] for d in hit["_source"].get("duplicates") or [])),
                     (hit["_source"].get("dedup") or {}).get("content_hash"))
        for hit in helpers.scan(es, index=alias, _source=["duplicates.url", "dedup.content_hash"])
    }
    records: dict[str, list[dict[str, Any]]] = {}
    for hit in helpers.scan(es, index=f"{alias}-ledger"):
        records.setdefault(hit["_source"]["url"], []).append(hit["_source"])
    quarantined = [hit["_source"] for hit in helpers.scan(
        es, index=f"{alias}-quarantine", _source=["url", "item_url", "reason"])]
    return Snapshot(documents=documents, records=records, quarantined=quarantined,
                    indices=alias_indices(es, alias))


def target(record: dict[str, Any]) -> str | None:
    """The document a record settled its item into (indexed as, or a duplicate of)."""
    if record["status"] == "indexed":
        return str(record.get("doc_id"))
    if record["status"] == "duplicate":
        return str(record.get("duplicate_of"))
    return None


def only(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record of a URL that has exactly one (else None: a failure of its own)."""
    return records[0] if len(records) == 1 else None


# --- checks ----------------------------------------------------------------------------------

_URL = re.compile(r"https?://[\w.\-]+:(\d+)/(?:[^\s'\"]*/)?([^\s'\"/]+)")
_DOC_ID = re.compile(r"\b([0-9a-f]{8})[0-9a-f]{32}\b")


def shorten(text: str) -> str:
    """`text` with each loopback URL cut to its port and last segment, each document id to
    its first 8 characters: enough to tell them apart in the table (`--keep` keeps it all)."""
    return _DOC_ID.sub(r"\1", _URL.sub(r":\1/…/\2", text))


def count_check(name: str, expected: int, got: int, examples: Iterable[str] = ()) -> Check:
    """A row comparing two counts, with up to three examples of what was counted amiss."""
    shown = [shorten(example) for example in list(examples)[:3]]
    return Check(name, str(expected), f"{got}" + (f" e.g. {', '.join(shown)}" if shown else ""),
                 expected == got)


def run_checks(phase: Phase, soak: Soak) -> list[Check]:
    """Every run of the phase ended well (and the reindex and the kill happened as planned)."""
    ran = [code for _, code in phase.exits]
    failed = [f"{label}={code}" for label, code in phase.exits if code != 0]
    checks = [count_check(f"{phase.name}: runs that exited 0", len(ran),
                          len(ran) - len(failed), failed)]
    if phase.name == "concurrent":
        expected = f"{phase.alias}-v{int(_version(CONFIG_DIR)) + 1}"
        got = ",".join(phase.snapshot.indices) if phase.snapshot else "?"
        checks.append(Check("concurrent: reindex moved the alias to", expected,
                            f"{got} (reported {phase.reindexed_to})",
                            got == expected == phase.reindexed_to))
        checks.append(Check("concurrent: SIGKILL met a running worker", "yes",
                            "yes" if phase.killed_running else "no", bool(phase.killed_running)))
        checks.append(Check("concurrent: reindex started while workers ran", "yes",
                            "yes" if phase.reindex_met_workers else "no",
                            bool(phase.reindex_met_workers)))
    return checks


def _version(config_dir: Path) -> int:
    body = json.loads((config_dir / "mappings" / "articles.json").read_text(encoding="utf-8"))
    return int(body["version"])


def integrity_checks(phase: Phase, listed: list[str], max_attempts: int) -> list[Check]:
    """Checks 2 and 3 on one alias: one ledger record per listed URL, none left to retry, every
    record naming a document that exists, every document indexed by one record."""
    snap = phase.snapshot
    assert snap is not None
    name = phase.name
    one = [url for url in listed if len(snap.records.get(url, [])) == 1]
    not_one = [f"{url} x{len(snap.records.get(url, []))}" for url in listed
               if len(snap.records.get(url, [])) != 1]
    unlisted = sorted(set(snap.records) - set(listed))
    records = [r for rs in snap.records.values() for r in rs]
    pending = [r["url"] for r in records if r["status"] == "failed" and r.get("retryable")
               and int(r.get("attempts") or 0) < max_attempts]
    dangling = {status: [r["url"] for r in records if r["status"] == status
                         and target(r) not in snap.documents]
                for status in ("indexed", "duplicate")}
    indexed_by = Counter(target(r) for r in records if r["status"] == "indexed")
    not_once = [f"{doc[:8]} x{indexed_by[doc]}" for doc in snap.documents
                if indexed_by[doc] != 1]
    return [
        count_check(f"{name}: listed item URLs with exactly one ledger record", len(listed),
                    len(one), not_one),
        count_check(f"{name}: ledger records of URLs no feed lists", 0, len(unlisted), unlisted),
        count_check(f"{name}: items still to retry (transient failures)", 0, len(pending),
                    pending),
        count_check(f"{name}: `indexed` records naming a missing document", 0,
                    len(dangling["indexed"]), dangling["indexed"]),
        count_check(f"{name}: `duplicate` records naming a missing document", 0,
                    len(dangling["duplicate"]), dangling["duplicate"]),
        count_check(f"{name}: documents indexed by exactly one ledger record",
                    len(snap.documents), len(snap.documents) - len(not_once), not_once),
    ]


def corpus_checks(phase: Phase, reference: Phase) -> list[Check]:
    """Check 1: the same documents as the serial run, with the same duplicates and hashes."""
    got, want = phase.snapshot, reference.snapshot
    assert got is not None and want is not None
    name = phase.name
    missing = sorted(set(want.documents) - set(got.documents))
    extra = sorted(set(got.documents) - set(want.documents))
    common = sorted(set(want.documents) & set(got.documents))
    copies = [doc[:8] for doc in common if got.documents[doc][0] != want.documents[doc][0]]
    hashes = [doc[:8] for doc in common if got.documents[doc][1] != want.documents[doc][1]]
    ids = Check(f"{name}: document ids as serial", f"{len(want.documents)} docs",
                f"{len(got.documents)} docs, {len(missing)} missing, {len(extra)} extra",
                not missing and not extra)
    return [ids,
            count_check(f"{name}: duplicates lists as serial", len(common),
                        len(common) - len(copies), copies),
            count_check(f"{name}: content hashes as serial", len(common),
                        len(common) - len(hashes), hashes)]


def settled_in_serial(record: dict[str, Any] | None) -> bool:
    return record is not None and (record["status"] in SETTLED or (
        record["status"] == "failed" and not record.get("retryable")))


def ledger_checks(phase: Phase, reference: Phase, web: SoakWeb) -> list[Check]:
    """Checks 2 (against the serial run), 4 and 5."""
    got, want = phase.snapshot, reference.snapshot
    assert got is not None and want is not None
    name = phase.name
    listed = web.listed
    unsettled = [url for url in listed if settled_in_serial(only(want.records.get(url, [])))
                 and not settled_in_serial(only(got.records.get(url, [])))]
    indexed = {url for url in listed
               if (only(want.records.get(url, [])) or {}).get("status") == "indexed"}
    quarantined = [q.get("item_url") or q["url"] for q in got.quarantined
                   if (q.get("item_url") or q["url"]) in indexed]
    groups = variant_groups(web)
    differ = [url for url in listed
              if outcome(got, url) != outcome(want, url)]
    counts = {key: sorted(outcome(got, url)[0] for url in members)
              for key, members in groups.items()}
    wanted = {key: sorted(outcome(want, url)[0] for url in members)
              for key, members in groups.items()}
    groups_differ = [key for key in groups if counts[key] != wanted[key]]
    return [
        count_check(f"{name}: items the serial run settled, left unsettled", 0, len(unsettled),
                    unsettled),
        count_check(f"{name}: quarantined items the serial run indexed", 0, len(quarantined),
                    quarantined),
        count_check(f"{name}: item URLs with the serial run's outcome", len(listed),
                    len(listed) - len(differ),
                    (f"{u} {outcome(got, u)} vs {outcome(want, u)}"
                     for u in differ)),
        count_check(f"{name}: page variants with the serial run's statuses", len(groups),
                    len(groups) - len(groups_differ),
                    (f"{k} {counts[k]} vs {wanted[k]}" for k in groups_differ)),
    ]


def variant_groups(web: SoakWeb) -> dict[str, list[str]]:
    """The listed URLs of one page (its canonical URL), where there are several."""
    groups: dict[str, list[str]] = {}
    for item in web.items:
        groups.setdefault(item.canonical, []).append(item.url)
    return {key: urls for key, urls in groups.items() if len(urls) > 1}


def outcome(snap: Snapshot, url: str) -> tuple[str, ...]:
    """What became of `url`: its status and the document it settled into, or the reason it
    failed."""
    records = snap.records.get(url, [])
    if len(records) != 1:
        return (f"{len(records)} records",)
    record = records[0]
    status = record["status"]
    if status in ("indexed", "duplicate"):
        return (status, str(target(record)))
    if status == "failed":
        return (status, str(record.get("reason")))
    return (status,)


def all_checks(soak: Soak, phases: list[Phase]) -> list[Check]:
    reference = phases[0]
    checks: list[Check] = []
    for phase in phases:
        checks += run_checks(phase, soak)
        checks += integrity_checks(phase, soak.web.listed, soak.max_attempts)
        if phase is not reference:
            checks += corpus_checks(phase, reference)
            checks += ledger_checks(phase, reference, soak.web)
    return checks


# --- running and reporting -------------------------------------------------------------------

def run_soak(budget: str = "full", seed: int | None = None, prefix: str | None = None,
             settings: Settings | None = None, out: IO[str] | None = None,
             keep: bool = False) -> SoakResult:
    """Run the soak at `budget` with `seed` (drawn when None) under aliases `<prefix>-*`
    (a fresh `soak-...` when None); print what it does and the table to `out`. The aliases
    and the folder of the runs' logs are deleted at the end unless `keep` (to look into a
    failure)."""
    out = out or sys.stdout
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    settings = settings or Settings.load()
    prefix = prefix or f"soak-{uuid.uuid4().hex[:8]}"
    es = connect(settings)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"soak: budget {budget}, seed {seed} (again: python -m tests.chaos.soak "
          f"{'--small ' if budget == 'small' else ''}--seed {seed}), aliases {prefix}-*",
          file=out, flush=True)
    started = time.monotonic()
    rng = random.Random(seed)
    try:
        with SoakWeb(BUDGETS[budget].web, rng) as web:
            soak = Soak(budget=BUDGETS[budget], seed=seed, rng=rng, prefix=prefix, work=work,
                        es=es, es_url=settings.elasticsearch_url,
                        max_attempts=settings.max_attempts, web=web,
                        files=web.write_feed_files(work))
            print(f"soak: {web.describe()}", file=out, flush=True)
            phases = _run_phases(soak, out)
    finally:
        if keep:
            print(f"soak: kept the aliases {prefix}-* and the runs' logs in {work}", file=out)
        else:
            _clean_up(es, [f"{prefix}-{name}" for name in ("serial", "concurrent", "dag")])
            shutil.rmtree(work, ignore_errors=True)
    result = SoakResult(seed=seed, phases=phases, checks=all_checks(soak, phases),
                        seconds=time.monotonic() - started)
    print_table(result, out)
    return result


def _run_phases(soak: Soak, out: IO[str]) -> list[Phase]:
    reference = run_serial(soak)
    phases = [reference, run_concurrent(soak, reference)]
    if soak.budget.dag:
        phases.append(run_dag(soak))
    for phase in phases:
        phase.snapshot = snapshot(soak.es, phase.alias)
        _describe(phase, out)
    return phases


def _describe(phase: Phase, out: IO[str]) -> None:
    assert phase.snapshot is not None
    statuses = Counter(r["status"] for rs in phase.snapshot.records.values() for r in rs)
    print(f"{phase.name} ({phase.alias}): {phase.seconds:.0f}s, {len(phase.exits)} runs, "
          f"{phase.reruns} reruns; {len(phase.snapshot.documents)} documents; ledger "
          + " ".join(f"{k}={v}" for k, v in sorted(statuses.items())), file=out)
    for event in phase.events:
        print(f"  {event}", file=out)


def _clean_up(es: Elasticsearch, aliases: list[str]) -> None:
    """Delete the aliases' indices and index templates, as the tests' fixtures do."""
    for alias in aliases:
        es.options(ignore_status=404).indices.delete(index=f"{alias}*", expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")


def print_table(result: SoakResult, out: IO[str]) -> None:
    rows = [("check", "expected", "got", "ok"),
            *((c.name, c.expected, c.got, "ok" if c.ok else "FAIL") for c in result.checks)]
    widths = [min(80, max(len(row[i]) for row in rows)) for i in range(4)]
    for n, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)),
              file=out)
        if n == 0:
            print("-+-".join("-" * width for width in widths), file=out)
    failed = [c for c in result.checks if not c.ok]
    print(f"\n{len(result.checks) - len(failed)}/{len(result.checks)} checks ok in "
          f"{result.seconds:.0f}s (seed {result.seed})", file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    from pipeline.localnode import LocalNode

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the small (pytest) budget")
    parser.add_argument("--seed", type=int, help="the draws of a previous soak (default: new)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the aliases in place to look into (delete them yourself)")
    args = parser.parse_args(argv)
    node = LocalNode.from_env()
    node.start()
    settings = replace(Settings.load(), elasticsearch_url=node.url)
    result = run_soak("small" if args.small else "full", args.seed, settings=settings,
                      keep=args.keep)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

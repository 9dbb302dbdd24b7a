"""The DAGs: every file imports cleanly, news_ingest is scheduled as promised, and a real
`airflow dags test news_ingest` run over the sample corpus lands it in Elasticsearch, in the
command's own process and with the LocalExecutor, as a deployment runs it."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from pipeline.settings import PROJECT_ROOT, Settings
from tests.airflow_local import dags_test, execution_api
from tests.conftest import assert_sample_corpus_landed
from tests.sample_site.server import SampleSite

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(PROJECT_ROOT / ".local" / "airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
}


@pytest.fixture(scope="module")
def airflow_env() -> dict[str, str]:
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in AIRFLOW_ENV.items()}}
    migrated = subprocess.run([str(_airflow()), "db", "migrate"], env=env, capture_output=True,
                              text=True, timeout=300, check=False)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env


def _airflow() -> Path:
    import shutil
    import sys

    beside = Path(sys.executable).parent / "airflow"
    return beside if beside.exists() else Path(shutil.which("airflow") or "airflow")


def _sample_run_env(airflow_env: dict[str, str], settings: Settings, feeds_file: Path
                    ) -> dict[str, str]:
    """A DAG run's environment for the sample site's feeds, on `settings`' alias."""
    return {**airflow_env, "NEWSROOM_FEEDS": str(feeds_file),
            "NEWSROOM_INDEX": settings.index_alias, "NEWSROOM_ALLOW_NETS": "127.0.0.0/8",
            "NEWSROOM_HOST_DELAY": "0", "ELASTICSEARCH_URL": settings.elasticsearch_url}


def test_dagbag_imports_without_errors(airflow_env: dict[str, str]) -> None:
    os.environ.update({k: airflow_env[k] for k in AIRFLOW_ENV})
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamValidationError
    from airflow.timetables.base import DataInterval, TimeRestriction

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"news_ingest", "news_backfill", "news_maintenance"}
    dag = bag.dags["news_ingest"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.schedule == timedelta(minutes=15)
    assert {t.task_id for t in dag.tasks} == {"ingest_sites", "report"}
    assert dict(dag.params) == {}

    backfill = bag.dags["news_backfill"]
    assert backfill.catchup is False and backfill.max_active_runs == 4
    # Daily, and each run's data interval is the whole UTC day before it.
    after = backfill.timetable.next_dagrun_info(last_automated_data_interval=DataInterval(
        datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC)),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True))
    assert after.data_interval == DataInterval(datetime(2026, 10, 20, tzinfo=UTC),
                                               datetime(2026, 10, 21, tzinfo=UTC))
    assert {t.task_id for t in backfill.tasks} == {"plan", "fill_source", "report"}
    assert dict(backfill.params) == {"sources": [], "reprocess": False, "dry_run": False}
    backfill.params.validate()
    for wrong in ({"reprocess": "yes"}, {"dry_run": 1}, {"sources": "Northern Wire"},
                  {"sources": [7]}):
        params = copy.deepcopy(backfill.params)
        with pytest.raises(ParamValidationError):
            params.update(wrong)
            params.validate()

    maintenance = bag.dags["news_maintenance"]
    assert maintenance.catchup is False and maintenance.max_active_runs == 1
    assert maintenance.schedule == "@daily"
    assert [t.task_id for t in maintenance.topological_sort()] == [
        "reindex", "replay_quarantine", "prune_ledger", "reenrich_corpus"]

    for each in bag.dags.values():
        for task in each.tasks:
            # one XCom per return value: a report's keys are never split into XComs of their own
            assert task.multiple_outputs is False, task.task_id
        for name in ("ingest_sites", "fill_source"):
            if name in each.task_dict:  # a task ends before the run's timeout stops the run
                assert each.task_dict[name].execution_timeout < each.dagrun_timeout
        if "report" in each.task_dict:  # one failed feed does not hide the others' reports
            assert each.task_dict["report"].trigger_rule == "all_done"


def test_dag_files_are_thin_orchestration() -> None:
    for path in (PROJECT_ROOT / "dags").glob("*.py"):
        source = path.read_text()
        assert len(source.splitlines()) < 100, path
        assert not re.search(r"^\s*(import|from) (elasticsearch|httpx|feedparser|trafilatura)",
                             source, re.MULTILINE), f"{path} should only wire pipeline/"


def test_airflow_dags_test_lands_the_corpus(airflow_env: dict[str, str], es: Elasticsearch,
                                            fresh_settings: Settings, site: SampleSite,
                                            feeds_file: Path) -> None:
    env = _sample_run_env(airflow_env, fresh_settings, feeds_file)
    run = subprocess.run([str(_airflow()), "dags", "test", "news_ingest"], env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert "state=success" in output

    stored = assert_sample_corpus_landed(es, fresh_settings, site.base_url)
    run_id = re.search(r"DagRun Finished: .*?run_id=([^,]+)", output).group(1)
    docs = es.search(index=fresh_settings.index_alias, size=500,
                     source=["ingest"])["hits"]["hits"]
    assert len(docs) == len(stored)
    assert {d["_source"]["ingest"]["run_id"] for d in docs} == {run_id}

    # A second DAG run indexes nothing new and gets 304 for every feed body.
    before = len(site.requests)
    rerun = subprocess.run([str(_airflow()), "dags", "test", "news_ingest"], env=env,
                           capture_output=True, text=True, timeout=900, check=False)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-5000:]
    # (the site's robots.txt answer, kept by the first run's tasks, is not asked for again)
    assert {status for path, status in site.requests[before:]} == {304}
    assert es.count(index=fresh_settings.index_alias)["count"] == len(stored)


def test_the_dag_run_as_a_deployment_runs_it_lands_the_corpus(
        airflow_env: dict[str, str], fresh_settings: Settings, site: SampleSite,
        feeds_file: Path, tmp_path: Path) -> None:
    """With the LocalExecutor, as a deployment runs the DAG: the mapped tasks at once, each in
    a task process of its own that reaches Airflow through the API server and may not reach
    the metadata database. The pages are read on the reader process each task starts (there,
    readers once died at their start and every page failed `reader_crashed`). The indices do
    not exist before the run: the tasks set them up, all at once."""
    from pipeline.store import alias_indices, connect, indices_current

    es = connect(fresh_settings)
    assert not es.indices.exists(index=f"{fresh_settings.index_alias}*", allow_no_indices=False)
    env = _sample_run_env(airflow_env, fresh_settings, feeds_file)
    with execution_api(env, tmp_path / "api-server.out") as served:
        # (the command, when it hangs shutting its executor down after the run, is stopped)
        run = dags_test(served, "news_ingest", tmp_path / "dags-test.out", timeout=600,
                        linger=15)
    assert run.succeeded, run.output[-5000:]
    assert "TaskInstance Finished: dag_id=news_ingest, task_id=ingest_sites" in run.output
    assert indices_current(es, fresh_settings)
    assert len(alias_indices(es, fresh_settings.index_alias)) == 1

    assert_sample_corpus_landed(es, fresh_settings, site.base_url)
    es.indices.refresh(index=fresh_settings.ledger_index)
    ours = es.search(index=fresh_settings.ledger_index, size=20, query={"terms": {"reason": [
        "reader_crashed", "reading_timeout", "internal_error"]}})["hits"]["hits"]
    assert [hit["_source"] for hit in ours] == []

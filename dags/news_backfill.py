"""news_backfill: each UTC day's articles from the sources' archive listings (sitemaps, news
sitemaps, paged feeds in the feeds file), through every stage. Scheduled: the daily sweep of
the day just ended (mode `sweep`). Past days: `airflow backfill create --dag-id news_backfill
--from-date ... --to-date ...`, the UI or the REST API (mode `backfill`). Orchestration only:
`pipeline.ingest.Ingestor.ingest_archive` mapped over the sources (`pipeline.backfill`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

log = logging.getLogger(__name__)


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    dagrun_timeout=timedelta(hours=2),
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "sources": Param([], type="array", items={"type": "string"}, title="Sources",
                         description="Source names to fill (empty: every source with an "
                                     "archive listing in the feeds file)"),
        "reprocess": Param(False, type="boolean", title="Reprocess",
                           description="Fetch and index again what the ledger has settled"),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Only list what would be fetched"),
    },
    is_paused_upon_creation=False,
    tags=["newsroom", "backfill"],
)
def news_backfill() -> None:
    @task
    def plan() -> list[dict[str, Any]]:
        """Check Elasticsearch, set up the indices if needed (with the maintenance connection,
        when there is one), and list the sources to fill (an unknown source name in the Params
        fails here)."""
        from pipeline.backfill import archive_sources
        from pipeline.settings import Settings, load_feeds
        from pipeline.store import open_store

        settings = Settings.load(maintenance=True)
        groups = archive_sources(load_feeds(settings.feeds_file),
                                 get_current_context()["params"]["sources"])
        open_store(settings)
        return [{"source": name, "feeds": [feed.as_dict() for feed in feeds]}
                for name, feeds in groups.items()]

    @task(max_active_tis_per_dagrun=4, multiple_outputs=False,
          execution_timeout=timedelta(minutes=100))
    def fill_source(source: dict[str, Any]) -> dict[str, Any]:
        from pipeline.backfill import run_mode, run_window
        from pipeline.ingest import XCOM_ERRORS, Ingestor
        from pipeline.settings import Feed, Settings

        context = get_current_context()
        params = context["params"]
        # a manual run without a data interval fills the day before it was triggered, on
        # every try (run_after does not move when a retry comes after midnight)
        window = run_window(context.get("data_interval_start"), context.get("data_interval_end"),
                            now=context["dag_run"].run_after)
        # tasks run at once, each in a process of its own: a task reads its pages on one
        # worker process of its own
        with Ingestor(replace(Settings.load(), cpu_workers=1)) as ingestor:
            return ingestor.ingest_archive(
                [Feed.from_dict(feed) for feed in source["feeds"]], window, context["run_id"],
                run_mode(str(context["dag_run"].run_type)), reprocess=params["reprocess"],
                dry_run=params["dry_run"]).as_dict(max_errors=XCOM_ERRORS)

    @task(retries=0, multiple_outputs=False, trigger_rule="all_done")
    def report(source_reports: list[dict[str, Any]]) -> dict[str, Any]:
        from pipeline.ingest import summarize

        # a source whose task failed has no report: the others are summed all the same
        summary = summarize(get_current_context()["run_id"],
                            [r for r in source_reports if r is not None])
        for source in summary["feeds"]:
            log.info("news_backfill source %s: %s, listed %s, indexed %s, failed %s",
                     source["name"], source["status"], source["seen"], source["indexed"],
                     source["failed"])
        log.info("news_backfill totals %s",
                 json.dumps({k: v for k, v in summary.items() if k != "feeds"}))
        return summary

    report(fill_source.expand(source=plan()))


news_backfill()

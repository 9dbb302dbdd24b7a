"""news_ingest: poll every feed, every 15 minutes, through every stage of `pipeline`.

Orchestration only: settings come from the environment (see README), the work is
`pipeline.ingest.ingest`, mapped over the feeds grouped by site (`pipeline.ingest.site_groups`):
one task polls all of a site's feeds, so the per-host limits of one process hold for the site
however many tasks run at once. Only small dicts pass through XCom (feed definitions and
per-feed counts), never pages.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["newsroom", "ingest"],
)
def news_ingest() -> None:
    @task
    def prepare() -> list[dict[str, Any]]:
        """Check Elasticsearch, set up the indices if needed (with the maintenance connection,
        when there is one: the ingest role may not), and list the feeds by site."""
        from pipeline.ingest import site_groups
        from pipeline.settings import Settings, load_feeds
        from pipeline.store import open_store

        settings = Settings.load(maintenance=True)
        open_store(settings)
        return [{"site": site, "feeds": [feed.as_dict() for feed in feeds]}
                for site, feeds in site_groups(load_feeds(settings.feeds_file)).items()]

    @task(max_active_tis_per_dagrun=4, multiple_outputs=False,
          execution_timeout=timedelta(minutes=25))
    def ingest_site(site: dict[str, Any]) -> dict[str, Any]:
        from pipeline.ingest import XCOM_ERRORS, ingest
        from pipeline.settings import Feed, Settings

        return ingest([Feed.from_dict(feed) for feed in site["feeds"]], Settings.load(),
                      get_current_context()["run_id"], mode="poll", max_errors=XCOM_ERRORS)

    @task(retries=0, multiple_outputs=False, trigger_rule="all_done")
    def report(site_reports: list[dict[str, Any]]) -> dict[str, Any]:
        from pipeline.ingest import summarize

        # a site whose task failed has no report: the others are summed all the same
        summary = summarize(get_current_context()["run_id"],
                            [feed for site in site_reports if site is not None
                             for feed in site["feeds"]])
        for feed in summary["feeds"]:
            log.info("news_ingest feed %s: %s, seen %s, indexed %s, failed %s", feed["name"],
                     feed["status"], feed["seen"], feed["indexed"], feed["failed"])
        log.info("news_ingest totals %s",
                 json.dumps({k: v for k, v in summary.items() if k != "feeds"}))
        return summary

    report(ingest_site.expand(site=prepare()))


news_ingest()

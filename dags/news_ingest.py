"""news_ingest: poll every feed, every 15 minutes, through every stage of `pipeline`.

Orchestration only: settings come from the environment (see README), the work is
`pipeline.ingest.ingest`, mapped over SITE_GROUPS groups of whole sites, all at once: task n
polls group n of the feeds file's sites (`pipeline.ingest.site_group`; every task deals them
alike, so no task has to deal them first), so that tasks seldom wait on one another for a host
(the delay between requests to a host holds across processes anyway), and a task polls its
sites' feeds `ingest.feed_workers` at once. Only small dicts pass through XCom (per-feed
counts), never pages.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

log = logging.getLogger(__name__)
SITE_GROUPS = 4  # tasks that poll at once, each a group of whole sites


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
    @task(max_active_tis_per_dagrun=SITE_GROUPS, multiple_outputs=False,
          execution_timeout=timedelta(minutes=25))
    def ingest_sites(group: int) -> dict[str, Any]:
        """Check Elasticsearch and set up the indices if needed (with the maintenance
        connection, when there is one: the ingest role may not; the tasks may do it at once),
        then poll group `group` of the feeds file's sites."""
        from pipeline.ingest import XCOM_ERRORS, ingest, site_group
        from pipeline.settings import Settings, load_feeds
        from pipeline.store import open_store

        open_store(Settings.load(maintenance=True))
        # the groups' tasks run at once, each in a process of its own: that is what uses the
        # cores here, so a task reads its pages on one worker process of its own
        settings = replace(Settings.load(), cpu_workers=1)
        return ingest(site_group(load_feeds(settings.feeds_file), group, SITE_GROUPS),
                      settings, get_current_context()["run_id"], mode="poll",
                      max_errors=XCOM_ERRORS)

    @task(retries=0, multiple_outputs=False, trigger_rule="all_done")
    def report(group_reports: list[dict[str, Any]]) -> dict[str, Any]:
        from pipeline.ingest import settled_outcomes, summarize
        from pipeline.settings import Settings

        run_id = get_current_context()["run_id"]
        # a group whose task failed has no report: the others are summed all the same
        summary = summarize(run_id, [feed for group in group_reports if group is not None
                                     for feed in group["feeds"]],
                            settled_outcomes(Settings.load(), run_id))
        for feed in summary["feeds"]:
            log.info("news_ingest feed %s: %s, seen %s, indexed %s, failed %s", feed["name"],
                     feed["status"], feed["seen"], feed["indexed"], feed["failed"])
        log.info("news_ingest totals %s",
                 json.dumps({k: v for k, v in summary.items() if k != "feeds"}))
        return summary

    report(ingest_sites.expand(group=list(range(SITE_GROUPS))))


news_ingest()

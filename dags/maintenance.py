"""news_maintenance: keep the corpus in shape, daily and on demand.

1. reindex: when `version` in config/mappings/articles.json has changed, copy the corpus into
   the new index version and swap the alias (`pipeline.maintenance.reindex`);
2. replay_quarantine: index again the documents the mapping refused, now that it may take them
   (`pipeline.maintenance.replay_quarantine`);
3. prune_ledger: delete ledger records settled longer ago than `ingest.ledger_retention_days`;
4. reenrich: re-link the entities of every document enriched under another version of the
   gazetteer, the rules, the linking code or the model (`pipeline.reenrich`), in batches,
   resumably, without fetching pages.
Orchestration only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task


@dag(
    dag_id="news_maintenance",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["newsroom", "maintenance"],
)
def news_maintenance() -> None:
    @task(multiple_outputs=False)
    def reindex() -> dict[str, Any]:
        from pipeline.maintenance import reindex
        from pipeline.settings import Settings
        from pipeline.store import open_store

        settings = Settings.load(maintenance=True)
        return reindex(open_store(settings, reindexing=True), settings).as_dict()

    @task(multiple_outputs=False)
    def replay_quarantine() -> dict[str, int]:
        from pipeline.maintenance import replay_quarantine
        from pipeline.settings import Settings
        from pipeline.store import open_store

        settings = Settings.load(maintenance=True)
        return replay_quarantine(open_store(settings), settings)

    @task
    def prune_ledger() -> int:
        from pipeline.maintenance import prune_ledger
        from pipeline.settings import Settings
        from pipeline.store import open_store

        settings = Settings.load(maintenance=True)
        return prune_ledger(open_store(settings), settings, settings.ledger_retention_days)

    @task(multiple_outputs=False)
    def reenrich_corpus() -> dict[str, Any]:
        from pipeline.reenrich import reenrich
        from pipeline.settings import Settings
        from pipeline.store import open_store

        settings = Settings.load(maintenance=True)
        return reenrich(open_store(settings), settings).as_dict()

    reindex() >> replay_quarantine() >> prune_ledger() >> reenrich_corpus()


news_maintenance()

"""news_maintenance: keep the existing corpus up to date with the current gazetteer and model.

Daily, and on demand after `config/entities.yaml` or `config/enrich.yaml` change: re-links the
entities of every document enriched under another version (`pipeline.reenrich`), in batches,
resumably, without fetching pages again. Orchestration only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["newsroom", "maintenance"],
)
def news_maintenance() -> None:
    @task
    def reenrich_corpus() -> dict[str, Any]:
        from pipeline.reenrich import reenrich
        from pipeline.settings import Settings
        from pipeline.store import open_store

        settings = Settings.load()
        es = open_store(settings)
        return reenrich(es, settings).as_dict()

    reenrich_corpus()


news_maintenance()

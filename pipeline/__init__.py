"""newsroom: ingestion of news about Russia–China relations into Elasticsearch.

The stages follow the data flow in docs/architecture.md: discover -> fetch -> extract ->
relevance -> dedup -> enrich -> index, with the ledger recording every feed item's outcome. None
of the modules here imports Airflow; `dags/` wires them together and so does `pipeline.cli`.
"""

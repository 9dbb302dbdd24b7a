"""reenrich: re-link the entities of the whole corpus in place after the gazetteer, the
corrections or the model change, without fetching any page again.

Resumable by construction: each pass asks for documents whose `enrich_version` is not the
current one, updates a batch, and waits until the updates are searchable, so an interrupted
run simply continues where it stopped when started again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, helpers

from pipeline.enrich import EnrichRules, enrich_articles, enrichment_version
from pipeline.gazetteer import Gazetteer
from pipeline.index import entity_fields
from pipeline.progress import NO_PROGRESS, Progress
from pipeline.records import Article, Source
from pipeline.settings import Settings


@dataclass
class ReenrichReport:
    version: str
    updated: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reenrich(es: Elasticsearch, settings: Settings, *, batch_size: int = 200,
             max_batches: int | None = None, nlp: Any | None = None,
             progress: Progress = NO_PROGRESS) -> ReenrichReport:
    """Bring every document of the alias to the current enrichment version (or `max_batches`
    batches of them: a later run goes on from there)."""
    gazetteer_path = settings.config_dir / "entities.yaml"
    rules_path = settings.config_dir / "enrich.yaml"
    gazetteer = Gazetteer.load(gazetteer_path)
    rules = EnrichRules.load(rules_path)
    report = ReenrichReport(version=enrichment_version(gazetteer_path, rules_path))
    refused: list[str] = []  # documents Elasticsearch would not update: not asked for again
    batches = 0
    progress.listed(es.count(index=settings.index_alias, query={"bool": {"must_not": [
        {"term": {"enrich_version": report.version}}]}})["count"])
    while max_batches is None or batches < max_batches:
        batches += 1
        hits = es.search(
            index=settings.index_alias, size=batch_size,
            source_includes=["url", "title", "text", "language"],
            query={"bool": {"must_not": [{"term": {"enrich_version": report.version}},
                                         {"ids": {"values": refused}}]}},
        )["hits"]["hits"]
        if not hits:
            return report
        articles = [_article(hit["_source"]) for hit in hits]
        actions = [
            {"_op_type": "update", "_index": hit["_index"], "_id": hit["_id"],
             "doc": entity_fields(article, report.version)}
            for hit, article in zip(hits, enrich_articles(articles, gazetteer, rules, nlp),
                                    strict=True)
        ]
        for ok, item in helpers.streaming_bulk(es, actions, raise_on_error=False,
                                               refresh="wait_for", max_retries=3):
            result = item["update"]
            if ok:
                report.updated += 1
            else:
                report.failed += 1
                refused.append(result["_id"])
                report.errors.append({"id": result["_id"], "error": str(result.get("error"))})
        progress.done(len(hits))
    return report


def _article(source: dict[str, Any]) -> Article:
    return Article(url=source.get("url", ""), title=source.get("title") or "",
                   text=source.get("text") or "", language=source.get("language"),
                   published_at=None, authors=(), source=Source(name="", domain=""),
                   fetched_at=datetime.now(UTC))

"""search: the analysts' query over the article alias (the CLI's `newsroom search`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.gazetteer import Gazetteer


def search_articles(es: Elasticsearch, alias: str, query: str, *, entity: str | None = None,
                    since: datetime | None = None, limit: int = 10,
                    gazetteer: Gazetteer | None = None) -> dict[str, Any]:
    """Full-text search (title boosted) with optional entity and date filters.

    `entity` may be any alias the gazetteer knows ("Путин", "President Putin"); it is matched
    as the canonical name in `persons`, `organizations` and `locations`."""
    filters: list[dict[str, Any]] = []
    if entity:
        known = gazetteer.lookup(entity) if gazetteer else None
        name = known.name if known else entity
        filters.append({"multi_match": {"query": name, "type": "best_fields",
                                        "fields": ["persons", "organizations", "locations"]}})
    if since:
        filters.append({"range": {"published_at": {"gte": since.isoformat()}}})
    must: dict[str, Any] = (
        {"multi_match": {"query": query, "fields": ["title^2", "text", "summary"]}}
        if query.strip() else {"match_all": {}}
    )
    response = es.search(
        index=alias, size=limit, track_total_hits=True,
        query={"bool": {"must": must, "filter": filters}},
        source_includes=["url", "title", "source.name", "published_at", "language", "persons",
                "duplicate_count"],
        sort=["_score", {"published_at": {"order": "desc", "missing": "_last"}}],
    )
    hits = [
        {
            "id": hit["_id"],
            "score": hit["_score"] or 0.0,
            "title": hit["_source"].get("title"),
            "url": hit["_source"].get("url"),
            "source": hit["_source"].get("source", {}).get("name"),
            "published_at": hit["_source"].get("published_at"),
            "language": hit["_source"].get("language"),
            "persons": hit["_source"].get("persons", []),
            "duplicate_count": hit["_source"].get("duplicate_count", 0),
        }
        for hit in response["hits"]["hits"]
    ]
    return {"query": query, "total": response["hits"]["total"]["value"], "hits": hits}

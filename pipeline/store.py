"""The Elasticsearch side of things every stage shares: the client, and the indices
(article template + versioned index behind the alias, the ledger, the feed state)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError

from pipeline.settings import Settings

log = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """Elasticsearch cannot be reached or is not usable; the run must stop, nothing is settled."""


def connect(settings: Settings) -> Elasticsearch:
    """A client for `settings.elasticsearch_url`, with credentials from the settings (which take
    them from the environment), retrying transient errors."""
    auth: dict[str, Any] = {}
    if settings.elasticsearch_api_key:
        auth["api_key"] = settings.elasticsearch_api_key
    elif settings.elasticsearch_username:
        auth["basic_auth"] = (settings.elasticsearch_username,
                              settings.elasticsearch_password or "")
    return Elasticsearch(settings.elasticsearch_url, request_timeout=30, max_retries=3,
                         retry_on_timeout=True, **auth)


def check_available(es: Elasticsearch, settings: Settings) -> None:
    """Raise `StoreUnavailable` with one clear sentence if the cluster cannot take writes."""
    try:
        health = es.options(max_retries=0, request_timeout=10).cluster.health()
    except ESConnectionError as exc:
        raise StoreUnavailable(
            f"Elasticsearch is not reachable at {settings.elasticsearch_display_url} "
            f"({type(exc).__name__}); start it (newsroom es start) or set ELASTICSEARCH_URL"
        ) from exc
    except ApiError as exc:
        raise StoreUnavailable(
            f"Elasticsearch at {settings.elasticsearch_display_url} answered {exc.meta.status}: "
            f"{exc.message}") from exc
    if health["status"] == "red":
        raise StoreUnavailable(f"Elasticsearch at {settings.elasticsearch_display_url} is red")


def open_store(settings: Settings, *, reindexing: bool = False) -> Elasticsearch:
    """A client for a cluster that is up, with the indices in place; `StoreUnavailable`
    otherwise. What every run does first (`reindexing`: the run that moves the corpus to a new
    mapping version, which may find the live index behind it)."""
    es = connect(settings)
    check_available(es, settings)
    ensure_indices(es, settings, reindexing=reindexing)
    return es


def ensure_indices(es: Elasticsearch, settings: Settings, *, reindexing: bool = False) -> None:
    """Create (idempotently) the article index template, the first versioned index with the
    alias on it, the ledger, the feed-state and the feed-health indices; fields added to a
    mapping file reach the existing indices, even one behind the mapping version (so that new
    documents are not refused until `newsroom reindex` runs). A live index behind a mapping
    that changes a field stops every run but the reindex itself: its documents would be
    refused."""
    alias = settings.index_alias
    articles = _mapping_body(settings.config_dir, "articles")
    version = articles.pop("version")
    es.indices.put_index_template(
        name=f"{alias}-template",
        index_patterns=[f"{alias}-v*"],
        template=articles,
        priority=100,
        meta={"managed_by": "newsroom"},
    )
    live = alias_indices(es, alias)
    if not live:
        es.options(ignore_status=400).indices.create(
            index=articles_index(alias, version),
            aliases={alias: {"is_write_index": True}},
        )
    elif live == [articles_index(alias, version)]:
        # New fields reach the current index; a changed field type fails here, loudly: raise
        # the version in the mapping file and reindex.
        es.indices.put_mapping(index=alias, properties=articles["mappings"]["properties"])
    else:
        behind = ", ".join(live)
        try:
            es.indices.put_mapping(index=alias, properties=articles["mappings"]["properties"])
        except BadRequestError as exc:
            if not reindexing:
                raise StoreUnavailable(
                    f"{alias} is on {behind}, behind the mapping version {version}, which "
                    f"changes a field ({exc.message}): run `newsroom reindex` first") from exc
        log.warning("%s is on %s, behind the mapping version %s: run `newsroom reindex`",
                    alias, behind, version)
    for index, mapping in ((settings.ledger_index, "ledger"),
                           (settings.feed_state_index, "feeds"),
                           (settings.feed_health_index, "feed_health"),
                           (settings.quarantine_index, "quarantine")):
        body = _mapping_body(settings.config_dir, mapping)
        if not es.indices.exists(index=index):
            es.options(ignore_status=400).indices.create(index=index, **body)
        else:
            es.indices.put_mapping(index=index, properties=body["mappings"]["properties"])


def articles_version(config_dir: Path) -> int:
    """The version of the article mapping (`version` in mappings/articles.json)."""
    return int(_mapping_body(config_dir, "articles")["version"])


def articles_index(alias: str, version: int) -> str:
    return f"{alias}-v{version}"


def alias_indices(es: Elasticsearch, alias: str) -> list[str]:
    """The indices behind `alias`, sorted (empty when there is no such alias)."""
    found = es.options(ignore_status=404).indices.get_alias(name=alias)
    return sorted(found.body) if found.meta.status == 200 else []


def _mapping_body(config_dir: Path, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((config_dir / "mappings" / f"{name}.json").read_text())
    body.pop("_comment", None)
    return body

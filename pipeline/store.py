"""The Elasticsearch side of things every stage shares: the client, and the indices
(article template + versioned index behind the alias, the ledger, the feed state).

Each index carries, in its mapping's `_meta`, the digest of the mapping file it was last set up
from: a run whose indices are current writes no mapping or template (the ingest role may not),
and one whose indices are missing or behind sets them up when its identity may. A reindex also
records there its claim on the index it copies (`reindex_claim`), renewed as it goes, so that
the write block of a reindex that died can be told from one that is working and lifted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, AuthorizationException, BadRequestError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError

from pipeline.settings import Settings

log = logging.getLogger(__name__)
MIN_CONNECTIONS = 10  # the client's own default


class StoreUnavailable(RuntimeError):
    """Elasticsearch cannot be reached or is not usable; the run must stop, nothing is settled."""


def connect(settings: Settings) -> Elasticsearch:
    """A client for `settings.elasticsearch_url`, with credentials (and the CA of a cluster
    whose certificate a private CA signed) from the settings, which take them from the
    environment; certificates are always verified; transient errors are retried. It keeps as
    many connections open as the feeds a process polls at once, each its own requests."""
    auth: dict[str, Any] = {}
    if settings.elasticsearch_api_key:
        auth["api_key"] = settings.elasticsearch_api_key
    elif settings.elasticsearch_username:
        auth["basic_auth"] = (settings.elasticsearch_username,
                              settings.elasticsearch_password or "")
    if settings.elasticsearch_ca_certs:
        auth["ca_certs"] = str(settings.elasticsearch_ca_certs)
    return Elasticsearch(settings.elasticsearch_url, request_timeout=30, max_retries=3,
                         retry_on_timeout=True,
                         connections_per_node=max(MIN_CONNECTIONS, settings.feed_workers), **auth)


def check_available(es: Elasticsearch, settings: Settings) -> None:
    """Raise `StoreUnavailable` with one clear sentence if the cluster cannot take writes."""
    try:
        health = es.options(max_retries=0, request_timeout=10).cluster.health()
    except ESConnectionError as exc:
        raise StoreUnavailable(
            f"Elasticsearch is not reachable at {settings.elasticsearch_display_url} "
            f"({type(exc).__name__}); start it (newsroom es start) or set ELASTICSEARCH_URL"
        ) from exc
    except AuthorizationException:
        return  # it answered; this identity (an analyst's) may only not see the cluster's health
    except ApiError as exc:
        raise StoreUnavailable(
            f"Elasticsearch at {settings.elasticsearch_display_url} answered {exc.meta.status}: "
            f"{exc.message}") from exc
    if health["status"] == "red":
        raise StoreUnavailable(f"Elasticsearch at {settings.elasticsearch_display_url} is red")


def open_store(settings: Settings, *, reindexing: bool = False) -> Elasticsearch:
    """A client for a cluster that is up, with the indices in place; `StoreUnavailable`
    otherwise. What every run does first (`reindexing`: the run that moves the corpus to a new
    mapping version, which may find the live index behind it). Indices that are current are
    only read; missing or behind ones are set up, or, where this identity may not (the ingest
    role), the run stops with what to do. A write block left by a reindex that died is lifted
    (or, without the right to, named in the log)."""
    es = connect(settings)
    check_available(es, settings)
    if not indices_current(es, settings):
        try:
            ensure_indices(es, settings, reindexing=reindexing)
        except AuthorizationException as exc:
            raise StoreUnavailable(
                f"the indices of {settings.index_alias} are missing or behind config/mappings, "
                "and this identity may not set them up: run `newsroom setup` with the "
                "maintenance identity") from exc
    for index in stale_blocks(es, settings):
        try:
            lift_block(es, index)
        except AuthorizationException:
            log.error("%s is write-blocked by a reindex that stopped renewing its claim; "
                      "articles wait (index_blocked) until a run with the maintenance identity "
                      "lifts it (a DAG task's set-up step, any `newsroom` maintenance command)", index)
        else:
            log.warning("lifted the write block a dead reindex left on %s", index)
    return es


def _digest(settings: Settings, name: str) -> str:
    """The digest of index body `name` (what `_meta.newsroom_mapping` of its indices holds)."""
    body = _index_body(settings, name)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _index_kinds(settings: Settings) -> dict[str, str]:
    """The pipeline's own indices (not the article alias) and their mapping file names."""
    return {settings.ledger_index: "ledger", settings.feed_state_index: "feeds",
            settings.feed_health_index: "feed_health", settings.quarantine_index: "quarantine"}


def indices_current(es: Elasticsearch, settings: Settings) -> bool:
    """Whether every index exists and was set up from today's mapping files (one read)."""
    kinds = _index_kinds(settings)
    found = es.options(ignore_status=404).indices.get_mapping(
        index=",".join([settings.index_alias, *kinds]))
    if found.meta.status != 200:
        return False
    expected = {**{index: _digest(settings, kind) for index, kind in kinds.items()},
                **{index: _digest(settings, "articles")
                   for index in found.body if index not in kinds}}
    return len(found.body) > len(kinds) and all(
        ((body.get("mappings") or {}).get("_meta") or {}).get("newsroom_mapping") == expected[index]
        for index, body in found.body.items())


def _put_mapping(es: Elasticsearch, index: str, properties: dict[str, Any], digest: str) -> None:
    """Add `properties` to `index` and record `digest`, keeping the rest of its `_meta` (a
    reindex's claim)."""
    current = es.indices.get_mapping(index=index).body
    meta = {key: value for body in current.values()
            for key, value in (((body.get("mappings") or {}).get("_meta")) or {}).items()}
    es.indices.put_mapping(index=index, properties=properties,
                           meta={**meta, "newsroom_mapping": digest})


def ensure_indices(es: Elasticsearch, settings: Settings, *, reindexing: bool = False) -> None:
    """Create (idempotently) the article index template, the first versioned index with the
    alias on it, the ledger, the feed-state and the feed-health indices; fields added to a
    mapping file reach the existing indices, even one behind the mapping version (so that new
    documents are not refused until `newsroom reindex` runs). A live index behind a mapping
    that changes a field stops every run but the reindex itself: its documents would be
    refused."""
    alias = settings.index_alias
    articles = _index_body(settings, "articles")
    version = articles.pop("version")
    digest = _digest(settings, "articles")
    replicas = {"number_of_replicas": settings.replicas}
    articles["mappings"]["_meta"] = {"newsroom_mapping": digest}
    try:
        es.indices.put_index_template(
            name=f"{alias}-template",
            index_patterns=[f"{alias}-v*"],
            template=articles,
            priority=100,
            meta={"managed_by": "newsroom"},
        )
    except BadRequestError as exc:
        if "analyzer type [newsroom_" in str(exc.message) or "newsroom_" in str(exc.body):
            raise StoreUnavailable(
                f"Elasticsearch at {settings.elasticsearch_url} lacks the project's analysis "
                "plugin (the language analyzers of config/mappings/articles.json): "
                "`newsroom es start` installs it into the local node, docker-compose's "
                "Elasticsearch image has it, and plugins/analysis/README.md says how to add "
                f"it to another cluster ({exc.message})") from exc
        raise
    live = alias_indices(es, alias)
    if not live:
        _create_live_index(es, alias, articles_index(alias, version))
    elif live == [articles_index(alias, version)]:
        # New fields reach the current index; a changed field type fails here, loudly: raise
        # the version in the mapping file and reindex.
        es.indices.put_settings(index=alias, settings=replicas)
        _put_mapping(es, alias, articles["mappings"]["properties"], digest)
    else:
        behind = ", ".join(live)
        try:
            es.indices.put_settings(index=alias, settings=replicas)
            _put_mapping(es, alias, articles["mappings"]["properties"], digest)
        except BadRequestError as exc:
            if not reindexing:
                raise StoreUnavailable(
                    f"{alias} is on {behind}, behind the mapping version {version}, which "
                    f"changes a field ({_reason(exc)}): run `newsroom reindex` first") from exc
        log.warning("%s is on %s, behind the mapping version %s: run `newsroom reindex`",
                    alias, behind, version)
    for index, mapping in _index_kinds(settings).items():
        body = _index_body(settings, mapping)
        digest = _digest(settings, mapping)
        if not es.indices.exists(index=index):
            body["mappings"]["_meta"] = {"newsroom_mapping": digest}
            es.options(ignore_status=400).indices.create(index=index, **body)
        else:
            try:
                es.indices.put_settings(index=index, settings=replicas)
                _put_mapping(es, index, body["mappings"]["properties"], digest)
            except BadRequestError as exc:
                raise StoreUnavailable(
                    f"{index} has a field of another type than config/mappings/{mapping}.json "
                    f"gives it ({_reason(exc)}): an index that a write created while it was "
                    f"missing (deleted during a run, on a cluster without security) has a "
                    f"mapping guessed from that write. Delete it and run `newsroom setup`; "
                    f"docs/architecture.md, \"An index in the alias's place\", says what "
                    f"that loses") from exc


def _reason(exc: ApiError) -> str:
    """Elasticsearch's own sentence for an error ("mapper [feed] cannot be changed from type
    [text] to [keyword]"), else its type."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    return str(error.get("reason") or exc.message) if isinstance(error, dict) else str(exc.message)


def _create_live_index(es: Elasticsearch, alias: str, index: str) -> None:
    """`index` with the alias on it as its write index (another process may be setting it up
    at once; an index of that name left without the alias gets it back). An index that holds
    the alias's own name stops the run: the pipeline would write into it, with whatever
    mappings it has, instead of the versioned index."""
    if es.indices.exists(index=alias) and not alias_indices(es, alias):  # set up meanwhile?
        raise StoreUnavailable(
            f"{alias} is an index, not the alias over the versioned article indices that "
            f"newsroom writes to (written to while the alias was gone, it took the alias's "
            f"name, with mappings guessed from the documents): copy its documents elsewhere "
            f"if they are wanted, delete it, and run `newsroom setup`; "
            f"docs/architecture.md, \"An index in the alias's place\", has the steps")
    es.options(ignore_status=400).indices.create(  # 400: it exists (set up meanwhile)
        index=index, aliases={alias: {"is_write_index": True}})
    if not alias_indices(es, alias):
        es.indices.put_alias(index=index, name=alias, is_write_index=True)


# -- a reindex's claim on the index it copies, and the write block that goes with it --------

def claim_for_reindex(es: Elasticsearch, index: str) -> None:
    """Record (or renew) this process's claim on `index`, which it is about to block or is
    copying: `stale_blocks` leaves the block of a renewed claim alone."""
    claim = {"owner": f"{socket.gethostname()}:{os.getpid()}",
             "renewed_at": datetime.now(UTC).isoformat()}
    current = es.indices.get_mapping(index=index).body[index]["mappings"]
    es.indices.put_mapping(index=index, meta={**(current.get("_meta") or {}),
                                              "reindex_claim": claim})


def reindex_claim(es: Elasticsearch, index: str) -> dict[str, str] | None:
    """The claim a reindex holds on `index`, if any: its `owner` and when it was `renewed_at`."""
    current = es.indices.get_mapping(index=index).body[index]["mappings"]
    claim: dict[str, str] | None = (current.get("_meta") or {}).get("reindex_claim")
    return claim


def lift_block(es: Elasticsearch, index: str) -> None:
    """Take the write block and the reindex claim off `index`."""
    es.indices.put_settings(index=index, settings={"index.blocks.write": None})
    current = es.indices.get_mapping(index=index).body[index]["mappings"]
    meta = {k: v for k, v in (current.get("_meta") or {}).items() if k != "reindex_claim"}
    es.indices.put_mapping(index=index, meta=meta)


def stale_blocks(es: Elasticsearch, settings: Settings) -> list[str]:
    """The article indices write-blocked by a reindex whose claim was not renewed within
    `settings.reindex_lease_s` (the process died). A block without a claim is not ours to
    lift (an operator's, or the disk watermark's), and is left alone."""
    blocked = es.options(ignore_status=404).indices.get_settings(
        index=settings.index_alias, name="index.blocks.write")
    if blocked.meta.status != 200:
        return []
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.reindex_lease_s)
    stale = []
    for index, body in blocked.body.items():
        if str(((body.get("settings") or {}).get("index") or {}).get("blocks", {})
               .get("write")).lower() != "true":
            continue
        claim = reindex_claim(es, index)
        if claim and datetime.fromisoformat(claim["renewed_at"]) < cutoff:
            stale.append(index)
    return stale


def msearch_each(es: Elasticsearch, index: str, bodies: list[dict[str, Any]]
                 ) -> list[list[dict[str, Any]] | None]:
    """Run these search bodies on `index` in one `msearch`: each one's hits, in order, or None
    where that search failed (the caller asks it again on its own)."""
    if not bodies:
        return []
    searches: list[dict[str, Any]] = []
    for body in bodies:
        searches += [{"index": index}, body]
    responses = es.msearch(searches=searches)["responses"]
    return [None if "error" in response else response["hits"]["hits"]
            for response in responses]


def articles_version(config_dir: Path) -> int:
    """The version of the article mapping (`version` in mappings/articles.json)."""
    return int(_mapping_body(config_dir, "articles")["version"])


def articles_index(alias: str, version: int) -> str:
    return f"{alias}-v{version}"


def alias_indices(es: Elasticsearch, alias: str) -> list[str]:
    """The indices behind `alias`, sorted (empty when there is no such alias)."""
    found = es.options(ignore_status=404).indices.get_alias(name=alias)
    return sorted(found.body) if found.meta.status == 200 else []


def _index_body(settings: Settings, name: str) -> dict[str, Any]:
    """Index body `name` from config/mappings, with the replicas `elasticsearch.replicas` asks
    for (0 on one node; 1 or more on a cluster, so that losing a node loses nothing)."""
    body = _mapping_body(settings.config_dir, name)
    body.setdefault("settings", {})["number_of_replicas"] = settings.replicas
    return body


def _mapping_body(config_dir: Path, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((config_dir / "mappings" / f"{name}.json").read_text())
    body.pop("_comment", None)
    return body

"""reenrich: the corpus re-linked in place, in batches, resumably, without fetching pages."""

from __future__ import annotations

from pathlib import Path

from elasticsearch import Elasticsearch, helpers

from pipeline.ingest import ingest
from pipeline.reenrich import reenrich
from pipeline.settings import Settings, load_feeds
from tests.sample_site.server import SampleSite


def test_reenrich_restores_entities_in_batches(fresh_settings: Settings, es: Elasticsearch,
                                               site: SampleSite, feeds_file: Path) -> None:
    ingest(load_feeds(feeds_file), fresh_settings, "run-1", es=es)
    alias = fresh_settings.index_alias
    es.indices.refresh(index=alias)
    fields = ["persons", "enrich_notes", "enrich_version", "language"]
    before = {hit["_id"]: hit["_source"] for hit in es.search(
        index=alias, size=500, source_includes=fields)["hits"]["hits"]}
    total = len(before)
    current = {doc["enrich_version"] for doc in before.values()}
    assert len(current) == 1 and total > 10
    # the documents say where the NER did not read: Russian and Chinese articles have the
    # gazetteer's entities only
    assert {doc["language"] for doc in before.values()} >= {"en", "ru", "zh"}
    for doc in before.values():
        assert doc["enrich_notes"] == ([] if doc["language"] == "en" else
                                       [f"ner_language_not_covered:{doc['language']}"])

    # As after a gazetteer change: every document carries an older enrichment.
    helpers.bulk(es, ({"_op_type": "update", "_index": alias, "_id": doc_id,
                       "doc": {"entities": [], "persons": [], "enrich_notes": None,
                               "enrich_version": "old"}}
                      for doc_id in before), refresh="wait_for")
    fetched_before = len(site.requests)

    first = reenrich(es, fresh_settings, batch_size=5, max_batches=2)  # interrupted
    assert first.updated == 10 and first.failed == 0
    rest = reenrich(es, fresh_settings, batch_size=5)  # goes on where the first stopped
    assert rest.updated == total - 10
    assert reenrich(es, fresh_settings).updated == 0  # nothing left to do

    after = {hit["_id"]: hit["_source"] for hit in es.search(
        index=alias, size=500, source_includes=fields)["hits"]["hits"]}
    assert {doc["enrich_version"] for doc in after.values()} == current
    assert {k: sorted(v["persons"]) for k, v in after.items()} == \
        {k: sorted(v["persons"]) for k, v in before.items()}
    assert {k: v["enrich_notes"] for k, v in after.items()} == \
        {k: v["enrich_notes"] for k, v in before.items()}
    assert len(site.requests) == fetched_before  # no page was fetched again

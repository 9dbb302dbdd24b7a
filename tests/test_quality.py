"""Quality floors on the team's evaluation data (tests/eval/): the figures `make eval` prints
may not fall below what the article-quality work promised."""

from __future__ import annotations

from pipeline.settings import Settings
from tests.eval.corpus import held_out_pages, labelled_articles, sample_pages
from tests.eval.evaluate import (
    extraction_scores,
    language_scores,
    metadata_scores,
    ours,
    plain_trafilatura,
    relevance_scores,
)


def test_extraction_beats_plain_trafilatura_on_held_out_pages() -> None:
    pages = held_out_pages()
    assert len(pages) >= 40 and len({p.group for p in pages}) >= 6
    our, _ = extraction_scores(pages, ours)
    plain, _ = extraction_scores(pages, plain_trafilatura)
    assert our["f1"] >= 0.97
    assert our["f1"] >= plain["f1"] + 0.02


def test_dates_canonical_urls_and_languages() -> None:
    scores = metadata_scores(held_out_pages() + sample_pages())
    assert scores["date"].value >= 0.98, scores["date"].misses
    assert scores["language"].value >= 0.98, scores["language"].misses
    assert scores["url"].value >= 0.98, scores["url"].misses
    titles = language_scores(labelled_articles())["title"]
    assert titles.value >= 0.95, titles.misses


def test_relevance_precision_and_recall() -> None:
    articles = labelled_articles()
    assert len(articles) >= 120
    assert {a["language"] for a in articles} == {"en", "ru", "zh"}
    precision, recall, misses = relevance_scores(articles)
    assert precision >= 0.95 and recall >= 0.95, misses


def test_linked_entities() -> None:
    from tests.eval.corpus import annotated_articles
    from tests.eval.evaluate import entity_scores

    articles = annotated_articles()
    assert len(articles) >= 60 and {a["language"] for a in articles} == {"en", "ru", "zh"}
    _precision, _recall, f1, misses = entity_scores(articles)
    assert f1 >= 0.92, misses


def test_near_duplicates_on_labelled_pairs() -> None:
    from tests.eval.corpus import dedup_set
    from tests.eval.evaluate import near_duplicate_scores

    documents, pairs = dedup_set()
    assert len(pairs) >= 200
    scores = near_duplicate_scores(documents, pairs)
    assert scores["precision"] >= 0.99 and scores["recall"] >= 0.95, scores["misses"]
    assert scores["same_event_marked"] == 0
    assert scores["candidate_recall"] >= 0.95


def test_stories_group_coverage_of_one_event(settings: Settings) -> None:
    import uuid
    from dataclasses import replace

    from pipeline.store import connect
    from tests.eval.corpus import dedup_set
    from tests.eval.evaluate import story_scores

    documents, _ = dedup_set()
    scratch = replace(settings, index_alias=f"{settings.index_alias}-stories-{uuid.uuid4().hex[:4]}")
    es = connect(scratch)
    try:
        scores = story_scores(documents, es, scratch)
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{scratch.index_alias}*",
                                                     expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(
            name=f"{scratch.index_alias}-template")
    assert scores["purity"] >= 0.9 and scores["completeness"] >= 0.8, scores

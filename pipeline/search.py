"""search: the analysts' query over the article alias (the CLI's `newsroom search`).

`title` and `text` carry one sub-field per analysed language (`title.en`, `text.ru`, `text.zh`:
English stems, Russian stems, Chinese words; see `config/mappings/articles.json`). Each article
is matched through the sub-fields of its own `language`, with the query analysed the same way
(a Chinese article also by each run of Chinese characters as a phrase of the standard fields'
one-character tokens, since the segmenter may split the same word differently in the query
and in a sentence); an article in any other language through the standard-analysed fields.
The query is Elasticsearch's `simple_query_string`: every word must match (in any inflection
the language's analysis folds together), `"..."` is a phrase in that order, `a | b` either,
`-a` not.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.gazetteer import Gazetteer

# The languages with their own analysis: a sub-field each under `title` and `text`.
ANALYSED_LANGUAGES = ("en", "ru", "zh")
MARK = ("<mark>", "</mark>")  # around the matched words in `highlights`
FRAGMENT_CHARS = 160
FRAGMENTS = 2
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")  # Chinese characters
QUOTED = re.compile(r'("[^"]*")')


def text_query(query: str, *, lang: str | None = None) -> dict[str, Any]:
    """The full-text part: one clause per language, each over that language's fields and
    limited to its articles, so a Chinese query never meets English-analysed Chinese text."""
    languages = [lang] if lang else [*ANALYSED_LANGUAGES, None]
    clauses = []
    for language in languages:
        if language in ANALYSED_LANGUAGES:
            fields = [f"title.{language}^2", f"text.{language}"]
            scope: dict[str, Any] = {"term": {"language": language}}
        else:
            fields = ["title^2", "text", "summary"]
            scope = ({"term": {"language": language}} if language else
                     {"bool": {"must_not": {"terms": {"language": list(ANALYSED_LANGUAGES)}}}})
        words: dict[str, Any] = {"simple_query_string": {"query": query, "fields": fields,
                                                         "default_operator": "and"}}
        if language == "zh":
            # segmentation depends on context: a word the query's segmentation and the text's
            # split differently is still found as the same run of characters
            run = {"simple_query_string": {"query": _han_runs_as_phrases(query),
                                           "fields": ["title^2", "text"],
                                           "default_operator": "and"}}
            words = {"bool": {"should": [words, run], "minimum_should_match": 1}}
        clauses.append({"bool": {"filter": [scope], "must": [words]}})
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses,
                                                          "minimum_should_match": 1}}


def _han_runs_as_phrases(query: str) -> str:
    """`query` with every run of Chinese characters outside quotes quoted: on the standard
    fields (one character a token) a phrase is that exact run."""
    parts = QUOTED.split(query)
    return "".join(part if part.startswith('"') else
                   HAN_RUN.sub(lambda run: f'"{run.group()}"', part) for part in parts)


def search_articles(es: Elasticsearch, alias: str, query: str, *, entity: str | None = None,
                    since: datetime | None = None, lang: str | None = None, limit: int = 10,
                    gazetteer: Gazetteer | None = None) -> dict[str, Any]:
    """Full-text search (title boosted) with optional entity, date and language filters; each
    hit has up to two `highlights`, passages with the matched words between `MARK`s.

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
    if query.strip():
        must = text_query(query, lang=lang)
    else:
        must = {"match_all": {}}
        if lang:
            filters.append({"term": {"language": lang}})
    response = es.search(
        index=alias, size=limit, track_total_hits=True,
        query={"bool": {"must": must, "filter": filters}},
        source_includes=["url", "title", "source.name", "published_at", "language", "persons",
                         "duplicate_count"],
        sort=["_score", {"published_at": {"order": "desc", "missing": "_last"}}],
        highlight=_highlight() if query.strip() else None,
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
            "highlights": _passages(hit.get("highlight", {})),
        }
        for hit in response["hits"]["hits"]
    ]
    return {"query": query, "total": response["hits"]["total"]["value"], "hits": hits}


# The fields highlighted, in the order a hit's passages are taken from them: the text (a
# language's sub-field before the standard field), the summary, then the title, whole, as a
# fallback passage when the text has no match.
_PASSAGE_FIELDS = [*(f"text.{lang}" for lang in ANALYSED_LANGUAGES), "text", "summary"]
_TITLE_FIELDS = [*(f"title.{lang}" for lang in ANALYSED_LANGUAGES), "title"]


def _highlight() -> dict[str, Any]:
    return {
        "pre_tags": [MARK[0]], "post_tags": [MARK[1]], "encoder": "default",
        "fields": {
            **{name: {"fragment_size": FRAGMENT_CHARS, "number_of_fragments": FRAGMENTS}
               for name in _PASSAGE_FIELDS},
            **{name: {"number_of_fragments": 0} for name in _TITLE_FIELDS},
        },
    }


def _passages(found: dict[str, list[str]]) -> list[str]:
    """A hit's passages from the first of `_PASSAGE_FIELDS` and `_TITLE_FIELDS` that has any;
    adjacent marks merged (the standard field marks Chinese one character at a time)."""
    for name in [*_PASSAGE_FIELDS, *_TITLE_FIELDS]:
        if found.get(name):
            return [" ".join(fragment.replace(MARK[1] + MARK[0], "").split())
                    for fragment in found[name][:FRAGMENTS]]
    return []

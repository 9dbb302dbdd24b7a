"""stories: different articles about the same event share a `story_id`.

A new article joins the story of the most similar indexed article published within a few days
(candidates from Elasticsearch's `more_like_this`, confirmed by the Jaccard similarity of their
content words against config/dedup.yaml); otherwise it starts a story of its own, named by its
id. Near-copies never reach this stage: they are recorded on their original instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from pipeline.records import Article
from pipeline.settings import ConfigError, load_yaml
from pipeline.store import msearch_each
from pipeline.urls import url_id

_CONTENT = re.compile(r"[\u3400-\u9fff]{2}|[^\W\d_]{4,}|\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class StoryRules:
    window_days: float
    candidates: int
    min_similarity: float
    like_chars: int  # characters of title and text the candidate search sends

    @classmethod
    def load(cls, path: Path) -> StoryRules:
        raw = load_yaml(path).get("stories") or {}
        keys = {"window_days", "candidates", "min_similarity", "like_chars"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: stories: expected keys {sorted(keys)}")
        return cls(window_days=float(raw["window_days"]), candidates=int(raw["candidates"]),
                   min_similarity=float(raw["min_similarity"]),
                   like_chars=int(raw["like_chars"]))


def content_words(text: str) -> frozenset[str]:
    """Words of four letters or more, numbers, and Chinese character pairs, folded."""
    return frozenset(word.casefold() for word in _CONTENT.findall(text))


def similarity(first: frozenset[str], second: frozenset[str]) -> float:
    return len(first & second) / max(1, len(first | second))


class StoryFinder:
    """Assigns stories to the articles of one batch, seeing the index and the batch itself;
    `prefetch` asks the index for every article's candidates in one request."""

    def __init__(self, es: Elasticsearch, alias: str, rules: StoryRules) -> None:
        self._es = es
        self._alias = alias
        self._rules = rules
        self._batch: list[tuple[Article, frozenset[str], str]] = []
        self._found: dict[str, list[dict[str, Any]]] = {}  # candidates by article URL

    def prefetch(self, articles: list[Article]) -> None:
        """Search the candidates of all these articles in one `msearch`."""
        found = msearch_each(self._es, self._alias, [self._search(a) for a in articles])
        for article, hits in zip(articles, found, strict=True):
            if hits is not None:  # else `assign` asks again for this one
                self._found[article.url] = hits

    def assign(self, article: Article) -> str:
        """The story `article` belongs to (and remember it for the rest of the batch)."""
        words = content_words(f"{article.title}\n{article.text}")
        when = article.published_at or article.fetched_at
        window = timedelta(days=self._rules.window_days)
        best_story, best = url_id(article.url), self._rules.min_similarity
        for other, other_words, story in self._batch:
            other_when = other.published_at or other.fetched_at
            if abs(other_when - when) <= window and similarity(words, other_words) >= best:
                best_story, best = story, similarity(words, other_words)
        found = self._found.get(article.url)
        if found is None:
            found = self._es.search(index=self._alias, **self._search(article))["hits"]["hits"]
        for hit in found:
            if hit["_id"] == url_id(article.url):
                continue
            source = hit["_source"]
            score = similarity(words, content_words(f"{source.get('title', '')}\n"
                                                    f"{source.get('text', '')}"))
            if score >= best and source.get("story_id"):
                best_story, best = source["story_id"], score
        self._batch.append((article, words, best_story))
        return best_story

    def _search(self, article: Article) -> dict[str, Any]:
        """The candidate search: similar articles published within the window."""
        when = article.published_at or article.fetched_at
        window = timedelta(days=self._rules.window_days)
        query = {"bool": {
            "must": {"more_like_this": {
                "fields": ["title", "text"],
                "like": f"{article.title}\n{article.text}"[:self._rules.like_chars],
                "min_term_freq": 1, "min_doc_freq": 1, "max_query_terms": 60,
                "minimum_should_match": "10%"}},
            "filter": {"range": {"published_at": {"gte": (when - window).isoformat(),
                                                  "lte": (when + window).isoformat()}}},
        }}
        return {"size": self._rules.candidates, "query": query,
                "_source": ["story_id", "title", "text"]}

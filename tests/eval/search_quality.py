"""Search quality on the judged query set (tests/eval/search/queries.yaml) over the team's
labelled articles (tests/eval/relevance/), per language, beside the standard analyzer.

All run on the real node in the same run: the product's article mapping (language sub-fields,
`newsroom search`'s query) in a scratch alias, and one index of the same articles whose `title`
and `text` use the standard analyzer, asked two ways: the same `simple_query_string` (every
word, phrases in order), and the query `newsroom search` sent before the language fields (a
`multi_match` of any word over title and text). Measures per query, averaged per language:
- recall@10: relevant articles in the top 10 over min(relevant, 10);
- precision@10: relevant articles among those returned (at most 10); a query that returns
  nothing counts 0;
- nDCG@10 with binary gains.

`python -m tests.eval.search_quality` prints the table and every query short of 1.0.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import Elasticsearch, helpers

from pipeline.search import search_articles
from pipeline.settings import Settings
from pipeline.store import connect, ensure_indices
from tests.eval.corpus import labelled_articles

QUERIES = Path(__file__).parent / "search" / "queries.yaml"
TOP = 10


@dataclass(frozen=True)
class Scores:
    recall: float
    precision: float
    ndcg: float


def judged_queries(path: Path = QUERIES) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["queries"])


def score(returned: list[str], relevant: set[str]) -> Scores:
    top = returned[:TOP]
    found = [doc_id in relevant for doc_id in top]
    ideal = min(len(relevant), TOP)
    dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(found) if hit)
    idcg = sum(1 / math.log2(rank + 2) for rank in range(ideal))
    return Scores(recall=sum(found) / ideal,
                  precision=sum(found) / len(top) if top else 0.0,
                  ndcg=dcg / idcg)


SYSTEMS = ("ours", "standard", "previous")


def _standard_search(es: Elasticsearch, index: str, query: str, *, previous: bool = False
                     ) -> list[str]:
    body = ({"multi_match": {"query": query, "fields": ["title^2", "text"]}} if previous else
            {"simple_query_string": {"query": query, "fields": ["title^2", "text"],
                                     "default_operator": "and"}})
    response = es.search(index=index, size=TOP, query=body)
    return [hit["_id"] for hit in response["hits"]["hits"]]


def measure(es: Elasticsearch, settings: Settings, articles: list[dict[str, Any]],
            queries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{system: {"scores": {language: [Scores...]}, "misses": [...]}} for each of `SYSTEMS`,
    over scratch indices (removed afterwards)."""
    alias = settings.index_alias
    standard = f"{alias}-standard"
    try:
        ensure_indices(es, settings)
        es.indices.create(index=standard, mappings={"properties": {
            "title": {"type": "text"}, "text": {"type": "text"},
            "language": {"type": "keyword"}}})
        for index in (alias, standard):
            helpers.bulk(es, ({"_index": index, "_id": article["id"],
                               "_source": {"title": article["title"], "text": article["text"],
                                           "language": article["language"]}}
                              for article in articles), refresh="wait_for")
        results: dict[str, dict[str, Any]] = {
            name: {"scores": defaultdict(list), "misses": []} for name in SYSTEMS}
        for query in queries:
            relevant = set(query["relevant"])
            returned = {
                "ours": [hit["id"] for hit in search_articles(es, alias, query["query"],
                                                              limit=TOP)["hits"]],
                "standard": _standard_search(es, standard, query["query"]),
                "previous": _standard_search(es, standard, query["query"], previous=True),
            }
            for name, ids in returned.items():
                scores = score(ids, relevant)
                results[name]["scores"][query["language"]].append(scores)
                if scores.recall < 1 or scores.precision < 1:
                    wrong = [doc_id for doc_id in ids if doc_id not in relevant]
                    missed = sorted(relevant - set(ids))
                    results[name]["misses"].append(
                        f"{query['id']} {query['query']!r}: recall {scores.recall:.2f}, "
                        f"precision {scores.precision:.2f}; missed {missed[:6]}, "
                        f"not relevant {wrong[:6]}")
        return results
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{alias}*", expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")


def report(es: Elasticsearch, settings: Settings, *, show_misses: bool = True) -> None:
    queries = judged_queries()
    articles = labelled_articles()
    results = measure(es, replace(settings, index_alias=f"eval-search-{uuid.uuid4().hex[:8]}"),
                      articles, queries)
    print(f"\nSearch on {len(queries)} judged queries over {len(articles)} articles: "
          "recall@10 / precision@10 / nDCG@10 of ours, of the standard analyzer asked the same "
          "query, and of the standard analyzer asked the previous query (any word)")
    print(f"  {'language':<9} {'queries':>7}" + "".join(f"   {name:>20}" for name in SYSTEMS))
    for language in sorted(results["ours"]["scores"]):
        cells = []
        for name in SYSTEMS:
            scores = results[name]["scores"][language]
            means = [sum(getattr(s, metric) for s in scores) / len(scores)
                     for metric in ("recall", "precision", "ndcg")]
            cells.append(" / ".join(f"{mean:.3f}" for mean in means))
        print(f"  {language:<9} {len(results['ours']['scores'][language]):>7}"
              + "".join(f"   {cell:>20}" for cell in cells))
    if show_misses:
        for miss in results["ours"]["misses"]:
            print(f"  ours short: {miss}")


def main() -> int:
    settings = Settings.load()
    report(connect(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

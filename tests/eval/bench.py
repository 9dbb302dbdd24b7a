"""`make bench`: throughput figures, measured in one run so that their ratios hold on a noisy
machine. Extraction: pages per second of our extraction and of plain `trafilatura.extract` over
the same pages, interleaved round by round, and their ratio. Enrichment: articles per second of
ours and of a plain spaCy loop with the full pipeline, and their ratio. Dedup: lookup cost per
article at 1,000, 10,000 and 100,000 generated documents in the real local node (set
BENCH_DEDUP_SIZES to change), beside a `more_like_this` baseline."""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from elasticsearch import helpers

from pipeline.dedup import Deduplicator, fingerprint
from pipeline.enrich import SPACY_MODEL, EnrichRules, enrich_articles, load_nlp
from pipeline.extract import extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.minhash import MinHasher
from pipeline.settings import CONFIG_DIR, Settings
from pipeline.store import check_available, connect, ensure_indices
from tests.eval.corpus import held_out_pages, sample_pages
from tests.eval.evaluate import ours, plain_trafilatura, plain_with_metadata

ROUNDS = 5
EARLIER, LATER = "2026-01-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"  # indexed, probes


def _pages_per_second(pages: list[Any], extract: Callable[[Any], str]) -> float:
    started = time.perf_counter()
    for page in pages:
        extract(page)
    return len(pages) / (time.perf_counter() - started)


def enrichment(rounds: int = 3) -> None:
    """Articles per second of our enrichment (gazetteer + ner only, batched) and of a plain
    `nlp(text)` loop with the model's full default pipeline, over the sample corpus."""
    import spacy

    gazetteer = Gazetteer.load(CONFIG_DIR / "entities.yaml")
    rules = EnrichRules.load(CONFIG_DIR / "enrich.yaml")
    articles = [extract_article(page.page(), page.feed_item()) for page in sample_pages()]
    ours_nlp, full_nlp = load_nlp(), spacy.load(SPACY_MODEL)
    rates: dict[str, list[float]] = {"ours": [], "plain nlp(text), full pipeline": []}
    for _ in range(rounds):
        started = time.perf_counter()
        list(enrich_articles(articles, gazetteer, rules, ours_nlp))
        rates["ours"].append(len(articles) / (time.perf_counter() - started))
        started = time.perf_counter()
        for article in articles:
            full_nlp(f"{article.title}\n\n{article.text}")
        rates["plain nlp(text), full pipeline"].append(
            len(articles) / (time.perf_counter() - started))
    best = {name: max(values) for name, values in rates.items()}
    print(f"\nEnrichment throughput over {len(articles)} sample articles, best of {rounds} "
          "interleaved rounds:")
    for name, rate in best.items():
        print(f"  {name:<32} {rate:8.1f} articles/s")
    print(f"  ratio ours / plain: {best['ours'] / best['plain nlp(text), full pipeline']:.2f}")


def dedup(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), queries: int = 100) -> None:
    """Cost per new article of the near-duplicate lookup (LSH band query + confirmation) in the
    real local node at growing corpus sizes, beside a naive baseline: `more_like_this` over the
    whole index. Generated documents; half the queries are copies of indexed ones."""
    settings = replace(Settings.load(), index_alias=f"bench-{uuid.uuid4().hex[:8]}")
    es = connect(settings)
    check_available(es, settings)
    ensure_indices(es, settings)
    es.indices.put_settings(index=settings.index_alias, settings={"refresh_interval": "-1"})
    hasher = MinHasher.load(CONFIG_DIR / "dedup.yaml")
    vocabulary = sorted({w for page in sample_pages() for w in page.gold_text.split()})
    rng = random.Random(7)

    def text() -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(150))

    indexed: list[str] = []
    print(f"\nNear-duplicate lookup per new article ({queries} lookups, half of them copies):")
    print(f"  {'documents':>10} {'LSH lookup ms':>14} {'more_like_this ms':>18} {'copies found':>13}")
    costs: dict[int, tuple[float, float]] = {}
    try:
        for size in sizes:
            actions = []
            for n in range(len(indexed), size):
                body = text()
                print_ = fingerprint(body, hasher)
                indexed.append(body)
                actions.append({"_index": settings.index_alias, "_id": f"doc-{n}", "_source": {
                    "url": f"https://bench.example/{n}", "text": body, "published_at": EARLIER,
                    "dedup": {"content_hash": print_.content_hash, "lsh": list(print_.lsh),
                              "signature": list(print_.signature)}}})
            helpers.bulk(es.options(request_timeout=300), actions, chunk_size=2000)
            es.indices.refresh(index=settings.index_alias)
            es.options(request_timeout=600).indices.forcemerge(index=settings.index_alias,
                                                              max_num_segments=1)
            probes = [" ".join(indexed[rng.randrange(len(indexed))].split()[5:])
                      if i % 2 else text() for i in range(queries)]
            prints = [fingerprint(p, hasher) for p in probes]
            for probe, print_ in zip(probes[:20], prints[:20], strict=True):  # warm the caches
                Deduplicator(es, settings.index_alias, hasher).check("https://warm.example/",
                                                                     print_, LATER)
                es.search(index=settings.index_alias, size=20, source_includes=["url"], query={
                    "more_like_this": {"fields": ["text"], "like": probe, "min_term_freq": 1,
                                       "min_doc_freq": 1, "max_query_terms": 60}})
            dedup = Deduplicator(es, settings.index_alias, hasher)
            started = time.perf_counter()
            found = sum(dedup.check(f"https://probe.example/{i}", p, LATER) is not None
                        for i, p in enumerate(prints))
            lsh_ms = (time.perf_counter() - started) * 1000 / queries
            started = time.perf_counter()
            for probe in probes:
                es.search(index=settings.index_alias, size=20, source_includes=["url"], query={
                    "more_like_this": {"fields": ["text"], "like": probe, "min_term_freq": 1,
                                       "min_doc_freq": 1, "max_query_terms": 60}})
            mlt_ms = (time.perf_counter() - started) * 1000 / queries
            costs[size] = (lsh_ms, mlt_ms)
            print(f"  {size:>10,} {lsh_ms:>14.2f} {mlt_ms:>18.2f} {found:>9}/{queries}")
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{settings.index_alias}*",
                                                     expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(
            name=f"{settings.index_alias}-template")
    small, large = min(costs), max(costs)
    print(f"  cost at {large:,} / cost at {small:,}: LSH lookup "
          f"{costs[large][0] / costs[small][0]:.2f}, more_like_this "
          f"{costs[large][1] / costs[small][1]:.2f}")


def extraction(rounds: int = ROUNDS) -> None:
    """Pages per second of our extraction (text and metadata), of plain `trafilatura.extract`
    (text only) and of plain trafilatura asked for metadata too (title, author, date: the
    fields ours gives), interleaved round by round over the same pages, and the ratios: on the
    real page sets when EVAL_CORPORA names their folder (every fourth page of each, for time;
    there also ours on items their feed dates, as ingest mostly sees them), and on our own
    pages."""
    from pathlib import Path

    from tests.eval import real
    from tests.eval.realpages import load_sets

    Contestants = dict[str, Callable[[Any], str]]
    suites: list[tuple[str, list[Any], Contestants]] = []
    corpora = os.environ.get("EVAL_CORPORA")
    if corpora:
        sampled = [page for pages in load_sets(Path(corpora)).values() for page in pages[::4]]
        if sampled:
            suites.append((f"{len(sampled)} real pages", sampled, {
                "ours": real.ours, "ours, feed-dated": real.ours_feed_dated,
                "plain trafilatura": real.plain_trafilatura,
                "plain + metadata": real.plain_with_metadata}))
    own = held_out_pages() + sample_pages()
    suites.append((f"{len(own)} pages of our own", own, {
        "ours": ours, "plain trafilatura": plain_trafilatura,
        "plain + metadata": plain_with_metadata}))
    for label, pages, contestants in suites:
        for extract in contestants.values():
            extract(pages[0])  # warm up: imports, rules, models
        rates: dict[str, list[float]] = {name: [] for name in contestants}
        for _ in range(rounds):
            for name, extract in contestants.items():
                rates[name].append(_pages_per_second(pages, extract))
        best = {name: max(values) for name, values in rates.items()}
        print(f"Extraction throughput over {label}, best of {rounds} interleaved rounds:")
        for name, rate in best.items():
            print(f"  {name:<18} {rate:8.1f} pages/s   (rounds: "
                  + ", ".join(f"{r:.1f}" for r in rates[name]) + ")")
        for baseline in ("plain trafilatura", "plain + metadata"):
            print(f"  ratio ours / {baseline}: {best['ours'] / best[baseline]:.3f}")
        if "ours, feed-dated" in best:
            print("  ratio ours, feed-dated / plain trafilatura: "
                  f"{best['ours, feed-dated'] / best['plain trafilatura']:.3f}")


def main() -> int:
    extraction()
    enrichment()
    sizes = tuple(int(n) for n in os.environ.get("BENCH_DEDUP_SIZES", "1000,10000,100000")
                  .split(","))
    dedup(sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

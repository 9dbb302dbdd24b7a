"""`make bench`: throughput figures, measured in one run so that their ratios hold on a noisy
machine. Extraction: pages per second of our extraction and of plain `trafilatura.extract` over
the same pages, interleaved round by round, and their ratio. Enrichment: articles per second of
ours and of a plain spaCy loop with the full pipeline, and their ratio."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from pipeline.enrich import SPACY_MODEL, EnrichRules, enrich_articles, load_nlp
from pipeline.extract import extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.settings import CONFIG_DIR
from tests.eval.corpus import GoldPage, held_out_pages, sample_pages
from tests.eval.evaluate import ours, plain_trafilatura

ROUNDS = 5


def _pages_per_second(pages: list[GoldPage], extract: Callable[[GoldPage], str]) -> float:
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


def main() -> int:
    pages = held_out_pages() + sample_pages()
    ours(pages[0]), plain_trafilatura(pages[0])  # warm up: imports, model and rule loading
    rates: dict[str, list[float]] = {"ours": [], "plain trafilatura": []}
    for _ in range(ROUNDS):
        rates["ours"].append(_pages_per_second(pages, ours))
        rates["plain trafilatura"].append(_pages_per_second(pages, plain_trafilatura))
    best = {name: max(values) for name, values in rates.items()}
    print(f"Extraction throughput over {len(pages)} pages, best of {ROUNDS} interleaved rounds:")
    for name, rate in best.items():
        print(f"  {name:<18} {rate:8.1f} pages/s   (rounds: "
              + ", ".join(f"{r:.1f}" for r in rates[name]) + ")")
    print(f"  ratio ours / plain trafilatura: {best['ours'] / best['plain trafilatura']:.3f}")
    enrichment()
    return 0


if __name__ == "__main__":
    sys.exit(main())

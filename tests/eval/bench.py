"""`make bench`: throughput figures, measured in one run so that their ratios hold on a noisy
machine. Extraction: pages per second of our extraction and of plain `trafilatura.extract` over
the same pages, interleaved round by round, and their ratio."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tests.eval.corpus import GoldPage, held_out_pages, sample_pages
from tests.eval.evaluate import ours, plain_trafilatura

ROUNDS = 5


def _pages_per_second(pages: list[GoldPage], extract: Callable[[GoldPage], str]) -> float:
    started = time.perf_counter()
    for page in pages:
        extract(page)
    return len(pages) / (time.perf_counter() - started)


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
    return 0


if __name__ == "__main__":
    sys.exit(main())

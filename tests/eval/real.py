"""`make eval` on real data kept outside the repository (EVAL_CORPORA): extraction on public sets
of real pages beside plain trafilatura, and relevance on real news texts we labelled.

Extraction is scored per page and averaged over pages: bag-of-words precision, recall and F1
against the gold body where a set has one; where it has snippets instead (trafilatura's
evaluation pages), precision and recall over its must-have and must-not-have snippets, as
trafilatura's own evaluation counts them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import trafilatura

from pipeline.extract import decode_html, extract_article
from pipeline.records import ItemError, Page
from pipeline.text import word_count
from tests.eval.corpus import overlap
from tests.eval.realpages import RealPage, load_sets

FETCHED_AT = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PageScore:
    id: str
    precision: float
    recall: float
    words: int

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def ours(page: RealPage) -> str:
    """`newsroom extract`'s text for the page; empty when it is refused."""
    try:
        return extract_article(Page(url=page.url, final_url=page.url, status=200,
                                    content_type="text/html", charset=None, body=page.body,
                                    fetched_at=FETCHED_AT)).text
    except ItemError:
        return ""


def plain_trafilatura(page: RealPage) -> str:
    return trafilatura.extract(decode_html(page.body, None), url=page.url) or ""


EXTRACTORS: dict[str, Callable[[RealPage], str]] = {
    "ours": ours, "plain trafilatura": plain_trafilatura}


def score_page(page: RealPage, text: str) -> PageScore:
    if page.text is not None:
        shared, got, want = overlap(text, page.text)
        return PageScore(page.id, shared / max(1, got), shared / max(1, want), word_count(text))
    found = _spaced(text)
    held = sum(_spaced(s) in found for s in page.with_)
    leaked = sum(_spaced(s) in found for s in page.without)
    return PageScore(page.id, held / (held + leaked) if held + leaked else 0.0,
                     held / max(1, len(page.with_)), word_count(text))


def extraction(root: Path) -> None:
    """Per set: mean per-page precision, recall and F1 of ours and of plain trafilatura in one
    run, the pages where ours is empty though trafilatura finds 100 words or more, and our
    worst pages."""
    sets = load_sets(root)
    if not sets:
        print(f"\nReal pages: no prepared sets under {root} (see tests/eval/real/sets.yaml)")
        return
    print(f"\nExtraction on real pages ({root}), mean of per-page scores:")
    print(f"  {'set':<18} {'pages':>5} {'extractor':<18} {'precision':>9} {'recall':>7} "
          f"{'F1':>7} {'empty':>6}")
    with ProcessPoolExecutor() as pool:
        for name, pages in sets.items():
            scores = {label: list(pool.map(_scored, ((label, page) for page in pages),
                                           chunksize=8))
                      for label in EXTRACTORS}
            for label, results in scores.items():
                print(f"  {name:<18} {len(pages):>5} {label:<18} "
                      f"{_mean(r.precision for r in results):9.4f} "
                      f"{_mean(r.recall for r in results):7.4f} "
                      f"{_mean(r.f1 for r in results):7.4f} "
                      f"{sum(r.words == 0 for r in results):>6}")
            lost = [o.id for o, p in zip(scores["ours"], scores["plain trafilatura"], strict=True)
                    if o.words == 0 and p.words >= 100]
            difference = (_mean(r.f1 for r in scores["ours"])
                          - _mean(r.f1 for r in scores["plain trafilatura"]))
            print(f"  {name:<18} ours - plain: {difference:+.4f} F1; empty where plain has "
                  f"100+ words: {len(lost)} {' '.join(lost[:10])}")
            for result in sorted(scores["ours"], key=lambda r: r.f1)[:5]:
                print(f"    worst: {result.f1:.3f} (P {result.precision:.2f} "
                      f"R {result.recall:.2f}) {name}/{result.id}")


def _scored(job: tuple[str, RealPage]) -> PageScore:
    label, page = job
    return score_page(page, EXTRACTORS[label](page))


def _spaced(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _mean(values: Iterator[float] | list[float]) -> float:
    values = list(values)
    return sum(values) / max(1, len(values))


def relevance(root: Path) -> None:
    """Precision and recall of the relevance rule on the labelled real texts, by language (en,
    ru, zh, the others together) and by half: `dev` (used to fit the rule; its misses are
    listed) and `test` (held out). A text under `min_words` counts as not relevant, as
    `newsroom ingest` would settle it `too_short`."""
    from pipeline.extract import default_rules
    from pipeline.gazetteer import Gazetteer
    from pipeline.relevance import TopicModel, score_relevance
    from pipeline.settings import CONFIG_DIR
    from tests.eval.realtexts import labelled_texts

    texts, missing = labelled_texts(root)
    if not texts:
        print(f"\nRelevance on real texts: none under {root}/relevance (see "
              "tests/eval/real/README.md)")
        return
    model = TopicModel.load(CONFIG_DIR / "topic.yaml",
                            Gazetteer.load(CONFIG_DIR / "entities.yaml"))
    min_words = default_rules().cleaning.min_words
    counts: dict[tuple[str, str], list[int]] = {}
    misses = []
    for text in texts:
        if word_count(text.text) < min_words:
            kept, why = False, "too_short"
        else:
            result = score_relevance(text.title, text.text, model)
            kept, why = result.relevant, f"score {result.score}"
        group = text.language if text.language in ("en", "ru", "zh") else "other"
        tally = counts.setdefault((text.split, group), [0, 0, 0])  # tp, fp, fn
        tally[0] += kept and text.relevant
        tally[1] += kept and not text.relevant
        tally[2] += text.relevant and not kept
        if kept != text.relevant and text.split == "dev":
            misses.append(f"  dev {'false positive' if kept else 'missed'} {text.id} "
                          f"({text.language}, {text.category}, {why}): "
                          f"{(text.title or text.text)[:70]!r}")
    print(f"\nRelevance on {len(texts)} real news texts ({sum(t.relevant for t in texts)} "
          f"relevant; {len(missing)} labelled but not present):")
    for (split, group), (tp, fp, fn) in sorted(counts.items()):
        print(f"  {split:<5} {group:<6} precision {tp / max(1, tp + fp):.3f}  "
              f"recall {tp / max(1, tp + fn):.3f}  ({tp + fn} relevant, {fp} false, "
              f"{fn} missed)")
    print("\n".join(misses))

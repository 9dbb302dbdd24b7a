"""`make eval` on real data kept outside the repository (EVAL_CORPORA): extraction on public sets
of real pages beside plain trafilatura, and relevance on real news texts we labelled.

Extraction is scored per page and averaged over pages: bag-of-words precision, recall and F1
against the gold body where a set has one; where it has snippets instead (trafilatura's
evaluation pages), precision and recall over its must-have and must-not-have snippets, as
trafilatura's own evaluation counts them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trafilatura

from pipeline.extract import decode_html, extract_article
from pipeline.metadata import is_person, split_names
from pipeline.records import FeedItem, ItemError, Page
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
    return _ours(page, None)


def ours_feed_dated(page: RealPage) -> str:
    """Ours as ingest runs it on an item its feed dates: htmldate's guess is not needed (the
    feed's time is a better last resort), so the page's own dates are read, not searched for."""
    return _ours(page, FeedItem(url=page.url, feed_name="bench", feed_url="https://bench.test/",
                                published_at=FETCHED_AT))


def _ours(page: RealPage, item: FeedItem | None) -> str:
    try:
        return extract_article(Page(url=page.url, final_url=page.url, status=200,
                                    content_type="text/html", charset=None, body=page.body,
                                    fetched_at=FETCHED_AT), item).text
    except ItemError:
        return ""


def plain_trafilatura(page: RealPage) -> str:
    return trafilatura.extract(decode_html(page.body, None), url=page.url) or ""


def plain_with_metadata(page: RealPage) -> str:
    """Plain trafilatura asked for what `ours` also gives: title, author, date (htmldate)."""
    return trafilatura.extract(decode_html(page.body, None), url=page.url,
                               with_metadata=True) or ""


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
            if all(page.text is None and not page.with_ for page in pages):
                _without_gold(name, pages, scores)
                continue
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


def _without_gold(name: str, pages: list[RealPage], scores: dict[str, list[PageScore]]) -> None:
    """A set with no gold: how often each extractor finds nothing, and ours where plain
    trafilatura finds 100 words or more."""
    ours, plain = scores["ours"], scores["plain trafilatura"]
    lost = [o.id for o, p in zip(ours, plain, strict=True) if o.words == 0 and p.words >= 100]
    print(f"  {name:<18} {len(pages):>5} (no gold) empty: ours {sum(r.words == 0 for r in ours)}, "
          f"plain {sum(r.words == 0 for r in plain)}; ours empty where plain has 100+ words: "
          f"{len(lost)} {' '.join(lost[:10])}; words ours / plain "
          f"{sum(r.words for r in ours) / max(1, sum(r.words for r in plain)):.3f}")


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
    ru, zh, the others together) and by source (the label file: `ruzh`, `rt`, ...), each by
    half: `dev` (used to fit the rule; its misses are listed) and `test` (held out); then by
    language again without the labeller's hard calls (a reason marked "(borderline)"), to
    tell misses people would argue over from plain ones. A text under `min_words` counts as
    not relevant, as `newsroom ingest` would settle it `too_short`."""
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
    decisions: dict[tuple[str, str], list[tuple[bool, bool]]] = {}  # (kept, relevant)
    misses = []
    for text in texts:
        if word_count(text.text) < min_words:
            kept, why = False, "too_short"
        else:
            result = score_relevance(text.title, text.text, model)
            kept, why = result.relevant, f"score {result.score}"
        language = text.language if text.language in ("en", "ru", "zh") else "other"
        groups = [language, f"source {text.part}"]
        if not text.hard_call:
            groups.append(f"{language}, no hard calls")
        for group in groups:
            decisions.setdefault((text.split, group), []).append((kept, text.relevant))
        if kept != text.relevant and text.split == "dev":
            misses.append(f"  dev {'false positive' if kept else 'missed'} {text.id} "
                          f"({text.language}, {text.category}, {why}"
                          f"{', a hard call' if text.hard_call else ''}): "
                          f"{(text.title or text.text)[:70]!r}")
    print(f"\nRelevance on {len(texts)} real news texts ({sum(t.relevant for t in texts)} "
          f"relevant; {len(missing)} labelled but not present):")
    for (split, group), pairs in sorted(decisions.items(), key=lambda item: (
            item[0][0], "no hard calls" in item[0][1], item[0][1])):
        print(f"  {split:<5} {group:<23} {precision_recall(pairs)}")
    print("\n".join(misses))
    _languages(texts)


def precision_recall(decisions: Iterable[tuple[bool, bool]]) -> str:
    """Precision and recall of (kept, relevant) decisions, with the counts behind them."""
    decisions = list(decisions)
    tp = sum(kept and relevant for kept, relevant in decisions)
    fp = sum(kept and not relevant for kept, relevant in decisions)
    fn = sum(relevant and not kept for kept, relevant in decisions)
    return (f"precision {tp / max(1, tp + fp):.3f}  recall {tp / max(1, tp + fn):.3f}  "
            f"({tp + fn} relevant, {fp} false, {fn} missed)")


def _languages(texts: list[Any]) -> None:
    """Language of the labelled real texts, ours beside plain `py3langid.classify`: whole, and
    their first 60 characters (as short as a headline)."""
    import py3langid

    from pipeline.extract import default_rules
    from pipeline.metadata import detect_language

    rules = default_rules().metadata
    for label, cut in (("whole texts", None), ("first 60 characters", 60)):
        samples = [(t.text[:cut], t.language) for t in texts]
        ours_right = sum(detect_language(text, rules) == language for text, language in samples)
        plain_right = sum(py3langid.classify(text)[0] == language for text, language in samples)
        print(f"  language of the {len(samples)} texts, {label}: ours {ours_right / len(samples):.3f}"
              f", plain py3langid {plain_right / len(samples):.3f}")


@dataclass(frozen=True)
class PageMetadata:
    title: str
    authors: tuple[str, ...]
    day: str | None  # the publication date as the page has it, in its own offset


def our_metadata(page: RealPage) -> PageMetadata:
    try:
        article = extract_article(Page(url=page.url, final_url=page.url, status=200,
                                       content_type="text/html", charset=None, body=page.body,
                                       fetched_at=FETCHED_AT))
    except ItemError:
        return PageMetadata("", (), None)
    day = article.published_at.date().isoformat() if article.published_at else None
    return PageMetadata(article.title, article.authors, day)


def plain_metadata(page: RealPage) -> PageMetadata:
    document = trafilatura.bare_extraction(decode_html(page.body, None), url=page.url,
                                           with_metadata=True)
    if document is None:
        return PageMetadata("", (), None)
    authors = tuple(a.strip() for a in (document.author or "").split(";") if a.strip())
    return PageMetadata(document.title or "", authors, document.date)


METADATA: dict[str, Callable[[RealPage], PageMetadata]] = {
    "ours": our_metadata, "plain trafilatura": plain_metadata}


def metadata(root: Path) -> None:
    """On the sets that give them: author set F1 (names compared without accents, titles and
    credentials), also on the pages whose gold names only people (each gold name passes
    `pipeline.metadata.is_person`: where the gold names an outlet, a desk, a team or a user
    name, ours returns none of them by design), publication day (the page's own calendar day)
    and headline (exactly, after folding case, punctuation and spacing), ours beside plain
    trafilatura's."""
    sets = {name: with_metadata for name, pages in load_sets(root).items()
            if (with_metadata := [p for p in pages if p.title or p.authors or p.published])}
    if not sets:
        return
    print("\nMetadata on real pages:")
    print(f"  {'set':<14} {'extractor':<18} {'authors F1':>10} {'pages':>5} {'people F1':>9} "
          f"{'pages':>5} {'same day':>9} {'pages':>5} {'title':>7} {'pages':>5}")
    with ProcessPoolExecutor() as pool:
        for name, pages in sets.items():
            for label in METADATA:
                found = list(pool.map(_metadata_of, ((label, page) for page in pages),
                                      chunksize=8))
                authored = [(p, m) for p, m in zip(pages, found, strict=True) if p.authors]
                people = [(p, m) for p, m in authored if _names_people(p.authors)]
                dated = [(p, m) for p, m in zip(pages, found, strict=True) if p.published]
                titled = [(p, m) for p, m in zip(pages, found, strict=True) if p.title]
                print(f"  {name:<14} {label:<18} "
                      f"{_mean([_name_f1(m.authors, p.authors) for p, m in authored]):10.4f} "
                      f"{len(authored):>5} "
                      f"{_mean([_name_f1(m.authors, p.authors) for p, m in people]):9.4f} "
                      f"{len(people):>5} "
                      f"{_mean([float(m.day == str(p.published)[:10]) for p, m in dated]):9.4f} "
                      f"{len(dated):>5} "
                      f"{_mean([float(_folded(m.title) == _folded(p.title)) for p, m in titled]):7.4f} "
                      f"{len(titled):>5}")


def _names_people(authors: tuple[str, ...]) -> bool:
    names = [name for byline in authors for name in split_names(byline)]
    return bool(names) and all(is_person(name, None) for name in names)


def _metadata_of(job: tuple[str, RealPage]) -> PageMetadata:
    label, page = job
    return METADATA[label](page)


def _name_f1(got: tuple[str, ...], want: tuple[str, ...]) -> float:
    found, gold = _names(got), _names(want)
    if not found or not gold:
        return float(found == gold)
    shared = len(found & gold)
    return 2 * shared / (len(found) + len(gold))


def _names(values: tuple[str, ...]) -> set[str]:
    """Names as a neutral key: split on the separators of joint bylines, without credentials
    (all-capital parts), honorifics, accents, case and punctuation."""
    names = set()
    for value in values:
        for part in re.split(r"\s*(?:[,;|&]|\band\b)\s*", value):
            part = re.sub(r"^(dr|prof|mr|mrs|ms)\.?\s+", "", part.strip(), flags=re.IGNORECASE)
            if not part or re.fullmatch(r"[A-Z.\-\s\d®]+", part):
                continue
            names.add(_folded(unicodedata.normalize("NFKD", part).encode("ascii", "ignore")
                              .decode() or part))
    return names - {""}


def _folded(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def syndicated_copy(text: str, number: int) -> str:
    """A copy of `text` made the way wire copy travels: a dateline before it, its last sentence
    or paragraph trimmed, a credit line and page boilerplate after it; every third copy keeps
    only the first 60% of the text. Deterministic in `number`."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    if number % 3 == 0:
        kept = text[:int(len(text) * 0.6)]  # by characters: Chinese has no spaces to cut at
    elif len(paragraphs) > 2:
        kept = "\n\n".join(paragraphs[:-1])
    else:
        kept = text[:int(len(text) * 0.85)]
    dateline = ("MOSCOW, Dec 3 (Agency) -", "BEIJING (Wire Service) —", "HONG KONG —")[number % 3]
    credit = ("Reporting by staff correspondents; editing by the desk.",
              "This story was provided by a wire service and has not been edited.",
              "(Additional reporting by our Beijing bureau.)")[number % 3]
    boilerplate = "Follow us on social media for more news. Subscribe to our daily newsletter."
    return f"{dateline} {kept}\n\n{credit}\n\n{boilerplate}"


def near_copies(root: Path) -> None:
    """Near-copies of real text: each labelled real text of 80 words or more and a syndicated
    copy of it (`syndicated_copy`) should be found a copy; no two distinct texts should (many
    are about the same events: two meetings, two drills), compared with their days where the
    sources give them (`window_days`). Pair precision and recall of the rule
    in config/dedup.yaml, the share of copies that would be found as candidates (sharing an
    LSH band), and the misses."""
    from itertools import combinations

    from pipeline.dedup import fingerprint, published_apart, seniority
    from pipeline.minhash import MinHasher
    from pipeline.settings import CONFIG_DIR
    from tests.eval.realtexts import labelled_texts

    texts, seen = [], set()
    for text in labelled_texts(root)[0]:
        # a text a source holds twice, under two ids, is one text (SemEval's data has one)
        if word_count(text.text) >= 80 and text.text not in seen:
            seen.add(text.text)
            texts.append(text)
    if not texts:
        return
    hasher = MinHasher.load(CONFIG_DIR / "dedup.yaml")
    originals = [fingerprint(t.text, hasher) for t in texts]
    copies = [fingerprint(syndicated_copy(t.text, i), hasher) for i, t in enumerate(texts)]
    found = candidates = 0
    misses = []
    for i, (text, original, copy) in enumerate(zip(texts, originals, copies, strict=True)):
        candidates += bool(set(original.lsh) & set(copy.lsh))
        if hasher.copy_similarity(original.signature, copy.signature):
            found += 1
        else:
            misses.append(f"  missed {text.id} ({'60% ' if i % 3 == 0 else ''}copy, Jaccard "
                          f"{hasher.similarity(list(original.signature), list(copy.signature)):.2f}, "
                          f"containment {hasher.containment_of(original.signature, copy.signature):.2f})")
    merged = [(a.id, b.id) for (a, pa), (b, pb) in combinations(zip(texts, originals), 2)
              if hasher.copy_similarity(pa.signature, pb.signature, published_apart(
                  seniority(a.published), seniority(b.published)))]
    pairs = len(texts) * (len(texts) - 1) // 2
    print(f"\nNear-copies of {len(texts)} real news texts, each with a syndicated copy (every "
          f"third keeps 60%): recall {found / len(texts):.4f}, candidates {candidates / len(texts):.4f}; "
          f"distinct texts taken for copies: {len(merged)} of {pairs} pairs "
          f"(precision {found / max(1, found + len(merged)):.4f})")
    print("\n".join(misses + [f"  merged {a} ~ {b}" for a, b in merged]))

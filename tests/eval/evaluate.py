"""`make eval`: extraction, date, language and relevance quality on the team's evaluation data.

Prints bag-of-words precision / recall / F1 of our extraction and of plain
`trafilatura.extract` on the same pages (micro-averaged over tokens, and the mean of per-page
F1), date accuracy (same calendar day in UTC), canonical URL accuracy, language accuracy
(pages, labelled articles, and their titles alone as short texts), relevance precision and
recall, near-duplicate pair precision / recall, story purity and completeness (in a scratch
alias of the real node), search recall@10 / precision@10 / nDCG@10 per language beside the
standard analyzer (tests/eval/search_quality.py), linked-entity precision / recall / F1, and
every miss.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trafilatura
from elasticsearch import Elasticsearch

from pipeline.dedup import Deduplicator, fingerprint
from pipeline.enrich import EnrichRules, enrich_articles
from pipeline.extract import decode_html, default_rules, extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.index import article_document, index_documents
from pipeline.metadata import detect_language
from pipeline.minhash import MinHasher
from pipeline.records import Article, ItemError, Source
from pipeline.relevance import TopicModel, score_relevance
from pipeline.settings import CONFIG_DIR, Settings
from pipeline.store import StoreUnavailable, check_available, connect, ensure_indices
from pipeline.stories import StoryFinder, StoryRules
from pipeline.urls import normalize_url
from tests.eval import search_quality
from tests.eval.corpus import (
    GoldPage,
    annotated_articles,
    dedup_set,
    held_out_pages,
    labelled_articles,
    overlap,
    sample_pages,
)


def ours(page: GoldPage) -> str:
    try:
        return extract_article(page.page(), page.feed_item()).text
    except ItemError:
        return ""


def plain_trafilatura(page: GoldPage) -> str:
    html = decode_html(page.body, page.http_charset)
    return trafilatura.extract(html, url=page.url) or ""


def plain_with_metadata(page: GoldPage) -> str:
    """Plain trafilatura asked for what `ours` also gives: title, author, date (htmldate)."""
    html = decode_html(page.body, page.http_charset)
    return trafilatura.extract(html, url=page.url, with_metadata=True) or ""


def extraction_scores(pages: list[GoldPage], extract: Callable[[GoldPage], str]
                      ) -> tuple[dict[str, float], list[tuple[str, float]]]:
    shared = got = want = 0
    per_page = []
    for page in pages:
        s, g, w = overlap(extract(page), page.gold_text)
        shared, got, want = shared + s, got + g, want + w
        p, r = s / max(1, g), s / max(1, w)
        per_page.append((f"{page.group}/{page.name}", 2 * p * r / (p + r) if p + r else 0.0))
    precision, recall = shared / max(1, got), shared / max(1, want)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "mean_page_f1": sum(f for _, f in per_page) / max(1, len(per_page)),
    }, per_page


@dataclass
class Accuracy:
    """Share of items right, and a line for each miss."""

    right: int = 0
    total: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, ok: bool, miss: str) -> None:
        self.total += 1
        self.right += ok
        if not ok:
            self.misses.append(miss)

    @property
    def value(self) -> float:
        return self.right / max(1, self.total)


def metadata_scores(pages: list[GoldPage]) -> dict[str, Accuracy]:
    """Date (same UTC day), canonical URL and language accuracy of our extraction."""
    scores = {"date": Accuracy(), "url": Accuracy(), "language": Accuracy()}
    for page in pages:
        name = f"{page.group}/{page.name}"
        try:
            article = extract_article(page.page(), page.feed_item())
        except ItemError as exc:
            for accuracy in scores.values():
                accuracy.add(False, f"{name}: {exc.reason}")
            continue
        got = article.published_at
        scores["date"].add(got is not None and page.published is not None
                           and got.astimezone(UTC).date() == page.published.date(),
                           f"{name}: got {got}, gold {page.published}")
        scores["url"].add(article.url == normalize_url(page.canonical),
                          f"{name}: got {article.url}, gold {page.canonical}")
        scores["language"].add(article.language == page.language,
                               f"{name}: got {article.language}, gold {page.language}")
    return scores


def language_scores(articles: list[dict[str, Any]]) -> dict[str, Accuracy]:
    """Language accuracy on the labelled articles, whole and by their titles alone."""
    rules = default_rules().metadata
    scores = {"text": Accuracy(), "title": Accuracy()}
    for article in articles:
        whole = detect_language(f"{article['title']}\n{article['text']}", rules)
        scores["text"].add(whole == article["language"], f"{article['id']}: got {whole}")
        title = detect_language(article["title"], rules)
        scores["title"].add(title == article["language"],
                            f"{article['id']}: got {title}: {article['title']}")
    return scores


def relevance_scores(articles: list[dict[str, Any]]) -> tuple[float, float, list[str]]:
    """Precision and recall of the relevance rule on the labelled articles, and the misses."""
    gazetteer = Gazetteer.load(CONFIG_DIR / "entities.yaml")
    model = TopicModel.load(CONFIG_DIR / "topic.yaml", gazetteer)
    tp = fp = fn = 0
    misses = []
    for article in articles:
        relevance = score_relevance(article["title"], article["text"], model)
        if relevance.relevant and article["relevant"]:
            tp += 1
        elif relevance.relevant or article["relevant"]:
            fp += relevance.relevant
            fn += article["relevant"]
            kind = "false positive" if relevance.relevant else "false negative"
            misses.append(f"{kind} {article['id']} ({article['category']}, score "
                          f"{relevance.score}): {article['title']}")
    return tp / max(1, tp + fp), tp / max(1, tp + fn), misses


def entity_scores(articles: list[dict[str, Any]]) -> tuple[float, float, float, list[str]]:
    """Article-level precision, recall and F1 of linked entities (canonical names), and the
    misses and false hits."""
    gazetteer = Gazetteer.load(CONFIG_DIR / "entities.yaml")
    rules = EnrichRules.load(CONFIG_DIR / "enrich.yaml")
    inputs = [Article(url=a["id"], title=a["title"], text=a["text"], language=a["language"],
                      published_at=None, authors=(), source=Source("", ""),
                      fetched_at=datetime.now(UTC)) for a in articles]
    shared = got_total = want_total = 0
    misses = []
    for gold, enriched in zip(articles, enrich_articles(inputs, gazetteer, rules), strict=True):
        want = {e["name"] for e in gold["entities"] if e.get("linked", True)}
        got = {e.name for e in enriched.entities if e.linked}
        shared += len(got & want)
        got_total += len(got)
        want_total += len(want)
        misses.extend(f"missed {gold['id']}: {name}" for name in sorted(want - got))
        misses.extend(f"false hit {gold['id']}: {name}" for name in sorted(got - want))
    precision, recall = shared / max(1, got_total), shared / max(1, want_total)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, misses


def near_duplicate_scores(documents: dict[str, dict[str, Any]], pairs: list[dict[str, Any]]
                          ) -> dict[str, Any]:
    """Pair precision and recall of the near-copy rule (config/dedup.yaml), the share of copies
    that share an LSH band (candidate recall), and the misses."""
    hasher = MinHasher.load(CONFIG_DIR / "dedup.yaml")
    prints = {doc_id: fingerprint(doc["text"], hasher) for doc_id, doc in documents.items()}
    tp = fp = fn = candidates = 0
    misses = []
    for pair in pairs:
        a, b = prints[pair["a"]], prints[pair["b"]]
        similarity = hasher.similarity(list(a.signature), list(b.signature))
        predicted = a.content_hash == b.content_hash or bool(hasher.copy_similarity(a.signature,
                                                                              b.signature))
        if pair["duplicate"]:
            candidates += bool(set(a.lsh) & set(b.lsh))
        if predicted and pair["duplicate"]:
            tp += 1
        elif predicted != pair["duplicate"]:
            fp += predicted
            fn += not predicted
            misses.append(f"{'false copy' if predicted else 'missed copy'} {pair['a']} ~ "
                          f"{pair['b']} ({pair['kind']}, similarity {similarity:.2f})")
    copies = sum(p["duplicate"] for p in pairs)
    same_event = [p for p in pairs if p["kind"] == "same_event_different_article"]
    return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "candidate_recall": candidates / max(1, copies), "pairs": len(pairs),
            "copies": copies, "same_event_pairs": len(same_event),
            "same_event_marked": sum(1 for m in misses if "same_event" in m), "misses": misses}


def story_scores(documents: dict[str, dict[str, Any]], es: Elasticsearch,
                 settings: Settings) -> dict[str, float]:
    """Ingest the labelled documents in publication order into a scratch alias of the real
    node, as the pipeline does (copies are recorded, not indexed; the rest get stories), and
    measure the stories against the labelled events: purity (the share of each story's
    articles from its main event) and completeness (the share of each event's articles in its
    main story), weighted by articles."""
    hasher = MinHasher.load(CONFIG_DIR / "dedup.yaml")
    ensure_indices(es, settings)
    dedup = Deduplicator(es, settings.index_alias, hasher)
    finder = StoryFinder(es, settings.index_alias, StoryRules.load(CONFIG_DIR / "dedup.yaml"))
    story_of: dict[str, str] = {}
    for doc_id, doc in sorted(documents.items(), key=lambda item: str(item[1]["published"])):
        published = datetime.fromisoformat(str(doc["published"])).astimezone(UTC)
        article = Article(url=doc["url"], title=doc["title"], text=doc["text"],
                          language=doc["language"], published_at=published, authors=(),
                          source=Source(doc["source"], ""), fetched_at=published)
        print_ = fingerprint(doc["text"], hasher)
        if dedup.check(article.url, print_) is not None:
            continue
        story = finder.assign(article)
        story_of[doc_id] = story
        index_documents(es, settings.index_alias,
                        [article_document(article, print_, story, "eval", "eval", "")],
                        refresh=True)
    events: dict[str, Counter[str]] = {}
    stories: dict[str, Counter[str]] = {}
    for doc_id, story in story_of.items():
        event = documents[doc_id]["event"]
        events.setdefault(event, Counter())[story] += 1
        stories.setdefault(story, Counter())[event] += 1
    total = max(1, len(story_of))
    return {
        "articles": len(story_of),
        "events": len(events),
        "stories": len(stories),
        "purity": sum(max(c.values()) for c in stories.values()) / total,
        "completeness": sum(max(c.values()) for c in events.values()) / total,
    }


def main() -> int:
    held_out, development = held_out_pages(), sample_pages()
    print(f"Extraction: bag-of-words against gold text ({len(held_out)} held-out pages in "
          f"{len({p.group for p in held_out})} templates; {len(development)} sample-corpus pages)")
    print(f"  {'pages':<12} {'extractor':<20} {'precision':>9} {'recall':>7} {'F1':>7} "
          f"{'mean F1':>8}")
    worst: list[tuple[str, float]] = []
    for label, pages in (("held-out", held_out), ("sample", development)):
        for name, extract in (("ours", ours), ("plain trafilatura", plain_trafilatura)):
            scores, per_page = extraction_scores(pages, extract)
            print(f"  {label:<12} {name:<20} {scores['precision']:9.4f} {scores['recall']:7.4f} "
                  f"{scores['f1']:7.4f} {scores['mean_page_f1']:8.4f}")
            if name == "ours":
                worst.extend(item for item in per_page if item[1] < 0.97)
    for name, f1 in sorted(worst, key=lambda item: item[1]):
        print(f"  our F1 < 0.97: {f1:.3f}  {name}")

    pages = held_out + development
    metadata = metadata_scores(pages)
    articles = labelled_articles()
    languages = language_scores(articles)
    print(f"\nDates (same UTC day): {metadata['date'].value:.4f} of {len(pages)} pages")
    print(f"Canonical URLs: {metadata['url'].value:.4f} of {len(pages)} pages")
    print(f"Language: {metadata['language'].value:.4f} of {len(pages)} pages; "
          f"{languages['text'].value:.4f} of {len(articles)} labelled articles; "
          f"{languages['title'].value:.4f} of their titles alone")
    for label, accuracy in (*metadata.items(), *languages.items()):
        for miss in accuracy.misses:
            print(f"  {label} miss {miss}")

    precision, recall, misses = relevance_scores(articles)
    print(f"\nRelevance on {len(articles)} labelled articles "
          f"({sum(a['relevant'] for a in articles)} relevant): precision {precision:.4f}, "
          f"recall {recall:.4f}")
    for miss in misses:
        print(f"  {miss}")

    documents, pairs = dedup_set()
    near = near_duplicate_scores(documents, pairs)
    print(f"\nNear-duplicates on {near['pairs']} labelled pairs ({near['copies']} copies, "
          f"{len(documents)} documents): precision {near['precision']:.4f}, "
          f"recall {near['recall']:.4f}; copies sharing an LSH band {near['candidate_recall']:.4f}; "
          f"same-event different articles marked copies: {near['same_event_marked']} of "
          f"{near['same_event_pairs']}")
    for miss in near["misses"]:
        print(f"  {miss}")

    settings = replace(Settings.load(), index_alias=f"eval-{uuid.uuid4().hex[:8]}")
    es = connect(settings)
    try:
        check_available(es, settings)
        stories = story_scores(documents, es, settings)
        print(f"Stories on {stories['articles']} articles indexed from those documents "
              f"({stories['events']} labelled events, {stories['stories']} stories): purity "
              f"{stories['purity']:.4f}, completeness {stories['completeness']:.4f}")
        search_quality.report(es, settings)
    except StoreUnavailable as exc:
        print(f"Stories and search: not measured: {exc}")
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{settings.index_alias}*",
                                                     expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(
            name=f"{settings.index_alias}-template")

    annotated = annotated_articles()
    precision, recall, f1, entity_misses = entity_scores(annotated)
    print(f"\nLinked entities on {len(annotated)} annotated articles: precision {precision:.4f}, "
          f"recall {recall:.4f}, F1 {f1:.4f}")
    for miss in entity_misses:
        print(f"  {miss}")

    corpora = os.environ.get("EVAL_CORPORA")
    if corpora:
        from tests.eval import real, realentities

        real.extraction(Path(corpora))
        real.metadata(Path(corpora))
        real.relevance(Path(corpora))
        real.near_copies(Path(corpora))
        realentities.entities(Path(corpora))
    else:
        print("\nReal pages and texts: not measured (set EVAL_CORPORA; see "
              "tests/eval/real/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make eval`: extraction, date, language and relevance quality on the team's evaluation data.

Prints bag-of-words precision / recall / F1 of our extraction and of plain
`trafilatura.extract` on the same pages (micro-averaged over tokens, and the mean of per-page
F1), date accuracy (same calendar day in UTC), canonical URL accuracy, language accuracy
(pages, labelled articles, and their titles alone as short texts), relevance precision and
recall, and every miss.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import trafilatura

from pipeline.extract import decode_html, default_rules, extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.metadata import detect_language
from pipeline.records import ItemError
from pipeline.relevance import TopicModel, score_relevance
from pipeline.settings import CONFIG_DIR
from pipeline.urls import normalize_url
from tests.eval.corpus import GoldPage, held_out_pages, labelled_articles, overlap, sample_pages


def ours(page: GoldPage) -> str:
    try:
        return extract_article(page.page(), page.feed_item()).text
    except ItemError:
        return ""


def plain_trafilatura(page: GoldPage) -> str:
    html = decode_html(page.body, page.http_charset)
    return trafilatura.extract(html, url=page.url) or ""


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
    if worst:
        print("  pages where our F1 < 0.97:")
        for name, f1 in sorted(worst, key=lambda item: item[1]):
            print(f"    {f1:.3f}  {name}")

    pages = held_out + development
    date_ok, lang_ok, url_ok, date_misses, lang_misses, url_misses = 0, 0, 0, [], [], []
    for page in pages:
        try:
            article = extract_article(page.page(), page.feed_item())
        except ItemError as exc:
            date_misses.append(f"{page.group}/{page.name}: {exc.reason}")
            lang_misses.append(f"{page.group}/{page.name}: {exc.reason}")
            continue
        got = article.published_at
        if got is not None and page.published and got.date() == page.published.date():
            date_ok += 1
        else:
            date_misses.append(f"{page.group}/{page.name}: got {got}, gold {page.published}")
        if article.url == normalize_url(page.canonical):
            url_ok += 1
        else:
            url_misses.append(f"{page.group}/{page.name}: got {article.url}, "
                              f"gold {page.canonical}")
        if article.language == page.language:
            lang_ok += 1
        else:
            lang_misses.append(f"{page.group}/{page.name}: got {article.language}, "
                               f"gold {page.language}")
    print(f"\nDates (same UTC day): {date_ok / len(pages):.4f} of {len(pages)} pages")
    for miss in date_misses:
        print(f"  miss {miss}")
    print(f"Canonical URLs: {url_ok / len(pages):.4f} of {len(pages)} pages")
    for miss in url_misses:
        print(f"  miss {miss}")

    articles = labelled_articles()
    rules = default_rules().metadata
    texts_ok = sum(detect_language(f"{a['title']}\n{a['text']}", rules) == a["language"]
                   for a in articles)
    title_misses = [(a["id"], a["title"], detect_language(a["title"], rules)) for a in articles
                    if detect_language(a["title"], rules) != a["language"]]
    print(f"Language: {lang_ok / len(pages):.4f} of {len(pages)} pages; "
          f"{texts_ok / len(articles):.4f} of {len(articles)} labelled articles; "
          f"{1 - len(title_misses) / len(articles):.4f} of their titles alone")
    for miss in lang_misses:
        print(f"  miss {miss}")
    for article_id, title, got in title_misses:
        print(f"  title miss {article_id}: got {got}: {title}")

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
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print(f"\nRelevance on {len(articles)} labelled articles "
          f"({sum(a['relevant'] for a in articles)} relevant): precision {precision:.4f}, "
          f"recall {recall:.4f} (threshold {model.threshold})")
    for miss in misses:
        print(f"  {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""extract: clean text and metadata from the sample corpus's pages (six outlet templates,
English, Russian and Chinese), measured against the gold text written with each page."""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import lxml.html
import pytest
import trafilatura

from pipeline.extract import decode_html, default_rules, extract_article, parse_html
from pipeline.metadata import canonical_url, detect_language
from pipeline.records import FeedItem, ItemError, Page
from tests.conftest import SAMPLE_BASE, article_id, sample_articles
from tests.eval.corpus import tokens

ARTICLES = sample_articles("article")


def _bag_scores(extracted: str, gold: str) -> tuple[float, float]:
    got, want = Counter(tokens(extracted)), Counter(tokens(gold))
    overlap = sum((got & want).values())
    return overlap / max(1, sum(got.values())), overlap / max(1, sum(want.values()))


def test_corpus_has_the_promised_variety() -> None:
    outlets = {a.outlet for a in ARTICLES}
    languages = {a.raw["language"] for a in ARTICLES}
    assert len(ARTICLES) >= 40 and len(outlets) >= 6
    assert {"en", "ru", "zh"} <= languages
    assert any(not a.raw["relevant"] for a in ARTICLES)


@pytest.mark.parametrize("sample", ARTICLES, ids=article_id)
def test_text_matches_gold(sample) -> None:
    article = extract_article(sample.page())
    precision, recall = _bag_scores(article.text, sample.gold_text)
    assert recall >= 0.95, f"lost text: recall {recall:.2f}"
    assert precision >= 0.80, f"boilerplate kept: precision {precision:.2f}"
    assert "\n\n" in article.text  # paragraphs stay separated
    assert not article.text.startswith(article.title)  # the headline is not repeated


@pytest.mark.parametrize("sample", [a for a in ARTICLES if a.raw["language"] == "zh"],
                         ids=article_id)
def test_a_chinese_article_s_word_count_counts_its_words_not_its_paragraphs(sample) -> None:
    # the count analysts chart and filter on is the one the length minimum uses: a Chinese
    # article long enough to be kept never reports fewer words than the minimum
    article = extract_article(sample.page())
    characters = sum(1 for c in article.text if "\u4e00" <= c <= "\u9fff")
    assert article.word_count >= default_rules().cleaning.min_words
    assert characters // 2 <= article.word_count <= characters


@pytest.mark.parametrize("sample", ARTICLES, ids=article_id)
def test_metadata_matches_page(sample) -> None:
    article = extract_article(sample.page())
    assert article.title == sample.raw["title"]
    assert article.language == sample.raw["language"]
    assert article.published_at is not None
    assert article.published_at.tzinfo is not None
    # the same instant, to the minute, whatever offset the page gives it in
    assert article.published_at == datetime.fromisoformat(sample.raw["published"])
    assert article.url == sample.raw["canonical"].replace("{BASE_URL}", SAMPLE_BASE)


def test_amp_copy_points_to_its_original() -> None:
    (amp,) = sample_articles("amp_copy")
    article = extract_article(amp.page())
    assert "/amp/" in amp.raw["feed_link"]
    assert article.url == amp.raw["canonical"].replace("{BASE_URL}", SAMPLE_BASE)
    assert article.fetched_url == amp.raw["feed_link"].replace("{BASE_URL}", SAMPLE_BASE)


def test_tracking_link_resolves_to_clean_canonical() -> None:
    (tracked,) = sample_articles("tracking_link")
    page = tracked.page()
    assert "utm_source" in page.url
    assert extract_article(page).url == tracked.raw["canonical"].replace("{BASE_URL}",
                                                                          SAMPLE_BASE)


def test_canonical_falls_back_to_normalised_page_url() -> None:
    import lxml.html

    tree = lxml.html.fromstring("<html><head></head><body><p>x</p></body></html>")
    assert (canonical_url(tree, "HTTPS://Example.ORG:443/a/b?utm_medium=rss&id=7#top")
            == "https://example.org/a/b?id=7")


@pytest.mark.parametrize(("page_url", "declared", "canonical"), [
    # the outlet's own AMP host and its www host are one site
    ("https://amp.northern-wire.co.uk/a.html", "https://www.northern-wire.co.uk/a.html",
     "https://www.northern-wire.co.uk/a.html"),
    # an aggregator naming the outlet's article as its own canonical is not believed
    ("https://aggregator.example/story/9", "https://www.northern-wire.co.uk/a.html",
     "https://aggregator.example/story/9"),
    # two sites under one public suffix are two sites
    ("https://someone.github.io/copy", "https://other.github.io/original",
     "https://someone.github.io/copy"),
    # addresses: the same host and port only
    ("http://127.0.0.1:8001/copy", "http://127.0.0.1:8002/original",
     "http://127.0.0.1:8001/copy"),
])
def test_canonical_on_another_site_is_not_trusted(page_url: str, declared: str,
                                                   canonical: str) -> None:
    import lxml.html

    tree = lxml.html.fromstring(f'<html><head><link rel="canonical" href="{declared}"></head>'
                                "<body><p>x</p></body></html>")
    assert canonical_url(tree, page_url) == canonical


def test_charset_from_header_and_from_meta() -> None:
    text = "Путин и Си Цзиньпин"
    assert decode_html(text.encode("cp1251"), "windows-1251") == text
    page = f'<html><head><meta charset="windows-1251"></head><body>{text}</body></html>'
    assert text in decode_html(page.encode("cp1251"), None)


def test_a_page_labelled_latin1_keeps_its_windows_1252_quotes_dashes_and_euros() -> None:
    # Servers and pages say "iso-8859-1" of text in windows-1252, and browsers read it so
    # (the WHATWG Encoding Standard): latin-1 would make these characters controls
    paragraph = ("Der Gaspreis stieg auf 5 € – so „teuer“ wie nie, sagte der Sprecher des "
                 "Ministeriums in Moskau. Die Lieferungen nach China sollen dennoch wachsen, "
                 "und die Pipeline wird bis zum Jahresende fertig.")
    body = f"<html><body><article><p>{paragraph}</p></article></body></html>".encode("cp1252")
    article = extract_article(replace(_page(body), charset="iso-8859-1"))
    assert paragraph in article.text


@pytest.mark.parametrize(("label", "codec", "text"), [
    ("us-ascii", "cp1252", "Preis: 5 € – „teuer“"),
    ("gb2312", "gbk", "朱镕基会见俄罗斯总理"),  # 镕 is GBK's, not GB2312's
    ("shift_jis", "cp932", "№１ ロシア①と中国の外相が会談"),  # Windows' Shift_JIS
    ("euc-kr", "cp949", "똠방각하 러시아와 중국"),  # Windows' EUC-KR
])
def test_a_charset_is_read_as_browsers_read_its_name(label: str, codec: str, text: str) -> None:
    assert text in decode_html(f"<html><body><p>{text}</p></body></html>".encode(codec), label)


@pytest.mark.parametrize("misread_as", ["latin-1", "cp1252"])
def test_text_a_page_holds_encoded_twice_is_mended(misread_as: str) -> None:
    # a CMS read a pasted paragraph's UTF-8 as latin-1 (or windows-1252) and saved it as UTF-8
    # again ("weâ€™ve"), beside text it kept right: the article reads as written
    pasted = ("The Kremlin’s spokesman said they’ve “no objection” to the Power of Siberia 2 "
              "route — and that Gazprom’s talks with CNPC on the price would go on. "
              "Синоптики ждут мороза; 中俄东线天然气管道 runs on.")
    kept = ("Officials in Moscow and Beijing said the agreement on gas volumes was close, and "
            "that the café in Blagoveshchensk where the delegations met was full of reporters.")
    # (the five bytes windows-1252 leaves undefined read as browsers read them: C1 controls)
    twice = "".join(bytes([byte]).decode(misread_as, errors="ignore") or chr(byte)
                    for byte in pasted.encode("utf-8")).encode("utf-8")
    body = (b"<html><head><meta charset='utf-8'><title>Gas talks</title></head><body><article>"
            b"<h1>Gas talks go on</h1><p>" + twice + b"</p><p>" + kept.encode("utf-8")
            + b"</p></article></body></html>")
    article = extract_article(_page(body))
    assert pasted in article.text and kept in article.text
    # and a page that only looks so (German "ß" before a soft hyphen) stays as it is
    german = "Die Maß\u00adnahmen der Regierung für Großbritannien gelten weiter."
    assert german in decode_html(f"<p>{german}</p>".encode(), None)


@pytest.mark.parametrize(("text", "language"), [
    ("Moscow and Beijing agreed to expand trade settled in national currencies.", "en"),
    ("Москва и Пекин договорились расширить торговлю в национальных валютах.", "ru"),
    ("中俄双方同意扩大本币结算的贸易规模。", "zh"),
])
def test_language_detection(text: str, language: str) -> None:
    assert detect_language(text, default_rules().metadata) == language


def test_standard_chinese_the_detector_takes_for_wu_is_chinese() -> None:
    rules = default_rules().metadata
    report = ("央视网消息（新闻联播）：俄罗斯国防部10日称，俄军继续在多个方向推进，又有多国领导人致电致函，"
              "纷纷致电或致函中共中央总书记、国家主席习近平，俄罗斯总统弗拉基米尔·普京将于5月16日至17日"
              "对中国进行国事访问。") * 3
    assert rules.identifier.rank(report)[0][0] == "wuu"  # the detector alone
    assert detect_language(report, rules) == "zh"
    # written Cantonese, with characters of its own, stays Cantonese
    assert detect_language("佢哋今日喺北京開會，講咗好多嘢。", rules) == "yue"


def _page(body: bytes, content_type: str | None = "text/html") -> Page:
    return Page(url="http://example.org/a", final_url="http://example.org/a", status=200,
                content_type=content_type, charset=None, body=body,
                fetched_at=datetime.now(UTC))


def test_binary_response_is_rejected_with_a_reason() -> None:
    with pytest.raises(ItemError) as caught:
        extract_article(_page(b"%PDF-1.7 \x00\x01", content_type="application/pdf"))
    assert caught.value.reason == "not_html"


@pytest.mark.parametrize("encoding", ["utf-8", "cp1251", "utf-16"])
def test_control_characters_in_a_page_are_dropped_not_fatal(encoding: str) -> None:
    # a CMS leaves a vertical tab, a form feed, a stray C0 control or U+FFFF in the text: XML
    # (trafilatura's tree) cannot hold them, so they go, and the article stays
    paragraph = ("Moscow and Beijing agreed on new\x0b rail freight quotas for the border "
                 "crossing at Zabaikalsk, officials said\x01 on Tuesday, after talks that ran "
                 "late into the night.\x0c The quotas raise grain and timber volumes by a "
                 "fifth and take effect in\uffff January.\x1b")
    html = (f"<html><head><meta charset='{encoding}'><title>Rail quotas</title></head><body>"
            f"<article><h1>Rail quotas agreed</h1><p>{paragraph}</p><p>{paragraph}</p>"
            "</article></body></html>")
    article = extract_article(_page(html.encode(encoding, errors="replace")))
    assert "rail freight quotas" in article.text and "January" in article.text
    assert not any(c in article.text for c in "\x0b\x01\x0c\uffff\x1b")


def test_page_without_article_is_rejected_as_too_short() -> None:
    with pytest.raises(ItemError) as caught:
        extract_article(_page(b"<html><body><nav>Home | World</nav><p>Subscribe now.</p>"
                              b"</body></html>"))
    assert caught.value.reason in {"too_short", "no_content"}


def _published_page(published: str) -> Page:
    return _page(("<html><head><title>T</title>"
                  f'<meta property="article:published_time" content="{published}"></head>'
                  "<body><article><h1>T</h1>"
                  + "".join(f"<p>Paragraph {i} about Russia and China trade talks in Beijing "
                            "and Moscow with several more words.</p>" for i in range(6))
                  + "</article></body></html>").encode())


def test_published_time_in_the_future_is_dropped() -> None:
    assert extract_article(_published_page("2999-01-01T00:00:00Z")).published_at is None


def test_an_item_whose_page_gives_its_day_alone_has_its_feeds_time_of_that_day() -> None:
    page = _published_page("2026-11-03")
    fed = datetime(2026, 11, 3, 9, 41, tzinfo=UTC)
    item = FeedItem(url="http://example.org/a", feed_name="f", feed_url="http://example.org/f",
                    published_at=fed)
    assert extract_article(page, item).published_at == fed
    # the feed's time of another day is not this page's: the page's day stands, at noon
    later = FeedItem(url="http://example.org/a", feed_name="f", feed_url="http://example.org/f",
                     published_at=datetime(2026, 11, 6, 9, 41, tzinfo=UTC))
    assert extract_article(page, later).published_at == datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


_STORY = [
    ("Russian and Chinese negotiators met in Beijing on Tuesday to discuss the route of the "
     "Power of Siberia 2 pipeline through Mongolia, officials on both sides said."),
    ("The talks, the fourth round this year, covered the price formula and the volumes Gazprom "
     "would deliver to CNPC once the line is built, according to a person briefed on them."),
    ("Neither company commented on the details. The Kremlin said the leaders would return to "
     "the project when they meet at the summit next month in Kazan."),
    ("Analysts in Moscow said a deal could be signed before the end of the year if the two "
     "sides bridge the gap on price, which has held up an agreement for years."),
]


def _article_page(container: str, head: str = "", before: str = "", after: str = "") -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in _STORY)
    return (f"<html><head><title>Pipeline talks</title>{head}</head><body>{before}"
            f"{container.replace('{}', paragraphs)}{after}</body></html>").encode()


@pytest.mark.parametrize("page", [
    # an XML declaration naming the encoding (lxml refuses it with a decoded string)
    b'<?xml version="1.0" encoding="utf-8"?>\n' + _article_page("<article>{}</article>"),
    # the article inside containers named like boilerplate
    _article_page('<div class="post has-share-bar comments-enabled"><div class="entry">{}</div>'
                  "</div>"),
    _article_page('<div id="related-wrapper"><main class="social-layout">{}</main></div>'),
    # the article after a long navigation and before a long footer
    _article_page("<article>{}</article>",
                  before="<nav>" + " ".join(f"<a href='/s{i}'>Section {i}</a>"
                                            for i in range(80)) + "</nav>",
                  after="<footer>" + "<p>About us. Contact. Careers. Privacy.</p>" * 20
                        + "</footer>"),
])
def test_article_text_trafilatura_finds_is_never_lost(page: bytes) -> None:
    plain = trafilatura.extract(page) or ""
    article = extract_article(_page(page))
    assert len(plain.split()) >= 100
    for paragraph in _STORY:
        assert paragraph in article.text


@pytest.mark.parametrize("html", [
    _article_page("<article><!-- ad slot --><?php echo 1 ?>{}</article>").decode(),
    '<?xml version="1.0" encoding="utf-8"?>\n' + _article_page("<article>{}</article>").decode(),
    "<!DOCTYPE html PUBLIC '-//W3C//DTD XHTML 1.0//EN'>\n<html/>\n<body><p>Talks</p></body>",
    "<form><input name=q><select><option>ru</option></select><label>Go</label></form>",
    "<p>A fragment, not a document</p>", "plain text", "",
])
def test_pages_are_parsed_as_trafilatura_parses_them(html: str) -> None:
    # our parser only makes the tree's element objects faster to make: trafilatura must get the
    # tree its own loader makes, and the text it extracts from it must be the same
    from trafilatura.utils import load_html

    ours, theirs = parse_html(html), load_html(html)
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert lxml.html.tostring(ours) == lxml.html.tostring(theirs)
        assert all(isinstance(element, lxml.html.HtmlElement) for element in ours.iter())
        assert trafilatura.extract(ours) == trafilatura.extract(theirs)


@pytest.mark.parametrize("junk", [
    # JSON-LD or a data island printed in the body, as some CMSs do
    ('<div>{"@context": "https://schema.org", "@type": "NewsArticle", "headline": '
     '"Pipeline talks", "datePublished": "2026-11-03T09:15:00+03:00"}</div>'),
    '<p>window.__INITIAL_STATE__ = {"article": {"id": 42}};</p>',
    "<p>.article-body p { margin: 0 0 1em; font-size: 18px; }</p>",
    "<p>{{#article.related}} {{{title}}} {{/article.related}}</p>",
])
def test_script_json_css_and_templates_never_reach_the_text(junk: str) -> None:
    page = _article_page("<article>" + junk + "{}</article>",
                         head='<script type="application/ld+json">{"@type": "NewsArticle"}'
                              "</script>")
    text = extract_article(_page(page)).text
    assert text.startswith(_STORY[0])
    for mark in ('"@context"', "__INITIAL_STATE__", "font-size", "{{"):
        assert mark not in text


# What a page shows where a script renders its article or a paywall hides it: lines our cleaning
# drops (trafilatura takes them for the article)
_TEASER = "".join(f"<p>{line}</p>" for line in (
    "Read more: Gazprom and CNPC sign a new supply contract for the far-eastern route",
    "Related: Border trade through Zabaikalsk sets another monthly record in October",
    "Photo: negotiators arrive for the fourth round of talks in Beijing on Tuesday (Northern Wire)",
    "Subscribe to our newsletter to read the full story and the rest of our coverage today"))


def _declaring(*bodies: str, shown: str = _TEASER) -> bytes:
    """A page showing `shown`, its JSON-LD declaring `bodies` as article bodies."""
    nodes = ", ".join(json.dumps({"@type": "NewsArticle", "headline": "Pipeline talks",
                                  "articleBody": body}) for body in bodies)
    return _article_page(f"<article>{shown}</article>",
                         head=f'<script type="application/ld+json">[{nodes}]</script>')


@pytest.mark.parametrize("body", [
    "\n".join(_STORY),                                              # text, a paragraph a line
    "".join(f"<p>{html.escape(p)}</p>" for p in _STORY),            # the publisher's markup
    "<script>window.ads = [];</script><style>p { margin: 0 }</style>"  # and its code
    + "".join(f"<div>{html.escape(p)}<br></div>" for p in _STORY),
])
def test_an_article_the_page_only_declares_is_not_lost(body: str) -> None:
    assert "Gazprom and CNPC sign" in trafilatura.extract(_declaring(body))
    assert extract_article(_page(_declaring(body))).text.split("\n\n") == _STORY


def test_a_declared_body_stands_in_only_for_an_article_the_page_does_not_show() -> None:
    # two articles declared: neither is this page's for sure, and what the page shows stands
    text = extract_article(_page(_declaring("\n".join(_STORY), "\n".join(reversed(_STORY))))).text
    assert "Gazprom and CNPC sign" in text and not any(p in text for p in _STORY)
    # the article shown stands, whatever longer text is declared
    shown = "".join(f"<p>{p}</p>" for p in _STORY)
    text = extract_article(_page(_declaring("\n".join(_STORY * 3), shown=shown))).text
    assert text.split("\n\n") == _STORY

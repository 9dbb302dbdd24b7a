"""Cleaning rules (config/cleaning.yaml, pipeline/clean.py): what each removes, and the real
article text that looks like it and is kept."""

from __future__ import annotations

import lxml.html
import pytest

from pipeline.clean import (
    Block,
    CleaningRules,
    article_blocks,
    drop_boilerplate_blocks,
    join_blocks,
    preclean,
)
from pipeline.settings import CONFIG_DIR

RULES = CleaningRules.load(CONFIG_DIR / "cleaning.yaml")


def _kept(*texts: str, title: str = "Headline") -> list[str]:
    return [b.text for b in drop_boilerplate_blocks([Block("paragraph", t) for t in texts],
                                                    title, RULES)]


@pytest.mark.parametrize("line", [
    # related links and recirculation
    "Read more: Russia and China sign grain deal", "See also: Lavrov visits Beijing",
    "Related: Power of Siberia 2 talks stall", "Related coverage", "Most read:",
    # captions, credits, embedded media
    "Photo: Ivan Petrov / Northern Wire", "Video: Putin greets Xi in Kazan", "0:45",
    "File photo: Gazprom headquarters in Moscow.", "Image courtesy of the Kremlin press service",
    "Xi Jinping and Vladimir Putin in Moscow. Sergei Ilyin / Sputnik",
    "Embedded content from Telegram",
    # promotion, subscription, newsletters
    "Subscribe to our morning briefing", "Sign up for the Eurasia newsletter",
    "Get our free daily newsletter on Asian markets", "Download our app for breaking news",
    # sharing and comments
    "Share this article", "Share on Telegram", "Share via WeChat", "23 comments",
    "Join the discussion", "Leave a reply", "Comments (12)", "Like this:",
    # tags, credits, corrections, licence lines
    "Tags: Russia, China, Energy", "Filed under: Asia, Diplomacy",
    "Reporting by Anna Petrova; Editing by John Smith",
    "This article was updated on Nov 3 to add a comment from the Kremlin.",
    "This article was supplied by Northern Wire and is published under licence.",
    "Our Standards: The Trust Principles.", "© 2026 Pacific Ledger. All rights reserved.",
    "Advertisement",
    # Russian
    "Читайте также: Лавров прибыл в Пекин", "Фото: Иван Петров / Волжский вестник",
    "Подписывайтесь на наш Telegram-канал", "Комментарии (12)", "Теги: Россия, Китай",
    # Chinese
    "相关阅读：中俄东线天然气管道累计输气突破1500亿立方米", "图片来源：本报记者李明远摄",
    "扫码关注公众号", "（责任编辑：王小明）", "来源：华夏观察",
    # bylines and datelines standing alone
    "By Anna Petrova", "By Lin Wei and John Park", "BY ANNA PETROVA",
    "By Anna Petrova in Moscow", "MOSCOW, Nov 3 (Northern Wire) -", "BEIJING, Oct 14 —",
    "TAIPEI (Taiwan Strait Observer) —", "МОСКВА, 23 октября — «Восток Бизнес».",
    # captions that end with a credit
    "Passengers wait at Beijing West station. Photo: Yang Fan",
    "10月8日，旅客在北京西站候车。图片来源：东方日报记者 杨帆 摄",
    "Автор: Иван Сидоров", "记者 王明",
])
def test_boilerplate_lines_are_dropped(line: str) -> None:
    assert _kept(line, "Russia and China agreed to extend the pipeline deal on Tuesday.") == [
        "Russia and China agreed to extend the pipeline deal on Tuesday."]


@pytest.mark.parametrize("line", [
    "Share prices of Gazprom rose 3% after the announcement.",
    "By contrast, exports to China fell.",
    "Comments by the minister drew a sharp reply from Beijing.",
    "Photographs of the signing were not released, the Kremlin said.",
    "MOSCOW, Nov 3 — Russian President Vladimir Putin and Xi Jinping spoke by phone.",
    "Tagged cargo containers crossed the border at Zabaikalsk on Monday.",
    "Read the full statement, the ministry urged reporters, before drawing conclusions.",
    "Copyright disputes between Russian and Chinese film studios are rare.",
    "Подписание соглашения состоялось в Кремле, сообщили в пресс-службе.",
    "关注中俄关系的专家认为，双方合作将继续深化。",
    "Related talks in Astana ended without a statement, diplomats said on Friday evening.",
    "MOSCOW — Russia and China agreed on Tuesday to extend the pipeline contract.",
    "Notes on the margins of the treaty were published later by the ministry.",
])
def test_article_text_that_looks_like_boilerplate_is_kept(line: str) -> None:
    assert _kept(line) == [line]


def test_long_paragraph_is_never_dropped_by_a_line_rule() -> None:
    long = "Read more about it: " + "the pipeline would carry gas to China " * 10
    assert _kept(long) == [long]


def test_headline_repeated_as_first_block_is_dropped() -> None:
    assert _kept("Putin and Xi talk trade!", "Body text.", title="Putin and Xi talk trade") == [
        "Body text."]
    assert _kept("Body text.", "Putin and Xi talk trade", title="Putin and Xi talk trade") == [
        "Body text.", "Putin and Xi talk trade"]


def test_pull_quote_repeating_the_body_is_dropped_real_quote_kept() -> None:
    blocks = [
        Block("paragraph", "Peskov said the talks were useful. \"We see no limits,\" he added."),
        Block("quote", "\"We see no limits,\" he added."),
        Block("quote", "We will build the pipeline together."),
    ]
    assert [b.text for b in drop_boilerplate_blocks(blocks, "T", RULES)] == [
        blocks[0].text, "We will build the pipeline together."]


def test_link_lists_are_dropped() -> None:
    page = lxml.html.fromstring(
        "<div><p>Russia and China agreed on Tuesday.</p>"
        "<ul><li><a href='/a'>Lavrov visits Beijing</a></li>"
        "<li><a href='/b'>Gazprom and CNPC talk gas</a></li></ul>"
        "<p>Trade reached a record, with <a href='/c'>customs data</a> showing growth.</p></div>")
    blocks = article_blocks(page, ["Russia and China agreed on Tuesday.",
                                   "Trade reached a record, with customs data showing growth."])
    assert blocks is not None
    assert [b.text for b in drop_boilerplate_blocks(blocks, "T", RULES)] == [
        "Russia and China agreed on Tuesday.",
        "Trade reached a record, with customs data showing growth."]


def test_preclean_removes_boilerplate_elements_by_tag_and_class() -> None:
    paragraphs = "".join(f"<p>Paragraph {i} of the article about the talks.</p>"
                         for i in range(12))
    page = lxml.html.fromstring(
        "<html><head><script type='application/ld+json'>{}</script></head><body>"
        "<nav>Home World</nav>"
        f"<div class='post has-share-bar'>{paragraphs}"
        "<div class='jp-relatedposts'>Related posts here</div>"
        "<div class='newsletter-box'>Subscribe</div>"
        "<div class='tso-author-box'><p>Lin Wei covers energy from Taipei.</p></div>"
        "<p class='wp-caption-text'>Photo credit</p>"
        "<figure><img src='x.jpg'><figcaption>A caption</figcaption></figure>"
        "<p><span class='dateline'>MOSCOW —</span> Kept paragraph.</p></div>"
        "<footer>About us</footer></body></html>")
    preclean(page, RULES)
    text = page.text_content()
    for gone in ("Home World", "Related posts", "Subscribe", "Photo credit", "A caption",
                 "About us", "Lin Wei covers energy"):
        assert gone not in text
    assert "Paragraph 11 of the article" in text  # the container is kept though "share" names it
    assert "MOSCOW — Kept paragraph." in text  # inline elements are not removed by class
    assert page.find(".//script") is not None  # JSON-LD in the head stays for metadata


def test_article_blocks_bring_back_headings_lists_quotes_and_rows() -> None:
    page = lxml.html.fromstring(
        "<html><body><div id='main'><h1>Headline</h1>"
        "<p>First paragraph of the story.</p>"
        "<h2 class='subtitle'>Energy first</h2>"
        "<p>Second paragraph of the story.</p>"
        "<ul><li>Gas: 38 bcm</li><li>Oil: 100 mt</li></ul>"
        "<blockquote><p>We value our partnership.</p></blockquote>"
        "<table><tr><th>Year</th><th>Trade</th></tr><tr><td>2025</td><td>$245bn</td></tr></table>"
        "</div><div id='other'><h2>Elsewhere</h2></div></body></html>")
    blocks = article_blocks(page, ["First paragraph of the story.",
                                   "Second paragraph of the story."])
    assert blocks is not None
    assert [(b.kind, b.text) for b in blocks] == [
        ("paragraph", "First paragraph of the story."),
        ("heading", "Energy first"),
        ("paragraph", "Second paragraph of the story."),
        ("item", "Gas: 38 bcm"), ("item", "Oil: 100 mt"),
        ("quote", "We value our partnership."),
        ("row", "Year Trade"), ("row", "2025 $245bn"),
    ]


def test_article_blocks_need_the_extracted_text_in_the_page() -> None:
    page = lxml.html.fromstring("<html><body><p>Something else.</p></body></html>")
    assert article_blocks(page, ["Not on this page."]) is None


def test_end_matter_ends_the_article() -> None:
    assert _kept("The talks ended.", "Notes", "1. Interviews by the author.",
                 "Cite this article") == ["The talks ended."]
    assert _kept("Примечания", "Текст статьи.") == ["Примечания", "Текст статьи."]  # not first


def test_paragraphs_trafilatura_passed_over_come_back_when_they_read_like_text() -> None:
    page = lxml.html.fromstring(
        "<div><p>Russia and China agreed on Tuesday.</p>"
        "<div class='x'><p>Local carriers say the record has done nothing to ease the pressure "
        "on the <a href='/q'>road checkpoint</a> next door, officials said.</p></div>"
        "<p>Short aside.</p></div>")
    blocks = article_blocks(page, ["Russia and China agreed on Tuesday."])
    assert blocks is not None
    assert [b.text for b in blocks] == [
        "Russia and China agreed on Tuesday.",
        ("Local carriers say the record has done nothing to ease the pressure on the road "
        "checkpoint next door, officials said.")]


def test_list_items_and_table_rows_stay_together() -> None:
    page = lxml.html.fromstring(
        "<div><p>Russia and China agreed on Tuesday.</p>"
        "<ul><li>first measure;</li><li>second measure.</li></ul>"
        "<table><tr><td>Wheat</td><td>240</td></tr><tr><td>Barley</td><td>610</td></tr></table>"
        "</div>")
    blocks = article_blocks(page, ["Russia and China agreed on Tuesday."])
    assert blocks is not None
    assert join_blocks(blocks) == ("Russia and China agreed on Tuesday.\n\n"
                                   "first measure;\nsecond measure.\n\nWheat 240\nBarley 610")

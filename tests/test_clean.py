"""Cleaning rules (config/cleaning.yaml, pipeline/clean.py): what each removes, and the real
article text that looks like it and is kept."""

from __future__ import annotations

import pytest
from lxml import etree

from pipeline.clean import Block, CleaningRules, body_blocks, drop_boilerplate_blocks, join_blocks
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
    # the same kinds of line in other languages
    "Lesen Sie auch: Lawrow reist nach Peking", "Mehr zum Thema", "Teilen mit:",
    "Kommentare (4)", "Foto: dpa", "Schlagwörter: Russland, China", "Anzeige",
    "À lire aussi : Poutine et Xi au Kremlin", "Partager sur Facebook", "Crédits photo : AFP",
    "Lea también: Rusia y China firman un acuerdo", "Le puede interesar", "Síguenos en X",
    "Leggi anche: Lavrov a Pechino", "Leia também: Putin e Xi em Moscou",
    "Czytaj też: Rosja i Chiny", "Lees ook: Poetin bezoekt Peking", "İlgili Haberler",
    "関連記事", "＞ ログイン", "관련기사",
    "Lesen Sie auch die folgenden Beiträge:", "Das Thema könnte dich auch interessieren:",
    "Contenido relacionado", "Notas relacionadas", "Conteúdo relacionado",
    "Kommentare insgesamt: 0", "Download the Pacific Ledger app for iOS and Android",
    # cookie notices, report-an-error prompts, dates and times standing alone
    "We use cookies to improve your experience. By continuing to browse you agree.",
    "Нашли ошибку? Выделите текст и нажмите Ctrl+Enter",
    "23.10.2018", "2026-11-03 14:05", "3:59 PM", "January 13",
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
    "Credit card payments between the two countries remain limited.",
    "Mehr dazu sagte der Sprecher des Kremls am Dienstag nicht.",
    "Auch interessant ist, dass der Handel mit China um 20 Prozent wuchs.",
    "Meer over de pijpleiding werd niet bekendgemaakt.",
    "Polecamy uważną lekturę porozumienia, powiedział minister.",
    "Cookies and sweets were served at the reception in the Kremlin, the menu shows.",
    "Lesen Sie auch die Erklärung, riet der Sprecher, bevor Sie urteilen.",
    "Notas relacionadas con el gasoducto fueron entregadas al ministerio el martes.",
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


def _body(xml: str) -> etree._Element:
    """A body in the shape trafilatura outputs."""
    return etree.fromstring(f"<body>{xml}</body>")


def test_trafilatura_output_becomes_blocks_in_order() -> None:
    blocks = body_blocks(_body(
        "<p>First paragraph of the story.</p>"
        "<head rend='h2'>Energy first</head>Text trafilatura left between two elements."
        "<list><item>Gas: 38 bcm</item><item>Oil<lb/>100 mt<list><item>crude</item></list>"
        "</item></list>"
        "<quote><p>We value our partnership.</p></quote>"
        "<table><row><cell role='head'>Year</cell><cell>Trade</cell></row>"
        "<row><cell>2025</cell><cell>$245bn</cell></row></table>"
        "<code>print(1)</code>"))
    assert [(b.kind, b.text) for b in blocks] == [
        ("paragraph", "First paragraph of the story."),
        ("heading", "Energy first"),
        ("paragraph", "Text trafilatura left between two elements."),
        ("item", "Gas: 38 bcm"), ("item", "Oil 100 mt"), ("item", "crude"),
        ("quote", "We value our partnership."),
        ("row", "Year Trade"), ("row", "2025 $245bn"),
        ("code", "print(1)"),
    ]


def test_paragraphs_and_headings_inside_an_item_a_cell_or_a_quote_keep_their_words_apart(
        ) -> None:
    # trafilatura keeps a list item's headings and paragraphs (an events list, a product
    # card), and a cell's or a quote's paragraphs, as elements of their own with nothing
    # between them; inline elements (links, emphasis) run on with their words
    blocks = body_blocks(_body(
        "<list><item>April 3, 2026<head rend='h2'>Energy Forum</head><p>Harbin, China</p>"
        "<p>Talks on <ref target='https://example.org/gas'>gas</ref> sup<hi>plies</hi>.</p>"
        "</item></list>"
        "<table><row><cell><p>Max speed</p><p>40 km/h</p></cell><cell>Range</cell></row>"
        "</table>"
        "<quote><p>We value our partnership.</p><p>It will grow.</p></quote>"))
    assert [b.text for b in blocks] == [
        "April 3, 2026 Energy Forum Harbin, China Talks on gas supplies.",
        "Max speed 40 km/h Range",
        "We value our partnership. It will grow."]


def test_a_line_repeated_in_lists_that_differ_is_kept_a_repeated_list_is_not() -> None:
    # a plan's weeks each open with the same warm-up; the same list again, item for item, is
    # the page's copy of it for another screen; a paragraph said twice is said once
    week = ("<list><item>Warm up: easy jogging for ten minutes</item><item>{}</item>"
            "<item>Cool down: easy jogging for ten minutes</item></list>")
    body = _body(week.format("Main set: five fast minutes, twice")
                 + week.format("Main set: twenty steady minutes")
                 + week.format("Main set: twenty steady minutes")
                 + "<p>Rest on the other days.</p><p>Rest on the other days.</p>")
    warm_up, cool_down = ("Warm up: easy jogging for ten minutes",
                          "Cool down: easy jogging for ten minutes")
    assert join_blocks(drop_boilerplate_blocks(body_blocks(body), "", RULES)).split("\n\n") == [
        f"{warm_up}\nMain set: five fast minutes, twice\n{cool_down}",
        f"{warm_up}\nMain set: twenty steady minutes\n{cool_down}",
        "Rest on the other days."]


def test_the_items_of_each_list_stay_together_in_the_text() -> None:
    # lists within a list's items: each is one list of lines, the same on every run
    body = _body("<list>" + "".join(
        f"<item>Contracts of {year}<list>"
        + "".join(f"<item>{firm} signed a supply deal</item>" for firm in ("Gazprom", "CNPC"))
        + "</list></item>" for year in (2025, 2026)) + "</list>"
        "<table><row><cell>2025</cell><cell>38 bcm</cell></row></table>"
        "<table><row><cell>2026</cell><cell>39 bcm</cell></row></table>")
    assert join_blocks(body_blocks(body)).split("\n\n") == [
        "Contracts of 2025", "Gazprom signed a supply deal\nCNPC signed a supply deal",
        "Contracts of 2026", "Gazprom signed a supply deal\nCNPC signed a supply deal",
        "2025 38 bcm", "2026 39 bcm"]


def test_invisible_characters_are_dropped_and_text_normalised() -> None:
    (block,) = body_blocks(_body("<p>Mit\u00adtel\u00adal\u00adter,\u200b e\u0301t\u00e9</p>"))
    assert block.text == "Mittelalter, \u00e9t\u00e9"
    # a zero-width space between line breaks and tabs leaves one space, not two
    (block,) = body_blocks(_body("<p>gas\n \u200b\tdeal\u00ad \r\n signed\u2028</p>"))
    assert block.text == "gas deal signed"


@pytest.mark.parametrize("text", [
    '{"@context": "https://schema.org", "@type": "NewsArticle", "headline": "X"}',
    '[{"id": 1, "name": "x"}]',
    ".article-body p { margin: 0 auto; font-size: 16px; }",
    "@media (max-width: 600px) { .x { display: none; } }",
    "var _paq = window._paq = window._paq || [];",
    "(function() { document.addEventListener('DOMContentLoaded', init); })();",
    "window.dataLayer = window.dataLayer || [];",
    "{{#topArticle.elements}} {{{title}}} {{/topArticle.elements}}",
    "{% include 'banner.html' %}",
])
def test_markup_and_data_never_reach_the_text(text: str) -> None:
    assert _kept(text, "Russia and China agreed to extend the pipeline deal on Tuesday.") == [
        "Russia and China agreed to extend the pipeline deal on Tuesday."]


def test_code_the_article_shows_is_kept() -> None:
    blocks = [Block("paragraph", "The ministry published its data as JSON:"),
              Block("code", '{"exports": 245, "currency": "USD"}')]
    assert drop_boilerplate_blocks(blocks, "T", RULES) == blocks


def test_end_matter_ends_the_article() -> None:
    assert _kept("The talks ended.", "About the author", "Lin Wei covers energy.",
                 "Cite this article") == ["The talks ended."]
    assert _kept("Об авторе", "Текст статьи.") == ["Об авторе", "Текст статьи."]  # not first


def test_notes_and_references_are_not_taken_for_the_end() -> None:
    assert _kept("The talks ended.", "Notes", "The figures are preliminary.") == [
        "The talks ended.", "Notes", "The figures are preliminary."]
    # a section's name ("Comment", itself dropped as a button's label) or an analysis's
    # "Discussion" is no comment section: the article goes on
    for heading in ("Comment", "Discussion"):
        assert _kept("The talks ended.", heading, "Both sides gained.")[-1] == "Both sides gained."


@pytest.mark.parametrize("heading", ["Comentarios (12)", "Comentar", "3 Comments", "Leave a Reply",
                                     "Комментарии", "网友评论", "Kommentare"])
def test_readers_comments_that_trafilatura_kept_end_the_article(heading: str) -> None:
    assert _kept("The talks ended in Beijing.", heading, "Hace 28 minutos",
                 "What a fine deal, said no one.") == ["The talks ended in Beijing."]


def test_trailing_page_furniture_is_dropped_a_short_last_sentence_kept() -> None:
    body = ["Russia and China agreed on Tuesday to extend the pipeline contract.",
            "The deal runs to 2040."]
    assert _kept(*body, "Report an issue", "Print", "Font size", "Home") == body
    assert _kept(*body, "Font size", "Home") == [*body, "Font size", "Home"]  # two: kept


def test_list_items_and_table_rows_stay_together() -> None:
    blocks = body_blocks(_body(
        "<p>Russia and China agreed on Tuesday.</p>"
        "<list><item>first measure;</item><item>second measure.</item></list>"
        "<table><row><cell>Wheat</cell><cell>240</cell></row>"
        "<row><cell>Barley</cell><cell>610</cell></row></table>"))
    assert join_blocks(blocks) == ("Russia and China agreed on Tuesday.\n\n"
                                   "first measure;\nsecond measure.\n\nWheat 240\nBarley 610")

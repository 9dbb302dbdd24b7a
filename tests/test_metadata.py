"""metadata: publication time, headline, authors, site name and language read from the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import lxml.html
import pytest

from pipeline.extract import default_rules
from pipeline.metadata import (
    detect_language,
    page_authors,
    page_title,
    parse_iso,
    parse_printed_date,
    published_time,
    site_name,
)

RULES = default_rules().metadata


def _page(head: str = "", body: str = "") -> lxml.html.HtmlElement:
    return lxml.html.fromstring(f"<html><head>{head}</head><body>{body}</body></html>")


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("3 November 2026, 14:05 MSK", "en", "2026-11-03T11:05"),
    ("November 3, 2026 2:05 PM GMT+8", "en", "2026-11-03T06:05"),
    ("Nov. 3, 2026 10:22 AM EST", "en", "2026-11-03T15:22"),
    ("14 октября 2026, 10:22", "ru", "2026-10-14T07:22"),      # Moscow time by default
    ("14 октября 2026 г. в 01:30", "ru", "2026-10-13T22:30"),  # the UTC day can differ
    ("03.11.2026 14:05", "ru", "2026-11-03T11:05"),
    ("2026年10月14日 10:22", "zh", "2026-10-14T02:22"),          # Beijing time by default
    ("2026-10-14 10:22 来源：东方日报", "zh", "2026-10-14T02:22"),
    ("Published 2026-11-03T09:15:00+03:00", "en", "2026-11-03T06:15"),
    ("14 октября 2026", "ru", "2026-10-14T09:00"),             # a date alone: noon local
    # CST is US Central, but China Standard Time where Chinese outlets print it; IST is India's
    ("January 2, 2025, 9:06am CST", "en", "2025-01-02T15:06"),
    ("2026-10-14 10:22 CST", "zh", "2026-10-14T02:22"),
    ("Dec 17, 2025, 21:47 IST", "en", "2025-12-17T16:17"),
])
def test_printed_dates(text: str, language: str, expected: str) -> None:
    parsed = parse_printed_date(text, language, RULES)
    assert parsed is not None and parsed.astimezone(UTC).isoformat().startswith(expected), parsed


@pytest.mark.parametrize(("text", "language", "local"), [
    ("Oct 10, 2026 3:48 p.m. ET", "en", "2026-10-10T15:48:00-04:00"),   # daylight saving
    ("Jan 10, 2026 3:48 pm ET", "en", "2026-01-10T15:48:00-05:00"),     # standard time
    ("2026年10月10日 下午3:48", "zh", "2026-10-10T15:48:00+08:00"),         # 下午: afternoon
    ("10.10.2026 15:48 am Dienstag", "de", "2026-10-10T15:48:00+02:00"),  # "am" is German
    ("10 October 2026, 15:48 GMT+2", "en", "2026-10-10T15:48:00+02:00"),
])
def test_printed_times_keep_the_minute_and_the_offset(text: str, language: str,
                                                      local: str) -> None:
    parsed = parse_printed_date(text, language, RULES)
    assert parsed is not None and parsed.isoformat() == local


@pytest.mark.parametrize(("value", "local"), [
    ("2026-10-10T15:48:00+0200", "2026-10-10T15:48:00+02:00"),
    ("2026-10-10 15:48:00+02:00", "2026-10-10T15:48:00+02:00"),
    ("Sat, 10 Oct 2026 15:48:00 +0200", "2026-10-10T15:48:00+02:00"),  # RFC 2822 in meta tags
    ("2026-10-10T15:48:00 GMT+2", "2026-10-10T15:48:00+02:00"),
])
def test_declared_times_keep_the_page_offset(value: str, local: str) -> None:
    parsed = parse_iso(value)
    assert parsed is not None and parsed.isoformat() == local


def test_an_update_time_is_not_the_publication_time() -> None:
    parsed = parse_printed_date("Updated: 5 November 2026, 09:00 | 3 November 2026, 14:05 GMT",
                                "en", RULES)
    assert parsed == datetime(2026, 11, 3, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "No date here", "Call 8 800 555 35 35",
                                  "31 February 2026", "12 comments 2026"])
def test_text_without_a_date(text: str) -> None:
    assert parse_printed_date(text, "en", RULES) is None


def test_declared_dates_come_first_and_modified_is_ignored() -> None:
    tree = _page(
        '<script type="application/ld+json">{"@graph": [{"@type": "NewsArticle", '
        '"datePublished": "2026-11-03T09:15:00+03:00", "dateModified": "2026-11-04T10:00:00Z"}]}'
        "</script>",
        '<div class="meta">5 November 2026</div>')
    assert published_time(tree, "en", RULES) == datetime(2026, 11, 3, 6, 15, tzinfo=UTC)


def test_meta_time_element_and_printed_date_in_order() -> None:
    meta = _page('<meta property="article:published_time" content="2026-11-03T23:30:00-05:00">')
    assert published_time(meta, "en", RULES) == datetime(2026, 11, 4, 4, 30, tzinfo=UTC)
    timed = _page(body='<time datetime="2026-10-09T08:00:00Z">9 Oct</time>')
    assert published_time(timed, "en", RULES) == datetime(2026, 10, 9, 8, 0, tzinfo=UTC)
    printed = _page(body='<div class="article-info">Опубликовано 14 октября 2026, 10:22</div>')
    assert published_time(printed, "ru", RULES) == datetime(2026, 10, 14, 7, 22, tzinfo=UTC)
    assert published_time(_page(body="<p>Nothing.</p>"), "en", RULES) is None


def test_a_date_in_the_running_text_is_read_but_a_copyright_year_is_no_publication_date() -> None:
    article = ("<article><p>Gazprom and CNPC met again in Beijing to settle the price of gas "
               "for the second line.</p>{}</article>"
               "<footer><p>&copy; 2024 Northern Wire. All rights reserved.</p></footer>")
    dated = _page("<title>Gas talks</title>", article.format("<p>Written on 17 July 2025.</p>"))
    assert published_time(dated, "en", RULES) == datetime(2025, 7, 17, 12, 0, tzinfo=UTC)
    # htmldate's last resort would say 1 January 2024: a wrong date is worse than none
    assert published_time(_page("<title>Gas talks</title>", article.format("")), "en",
                          RULES) is None
    # the feed's time comes first
    feed = datetime(2025, 7, 18, 6, 0, tzinfo=UTC)
    assert published_time(dated, "en", RULES, feed_time=feed) == feed


_PROSE = ("<p>Moscow and Beijing agreed on Tuesday to raise rail freight quotas at the border "
          "crossing, officials of both railways said after the talks.</p>")


def test_a_page_that_gives_its_day_alone_takes_the_time_printed_under_its_headline() -> None:
    day = '<meta property="article:published_time" content="2026-11-03">'
    printed = _page(day, "<h1>中俄同意提高铁路货运配额</h1><div><span>原创</span> "
                         f"<span>2026-11-03 14:05</span></div>{_PROSE}")
    beijing = timezone(timedelta(hours=8))
    assert published_time(printed, "zh", RULES) == datetime(2026, 11, 3, 14, 5, tzinfo=beijing)
    # no date but the one under the headline
    undated = _page(body=f"<h1>中俄同意提高铁路货运配额</h1><p>2026年11月03日 14:05 来源：新华社</p>{_PROSE}")
    assert published_time(undated, "zh", RULES) == datetime(2026, 11, 3, 14, 5, tzinfo=beijing)
    # a time printed on another day, or in the article's text, is not the page's
    other = _page(day, f"<h1>Rail quotas raised</h1><p>2026-11-04 09:00</p>{_PROSE}")
    assert published_time(other, "en", RULES) == datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    late = _page(day, f"<h1>Rail quotas raised</h1>{_PROSE}<p>Talks resume 2026-11-03 18:00.</p>")
    assert published_time(late, "en", RULES) == datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def test_a_page_that_gives_its_day_alone_takes_the_feeds_time_on_that_day() -> None:
    day = _page('<meta property="article:published_time" content="2026-11-03">',
                f"<h1>Rail quotas raised</h1>{_PROSE}")
    feed = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    assert published_time(day, "en", RULES, feed_time=feed) == feed
    # the feed's time on another day is not this page's: the page's day stands
    later = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
    assert published_time(day, "en", RULES, feed_time=later) == datetime(2026, 11, 3, 12, 0,
                                                                          tzinfo=UTC)


def test_a_date_printed_after_a_publication_label() -> None:
    # institutional pages print their date after a label, with no date element, no metadata
    # and no h1 to print it under
    beijing = timezone(timedelta(hours=8))
    listed = _page(body="<h5>中俄地方合作论坛在哈尔滨举行</h5><div>来源: 本站 | 发布时间: 2024-05-16 | "
                        f"浏览次数: <script>count(1412)</script></div>{_PROSE}")
    assert published_time(listed, "zh", RULES) == datetime(2024, 5, 16, 12, 0, tzinfo=beijing)
    # the date after a comment, and after a line break with the time
    commented = _page(body="<table><tr><td>发布日期：<!-- 发布日期 begin -->2024-05-16<!-- end -->"
                           f"</td></tr></table>{_PROSE}")
    assert published_time(commented, "zh", RULES) == datetime(2024, 5, 16, 12, 0, tzinfo=beijing)
    broken = _page(body=f"<div>作者：国际部<br>时间：2024年5月16日 10:23</div>{_PROSE}")
    assert published_time(broken, "zh", RULES) == datetime(2024, 5, 16, 10, 23, tzinfo=beijing)
    english = _page(body=f"<p>By Ann Lee</p><p>Published March 9, 2026 in Trade</p>{_PROSE}")
    assert published_time(english, "en", RULES) == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    # a label inside a word (更新时间, updated; 活动时间, the event's), or one not followed by a
    # date, is none: the page's own label further on is
    for first, then in (("<p>更新时间：2024-05-20</p>", "<p>发布时间：2024-05-16</p>"),
                        ("<p>活动时间：2024年6月1日</p>", "<p>日期：2024-05-16</p>"),
                        (("<p>Published by the ministry; talks end on 3 May 2024. Date: "
                          "2024-05-16</p>"), "")):
        page = _page("<title>t</title>", first + _PROSE + then)
        assert published_time(page, "zh", RULES) == datetime(2024, 5, 16, 12, 0, tzinfo=beijing)


def test_iso_date_alone_keeps_its_day() -> None:
    assert parse_iso("2026-09-24").date().isoformat() == "2026-09-24"
    assert parse_iso("not a date") is None


def test_headline_prefers_the_h1_the_declared_title_names() -> None:
    tree = _page('<meta property="og:title" content="Putin and Xi talk trade | Northern Wire">',
                 "<h1>Northern Wire</h1><h1>Putin and Xi talk trade</h1>")
    assert page_title(tree) == "Putin and Xi talk trade"
    assert page_title(_page("<title>Only a title</title>")) == "Only a title"
    assert page_title(_page(body="<h1>Си Цзиньпин встретился с Путиным</h1>")) == \
        "Си Цзиньпин встретился с Путиным"


def test_headline_is_the_words_a_reader_sees_in_the_h1() -> None:
    # a dialog's heading (hidden until a button opens it) is not the page's; the h1's line
    # breaks part words; a date line a template nested in the h1 is not the headline
    tree = _page(body='<div role="dialog" hidden><h1>Select an option</h1></div>'
                      "<h1>POWER<br>OF<br><span>SIBERIA 2</span> signed"
                      "<h3>Posted on <a href='/d'>May 20, 2026</a> by Desk</h3></h1>")
    assert page_title(tree) == "POWER OF SIBERIA 2 signed"
    assert page_title(_page(body="<dialog><h1>Sign in to read on</h1></dialog>"
                                 "<h1>Putin and Xi talk trade</h1>")) == "Putin and Xi talk trade"


def test_authors_and_site_name() -> None:
    tree = _page('<script type="application/ld+json">{"@type": "NewsArticle", "author": '
                 '[{"@type": "Person", "name": "Anna Petrova"}, {"name": "Li Wei"}], '
                 '"publisher": {"name": "Northern Wire"}}</script>')
    assert page_authors(tree) == ("Anna Petrova", "Li Wei")
    assert site_name(tree) == "Northern Wire"
    meta = _page('<meta name="author" content="Anna Petrova and Li Wei">'
                 '<meta property="og:site_name" content="The Herald">')
    assert page_authors(meta) == ("Anna Petrova", "Li Wei") and site_name(meta) == "The Herald"


@pytest.mark.parametrize(("byline", "names"), [
    ("By Anna Petrova and Li Wei", ("Anna Petrova", "Li Wei")),
    ("Anna Petrova, Li Wei & Tom Hale", ("Anna Petrova", "Li Wei", "Tom Hale")),
    ("Von Hans Müller und Eva Schmidt", ("Hans Müller", "Eva Schmidt")),
    ("Par Jean Dupont et Marie Curie", ("Jean Dupont", "Marie Curie")),
    ("Por Ana Gómez y Luis Pérez", ("Ana Gómez", "Luis Pérez")),
    ("Автор: Иван Петров и Анна Сидорова", ("Иван Петров", "Анна Сидорова")),
    ("记者 王明 李华", ("王明", "李华")),
    ("王明和李华", ("王明", "李华")),
    ("Dylan Bailey, MS, RD", ("Dylan Bailey",)),
    ("Dr. Andrew Kim, Ph.D.", ("Andrew Kim",)),
    ("Stephen Park - Northern Wire Staff", ("Stephen Park",)),
    ("Anna Petrova, Li Wei, and Tom Hale", ("Anna Petrova", "Li Wei", "Tom Hale")),
    ("By Anna Petrova Published on July 18, 2026", ("Anna Petrova",)),
    ("Anna Petrova 30 Sep 2026, 11:07am", ("Anna Petrova",)),
    ("Li Wei June 3, 2026 · 7 min read", ("Li Wei",)),
    ("Anna Petrova Writer", ("Anna Petrova",)),
    ("Analysis by Li Wei Former Deputy Energy Editor", ("Li Wei",)),
    ("Anna Petrova, Senior Research Executive", ("Anna Petrova",)),
    ("By Senior Correspondent Anna Petrova and Li Wei", ("Anna Petrova", "Li Wei")),
    ("By Daria Volkova, CEO of Amberline Logistics", ("Daria Volkova",)),
    ("Erstellt von Hans Müller und Eva Schmidt", ("Hans Müller", "Eva Schmidt")),
    ("Écrit par Jean Dupont", ("Jean Dupont",)),
    ("Publicado por Ana Gómez", ("Ana Gómez",)),
    ("Ursula von der Leyen", ("Ursula von der Leyen",)),
    # a label before the name, a date after it in German, French or English
    ("Interview: Anna Petrova", ("Anna Petrova",)),
    ("Text: Hans Müller, Fotos: Eva Schmidt", ("Hans Müller",)),  # a photo credit
    ("Von Hans Müller am 21. April 2026", ("Hans Müller",)),
    ("Von Hans Müller am Samstag, 18. Juli 2026 um 11:14 Uhr", ("Hans Müller",)),
    ("Par Jean Dupont le lundi 3 novembre 2026", ("Jean Dupont",)),
    ("Hans Müller, Redakteur, Kolumnist und Autor", ("Hans Müller",)),
    ("Anna Petrova, Li Wei, Moscow", ("Anna Petrova", "Li Wei")),  # a dateline's place
    ("Hans Müller, Stand: 18.07.2026", ("Hans Müller",)),
    ("Anna Petrova Senior Arctic Reporter", ("Anna Petrova",)),  # a rank, a beat, a role
    ("Li Wei, Chief Beijing Correspondent", ("Li Wei",)),
    ("Anna Petrova · Senior Energy Analyst · Updated 3 November 2026", ("Anna Petrova",)),
    ("王明, 李华", ("王明", "李华")),
    ("记者：王明：", ("王明",)),
    ("王明 北方研究院执行院长", ("王明",)),  # a role after a Chinese name
    # particles in small letters are part of a name
    ("Ali al-Hassan and Jan de Vries", ("Ali al-Hassan", "Jan de Vries")),
    ("Anna d'Souza", ("Anna d'Souza",)),
])
def test_joint_bylines_are_split_into_people(byline: str, names: tuple[str, ...]) -> None:
    tree = _page(f'<meta name="author" content="{byline}">')
    assert page_authors(tree) == names


@pytest.mark.parametrize("byline", [
    "news@northern-wire.example", "https://northern-wire.example/staff", "@annapetrova",
    "2026", "Deutsche Welle (www.dw.com)", "Northern Wire", "Reuters", "The Eastern Herald",
    "Northern Wire Media Group", "Editorial Team", "Community Editor", "Staff Writer", "July",
    # an organisation whose name holds "and" is not two people, nor its address more
    "Centre for Arctic Shipping and Research", "Ministerium für Energie und Klimaschutz",
    "Kirche und Welt", "Vinos y Libros", "Northern Wire Online, Hamburg, Germany",
    "Verband der Grenzhändler e.V.", "Hanse-Stiftung", "Фото из архива редакции",
    "northern-wire.example, Hamburg", "red., Agenturen",
    # placeholders a CMS prints where a name would be
    "Admin", "Administrator", "Webmaster", "Unknown", "Anonymous", "Anónimo", "Newsdesk",
    "View my complete profile", "Submitted on Mon, 01/07/2026 - 15:37",
    # the site's desks, editions and labels
    "Northern Wire Sponsored", "Northern Wire Deutschland", "Noticias Northern Wire",
    # phrases, not names: a name is written in capitals (or all in small letters)
    "Product marketer", "Personal finance",
    # a template's "name, email@...", which trafilatura reads as "Name; Email Com"
    "name, email@example.com",
    # Chinese outlets, platforms, editors and placeholders ("Beijing Evening", "NetEase",
    # "Northern Wire Net", "responsible editor", "author: unknown", "no bio yet")
    "北方晚报", "网易", "北方新闻网", "新浪科技", "企鹅号", "责任编辑：王明", "作者：未知", "暂无简介",
])
def test_an_address_a_number_or_an_organisation_is_never_an_author(byline: str) -> None:
    tree = _page(f'<meta name="author" content="{byline}">'
                 '<meta property="og:site_name" content="Northern Wire">')
    assert page_authors(tree) == ()


def test_the_sites_name_after_an_authors_is_not_part_of_it() -> None:
    tree = _page('<meta name="author" content="Anna Petrova Northern Wire, Li Wei">'
                 '<meta property="og:site_name" content="Northern Wire">')
    assert page_authors(tree) == ("Anna Petrova", "Li Wei")


def test_an_organisation_credited_in_json_ld_is_not_read_again_from_trafilatura() -> None:
    # a doubly escaped name in JSON-LD: trafilatura's reading of it splits it at "&" and ";"
    tree = _page('<script type="application/ld+json">{"@type": "NewsArticle", "author": '
                 '{"@type": "Person", "name": "Redacci&oacute;n Northern Wire"}}</script>')
    assert page_authors(tree) == ()


def test_json_ld_organisation_is_not_an_author_a_person_is() -> None:
    tree = _page('<script type="application/ld+json">{"@type": "NewsArticle", "author": '
                 '[{"@type": "Organization", "name": "Northern Wire"}, '
                 '{"@type": "Person", "name": "Anna Petrova"}]}</script>')
    assert page_authors(tree) == ("Anna Petrova",)


def test_json_ld_person_is_the_sites_owner_but_not_its_affiliation() -> None:
    # "{name}, Northern Wire" with the name left empty credits the outlet; the byline names her
    affiliation = _page('<meta property="og:site_name" content="Northern Wire">'
                        '<script type="application/ld+json">{"@type": "NewsArticle", "author": '
                        '{"@type": "Person", "name": ", Northern Wire"}}</script>',
                        '<h1>Putin and Xi talk trade</h1><p class="byline">By Anna Petrova</p>')
    assert page_authors(affiliation) == ("Anna Petrova",)
    # a one-person site: its owner is a Person of the site's own name
    owner = _page('<meta property="og:site_name" content="Anna Petrova">'
                  '<script type="application/ld+json">{"@type": "BlogPosting", "author": '
                  '{"@type": "Person", "name": "Anna Petrova"}}</script>')
    assert page_authors(owner) == ("Anna Petrova",)


def test_a_visible_byline_names_the_author_whatever_its_markup() -> None:
    # classes that say nothing (generated ones); "By" a link, or "By" an element of its own
    linked = _page(body='<h1>Putin and Xi talk trade</h1><div class="x7f2"><p class="q1">By '
                        '<a href="/people/anna-petrova">Anna Petrova</a> and <a href="/people/'
                        'li-wei">Li Wei</a></p></div><p>Text.</p>')
    assert page_authors(linked) == ("Anna Petrova", "Li Wei")
    spans = _page(body='<h1>Gazprom and CNPC sign</h1><div class="k2 m9"><span class="a1">Von'
                       '</span><span class="b3">Hans Müller</span><br>Hamburg</div><p>Text.</p>')
    assert page_authors(spans) == ("Hans Müller",)  # the place after the line break is not
    # a lone word is as often an agency or a handle; the menus, the footer and the comments
    # have bylines of their own
    for body in ('<p class="q1">By <a href="/wire">Reuters</a></p>',
                 '<footer><p>By <a href="/people/tom-hale">Tom Hale</a></p></footer>',
                 '<aside><p>By <a href="/people/tom-hale">Tom Hale</a></p></aside>',
                 '<div class="comments"><p>By <a href="/u/tom-hale">Tom Hale</a></p></div>'):
        assert page_authors(_page(body=f"<h1>Putin and Xi talk trade</h1><p>Text.</p>{body}")
                            ) == (), body
    # a sentence that begins with "By" is not a byline
    prose = _page(body='<h1>Gas deal</h1><p>By <b>2030</b> the pipeline will carry 50 bcm.</p>')
    assert page_authors(prose) == ()


def test_byline_markup_when_nothing_is_declared() -> None:
    tree = _page(body='<h1>Putin and Xi talk trade</h1><div class="article-byline">'
                      '<span>By</span> <a rel="author" href="/staff/ap">Anna Petrova</a></div>'
                      '<p>Text.</p>')
    assert page_authors(tree) == ("Anna Petrova",)


def test_a_commenters_author_link_is_not_the_articles_author() -> None:
    tree = _page(body='<article><h1>Putin and Xi talk trade</h1><p class="byline">By <a '
                      'rel="author" href="/staff/ap">Anna Petrova</a></p><p>Text.</p></article>'
                      '<ol class="comment-list"><li><a rel="author" href="/u/tom">Tom Hale</a>'
                      ' wrote: a comment.</li></ol>')
    assert page_authors(tree) == ("Anna Petrova",)


def test_a_byline_names_its_author_through_its_parts_and_links() -> None:
    # the byline's whole text runs on into a biography; its link to the author's page names her
    popover = _page(body='<h1>Putin and Xi talk trade</h1><div class="md-byline"><div class="'
                         'written-by">Written by <a href="/contributor/anna-petrova/42"><b>Anna '
                         'Petrova</b></a><div class="editor-popover"><p>Anna Petrova has covered '
                         'Russia and China for the paper since 2009, from Moscow, Beijing and '
                         'Vladivostok.</p></div></div></div><p>Text.</p>')
    assert page_authors(popover) == ("Anna Petrova",)
    # a byline block holding nothing short enough to be a name is passed over for the next
    empty = _page(body='<div class="post-author"><p>Our writers have covered Russia and China '
                       'for the paper since 2009, from Moscow, Beijing and Vladivostok.</p></div>'
                       '<h1>Putin and Xi talk trade</h1><p class="byline">By Li Wei</p>'
                       '<p>Text.</p>')
    assert page_authors(empty) == ("Li Wei",)


def test_a_commenters_byline_is_not_the_articles_author() -> None:
    tree = _page(body='<article><h1>Putin and Xi talk trade</h1><p>Text.</p></article>'
                      '<div id="comments"><div class="comment-author vcard">Tom Hale says</div>'
                      '<p>A comment.</p></div>')
    assert page_authors(tree) == ()
    # a blog's body says "single-author"; its comment form labels a field "Name"
    form = lxml.html.fromstring(
        '<html><body class="single single-author"><h1>Putin and Xi talk trade</h1><p>Text.</p>'
        '<div id="respond"><form id="commentform"><p class="comment-form-author"><label>Name'
        '</label><input name="author"></p></form></div></body></html>')
    assert page_authors(form) == ()


def test_the_next_source_is_read_when_one_names_no_person() -> None:
    # the author meta tag holds a profile URL; the summary card and the byline name the writer
    card = _page('<meta name="author" content="https://social.example/annapetrova">'
                 '<meta name="twitter:label1" content="Written by">'
                 '<meta name="twitter:data1" content="Anna Petrova">')
    assert page_authors(card) == ("Anna Petrova",)
    byline = _page('<meta name="author" content="https://social.example/annapetrova">',
                   '<div class="author-date-block"><b>By <span class="author-name">Anna Petrova'
                   '</span></b> <span class="author-role">Energy Writer</span> 18 July 2026</div>'
                   '<p>Text.</p>')
    assert page_authors(byline) == ("Anna Petrova",)


def test_site_name_is_taken_off_a_declared_title() -> None:
    tree = _page('<meta property="og:title" content="Putin and Xi talk trade | Northern Wire">'
                 '<meta property="og:site_name" content="Northern Wire">')
    assert page_title(tree) == "Putin and Xi talk trade"
    tree = _page("<title>Russia - China trade hits a record</title>")
    assert page_title(tree) == "Russia - China trade hits a record"  # no site: nothing cut
    # no site name declared: its domain names it, first or last, however it is spelt
    url = "https://www.northernwire.example/2026/11/trade"
    for title in ("Putin and Xi talk trade | Northern Wire",
                  "Putin and Xi talk trade | | NorthernWire.example",
                  "NORTHERNWIRE » Putin and Xi talk trade"):
        assert page_title(_page(f"<title>{title}</title>"), url=url) == "Putin and Xi talk trade"
    # a part the domain does not name stays; so does a short one that it merely contains
    for title in ("Russia - China trade hits a record", "Putin and Xi talk trade | Wire"):
        assert page_title(_page(f"<title>{title}</title>"), url=url) == title


@pytest.mark.parametrize(("text", "language"), [
    ("Putin, Xi sign energy deals", "en"),
    ("Путин и Си подписали соглашения", "ru"),
    ("中俄签署能源协议", "zh"),
    ("Detroit suppliers scramble as magnet licences stall", "en"),
])
def test_language_of_short_texts(text: str, language: str) -> None:
    assert detect_language(text, RULES) == language


@pytest.mark.parametrize(("text", "language"), [
    (("Regjeringen la fram statsbudsjettet i dag, og finansministeren sa at veksten i norsk "
      "økonomi vil fortsette neste år."), "no"),
    (("Regeringen presenterade budgeten i dag och finansministern sade att tillväxten i den "
      "svenska ekonomin fortsätter nästa år."), "sv"),
    (("Pemerintah mengumumkan anggaran baru hari ini dan menteri keuangan mengatakan "
      "pertumbuhan ekonomi akan berlanjut tahun depan."), "id"),
])
def test_any_language_the_detector_knows(text: str, language: str) -> None:
    assert detect_language(text, RULES) == language


@pytest.mark.parametrize("text", ["", "12:05", "AP", "© 2026", "Фото"])
def test_too_short_to_tell_is_und(text: str) -> None:
    assert detect_language(text, RULES) == "und"

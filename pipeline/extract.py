"""extract: a fetched page -> an `Article` with clean text and metadata.

The page is decoded (HTTP charset, else what the page declares) and parsed once. Its text is
trafilatura's article, cleaned only where sure (`pipeline.clean`): paragraphs, subheadings,
list items, quotes and table rows separated by blank lines. Its metadata (canonical URL,
headline, authors, publication time, language) is read from the whole page
(`pipeline.metadata`); trafilatura works on a copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import trafilatura
from ftfy.fixes import decode_inconsistent_utf8
from lxml import etree
from trafilatura.settings import Document
from trafilatura.utils import HTML_PARSER, decode_file, is_dubious_html, repair_faulty_html
from w3lib.encoding import html_body_declared_encoding, resolve_encoding

from pipeline.clean import (
    Block,
    CleaningRules,
    body_blocks,
    drop_boilerplate_blocks,
    join_blocks,
    text_blocks,
)
from pipeline.metadata import (
    MetadataRules,
    canonical_url,
    declared_body,
    detect_language,
    metadata_rules,
    page_authors,
    page_title,
    published_time,
    site_name,
)
from pipeline.records import Article, FeedItem, ItemError, Page, Source
from pipeline.settings import CONFIG_DIR
from pipeline.text import word_count

# Characters XML (and so lxml, and trafilatura's XML tree) cannot hold: C0 controls other than
# tab and line breaks, DEL, and the non-characters U+FFFE/U+FFFF. Pages do carry them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_HTML_TYPES = {"text/html", "application/xhtml+xml", None}
# A page whose first characters are more than this share of controls and replacement
# characters is binary data served as HTML (text in any charset has next to none).
_SAMPLE, _MAX_JUNK = 10_000, 0.02
# trafilatura's parser, copied with its settings. lxml.html's own parsers find each element's
# class (a form's, an input's...) in Python, once for every element object made, by trafilatura
# and by us alike: about 6% of extraction's time on real pages. This one makes every element an
# HtmlElement, found in C; neither trafilatura nor our stages use the special classes.
_PARSER = HTML_PARSER.copy()
_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment,
    pi=lxml.html.HtmlProcessingInstruction, entity=lxml.html.HtmlEntity))


@dataclass(frozen=True)
class ExtractionRules:
    cleaning: CleaningRules
    metadata: MetadataRules


@lru_cache(maxsize=4)
def default_rules(config_dir: Path = CONFIG_DIR) -> ExtractionRules:
    """The rules in `config_dir`'s cleaning.yaml and metadata.yaml, loaded once."""
    return ExtractionRules(cleaning=CleaningRules.load(config_dir / "cleaning.yaml"),
                           metadata=metadata_rules(config_dir))


def extract_article(page: Page, item: FeedItem | None = None, *,
                    source_name: str | None = None,
                    rules: ExtractionRules | None = None) -> Article:
    """Build an `Article` from `page`; `item` (the feed entry) supplies fallbacks for the
    headline and the publication time.

    Raises `ItemError` with reason `not_html`, `bad_html` or `too_short`."""
    rules = rules or default_rules()
    if page.content_type not in _HTML_TYPES:
        raise ItemError("not_html", f"{page.final_url} is {page.content_type}")
    html = decode_html(page.body, page.charset)
    sample = html[:_SAMPLE]
    if len(_NOT_XML.findall(sample)) + sample.count("\ufffd") > _MAX_JUNK * len(sample):
        raise ItemError("bad_html", f"{page.final_url}: binary content, not text")
    tree = parse_html(_xml_text(html, page.body))
    if tree is None:
        raise ItemError("bad_html", f"{page.final_url}: not an HTML document")

    # trafilatura works on a copy: the page stays whole for the metadata.
    canonical = canonical_url(tree, page.final_url)
    site = site_name(tree)
    title = page_title(tree, site, page.final_url) or (item.title if item else None) or ""
    text = _article_text(tree, page.final_url, title, rules.cleaning)
    if word_count(text) < rules.cleaning.min_words:
        raise ItemError("too_short", f"{page.final_url}: {word_count(text)} words of text")
    language = detect_language(f"{title}\n{text}", rules.metadata)
    # the feed's time, when there is one, is a better last resort than htmldate's guess, and
    # the time of day of a page that gives its day alone
    published = published_time(tree, (tree.get("lang") or "")[:2].lower() or language,
                               rules.metadata, feed_time=item.published_at if item else None)
    authors = page_authors(tree, site)
    domain = urlsplit(canonical).hostname or ""
    return Article(
        url=canonical,
        title=title,
        text=text,
        language=language,
        published_at=_not_in_future(published, page.fetched_at),
        authors=authors,
        source=Source(name=source_name or site or domain, domain=domain,
                      feed=item.feed_url if item else None),
        fetched_at=page.fetched_at,
        summary=item.summary if item else None,
        fetched_url=page.url if page.url != canonical else None,
    )


def parse_html(html: str) -> lxml.html.HtmlElement | None:
    """The page's tree, as trafilatura's `load_html` makes it (its repairs, its parser's
    settings, the UTF-8 bytes where lxml refuses the string), with `_PARSER`'s element classes;
    None where it is not an HTML document."""
    beginning = html[:50].lower()
    html = repair_faulty_html(html, beginning)
    try:
        tree = lxml.html.fromstring(html, parser=_PARSER)
    except (ValueError, etree.LxmlError):  # a string that declares its encoding; no document
        tree = None
    if tree is None or len(tree) < 1:
        try:
            tree = lxml.html.fromstring(html.encode("utf-8", "surrogatepass"), parser=_PARSER)
        except (ValueError, etree.LxmlError):
            return None
    if is_dubious_html(beginning) and len(tree) < 2:
        return None
    return tree


def _xml_text(html: str, body: bytes) -> str:
    """`html` without the characters XML cannot hold. Most pages have none, which their bytes
    tell fast: in any charset that extends ASCII (UTF-8, the cp125x, GBK, Big5, Shift_JIS...)
    those controls are their own bytes, and other charsets (UTF-16) have such bytes anyway."""
    if len(body.translate(None, _CONTROL_BYTES)) == len(body) \
            and "\ufffe" not in html and "\uffff" not in html:
        return html
    return _NOT_XML.sub("", html)


def _article_text(tree: lxml.html.HtmlElement, url: str, title: str,
                  rules: CleaningRules) -> str:
    """trafilatura's article, cleaned. Where trafilatura's balanced extraction holds less than
    half of the page's paragraph text, its recall mode is tried and taken when it finds twice
    as much. Where our cleaning leaves too little of it to be an article, the article body the
    page's JSON-LD declares is taken, when it declares one (a script renders the page's text,
    or a paywall hides it); else the text found stands."""
    blocks = _trafilatura_blocks(tree, url, recall=False)
    found = _chars(blocks)
    if found < 0.5 * _paragraph_chars(tree):
        recalled = _trafilatura_blocks(tree, url, recall=True)
        if _chars(recalled) > 2 * found:
            blocks = recalled
    text = join_blocks(drop_boilerplate_blocks(blocks, title, rules))
    if word_count(text) < rules.min_words:
        declared = text_blocks(declared_body(tree) or "")
        text = join_blocks(drop_boilerplate_blocks(declared, title, rules))
        if word_count(text) < rules.min_words:
            return join_blocks(blocks)  # too little left to be sure of: the text found stands
    return text


def _trafilatura_blocks(tree: lxml.html.HtmlElement, url: str, *, recall: bool) -> list[Block]:
    # the body tree is what is read: "txt" spares serialising it as text for nothing
    document = trafilatura.bare_extraction(
        tree, url=url, with_metadata=False, include_comments=False, include_tables=True,
        favor_recall=recall, output_format="txt")
    if not isinstance(document, Document) or document.body is None:
        return []
    return body_blocks(document.body)


def _chars(blocks: list[Block]) -> int:
    return sum(len(block.text) for block in blocks)


def _paragraph_chars(tree: lxml.html.HtmlElement) -> int:
    """Characters in the page's paragraphs of a sentence or more: what an article holds at
    least."""
    lengths = (len(paragraph.text_content()) for paragraph in tree.iter("p"))
    return sum(length for length in lengths if length >= 80)


def decode_html(body: bytes, charset: str | None) -> str:
    """Decode as a browser would: the HTTP charset, else the page's own declaration (its
    `<meta charset>`), where the bytes fit it; else a guess from the bytes (trafilatura's).

    Bytes that are valid UTF-8 and not plain ASCII are UTF-8 whatever the header says: text in
    a legacy charset (cp1251, GBK, Big5...) almost never forms valid multi-byte UTF-8, while a
    UTF-8 page mislabelled cp1251 decodes "fine" into mojibake. A charset's name is read as
    browsers read it (the WHATWG Encoding Standard, w3lib's table): "iso-8859-1" and "us-ascii"
    are windows-1252, whose quotes, dashes and euro sign latin-1 would make control
    characters; "gb2312" is GB18030, "shift_jis" Windows' cp932... Text such a page holds
    encoded twice ("weâ€™ve") is mended."""
    if not body.isascii():
        try:
            utf8 = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
        else:
            return decode_inconsistent_utf8(utf8) if _TWICE_ENCODED.search(body) else utf8
    text = _decoded_as(body, charset)
    if text is None:  # the page's declaration is looked for only then
        text = _decoded_as(body, html_body_declared_encoding(body))
    return text if text is not None else str(decode_file(body))


# UTF-8 read as windows-1252 or latin-1 and saved as UTF-8 again, as content management systems
# do with pasted text: "we’ve" becomes "weâ€™ve" (or "weâ" and two control characters, which
# trafilatura drops: then it cannot be mended after extraction), "é" "Ã©", a no-break space
# "Â ". The bytes of such a pair are looked for first (a lead byte of UTF-8, then the
# continuation bytes, each as those codecs read it, encoded once more), so that a clean page
# costs one scan; ftfy then mends the sequences that decode, and leaves the rest (German "ß"
# and a soft hyphen match the scan, and stay).
_CONTINUATION = (rb"(?:\xc2[\x80-\xbf]|\xe2[\x80-\x84][\x80-\xbf]|\xc5[\x92\x93\xa0\xa1\xb8\xbd\xbe]"
                 rb"|\xc6\x92|\xcb[\x86\x9c])")
_TWICE_ENCODED = re.compile(rb"\xc3(?:[\x82-\x9f]" + _CONTINUATION
                            + rb"|[\xa0-\xaf]" + _CONTINUATION * 2
                            + rb"|[\xb0-\xb4]" + _CONTINUATION * 3 + rb")")


def _decoded_as(body: bytes, label: str | None) -> str | None:
    """`body` in the charset a browser takes `label` for, or None where it names none or the
    bytes do not fit it."""
    codec = resolve_encoding(label) if label else None
    if codec:
        try:
            return body.decode(codec)
        except (LookupError, UnicodeDecodeError):
            pass
    return None


def _not_in_future(published: datetime | None, fetched_at: datetime) -> datetime | None:
    if published is None or published > fetched_at:
        return None
    return published

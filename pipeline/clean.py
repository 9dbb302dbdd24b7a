"""Our cleaning around trafilatura: what news sites put inside the article body that is not
the article, removed by rules in config/cleaning.yaml, and what trafilatura drops that is
(subheadings, list items, quotes, table rows), brought back.

The flow, called by `pipeline.extract`:
1. `preclean` removes from the page's body the elements that are boilerplate by tag, or by a
   class / id word (never one holding a large share of the page's text);
2. trafilatura picks the article's paragraphs from what is left;
3. `article_blocks` finds the element that holds those paragraphs (the article container) and
   walks it in document order, keeping trafilatura's paragraphs plus the container's headings,
   list items, quotes and table rows;
4. `drop_boilerplate_blocks` removes blocks that are mostly link text, and blocks that are
   boilerplate by their text (related links, captions and credits, promo and share lines,
   comment counters, tag lists, bylines and datelines standing alone, the headline repeated,
   pull quotes repeating the body).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from lxml import etree
from lxml.html import HtmlElement

from pipeline.settings import ConfigError, load_yaml
from pipeline.text import CJK, fold, squash

_HEADINGS = {"h2", "h3", "h4", "h5", "h6"}
_PARAGRAPHS = {"p", "pre", "dd", "dt"}
_BLOCK_TAGS = _HEADINGS | _PARAGRAPHS | {"h1", "li", "blockquote", "tr", "table", "ul", "ol",
                                         "div", "section", "article", "figure", "main"}
_INLINE = {"a", "span", "strong", "b", "em", "i", "u", "small", "time", "abbr", "mark", "sup",
           "sub", "cite", "q", "code"}
_SPLIT_CLASS = re.compile(r"[\s_-]+")


@dataclass(frozen=True)
class CleaningRules:
    drop_tags: frozenset[str]
    class_exact: frozenset[str]
    class_prefixes: tuple[str, ...]
    max_share: float
    max_link_share: float
    max_line_chars: int
    boilerplate_lines: tuple[re.Pattern[str], ...]
    byline_max_words: int
    bylines: tuple[re.Pattern[str], ...]
    datelines: tuple[re.Pattern[str], ...]
    end_markers: tuple[re.Pattern[str], ...]

    @classmethod
    def load(cls, path: Path) -> CleaningRules:
        raw = load_yaml(path)
        keys = {"drop_tags", "drop_classes", "max_share", "max_link_share", "max_line_chars",
                "boilerplate_lines", "byline_max_words", "bylines", "datelines", "end_markers"}
        if set(raw) != keys or set(raw["drop_classes"]) != {"exact", "prefix"}:
            raise ConfigError(f"{path}: expected keys {sorted(keys)} "
                              "(drop_classes: exact, prefix)")
        try:
            return cls(
                drop_tags=frozenset(raw["drop_tags"]),
                class_exact=frozenset(w.lower() for w in raw["drop_classes"]["exact"]),
                class_prefixes=tuple(w.lower() for w in raw["drop_classes"]["prefix"]),
                max_share=float(raw["max_share"]),
                max_link_share=float(raw["max_link_share"]),
                max_line_chars=int(raw["max_line_chars"]),
                boilerplate_lines=tuple(re.compile(p, re.IGNORECASE)
                                        for p in raw["boilerplate_lines"]),
                byline_max_words=int(raw["byline_max_words"]),
                bylines=tuple(re.compile(p) for p in raw["bylines"]),
                datelines=tuple(re.compile(p) for p in raw["datelines"]),
                end_markers=tuple(re.compile(p, re.IGNORECASE) for p in raw["end_markers"]),
            )
        except re.error as exc:
            raise ConfigError(f"{path}: bad pattern: {exc}") from exc


@dataclass(frozen=True)
class Block:
    kind: str  # paragraph | heading | item | quote | row
    text: str
    link_share: float = 0.0  # how much of the text is link text
    group: int | None = None  # items of one list share it


def preclean(tree: HtmlElement, rules: CleaningRules) -> None:
    """Remove boilerplate elements from the page's body, in place; the head (metadata,
    JSON-LD) is left alone. Line breaks (`<br>`) become newlines in the text."""
    body = tree.find("body")
    if body is None:
        body = tree
    for br in body.iter("br"):
        br.tail = "\n" + (br.tail or "")
    total = len(squash(_text(body))) or 1
    doomed = []
    for element in body.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            doomed.append(element)
            continue
        if element.tag in rules.drop_tags and not _is_json_ld(element) or (_boilerplate_class(element, rules)
              and len(squash(_text(element))) <= rules.max_share * total):
            doomed.append(element)
    for element in doomed:
        parent = element.getparent()
        if parent is not None:
            _drop_keep_tail(element)


def article_blocks(tree: HtmlElement, extracted: Iterable[str]) -> list[Block] | None:
    """The blocks of the element holding the paragraphs trafilatura `extracted`, in document
    order; None when those paragraphs cannot be found in the tree."""
    wanted = {fold(text) for text in extracted if fold(text)}
    if not wanted:
        return None
    candidates = list(_walk(tree))
    matched = [(element, block) for element, block in candidates if fold(block.text) in wanted]
    if not matched:
        return None
    container = _container([element for element, _ in matched],
                           [len(block.text) for _, block in matched])
    blocks = []
    for element, block in _walk(container):
        if (fold(block.text) in wanted or block.kind in ("heading", "item", "quote", "row")
                or _substantial(block)):
            blocks.append(block)
    return blocks


def drop_boilerplate_blocks(blocks: Iterable[Block], title: str,
                            rules: CleaningRules) -> list[Block]:
    """Blocks without those that are boilerplate by their text; see config/cleaning.yaml."""
    kept: list[Block] = []
    seen: set[str] = set()
    folded_title = fold(title)
    for block in blocks:
        folded = fold(block.text)
        if kept and _ends_article(block, rules):
            break  # notes, references, "about the author": the article is over
        if not folded or folded in seen:
            continue
        if not kept and folded == folded_title:
            continue  # the headline repeated as the first block
        if block.link_share > rules.max_link_share or _is_boilerplate_line(block.text, rules):
            continue
        seen.add(folded)
        kept.append(block)
    # A quote repeating a sentence of another block is a pull quote.
    bodies = [fold(b.text) for b in kept if b.kind != "quote"]
    return [b for b in kept
            if b.kind != "quote" or not any(fold(b.text) in body for body in bodies)]


def join_blocks(blocks: Iterable[Block]) -> str:
    """The article text: blocks separated by blank lines; the items of one list, and the rows of
    one table, by newlines."""
    parts: list[str] = []
    previous: Block | None = None
    for block in blocks:
        if (previous is not None and block.kind == previous.kind
                and block.kind in ("item", "row") and block.group == previous.group):
            parts[-1] += "\n" + block.text
        else:
            parts.append(block.text)
        previous = block
    return "\n\n".join(parts)


def _ends_article(block: Block, rules: CleaningRules) -> bool:
    return len(block.text) <= 60 and any(p.fullmatch(block.text) for p in rules.end_markers)


def _substantial(block: Block) -> bool:
    """A paragraph trafilatura passed over that still reads like article text."""
    if block.kind != "paragraph" or block.link_share >= 0.3:
        return False
    return len(block.text.split()) >= 12 or len(CJK.findall(block.text)) >= 25


def _is_boilerplate_line(text: str, rules: CleaningRules) -> bool:
    if len(text) <= rules.max_line_chars and any(p.match(text) for p in rules.boilerplate_lines):
        return True
    short = len(text.split()) <= rules.byline_max_words or len(text) <= 40
    return short and any(p.fullmatch(text) for p in (*rules.bylines, *rules.datelines))


def _boilerplate_class(element: HtmlElement, rules: CleaningRules) -> bool:
    names = f"{element.get('class', '')} {element.get('id', '')}".lower()
    if not names.strip():
        return False
    for part in _SPLIT_CLASS.split(names):
        if part in rules.class_exact or (part and part.startswith(rules.class_prefixes)):
            return True
    return any(name.startswith(rules.class_prefixes) for name in names.split())


def _walk(root: HtmlElement) -> Iterator[tuple[HtmlElement, Block]]:
    """(element, block) for every text block under `root`, in document order."""
    for element in root.iterchildren():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag
        if tag in _HEADINGS:
            yield from _one(element, "heading")
        elif tag in _PARAGRAPHS:
            yield from _one(element, "paragraph")
        elif tag == "li":
            if _has_blocks(element):
                yield from _walk(element)
            else:
                for child, block in _one(element, "item"):
                    yield child, replace(block, group=id(element.getparent()))
        elif tag == "blockquote":
            if _has_blocks(element):
                for child, block in _walk(element):
                    yield child, Block("quote", block.text)
            else:
                yield from _one(element, "quote")
        elif tag == "tr":
            cells = [squash(_text(cell)) for cell in element if cell.tag in ("td", "th")]
            text = " ".join(cell for cell in cells if cell)
            if text:
                table = next(element.iterancestors("table"), None)
                yield element, Block("row", text, group=id(table))
        elif tag == "h1":
            continue
        elif _has_blocks(element):
            yield from _walk(element)
        else:
            yield from _one(element, "paragraph")


def _one(element: HtmlElement, kind: str) -> Iterator[tuple[HtmlElement, Block]]:
    text = squash(_text(element))
    if text:
        linked = sum(len(squash(_text(a))) for a in element.iter("a"))
        yield element, Block(kind, text, link_share=min(1.0, linked / len(text)))


def _has_blocks(element: HtmlElement) -> bool:
    return next(element.iterdescendants(*_BLOCK_TAGS), None) is not None


def _container(elements: list[HtmlElement], weights: list[int]) -> HtmlElement:
    """The deepest element that holds at least 90% of the matched text."""
    total = sum(weights)
    held: dict[HtmlElement, int] = {}
    depth: dict[HtmlElement, int] = {}
    for element, weight in zip(elements, weights, strict=True):
        ancestors = list(element.iterancestors())
        for level, ancestor in enumerate(reversed(ancestors)):
            held[ancestor] = held.get(ancestor, 0) + weight
            depth[ancestor] = level
    good = [a for a, weight in held.items() if weight >= 0.9 * total]
    return max(good, key=lambda a: depth[a])


def _text(element: HtmlElement) -> str:
    return "".join(element.itertext())


def _is_json_ld(element: HtmlElement) -> bool:
    return element.tag == "script" and element.get("type") == "application/ld+json"


def _drop_keep_tail(element: etree._Element) -> None:
    """Remove `element` but keep the text that follows it inside its parent."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)

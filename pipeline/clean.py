"""Our cleaning around trafilatura: trafilatura finds the article; we take its output as blocks
and remove only what is boilerplate beyond doubt (config/cleaning.yaml).

The flow, called by `pipeline.extract`:
1. `body_blocks` turns trafilatura's output body into blocks: paragraphs, headings, list items,
   quotes, table rows and code, in document order;
2. `drop_boilerplate_blocks` removes blocks that are boilerplate by their text (related links,
   captions and credits, promo and share lines, comment counters, tag lists, bylines and
   datelines standing alone, the headline repeated, pull quotes repeating the body, end
   matter), and blocks that are markup or data rather than prose (JSON, CSS, script);
3. `join_blocks` writes the text: blocks separated by blank lines, the items of one list and
   the rows of one table by line breaks.
Each rule matches short blocks only: a paragraph of the article is never dropped for a word
it contains.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import lxml.html
from lxml import etree

from pipeline.settings import ConfigError, load_yaml
from pipeline.text import fold, visible, word_count

# trafilatura's output elements and the kind of block each is
_KINDS = {"p": "paragraph", "head": "heading", "quote": "quote", "code": "code"}
# trafilatura's elements whose text runs on with the text around them (highlighting, links,
# deletions, code, line breaks); any other element inside a block (a paragraph or heading in a
# list item or a table cell, the paragraphs of a quote) is set off by a space, as trafilatura's
# own text output sets it off, so that its first and last words are not glued to its
# neighbours'
_INLINE = frozenset({"hi", "ref", "del", "code", "lb"})
_SENTENCE_END = re.compile(r"[.!?。！？…:;»\"”)\]]$")
# HTML in a declared text, and the tags that start or end a line of it
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>")
_BLOCK_END = re.compile(r"<br\s*/?>|</?(p|div|li|ul|ol|h[1-6]|blockquote)\b[^>]*>", re.IGNORECASE)
# Text that is data, markup or code rather than prose: JSON objects, CSS rules, script
# statements, template tags left unrendered.
_MARKUP = re.compile(
    r'\s*(\{\s*"[@\w$-]+"\s*:|\[\s*\{\s*"|@(media|import|font-face)\b'
    r"|[.#]?[\w-]+([\s,>]+[.#]?[\w-]+){0,4}\s*\{[^}]*:[^}]*;"
    r"|(var|let|const|function)\s+[\w$]+\s*[=(]|[(!]function\s*\(|window\.[\w$.]+\s*="
    r"|document\.(write|getElement|addEventListener|querySelector)"
    r"|\{\{[#/{!>]?\s*[\w.-]|\{%|<%)")


@dataclass(frozen=True)
class CleaningRules:
    min_words: int
    furniture_run: int
    furniture_max_words: int
    max_line_chars: int
    boilerplate_lines: re.Pattern[str]  # all of cleaning.yaml's patterns as one alternation
    byline_max_words: int
    bylines: tuple[re.Pattern[str], ...]
    datelines: tuple[re.Pattern[str], ...]
    end_markers: tuple[re.Pattern[str], ...]

    @classmethod
    def load(cls, path: Path) -> CleaningRules:
        raw = load_yaml(path)
        keys = {"min_words", "furniture_run", "furniture_max_words", "max_line_chars",
                "boilerplate_lines", "byline_max_words", "bylines", "datelines", "end_markers"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected keys {sorted(keys)}, got {sorted(raw)}")
        try:
            return cls(
                min_words=int(raw["min_words"]),
                furniture_run=int(raw["furniture_run"]),
                furniture_max_words=int(raw["furniture_max_words"]),
                max_line_chars=int(raw["max_line_chars"]),
                boilerplate_lines=re.compile("|".join(f"(?:{_checked(p)})"
                                                      for p in raw["boilerplate_lines"]),
                                             re.IGNORECASE),
                byline_max_words=int(raw["byline_max_words"]),
                bylines=tuple(re.compile(p) for p in raw["bylines"]),
                datelines=tuple(re.compile(p) for p in raw["datelines"]),
                end_markers=tuple(re.compile(p, re.IGNORECASE) for p in raw["end_markers"]),
            )
        except re.error as exc:
            raise ConfigError(f"{path}: bad pattern: {exc}") from exc


@dataclass(frozen=True)
class Block:
    kind: str  # paragraph | heading | item | quote | row | code
    text: str
    group: int | None = None  # items of one list, rows of one table, share it


def body_blocks(body: etree._Element) -> list[Block]:
    """trafilatura's output body as blocks in document order, each block's text on one line."""
    for line_break in body.iter("lb"):
        line_break.tail = "\n" + (line_break.tail or "")
    blocks: list[Block] = []
    # a number for each list and table, in the order met (not id(): an element object's id
    # is reused once it is freed, so two lists could share one, and one list's items not)
    groups: dict[etree._Element, int] = {}
    _append_text(blocks, "paragraph", visible(body.text or ""))
    for element in body:
        if element.tag == "list":
            for item in element.iter("item"):
                # an item's own text; the items of a list nested in it come on their own
                own = "".join(_pieces(item, nested_lists=False))
                group = groups.setdefault(item.getparent(), len(groups))
                _append_text(blocks, "item", visible(own), group=group)
        elif element.tag == "table":
            group = groups.setdefault(element, len(groups))
            for row in element.iter("row"):
                cells = (visible(_text(cell)) for cell in row.iter("cell"))
                _append_text(blocks, "row", " ".join(c for c in cells if c), group=group)
        else:
            _append(blocks, _KINDS.get(str(element.tag), "paragraph"), element)
        # text between two elements (after a heading, say) is a paragraph of its own
        _append_text(blocks, "paragraph", visible(element.tail or ""))
    return blocks


def drop_boilerplate_blocks(blocks: Iterable[Block], title: str,
                            rules: CleaningRules) -> list[Block]:
    """Blocks without those that are boilerplate by their text (see config/cleaning.yaml),
    without a block outside lists and tables said again, and without a list or table that
    repeats an earlier one item for item (`_repeated_groups`)."""
    blocks = list(blocks)
    repeated_groups = _repeated_groups(blocks)
    kept: list[tuple[Block, str]] = []
    seen: set[str] = set()
    folded_title = fold(title)
    for block in blocks:
        folded = fold(block.text)
        if kept and _ends_article(block, rules):
            break  # about the author, how to cite: the article is over
        if not folded or block.group in repeated_groups:
            continue
        if folded in seen and block.group is None:
            continue
        if not kept and folded == folded_title:
            continue  # the headline repeated as the first block
        if (block.kind != "code" and _is_markup(block.text)) or _is_boilerplate_line(block.text,
                                                                                   rules):
            continue
        seen.add(folded)
        kept.append((block, folded))
    # A quote repeating a sentence of another block is a pull quote.
    bodies = [folded for block, folded in kept if block.kind != "quote"]
    article = [block for block, folded in kept
               if block.kind != "quote" or not any(folded in body for body in bodies)]
    return _without_trailing_furniture(article, rules)


def text_blocks(text: str) -> list[Block]:
    """A text declared outside the page's markup (JSON-LD's `articleBody`) as paragraph blocks,
    one a line; HTML in it (some publishers declare their markup) read as text, its paragraphs,
    divisions, lists, headings and line breaks starting and ending lines, its scripts and
    styles left out."""
    if _TAG.search(text):
        fragment = lxml.html.fragment_fromstring(_BLOCK_END.sub("\n", text), create_parent="div")
        for code in list(fragment.iter("script", "style")):
            code.drop_tree()  # (its tail, text after it, stays)
        text = fragment.text_content()
    else:
        text = html.unescape(text)
    return [Block("paragraph", line) for line in map(visible, text.splitlines()) if line]


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


def _repeated_groups(blocks: list[Block]) -> set[int]:
    """The lists and tables that repeat an earlier one item for item (a page's copies of one
    list for other screens): a line repeated within or across lists that differ is the
    article's own (every week of a training plan starts with the same warm-up)."""
    groups: dict[int, list[str]] = {}
    for block in blocks:
        if block.group is not None:
            groups.setdefault(block.group, []).append(fold(block.text))
    seen: set[tuple[str, ...]] = set()
    repeated = set()
    for group, lines in groups.items():
        if tuple(lines) in seen:
            repeated.add(group)
        seen.add(tuple(lines))
    return repeated


def _without_trailing_furniture(blocks: list[Block], rules: CleaningRules) -> list[Block]:
    """Without the run of short, unpunctuated blocks after the article's last sentence when it
    is `furniture_run` blocks or more: buttons, menus and form labels, not prose."""
    end = len(blocks)
    while end and _is_furniture(blocks[end - 1], rules):
        end -= 1
    return blocks[:end] if len(blocks) - end >= rules.furniture_run else blocks


def _is_furniture(block: Block, rules: CleaningRules) -> bool:
    return (block.kind != "row" and word_count(block.text) < rules.furniture_max_words
            and _SENTENCE_END.search(block.text) is None)


def _ends_article(block: Block, rules: CleaningRules) -> bool:
    return (block.kind in ("heading", "paragraph") and len(block.text) <= 60
            and any(p.fullmatch(block.text) for p in rules.end_markers))


def _is_markup(text: str) -> bool:
    return _MARKUP.match(text) is not None


def _is_boilerplate_line(text: str, rules: CleaningRules) -> bool:
    if len(text) <= rules.max_line_chars and rules.boilerplate_lines.match(text):
        return True
    short = len(text.split()) <= rules.byline_max_words or len(text) <= 40
    return short and any(p.fullmatch(text) for p in (*rules.bylines, *rules.datelines))


def _checked(pattern: str) -> str:
    """`pattern`, once it has compiled on its own (so that an error names it)."""
    re.compile(pattern)
    return pattern


def _append(blocks: list[Block], kind: str, element: etree._Element,
            group: int | None = None) -> None:
    _append_text(blocks, kind, visible(_text(element)), group)


def _append_text(blocks: list[Block], kind: str, text: str, group: int | None = None) -> None:
    if text:
        blocks.append(Block(kind, text, group=group))


def _pieces(element: etree._Element, nested_lists: bool = True) -> Iterator[str]:
    """The text of `element`, each element in it that is not `_INLINE` set off by spaces;
    without that of the lists nested in it unless `nested_lists`."""
    yield element.text or ""
    for child in element:
        if nested_lists or child.tag != "list":
            spaced = child.tag not in _INLINE
            yield " " if spaced else ""
            yield from _pieces(child, nested_lists)
            yield " " if spaced else ""
        yield child.tail or ""


def _text(element: etree._Element) -> str:
    return "".join(_pieces(element))

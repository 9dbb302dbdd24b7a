"""The gazetteer: canonical entities from config/entities.yaml and a fast multilingual term
matcher shared by relevance and enrich.

Matching rules, the same for every term list in config/:
- terms in a script written without spaces, or whose words take affixes (Chinese, Japanese,
  Korean, Thai, Arabic, Persian, Hindi), match anywhere in the text; Chinese is compared in
  simplified characters, so traditional text matches too;
- Cyrillic terms are stems and match at a word start with any ending (Russian inflects:
  "Росси" finds России, Россией, Россия), and so does any term ending in `*` ("rosyjsk*");
- every other term matches as a whole word, case-sensitively.
Where matches overlap, the one that starts first wins, then the longest; so a word that holds
a name without naming it (entities.yaml's `not_names`), found as a hidden word, takes its place
and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any

import ahocorasick

from pipeline.settings import ConfigError, load_yaml
from pipeline.text import UNSPACED, simplified

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_ANYWHERE = re.compile(r"[\u0600-\u06ff\u0900-\u097f\u1100-\u11ff\uac00-\ud7af]")
# A word ends where letters of an alphabet with spaces stop: "BRICS首脳会議" has the word BRICS.
_WORD_CHAR = re.compile(r"[0-9A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff\u1e00-\u1eff]")
_WORD_REST = re.compile(r"\w*")
# Arabic and Persian write yeh and kaf differently; the matcher reads them as one.
_ARABIC_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9"})
ENTITY_TYPES = ("person", "organization", "location")
SIDES = ("russia", "china")
_LANGUAGE = re.compile(r"[a-z]{2}")


@dataclass(frozen=True)
class Match:
    term: str  # the configured term that matched
    start: int
    end: int


class TermMatcher:
    """Finds configured terms in text, longest term first, without overlaps: every form's
    occurrences in one pass (an Aho-Corasick automaton), then the word-boundary rules of its
    kind. `hidden` words are found like terms, so that they take their place, and never
    returned: a word that holds a term without being it ("发展中国家", developing countries,
    holds "中国")."""

    def __init__(self, terms: Iterable[str], hidden: Iterable[str] = ()) -> None:
        self._hidden = frozenset(hidden)
        # each form once, as the most permissive of the terms it comes from ("energi" as a
        # whole word and "energi*" as a stem: the stem)
        forms: dict[str, tuple[_Kind, str]] = {}
        for term in sorted({t for t in (*terms, *self._hidden) if t}):
            if UNSPACED.search(term) or _ANYWHERE.search(term):
                term_forms, kind = [_match_form(term)], _Kind.ANYWHERE
            elif term.endswith("*") or _CYRILLIC.search(term):
                term_forms, kind = _cases(term.rstrip("*")), _Kind.STEM
            else:
                term_forms, kind = _cases(term), _Kind.WHOLE
            for form in term_forms:
                if form and (form not in forms or forms[form][0].value < kind.value):
                    forms[form] = kind, term
        self._automaton = ahocorasick.Automaton()
        for form, (kind, term) in forms.items():
            self._automaton.add_word(form, (term, kind, len(form)))
        self._empty = not forms
        if forms:
            self._automaton.make_automaton()

    def find(self, text: str) -> list[Match]:
        if self._empty:
            return []
        text = _match_form(text)
        found: list[tuple[int, int, int, str]] = []  # start, -end, -form length, term
        for last, (term, kind, length) in self._automaton.iter(text):
            start, end = last + 1 - length, last + 1
            if kind is not _Kind.ANYWHERE and start and _WORD_CHAR.match(text, start - 1):
                continue
            if kind is _Kind.WHOLE and _WORD_CHAR.match(text, end):
                continue
            if kind is _Kind.STEM:  # a stem takes the rest of its word
                end = _WORD_REST.match(text, end).end()  # type: ignore[union-attr]
            found.append((start, -end, -length, term))
        found.sort()
        result: list[Match] = []
        last_end = -1
        for start, negative_end, _, term in found:
            if start >= last_end:
                if term not in self._hidden:
                    result.append(Match(term, start, -negative_end))
                last_end = -negative_end
        return result


class _Kind(Enum):
    """Where a form matches, each kind more permissive than the one before."""

    WHOLE = 1  # a whole word
    STEM = 2  # at a word's start, with any ending
    ANYWHERE = 3  # scripts without spaces between words, or affixing ones


@dataclass(frozen=True)
class CanonicalEntity:
    name: str
    type: str
    side: str | None
    wikidata: str | None
    aliases: tuple[str, ...]
    # a news outlet (TASS, Xinhua, CCTV...): its name credits a report ("央视网消息", "сообщает
    # ТАСС") more often than it makes the outlet an actor, so it names no side for relevance
    outlet: bool = False


class Gazetteer:
    """Canonical entities and the alias -> entity lookup."""

    def __init__(self, entities: Iterable[CanonicalEntity], not_names: Iterable[str] = ()) -> None:
        self.entities = tuple(entities)
        # words that hold an alias without naming its entity ("发展中国家", developing
        # countries, holds "中国"): the matcher's hidden words
        self.not_names = frozenset(not_names)
        self._by_alias: dict[str, CanonicalEntity] = {}
        for entity in self.entities:
            for alias in (entity.name, *entity.aliases):
                other = self._by_alias.get(alias)
                if other is not None and other.name != entity.name:
                    raise ConfigError(f"alias {alias!r} names both {other.name!r} "
                                      f"and {entity.name!r}")
                self._by_alias[alias] = entity

    @classmethod
    def load(cls, path: Path) -> Gazetteer:
        raw = load_yaml(path)
        entries, not_names = raw.get("entities"), raw.get("not_names") or {}
        if not set(raw) <= {"entities", "not_names"} or not isinstance(entries, list) or \
                not isinstance(not_names, Mapping):
            raise ConfigError(f"{path}: expected 'entities', a list, and optionally "
                              "'not_names', lists of words by language")
        return cls((_entity_from_dict(entry, path) for entry in entries),
                   (str(word) for words in not_names.values() for word in words or ()))

    @cached_property
    def matcher(self) -> TermMatcher:
        return TermMatcher(self._by_alias, hidden=self.not_names)

    def lookup(self, alias: str) -> CanonicalEntity | None:
        return self._by_alias.get(alias)

    def find(self, text: str) -> list[tuple[CanonicalEntity, Match]]:
        """Every gazetteer mention in `text`, with the entity it names."""
        return [(self._by_alias[m.term], m) for m in self.matcher.find(text)]


def _entity_from_dict(raw: Mapping[str, Any], path: Path) -> CanonicalEntity:
    allowed = {"name", "type", "side", "wikidata", "aliases", "outlet"}
    if not isinstance(raw, Mapping) or not {"name", "type"} <= raw.keys() or raw.keys() - allowed:
        raise ConfigError(f"{path}: each entity needs name and type and only {sorted(allowed)}; "
                          f"got {raw!r}")
    if raw["type"] not in ENTITY_TYPES:
        raise ConfigError(f"{path}: {raw['name']}: type must be one of {ENTITY_TYPES}")
    if raw.get("side") not in (None, *SIDES):
        raise ConfigError(f"{path}: {raw['name']}: side must be one of {SIDES}")
    if not isinstance(raw.get("outlet", False), bool):
        raise ConfigError(f"{path}: {raw['name']}: outlet is true or false")
    aliases_raw = raw.get("aliases") or {}
    if not isinstance(aliases_raw, Mapping) or not all(
            isinstance(key, str) and _LANGUAGE.fullmatch(key) for key in aliases_raw):
        raise ConfigError(f"{path}: {raw['name']}: aliases are keyed by ISO 639-1 language "
                          "codes (en, ru, zh, de, ja, ...)")
    aliases = tuple(str(a) for values in aliases_raw.values() for a in values or ())
    return CanonicalEntity(name=str(raw["name"]), type=str(raw["type"]), side=raw.get("side"),
                           wikidata=raw.get("wikidata"), aliases=aliases,
                           outlet=raw.get("outlet", False))


def _cases(term: str) -> list[str]:
    """A term written in lower case also matches with a capital first letter, as it does at
    the start of a sentence or a headline ("rosyjskie" -> "Rosyjskie")."""
    if term[:1].islower():
        return [term, term[0].upper() + term[1:]]
    return [term]


def _match_form(text: str) -> str:
    """`text` as the matcher compares it: Chinese in simplified characters, Arabic and
    Persian letters in one spelling."""
    return simplified(text).translate(_ARABIC_LETTERS)

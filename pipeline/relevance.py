"""relevance: is an article about relations between Russia and China? A scored, explainable
rule over the gazetteer and config/topic.yaml (see the comments there for the features)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.gazetteer import SIDES, Gazetteer, TermMatcher
from pipeline.records import Relevance
from pipeline.settings import ConfigError, load_yaml

_SECTIONS = ("title", "lead", "body")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？;；])\s*|\n+")


@dataclass(frozen=True)
class TopicModel:
    threshold: float
    lead_paragraphs: int
    weights: dict[str, float]
    pair_saturation: float
    topic_saturation: float
    negative_saturation: float
    position_weights: dict[str, float]
    side_matchers: dict[str, TermMatcher]  # side -> gazetteer aliases + cue words
    side_terms: dict[str, frozenset[str]]
    joint: TermMatcher
    topic: TermMatcher
    negative: TermMatcher
    gazetteer: Gazetteer
    list_min_places: int

    @classmethod
    def load(cls, path: Path, gazetteer: Gazetteer) -> TopicModel:
        raw = load_yaml(path)
        keys = {"threshold", "lead_paragraphs", "weights", "pair_saturation", "topic_saturation",
                "negative_saturation", "position_weights", "side_cues", "joint", "topic",
                "negative", "list_min_places"}
        if set(raw) != keys:
            raise ConfigError(f"{path}: expected keys {sorted(keys)}, got {sorted(raw)}")
        if set(raw["weights"]) != {"pair", "joint", "topic", "negative"}:
            raise ConfigError(f"{path}: weights are pair, joint, topic, negative")
        if set(raw["position_weights"]) != set(_SECTIONS):
            raise ConfigError(f"{path}: position_weights are {_SECTIONS}")
        side_terms = {
            side: frozenset(
                [alias for e in gazetteer.entities if e.side == side
                 for alias in (e.name, *e.aliases)] + list(raw["side_cues"].get(side, []))
            )
            for side in SIDES
        }
        return cls(
            threshold=float(raw["threshold"]),
            lead_paragraphs=int(raw["lead_paragraphs"]),
            weights={k: float(v) for k, v in raw["weights"].items()},
            pair_saturation=float(raw["pair_saturation"]),
            topic_saturation=float(raw["topic_saturation"]),
            negative_saturation=float(raw["negative_saturation"]),
            position_weights={k: float(v) for k, v in raw["position_weights"].items()},
            side_matchers={side: TermMatcher(terms) for side, terms in side_terms.items()},
            side_terms=side_terms,
            joint=TermMatcher(_all_languages(raw["joint"])),
            topic=TermMatcher(_all_languages(raw["topic"])),
            negative=TermMatcher(_all_languages(raw["negative"])),
            gazetteer=gazetteer,
            list_min_places=int(raw["list_min_places"]),
        )


def score_relevance(title: str, text: str, model: TopicModel) -> Relevance:
    """Score `title` + `text`; the reasons name each feature that contributed."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    sections = {
        "title": title,
        "lead": "\n\n".join(paragraphs[: model.lead_paragraphs]),
        "body": "\n\n".join(paragraphs[model.lead_paragraphs:]),
    }
    full = "\n\n".join(sections.values())
    joint_hits = model.joint.find(full)

    reasons: list[str] = []
    strength: dict[str, float] = {}
    for side in SIDES:
        total = 0.0
        listed = 0
        for section, section_text in sections.items():
            hits = 0
            for sentence in _SENTENCE_END.split(section_text):
                found = (len(model.side_matchers[side].find(sentence))
                         + len(model.joint.find(sentence)))  # "Sino-Russian" names both sides
                if found and _is_list(sentence, model):
                    listed += found  # one of many countries in a list: a passing mention
                else:
                    hits += found
            if hits:
                reasons.append(f"{side}:{section}:{hits}")
            total += model.position_weights[section] * hits
        if listed:
            reasons.append(f"{side}:in_lists:{listed}")
        strength[side] = total

    both = all(strength[side] > 0 for side in SIDES)
    pair = min(1.0, min(strength.values()) / model.pair_saturation)
    joint = 1.0 if joint_hits else 0.0
    topic_terms = sorted({m.term for m in model.topic.find(full)})
    topic = min(1.0, len(topic_terms) / model.topic_saturation)
    negative_hits = model.negative.find(full)
    negative = min(1.0, len(negative_hits) / model.negative_saturation)

    if joint_hits:
        reasons.append(f"joint:{joint_hits[0].term}")
    reasons.extend(f"topic:{term}" for term in topic_terms)
    reasons.extend(f"negative:{term}" for term in sorted({m.term for m in negative_hits}))

    w = model.weights
    score = w["pair"] * pair + w["joint"] * joint + w["topic"] * topic - w["negative"] * negative
    score = round(max(0.0, score), 4)
    relevant = both and score >= model.threshold
    if not both:
        reasons.append("missing_side:" + ",".join(s for s in SIDES if strength[s] == 0))
    return Relevance(score=score, relevant=relevant, reasons=tuple(reasons))


def _is_list(sentence: str, model: TopicModel) -> bool:
    """A sentence naming many places (countries, cities) is a list, not a story about them."""
    places = {entity.name for entity, _ in model.gazetteer.find(sentence)
              if entity.type == "location"}
    return len(places) >= model.list_min_places


def _all_languages(by_language: dict[str, Any]) -> list[str]:
    return [str(term) for terms in by_language.values() for term in terms or ()]

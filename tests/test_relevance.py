"""relevance: the first rule keeps the sample corpus's Russia–China articles and drops sport,
one-country stories and passing mentions, in English, Russian and Chinese."""

from __future__ import annotations

import pytest

from pipeline.extract import extract_article
from pipeline.gazetteer import Gazetteer, TermMatcher
from pipeline.relevance import TopicModel, score_relevance
from pipeline.settings import CONFIG_DIR
from tests.conftest import article_id, sample_articles

GAZETTEER = Gazetteer.load(CONFIG_DIR / "entities.yaml")
MODEL = TopicModel.load(CONFIG_DIR / "topic.yaml", GAZETTEER)


@pytest.mark.parametrize("sample", sample_articles("article"), ids=article_id)
def test_sample_label(sample) -> None:
    article = extract_article(sample.page())
    relevance = score_relevance(article.title, article.text, MODEL)
    assert relevance.relevant is sample.raw["relevant"], relevance.reasons


def test_reasons_explain_the_decision() -> None:
    relevance = score_relevance(
        "Putin and Xi sign gas pipeline deal",
        "MOSCOW — Russia and China agreed on Tuesday to build the pipeline.\n\n"
        "The Kremlin said trade in yuan and rubles would grow.",
        MODEL)
    assert relevance.relevant
    assert any(r.startswith("russia:title:") for r in relevance.reasons)
    assert any(r.startswith("china:title:") for r in relevance.reasons)
    assert "topic:pipeline" in relevance.reasons
    assert any(r.startswith("joint:") for r in relevance.reasons)


def test_one_sided_story_is_not_relevant() -> None:
    relevance = score_relevance("Kremlin sets date for regional elections",
                                "Putin signed the decree in Moscow on Monday.", MODEL)
    assert not relevance.relevant
    assert "missing_side:china" in relevance.reasons


def test_sport_cues_pull_the_score_down() -> None:
    text = ("China won the final match against Russia 3-1 and took the gold medal.\n\n"
            "The tournament ends on Sunday; Russian and Chinese players scored twice.")
    assert not score_relevance("China beat Russia in championship final", text, MODEL).relevant


def test_russian_stems_match_inflected_forms() -> None:
    matcher = TermMatcher(["Росси", "Пекин"])
    found = [m.term for m in matcher.find("Президент России прибыл в Пекине; Россией")]
    assert found == ["Росси", "Пекин", "Росси"]


def test_latin_terms_match_whole_words_only() -> None:
    matcher = TermMatcher(["Xi", "Putin"])
    assert [m.term for m in matcher.find("Xi met Putin; Xinjiang and Putinism are other words")] \
        == ["Xi", "Putin"]


def test_longest_alias_wins() -> None:
    found = GAZETTEER.find("President Vladimir Putin met 习近平.")
    assert [(entity.name, text) for entity, text in
            ((e, "President Vladimir Putin met 习近平."[m.start:m.end]) for e, m in found)] == [
        ("Vladimir Putin", "Vladimir Putin"), ("Xi Jinping", "习近平")]


def test_a_passing_mention_in_a_list_does_not_count() -> None:
    text = ("Delegates from Brazil, India, Russia, China, Indonesia and South Africa signed the "
            "declaration on ocean plastics.\n\n"
            "The agreement sets targets for recycling and bans some single-use packaging.\n\n"
            "Negotiators said the talks in Nairobi had been difficult.")
    relevance = score_relevance("Ocean plastics deal agreed in Nairobi", text, MODEL)
    assert not relevance.relevant
    assert "russia:in_lists:1" in relevance.reasons and "china:in_lists:1" in relevance.reasons
    assert "missing_side:russia,china" in relevance.reasons

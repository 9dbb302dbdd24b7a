"""enrich: spaCy NER plus the gazetteer, with surface forms linked to one canonical name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.enrich import enrich_articles
from pipeline.extract import extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.records import Article, Source
from pipeline.settings import CONFIG_DIR
from tests.conftest import sample_articles

GAZETTEER = Gazetteer.load(CONFIG_DIR / "entities.yaml")


def _article(title: str, text: str, language: str = "en") -> Article:
    return Article(url="https://example.org/a", title=title, text=text, language=language,
                   published_at=None, authors=(), source=Source("S", "example.org"),
                   fetched_at=datetime.now(UTC))


def _entities(article: Article) -> dict[str, tuple[str, int, bool, bool]]:
    (enriched,) = enrich_articles([article], GAZETTEER)
    return {e.name: (e.type, e.mentions, e.salience, e.linked) for e in enriched.entities}


def test_aliases_link_to_one_canonical_person() -> None:
    found = _entities(_article(
        "Putin to meet Xi in Beijing",
        "President Putin will travel next week, the Kremlin said.\n\n"
        "Vladimir Putin and Xi Jinping last met in Kazan.\n\n"
        "Later, Elena Marchetti of the Rome-based Institute for Eurasian Studies said the "
        "meeting in Beijing mattered."))
    assert found["Vladimir Putin"][:2] == ("person", 3)
    assert found["Xi Jinping"][0] == "person" and found["Xi Jinping"][3]
    assert found["Beijing"][0] == "location"
    assert found["Vladimir Putin"][2]  # named in the title: salient
    unlinked = {name: v for name, v in found.items() if not v[3]}
    assert "Elena Marchetti" in unlinked and unlinked["Elena Marchetti"][0] == "person"


@pytest.mark.parametrize(("text", "language"), [
    ("Владимир Путин и Си Цзиньпин обсудили «Силу Сибири — 2». Путин заявил о росте торговли.",
     "ru"),
    ("习近平会见普京。普京表示，中俄关系处于历史最好水平。", "zh"),
])
def test_russian_and_chinese_are_linked_through_the_gazetteer(text: str, language: str) -> None:
    found = _entities(_article(text.split("。")[0], text, language))
    assert found["Vladimir Putin"][0] == "person" and found["Vladimir Putin"][1] >= 2
    assert found["Xi Jinping"][3]


def test_agencies_are_organisations_not_persons() -> None:
    found = _entities(_article("Report", "TASS and Xinhua both reported that Gazprom and "
                                         "Rosneft would sign deals with CNPC in Moscow."))
    for name in ("TASS", "Xinhua", "Gazprom", "Rosneft", "China National Petroleum Corporation"):
        assert found[name][0] == "organization", name


def test_sample_corpus_entities() -> None:
    samples = [s for s in sample_articles("article") if s.raw["relevant"]]
    articles = [extract_article(s.page()) for s in samples]
    enriched = list(enrich_articles(articles, GAZETTEER))
    assert len(enriched) == len(samples)
    for article in enriched:
        persons = {e.name for e in article.entities if e.type == "person"}
        assert not persons & {"TASS", "Xinhua", "Reuters", "Northern Wire"}
        assert article.entities, article.url

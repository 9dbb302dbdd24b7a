"""enrich: spaCy NER plus the gazetteer, with surface forms linked to one canonical name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.enrich import (
    LINKING_CODE,
    EnrichRules,
    _resolve_short_names,
    correct_type,
    enrich_articles,
    enrichment_version,
)
from pipeline.extract import extract_article
from pipeline.gazetteer import Gazetteer
from pipeline.records import Article, Source
from pipeline.settings import CONFIG_DIR
from tests.conftest import SAMPLE, sample_articles

GAZETTEER = Gazetteer.load(CONFIG_DIR / "entities.yaml")
RULES = EnrichRules.load(CONFIG_DIR / "enrich.yaml")


def _article(title: str, text: str, language: str | None = "en") -> Article:
    return Article(url="https://example.org/a", title=title, text=text, language=language,
                   published_at=None, authors=(), source=Source("S", "example.org"),
                   fetched_at=datetime.now(UTC))


def _entities(article: Article) -> dict[str, tuple[str, int, bool, bool]]:
    (enriched,) = enrich_articles([article], GAZETTEER, RULES)
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



def test_belarus_is_linked_as_itself_not_as_the_russia_its_chinese_name_holds() -> None:
    found = _entities(_article("习近平会见白俄罗斯总统",
                               "国家主席习近平在北京会见白俄罗斯总统。双方同意扩大经贸合作。", "zh"))
    assert found["Belarus"][0] == "location" and found["Belarus"][1] == 2
    assert "Russia" not in found


def test_a_place_or_an_outlet_named_after_a_known_name_is_itself() -> None:
    found = _entities(_article(
        "Summit in Xi'an",
        "Leaders met in Xi'an, the South China Morning Post and The Moscow Times reported."))
    assert found["Xi'an"][0] == "location" and "Xi Jinping" not in found
    assert found["South China Morning Post"][0] == "organization" and "China" not in found
    assert found["The Moscow Times"][0] == "organization" and "Moscow" not in found
    # a province's name and the word after it do not hold Xi'an (陕西 + 安康, Ankang)
    found = _entities(_article("陕西安康举行展会", "习近平在西安会见外宾。陕西安康市举行展会。", "zh"))
    assert found["Xi'an"][1] == 1


def test_a_word_holding_a_name_does_not_link_it() -> None:
    # "发展中国家" is "developing countries"; the China inside it is not named
    found = _entities(_article("俄方向非洲运送化肥",
                               "俄罗斯表示，将向多个发展中国家免费运送化肥。", "zh"))
    assert "Russia" in found and "China" not in found
    # Китай-город is a district of Moscow, whatever its case
    found = _entities(_article("В Китай-городе перекроют улицы",
                               "Мэрия Москвы сообщила, что в Китай-городе пройдёт фестиваль.", "ru"))
    assert "Moscow" in found and "China" not in found
    # a headline in capitals: Kim Jong Un's "UN" is not the United Nations
    found = _entities(_article("WHAT KIM JONG UN WANTS FROM MOSCOW",
                               "Pyongyang sent a delegation to Moscow.", "en"))
    assert "United Nations" not in found

def test_agencies_are_organisations_not_persons() -> None:
    found = _entities(_article("Report", "TASS and Xinhua both reported that Gazprom and "
                                         "Rosneft would sign deals with CNPC in Moscow. "
                                         "Northern Wire reported that Lavrov arrived."))
    assert found["Northern Wire"][0] == "organization"  # the NER says place
    for name in ("TASS", "Xinhua", "Gazprom", "Rosneft", "China National Petroleum Corporation"):
        assert found[name][0] == "organization", name


def test_sample_corpus_persons_are_people_under_one_name() -> None:
    import yaml

    outlets = {yaml.safe_load(path.read_text())["outlet"]
               for path in (SAMPLE / "expected").glob("*.yaml")}
    samples = sample_articles("article")
    articles = [extract_article(s.page()) for s in samples]
    enriched = list(enrich_articles(articles, GAZETTEER, RULES))
    agencies = {e.name for e in GAZETTEER.entities if e.type == "organization"}
    assert len(enriched) == len(samples)
    for article in enriched:
        persons = [e.name for e in article.entities if e.type == "person"]
        assert not set(persons) & (agencies | outlets), article.url
        for name in persons:
            assert not any(w in RULES.organization_words for w in name.split()), name
            # a surname or a first name never stands beside the full name it belongs to
            if len(name.split()) == 1:
                assert not any(name in other.split() for other in persons if other != name), \
                    (article.url, name)
        assert article.entities or article.language != "en", article.url


def test_ner_corrections() -> None:
    found = _entities(_article(
        "Talks in Beijing",
        "Putin and Xi met on Tuesday, Baltic Press reported, citing the Steppe Herald.\n\n"
        "Elena Marchetti, a researcher, said the talks mattered. Marchetti added that Chinese "
        "and Russian officials would meet again.\n\n"
        "Laura Vinter of the Oslo Institute said Russian diplomats were pleased."))
    assert found["Vladimir Putin"][0] == "person" and found["Xi Jinping"][0] == "person"
    assert not any(name.startswith("Putin and") for name in found)  # no "Putin and Xi" org
    assert found["Baltic Press"][0] == "organization"
    assert "Marchetti" not in found and found["Elena Marchetti"][1] == 2  # the surname resolves
    assert not {"Chinese", "Russian"} & set(found)  # nationality words are not entities


def test_another_person_with_a_known_surname_is_not_linked_to_the_known_one() -> None:
    found = _entities(_article(
        "Family visit",
        "Melania Trump arrived in Beijing on Monday, and Donald Trump Jr. flew to Moscow. "
        "Naina Yeltsin, the widow of Boris Yeltsin, sent a letter. Xi Mingze, a daughter of "
        "Xi Jinping, studied abroad.\n\n"
        # a sentence as full of names as a headline is still a sentence
        "Eric Trump Met Moscow Students In Shanghai.\n\n"
        "Donald J. Trump wrote later that Mr Xi and President Putin had been invited."))
    for other in ("Melania Trump", "Donald Trump Jr.", "Naina Yeltsin", "Xi Mingze",
                  "Eric Trump"):
        assert found[other][0] == "person" and not found[other][3], other  # unlinked
    # the known ones, each under its own name: "Donald J. Trump", "Mr Xi", "President Putin"
    assert found["Donald Trump"][1:4:2] == (1, True)
    assert found["Xi Jinping"][1:4:2] == (2, True)
    assert found["Boris Yeltsin"][1:4:2] == (1, True)
    assert found["Vladimir Putin"][3]


def test_an_organisation_named_after_a_place_is_kept_beside_the_place() -> None:
    found = _entities(_article(
        "Exchanges", "Students of Moscow State University visited the Shanghai Stock Exchange "
                     "on Thursday. Moscow and Shanghai signed a twinning accord."))
    assert found["Moscow State University"][0:4:3] == ("organization", False)
    assert found["Shanghai Stock Exchange"][0:4:3] == ("organization", False)
    assert found["Moscow"][1:4:2] == (2, True) and found["Shanghai"][1:4:2] == (2, True)


def test_a_surname_the_ner_calls_an_organisation_is_the_person() -> None:
    found = _entities(_article(
        "Duma and Beijing",
        "Konstantin Kosachev said on Tuesday that trade with Beijing would grow. Kosachev added "
        "that Kosachev's committee would meet.\n\nWe liked Sergei Bobrov. Bobrov's company "
        "imports tea."))
    assert found["Konstantin Kosachev"][:2] == ("person", 3)
    assert found["Sergei Bobrov"][:2] == ("person", 2)
    assert "Kosachev" not in found and "Bobrov" not in found


@pytest.mark.parametrize(("found", "text", "expected"), [
    ([("Rex Tillerson", "person", 0), ("Tillerson", "organization", 30)],
     "Rex Tillerson was named. Tillerson said so.", ("Rex Tillerson", "person", 30)),
    # a name written with letters beyond ASCII
    ([("Miguel Díaz-Canel", "person", 0), ("Díaz-Canel", "organization", 30)],
     "Miguel Díaz-Canel was elected. Díaz-Canel spoke.", ("Miguel Díaz-Canel", "person", 30)),
    # a phrase the NER took for a person: "choose" is a word of the text
    ([("Choose Tradewell", "person", 0), ("Tradewell", "organization", 40)],
     "Choose Tradewell if you sell abroad; choose a plan. Tradewell sells.",
     ("Tradewell", "organization", 40)),
    # a place stays a place, whatever ends in its name
    ([("Zentis Osaka", "person", 0), ("Osaka", "location", 20)],
     "Zentis Osaka is sweet. Osaka is a city.", ("Osaka", "location", 20)),
    # not a first word: that is as often a brand
    ([("Google Ads", "person", 0), ("Google", "organization", 20)],
     "Google Ads runs ads. Google sells them.", ("Google", "organization", 20)),
], ids=["surname", "accented-surname", "phrase-taken-for-a-person", "place", "first-word"])
def test_which_lone_names_are_a_persons_surname(found: list[tuple[str, str, int]], text: str,
                                                expected: tuple[str, str, int]) -> None:
    assert list(_resolve_short_names(found, [], text))[1] == expected


def test_no_entity_runs_across_a_line_break() -> None:
    # the NER reads "Sevmorput\n\nSevmorput" (a heading and the paragraph under it) as one name
    found = _entities(_article("Arctic shipping", "Sevmorput\n\nSevmorput shipped the first "
                                                  "cargo of the season to Ningbo."))
    assert found["Sevmorput"][:2] == ("organization", 2)
    assert not any("\n" in name for name in found)


@pytest.mark.parametrize(("name", "ner_type", "expected"), [
    ("Steppe Herald", "person", "organization"),
    ("Baltic Wire", "location", "organization"),
    ("Interfax Daily", "person", "organization"),
    ("Elena Marchetti", "person", "person"),
    ("Vladivostok", "location", "location"),
    ("Chinese", "location", None),
    ("Russians", "person", None),
    ("percent", "organization", None),
])
def test_ner_type_corrections(name: str, ner_type: str, expected: str | None) -> None:
    assert correct_type(name, ner_type, RULES) == expected


def test_a_change_to_the_linking_code_calls_for_re_enrichment(tmp_path: Path) -> None:
    gazetteer, rules = CONFIG_DIR / "entities.yaml", CONFIG_DIR / "enrich.yaml"
    code = []
    for source in LINKING_CODE:
        copy = tmp_path / source.name
        copy.write_bytes(source.read_bytes())
        code.append(copy)
    assert enrichment_version(gazetteer, rules, tuple(code)) == enrichment_version(gazetteer, rules)
    code[0].write_text(code[0].read_text() + "\n# a new rule\n")
    # documents enriched before are re-linked by `newsroom reenrich`
    assert enrichment_version(gazetteer, rules, tuple(code)) != enrichment_version(gazetteer, rules)


def test_where_the_ner_did_not_read_is_noted() -> None:
    text = "Vladimir Putin und Xi Jinping trafen sich in Peking, berichtete Elena Marchetti."
    (german,) = enrich_articles([_article("Treffen in Peking", text, "de")], GAZETTEER, RULES)
    assert german.entity_notes == ("ner_language_not_covered:de",)
    assert {e.name for e in german.entities} >= {"Vladimir Putin", "Xi Jinping"}  # gazetteer
    assert not any(not e.linked for e in german.entities)  # nothing the NER found
    (undetermined,) = enrich_articles([_article("Putin", "Putin.", None)], GAZETTEER, RULES)
    assert undetermined.entity_notes == ("ner_language_not_covered:und",)

    paragraph = "Elena Marchetti said the talks in Beijing mattered to both sides.\n\n"
    short = _article("Talks", paragraph * 3)
    long = _article("Talks", paragraph * (RULES.ner_max_chars // len(paragraph) + 1))
    shorter, longer = enrich_articles([short, long], GAZETTEER, RULES)
    assert shorter.entity_notes == ()
    assert longer.entity_notes == (f"ner_read_first_chars:{RULES.ner_max_chars}",)

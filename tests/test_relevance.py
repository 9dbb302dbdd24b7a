"""relevance: the rule keeps Russia–China articles and drops sport, travel writing, one-country
stories, lists and bloc membership, in any language the term lists cover."""

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
    assert "both:title" in relevance.reasons
    assert any(r.startswith("russia:") for r in relevance.reasons)
    assert any(r.startswith("both:") and "with_topic" in r for r in relevance.reasons)
    assert "topic:pipeline" in relevance.reasons
    assert any(r.startswith("joint:") for r in relevance.reasons)


@pytest.mark.parametrize(("title", "text"), [
    ("Lawrow trifft Wang Yi in Peking",
     ("Der russische Außenminister Sergej Lawrow ist zu Gesprächen mit seinem chinesischen "
     "Kollegen Wang Yi in Peking eingetroffen. Beide Seiten wollen die Zusammenarbeit bei "
     "Energie und Handel ausbauen.")),
    ("Gazprom et CNPC s'accordent sur les livraisons",
     ("Gazprom a annoncé mardi un accord avec le chinois CNPC pour augmenter les livraisons de "
     "gaz par le gazoduc Force de Sibérie. Moscou et Pékin veulent porter les échanges à un "
     "niveau record.")),
    ("Rosja i Chiny rozpoczynają wspólne manewry morskie",
     ("Okręty rosyjskiej i chińskiej marynarki wojennej rozpoczęły w poniedziałek wspólne "
     "ćwiczenia na Morzu Japońskim, poinformowało ministerstwo obrony Rosji.")),
    ("中ロ首脳が電話会談",
     ("ロシアのプーチン大統領と中国の習近平国家主席は電話会談を行い、エネルギー協力や貿易の拡大について"
     "意見を交わした。両首脳は戦略的パートナーシップを強調した。")),
    ("普京與習近平在北京會晤",
     "俄羅斯總統普京抵達北京，與中國國家主席習近平舉行會談，雙方簽署多項能源與貿易合作協議。"),
])
def test_relations_in_other_languages_and_scripts(title: str, text: str) -> None:
    relevance = score_relevance(title, text, MODEL)
    assert relevance.relevant, relevance


def test_members_of_a_bloc_are_not_relations() -> None:
    text = ("Leaders of the BRICS group gather in Johannesburg this week. The bloc of Brazil, "
            "Russia, India, China and South Africa will discuss admitting new members.\n\n"
            "Argentina, Egypt and Iran have applied to join the BRICS. Summit hosts said the "
            "G20 and the UN should be reformed.")
    assert not score_relevance("BRICS weighs expansion at Johannesburg summit", text,
                               MODEL).relevant


def test_travel_writing_is_not_relations() -> None:
    text = ("My adventure on the Trans-Siberian started in Moscow on a rainy morning. "
            "Our itinerary took us past Lake Baikal and into China, and the scenery was "
            "breathtaking.\n\nIn Beijing we spent three days sightseeing before the flight home.")
    assert not score_relevance("Moscow to Beijing by train", text, MODEL).relevant


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


def test_scripts_without_spaces_match_anywhere_and_traditional_chinese_reads_as_simplified(
) -> None:
    matcher = TermMatcher(["中国", "ロシア", "러시아", "BRICS", "rosyjsk*"])
    found = [m.term for m in matcher.find(
        "中國與ロシアの首脳 러시아와 BRICS首脳会議 Rosyjskie władze")]
    assert found == ["中国", "ロシア", "러시아", "BRICS", "rosyjsk*"]


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
    assert "in_lists:1" in relevance.reasons
    assert "missing_side:russia,china" in relevance.reasons


@pytest.mark.parametrize("sentence", [
    ("Washington weighs sanctions on Chinese firms that help Russia in its war in Ukraine, "
     "officials in the United States said."),
    "美国正考虑制裁协助俄罗斯攻打乌克兰的中国企业，这将是美方首次把责任归咎到北京身上。",
])
def test_places_named_far_apart_are_not_a_list(sentence: str) -> None:
    relevance = score_relevance("", sentence, MODEL)
    assert not any(reason.startswith("in_lists") for reason in relevance.reasons)
    assert not any(reason.startswith("missing_side") for reason in relevance.reasons)


def test_a_language_the_term_lists_do_not_cover_is_said_so() -> None:
    relevance = score_relevance("Urusi na China zasaini makubaliano",
                                "Urusi na China zimesaini makubaliano ya gesi mjini Moscow.",
                                MODEL, language="sw")
    assert "language_not_covered:sw" in relevance.reasons
    covered = score_relevance("Putin and Xi sign gas deal", "Russia and China signed it.",
                              MODEL, language="en")
    assert not any(r.startswith("language_not_covered") for r in covered.reasons)


def test_a_news_outlet_credited_for_a_report_names_no_side() -> None:
    # a Chinese broadcaster's war report: its credit line is the only Chinese name in it
    text = ("央视网消息（新闻联播）：俄罗斯国防部12日称，俄军在多个方向打击乌军人员和武器装备。"
            "乌克兰方面称，乌军击退了俄军的多次进攻。")
    relevance = score_relevance("俄称在多个方向发起进攻", text, MODEL)
    assert not relevance.relevant, relevance
    assert "missing_side:china" in relevance.reasons
    # ...and the same outlet's report of a meeting of the two sides is kept
    meeting = score_relevance(
        "中俄外长举行会谈",
        "央视网消息（新闻联播）：中国外交部长王毅12日在北京同俄罗斯外长拉夫罗夫举行会谈。"
        "双方表示将深化中俄全面战略协作，扩大能源和贸易合作。", MODEL)
    assert meeting.relevant, meeting


@pytest.mark.parametrize(("title", "text"), [
    # Belarus is written with Russia's name in it
    ("习近平会见白俄罗斯总统",
     ("国家主席习近平12日在北京会见来访的白俄罗斯总统卢卡申科。习近平表示，中国和白俄罗斯是全天候"
     "全面战略伙伴，双方要扩大经贸、投资和能源合作。卢卡申科说，白方愿同中方深化合作。")),
    # "击中" (to hit) before "俄" is not "中俄"; the report names no Chinese side
    ("乌军称击中俄境内目标",
     ("乌克兰空军12日称，乌军无人机击中俄境内一处机场和燃料库。俄罗斯国防部则表示，防空部队拦截了"
     "多架无人机。双方均未公布伤亡情况。")),
    # "发展中国家" is developing countries, not China
    ("俄方称将向非洲运送化肥",
     ("俄罗斯农业部12日表示，俄方准备向多个发展中国家免费运送滞留在欧洲港口的化肥和粮食。"
      "俄方称，制裁使部分货物无法离港。")),
], ids=["belarus", "hits-russian-soil", "developing-countries"])
def test_words_holding_a_side_name_do_not_name_it(title: str, text: str) -> None:
    relevance = score_relevance(title, text, MODEL)
    assert not relevance.relevant, relevance
    assert not any(reason.startswith("joint:") for reason in relevance.reasons), relevance


def test_two_rivals_of_a_third_named_together_are_not_relations() -> None:
    # "Russia and China" mostly pairs two rivals of a third: here each is a threat the Pentagon
    # budgets for, and nothing passes between them
    relevance = score_relevance(
        "Pentagon asks for more to defend its satellites",
        "The Pentagon asked Congress on Monday for eleven billion dollars to protect its "
        "satellites, citing weapons that Russia and China have tested in orbit.\n\n"
        "The request would pay for two new launch sites in Florida and for more than 300 small "
        "satellites by 2030. Officials said Russia and China could blind the few large "
        "satellites the military relies on today.\n\n"
        "Lawmakers from both parties backed the plan at a hearing on Tuesday. Some asked why "
        "the earlier programme ran three years late and two billion dollars over budget.\n\n"
        "The Space Force said contracts would go to several firms to keep costs down. Its chief "
        "told the committee that the first launches could come within eighteen months.\n\n"
        "The committee will vote next week. The Senate has yet to set a date.",
        MODEL)
    assert not relevance.relevant, relevance
    assert not any(r.startswith(("joint:", "people:")) for r in relevance.reasons)


def test_a_person_of_each_side_in_one_sentence_names_them_together() -> None:
    # the meeting leads an article that is otherwise about the president's schedule at home
    relevance = score_relevance(
        "Kremlin sets out the president's autumn",
        "Vladimir Putin received Wang Yi at the Kremlin on Tuesday to prepare his visit to "
        "Beijing.\n\n"
        "The Kremlin said the president would also travel to Kazakhstan and Uzbekistan in "
        "October. Officials expect agreements on grain transit there and on a new rail line "
        "through the steppe.\n\n"
        "Dmitry Peskov told reporters that the schedule was not final. The president will "
        "address a forum in Vladivostok in September and meet regional governors in Kazan.\n\n"
        "In November he is due to chair the State Council, which will discuss the budget for "
        "roads. Governors have asked for more money to repair bridges after the spring floods. "
        "The finance ministry said it would present its plan in early October.",
        MODEL)
    assert relevance.relevant, relevance
    assert "people:Vladimir Putin+Wang Yi" in relevance.reasons
    # at a bloc's meeting, the leaders of its members meet as members
    bloc = score_relevance(
        "BRICS summit opens", "Xi Jinping attended the banquet Vladimir Putin gave for the "
        "leaders of the BRICS countries in Kazan.", MODEL)
    assert not any(r.startswith("people:") for r in bloc.reasons), bloc


@pytest.mark.parametrize(("title", "text"), [
    ("Lawrow in Peking",
     ("Der Kreml-Chef schickt seinen Außenminister Sergej Lawrow nach Peking. Lawrow trifft "
      "dort den chinesischen Außenminister Wang Yi.")),
    ("Le chef de la diplomatie russe à Pékin",
     ("Le chef de la diplomatie russe, Sergueï Lavrov, est arrivé à Pékin pour des entretiens "
      "avec Wang Yi.")),
    ("La Cina e la Russia",
     "Il sondaggio mostra che la Cina resta il primo partner commerciale della Russia."),
    ("王毅访俄", "王毅此次莫斯科之旅是中俄外长今年第三次会晤。"),
], ids=["de-chef", "fr-chef", "it-mostra", "zh-journey"])
def test_a_negative_term_of_one_language_is_no_cue_in_another(title: str, text: str) -> None:
    # every language's terms are looked for in every text: "chef" (cooking) is a head in
    # French and German, "mostra" (an exhibition) means "shows", Japanese 旅 is in 之旅
    relevance = score_relevance(title, text, MODEL)
    assert not any(r.startswith("negative:") for r in relevance.reasons), relevance

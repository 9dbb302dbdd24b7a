"""`newsroom search` in English, Russian and Chinese, on the real node with the product's
mapping: inflected forms match, Chinese words are words, phrases keep their order, `--lang`
restricts, and the matched words come back highlighted."""

from __future__ import annotations

import json

import pytest
from elasticsearch import Elasticsearch

from pipeline.search import MARK, search_articles
from pipeline.settings import Settings

# Our own short texts, one idea each; ids say what they hold.
ARTICLES = {
    "en-pipeline": ("en", "Gas pipeline talks resume",
                    "Moscow and Beijing resumed talks on the gas pipeline through Mongolia."),
    "en-pipelines": ("en", "Two pipelines, one market",
                     "Both pipelines now run at full capacity, the operator said."),
    "en-gas-later": ("en", "Pipeline operators and gas",
                     "The pipeline company said prices for gas would rise in spring."),
    "en-summit": ("en", "Leaders meet in Kazan",
                  "The summit ended with a joint statement on trade in national currencies."),
    "ru-putin-nom": ("ru", "Путин провёл переговоры",
                     "Путин провёл переговоры с председателем КНР в Кремле."),
    "ru-putin-gen": ("ru", "Заявление по итогам визита",
                     "В пресс-службе Кремля привели слова Путина о поставках газа."),
    "ru-putin-ins": ("ru", "Встреча в Пекине",
                     "Председатель КНР встретился с Путиным и обсудил торговлю."),
    "ru-other": ("ru", "Урожай сои вырос",
                 "Аграрии Приамурья собрали рекордный урожай сои для экспорта."),
    "zh-putin": ("zh", "普京会见中方代表团", "俄罗斯总统普京在莫斯科会见了中国代表团。"),
    "zh-beijing": ("zh", "北京举行能源论坛", "能源论坛在北京举行，多国企业参加。"),
    "zh-gas": ("zh", "天然气管道输气量创新高", "中俄东线天然气管道的年输气量创下新高。"),
    "zh-route": ("zh", "北极航线货运量增加", "今年经北方海航道运往中国的货物增加。"),
    "zh-trade": ("zh", "边境口岸繁忙", "中俄进出口贸易继续增长。"),
}


@pytest.fixture
def corpus(es: Elasticsearch, fresh_settings: Settings) -> str:
    for doc_id, (language, title, text) in ARTICLES.items():
        es.index(index=fresh_settings.index_alias, id=doc_id,
                 document={"url": f"https://example.org/{doc_id}", "language": language,
                           "title": title, "text": text})
    es.indices.refresh(index=fresh_settings.index_alias)
    return fresh_settings.index_alias


def found(es: Elasticsearch, alias: str, query: str, **options: object) -> set[str]:
    return {hit["id"] for hit in search_articles(es, alias, query, **options)["hits"]}


@pytest.mark.parametrize("form", ["Путин", "Путина", "Путину", "Путиным"])
def test_any_case_form_of_a_russian_name_finds_every_form(
        es: Elasticsearch, corpus: str, form: str) -> None:
    assert found(es, corpus, form) == {"ru-putin-nom", "ru-putin-gen", "ru-putin-ins"}


@pytest.mark.parametrize("word", ["pipeline", "pipelines", "PIPELINES"])
def test_english_singular_and_plural_find_each_other(es: Elasticsearch, corpus: str,
                                                     word: str) -> None:
    assert found(es, corpus, word) == {"en-pipeline", "en-pipelines", "en-gas-later"}


def test_a_chinese_name_is_a_word_not_its_characters(es: Elasticsearch, corpus: str) -> None:
    # 普京 (Putin) shares 京 with 北京 (Beijing): the Beijing article must not match
    assert found(es, corpus, "普京") == {"zh-putin"}
    assert found(es, corpus, "北京") == {"zh-beijing"}
    assert found(es, corpus, "天然气") == {"zh-gas"}


def test_a_chinese_word_is_found_however_its_context_segments_it(es: Elasticsearch,
                                                                 corpus: str) -> None:
    # the segmenter splits the query 北方海航道 as 北方|海航|道 but the sentence as 北方|海|航道,
    # and keeps 进出口 whole: the same run of characters still matches
    assert found(es, corpus, "北方海航道") == {"zh-route"}
    assert found(es, corpus, "出口") == {"zh-trade"}


def test_a_phrase_keeps_its_word_order(es: Elasticsearch, corpus: str) -> None:
    assert found(es, corpus, '"gas pipeline"') == {"en-pipeline"}
    assert found(es, corpus, "gas pipeline") == {"en-pipeline", "en-gas-later"}
    assert found(es, corpus, '"провёл переговоры"') == {"ru-putin-nom"}


def test_lang_restricts_to_one_language(es: Elasticsearch, corpus: str) -> None:
    assert found(es, corpus, "", lang="zh") == {"zh-putin", "zh-beijing", "zh-gas", "zh-route",
                                                "zh-trade"}
    assert found(es, corpus, "Путина", lang="en") == set()
    assert found(es, corpus, "Путина", lang="ru") == {"ru-putin-nom", "ru-putin-gen",
                                                      "ru-putin-ins"}


def test_a_query_without_fields_searches_every_language_as_kibanas_search_bar_does(
        es: Elasticsearch, corpus: str) -> None:
    """Kibana's search bar sends a free-text query with no field list: the index's
    `query.default_field` decides, and its language sub-fields analyse it per language."""
    def bar(query: str) -> set[str]:
        hits = es.search(index=corpus, size=20, query={"multi_match": {
            "query": query, "lenient": True}})["hits"]["hits"]
        return {hit["_id"] for hit in hits}

    assert bar("Путина") == {"ru-putin-nom", "ru-putin-gen", "ru-putin-ins"}
    assert bar("pipelines") >= {"en-pipeline", "en-pipelines", "en-gas-later"}
    assert bar("普京") == {"zh-putin"}


def test_hits_carry_highlighted_passages(es: Elasticsearch, corpus: str) -> None:
    hits = {hit["id"]: hit for hit in search_articles(es, corpus, "Путину")["hits"]}
    passage = " ".join(hits["ru-putin-ins"]["highlights"])
    assert f"{MARK[0]}Путиным{MARK[1]}" in passage
    chinese = search_articles(es, corpus, "普京")["hits"][0]["highlights"]
    assert any(f"{MARK[0]}普京{MARK[1]}" in text for text in chinese)


def test_the_cli_prints_passages_and_json(es: Elasticsearch, fresh_settings: Settings,
                                          corpus: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    monkeypatch.setenv("NEWSROOM_INDEX", corpus)
    assert main(["search", "pipelines", "--lang", "en", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {hit["id"] for hit in result["hits"]} == {"en-pipeline", "en-pipelines",
                                                     "en-gas-later"}
    assert all(hit["highlights"] for hit in result["hits"])
    assert main(["search", "普京"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 articles") and "*普京*" in out

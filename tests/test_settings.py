"""Configuration is data, validated at the edge: unknown keys and bad values are errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.gazetteer import Gazetteer
from pipeline.relevance import TopicModel
from pipeline.settings import CONFIG_DIR, ConfigError, Settings, load_feeds
from pipeline.urls import normalize_url, url_id
from tests.conftest import SAMPLE


def test_shipped_config_loads() -> None:
    assert load_feeds(CONFIG_DIR / "feeds.yaml")
    assert load_feeds(SAMPLE / "feeds.yaml")
    gazetteer = Gazetteer.load(CONFIG_DIR / "entities.yaml")
    TopicModel.load(CONFIG_DIR / "topic.yaml", gazetteer)


def test_settings_from_environment() -> None:
    settings = Settings.load({"ELASTICSEARCH_URL": "http://es:9200", "NEWSROOM_INDEX": "x",
                              "NEWSROOM_ALLOW_NETS": "127.0.0.0/8, 10.1.0.0/16",
                              "ELASTICSEARCH_PASSWORD": "hunter2"})
    assert settings.elasticsearch_url == "http://es:9200"
    assert settings.ledger_index == "x-ledger" and settings.feed_state_index == "x-feeds"
    assert [str(n) for n in settings.http.allow_nets] == ["127.0.0.0/8", "10.1.0.0/16"]
    assert "hunter2" not in repr(settings)
    assert Settings.load({}).http.allow_nets == ()


def test_bad_allow_nets_is_an_error() -> None:
    with pytest.raises(ConfigError, match="NEWSROOM_ALLOW_NETS"):
        Settings.load({"NEWSROOM_ALLOW_NETS": "localhost"})


@pytest.mark.parametrize(("text", "message"), [
    ("feeds:\n  - name: A\n    url: http://a/\n    colour: red\n", "unknown keys"),
    ("feeds:\n  - name: A\n", "missing keys"),
    ("feeds: []\n", "non-empty list"),
    ("feeds:\n  - {name: A, url: 'http://a/'}\n  - {name: A, url: 'http://b/'}\n", "duplicate"),
    ("feeds: [\n", "not valid YAML"),
    ("feeds:\n  - {name: A, url: 'http://a/', republisher: 'yes'}\n", "republisher must be"),
])
def test_bad_feeds_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_feeds(path)


def test_a_reading_timeout_of_no_time_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    settings_file = config / "newsroom.yaml"
    settings_file.write_text(settings_file.read_text().replace(
        "reading_timeout_s: 30", "reading_timeout_s: 0"))
    with pytest.raises(ConfigError, match="reading_timeout_s must be above 0"):
        Settings.load({"NEWSROOM_CONFIG_DIR": str(config)})
    settings_file.write_text(settings_file.read_text().replace(
        "reading_timeout_s: 0", "reading_timeout_s: 12.5"))
    assert Settings.load({"NEWSROOM_CONFIG_DIR": str(config)}).reading_timeout_s == 12.5


def test_gazetteer_rejects_an_alias_naming_two_entities(tmp_path: Path) -> None:
    path = tmp_path / "entities.yaml"
    path.write_text("entities:\n"
                    "  - {name: A, type: person, aliases: {en: [Same]}}\n"
                    "  - {name: B, type: person, aliases: {en: [Same]}}\n")
    with pytest.raises(ConfigError, match="Same"):
        Gazetteer.load(path)


def test_url_normalisation() -> None:
    assert (normalize_url("HTTP://News.Example.COM:80/a/b.html?utm_source=rss&id=3&fbclid=x#c")
            == "http://news.example.com/a/b.html?id=3")
    assert normalize_url("https://example.com") == "https://example.com/"
    assert normalize_url("https://example.com/world/story/") == "https://example.com/world/story"
    for amp in ("https://example.com/amp/world/story.html",
                "https://amp.example.com/world/story.html",
                "https://example.com/world/story.amp.html",
                "https://example.com/world/story.html?amp=1",
                "https://example.com/world/story.html?outputType=amp"):
        assert normalize_url(amp) == "https://example.com/world/story.html", amp
    assert normalize_url("https://example.com/world/power-amp") == \
        "https://example.com/world/power-amp"
    assert url_id("https://example.com/a?utm_medium=feed") == url_id("https://EXAMPLE.com/a")
    assert url_id("https://example.com/a") != url_id("https://example.com/b")


def test_compose_runs_the_same_elasticsearch_as_the_local_node() -> None:
    import yaml

    from pipeline.localnode import ES_VERSION
    from pipeline.settings import PROJECT_ROOT

    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images["elasticsearch"].endswith(f":{ES_VERSION}")
    assert images["kibana"].endswith(f":{ES_VERSION}")
    es_env = compose["services"]["elasticsearch"]["environment"]
    assert "xpack.security.enabled=true" in es_env  # security stays on outside the laptop node
    assert not any("PASSWORD=" in item and "${" not in item  # no password in the file
                   for service in compose["services"].values()
                   for item in service.get("environment", []))

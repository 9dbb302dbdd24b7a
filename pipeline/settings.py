"""Settings: configuration files and the environment, read once at the edge and validated."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A configuration file or environment variable is missing, malformed or has unknown keys."""


@dataclass(frozen=True)
class Feed:
    """One entry of a feeds file (see DESIGN.md, 'Configuration is data')."""

    name: str
    url: str
    language: str | None = None
    sitemap: str | None = None
    tags: tuple[str, ...] = ()
    source: str | None = None  # the outlet, when it has several feeds; default: the name

    @property
    def source_name(self) -> str:
        return self.source or self.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "source": self.source,
            "language": self.language,
            "sitemap": self.sitemap,
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Feed:
        _check_keys(raw, required={"name", "url"},
                    optional={"language", "sitemap", "tags", "source"}, where="feed")
        tags = raw.get("tags") or ()
        if not isinstance(tags, (list, tuple)):
            raise ConfigError(f"feed {raw['name']!r}: tags must be a list")
        return cls(
            name=str(raw["name"]),
            url=str(raw["url"]),
            language=raw.get("language"),
            sitemap=raw.get("sitemap"),
            tags=tuple(str(t) for t in tags),
            source=raw.get("source"),
        )


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str = "newsroom/0.1 (+https://example.invalid/newsroom)"
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    per_host_concurrency: int = 2
    per_host_delay: float = 0.0  # seconds between request starts on one host
    respect_robots: bool = True
    allow_nets: tuple[IPNetwork, ...] = ()

    @property
    def robots_agent(self) -> str:
        """The product token robots.txt rules are matched against ("newsroom")."""
        return self.user_agent.split("/", 1)[0].strip() or "*"


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, built by `Settings.load()` from config/ and the environment."""

    elasticsearch_url: str = "http://localhost:9200"
    elasticsearch_username: str | None = field(default=None, repr=False)
    elasticsearch_password: str | None = field(default=None, repr=False)
    elasticsearch_api_key: str | None = field(default=None, repr=False)
    index_alias: str = "news-articles"
    feeds_file: Path = CONFIG_DIR / "feeds.yaml"
    config_dir: Path = CONFIG_DIR
    http: HttpSettings = HttpSettings()
    max_attempts: int = 3

    @property
    def ledger_index(self) -> str:
        return f"{self.index_alias}-ledger"

    @property
    def feed_state_index(self) -> str:
        return f"{self.index_alias}-feeds"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read config/newsroom.yaml and the NEWSROOM_* / ELASTICSEARCH_* environment."""
        env = os.environ if environ is None else environ
        config_dir = Path(env.get("NEWSROOM_CONFIG_DIR", str(CONFIG_DIR)))
        raw = load_yaml(config_dir / "newsroom.yaml")
        _check_keys(raw, required=set(), optional={"http", "ingest"}, where="newsroom.yaml")
        http_raw = raw.get("http") or {}
        _check_keys(http_raw, required=set(),
                    optional={"user_agent", "connect_timeout", "read_timeout", "max_bytes",
                              "max_redirects", "per_host_concurrency", "per_host_delay",
                              "respect_robots"}, where="newsroom.yaml http")
        ingest_raw = raw.get("ingest") or {}
        _check_keys(ingest_raw, required=set(), optional={"max_attempts"},
                    where="newsroom.yaml ingest")
        http = HttpSettings(
            **{k: http_raw[k] for k in http_raw},
            allow_nets=parse_nets(env.get("NEWSROOM_ALLOW_NETS", "")),
        )
        if env.get("NEWSROOM_HOST_DELAY"):
            try:
                http = replace(http, per_host_delay=float(env["NEWSROOM_HOST_DELAY"]))
            except ValueError as exc:
                raise ConfigError("NEWSROOM_HOST_DELAY must be a number of seconds") from exc
        return cls(
            elasticsearch_url=env.get("ELASTICSEARCH_URL", cls.elasticsearch_url),
            elasticsearch_username=env.get("ELASTICSEARCH_USERNAME") or None,
            elasticsearch_password=env.get("ELASTICSEARCH_PASSWORD") or None,
            elasticsearch_api_key=env.get("ELASTICSEARCH_API_KEY") or None,
            index_alias=env.get("NEWSROOM_INDEX", cls.index_alias),
            feeds_file=Path(env.get("NEWSROOM_FEEDS", str(config_dir / "feeds.yaml"))),
            config_dir=config_dir,
            http=http,
            max_attempts=int(ingest_raw.get("max_attempts", cls.max_attempts)),
        )


def parse_nets(value: str) -> tuple[IPNetwork, ...]:
    """Parse NEWSROOM_ALLOW_NETS: comma- or space-separated CIDR ranges."""
    nets = []
    for part in value.replace(",", " ").split():
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"NEWSROOM_ALLOW_NETS: {part!r} is not an address range") from exc
    return tuple(nets)


def load_feeds(path: Path) -> list[Feed]:
    """Load and validate a feeds file; unknown keys and duplicate names are errors."""
    raw = load_yaml(path)
    _check_keys(raw, required={"feeds"}, optional=set(), where=str(path))
    entries = raw["feeds"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: 'feeds' must be a non-empty list")
    feeds = [Feed.from_dict(entry) for entry in entries]
    names = [feed.name for feed in feeds]
    dupes = sorted({name for name in names if names.count(name) > 1})
    if dupes:
        raise ConfigError(f"{path}: duplicate feed names {dupes}")
    return feeds


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _check_keys(raw: Mapping[str, Any], *, required: set[str], optional: set[str],
                where: str) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    missing = required - raw.keys()
    unknown = raw.keys() - required - optional
    if missing:
        raise ConfigError(f"{where}: missing keys {sorted(missing)}")
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")

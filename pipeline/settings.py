"""Settings: configuration files and the environment, read once at the edge and validated."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A configuration file or environment variable is missing, malformed or has unknown keys."""


@dataclass(frozen=True)
class Feed:
    """One entry of a feeds file (see docs/architecture.md, 'Configuration')."""

    name: str
    url: str
    language: str | None = None
    sitemaps: tuple[str, ...] = ()  # XML sitemaps or sitemap indexes (`sitemap:` in the file)
    paged_feed: str | None = None  # an archive feed URL with `{page}` for the page number
    tags: tuple[str, ...] = ()
    source: str | None = None  # the outlet, when it has several feeds; default: the name
    republisher: bool = False  # an aggregator or mirror: its pages never pass for an original

    @property
    def source_name(self) -> str:
        return self.source or self.name

    @property
    def has_archive(self) -> bool:
        """Whether backfills can list this feed's past articles."""
        return bool(self.sitemaps or self.paged_feed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "source": self.source,
            "language": self.language,
            "sitemap": list(self.sitemaps),
            "paged_feed": self.paged_feed,
            "tags": list(self.tags),
            "republisher": self.republisher,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Feed:
        _check_keys(raw, required={"name", "url"},
                    optional={"language", "sitemap", "paged_feed", "tags", "source",
                              "republisher"},
                    where="feed")
        name = raw["name"]
        tags = raw.get("tags") or ()
        if not isinstance(tags, (list, tuple)):
            raise ConfigError(f"feed {name!r}: tags must be a list")
        sitemaps = raw.get("sitemap") or ()
        if isinstance(sitemaps, str):
            sitemaps = (sitemaps,)
        if not isinstance(sitemaps, (list, tuple)):
            raise ConfigError(f"feed {name!r}: sitemap must be a URL or a list of URLs")
        paged = raw.get("paged_feed")
        if paged is not None and "{page}" not in str(paged):
            raise ConfigError(f"feed {name!r}: paged_feed must contain {{page}}")
        republisher = raw.get("republisher", False)
        if not isinstance(republisher, bool):
            raise ConfigError(f"feed {name!r}: republisher must be true or false")
        return cls(
            name=str(name),
            url=str(raw["url"]),
            language=raw.get("language"),
            sitemaps=tuple(str(s) for s in sitemaps),
            paged_feed=str(paged) if paged is not None else None,
            tags=tuple(str(t) for t in tags),
            source=raw.get("source"),
            republisher=republisher,
        )


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str = "newsroom/0.1 (+https://example.invalid/newsroom)"
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0  # a whole response, body included (a body that drips slowly)
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    per_host_concurrency: int = 2
    per_host_delay: float = 0.0  # seconds between request starts on one host
    max_pause: float = 30.0  # a Retry-After pause a run waits out; longer: the host's items wait
    host_strikes: int = 2  # timeouts / refused connections in a row before a host rests
    host_rest: float = 600.0  # seconds a host that stopped answering is left alone (< a poll)
    respect_robots: bool = True
    allow_nets: tuple[IPNetwork, ...] = ()

    @property
    def longest_request(self) -> float:
        """Seconds one request may hold its place at a host: `total_timeout` bounds the request
        (connecting and every read and write wait no longer than what is left of it); the
        connect and read timeouts on top are a margin for what its slot does around it (the
        writes of the host's record, on a slow Elasticsearch)."""
        return self.connect_timeout + self.total_timeout + self.read_timeout

    @property
    def robots_agent(self) -> str:
        """The product token robots.txt rules are matched against ("newsroom")."""
        return self.user_agent.split("/", 1)[0].strip() or "*"


@dataclass(frozen=True)
class ArchiveSettings:
    """How backfills read sources' archive listings (`archive:` in newsroom.yaml)."""

    lastmod_grace_days: float = 7.0  # a page listed by lastmod only may be modified this late
    max_sitemaps: int = 50  # sitemap files read per source and day, indexes included
    max_pages: int = 20  # pages of a paged feed read per source and day


@dataclass(frozen=True)
class PollSettings:
    """Adaptive polling (`polling:` in newsroom.yaml): a feed that keeps failing is polled
    again after `backoff_floor_s`, doubling per consecutive failure up to `backoff_ceiling_s`."""

    backoff_floor_s: int = 900
    backoff_ceiling_s: int = 21600


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, built by `Settings.load()` from config/ and the environment."""

    elasticsearch_url: str = "http://localhost:9200"
    elasticsearch_username: str | None = field(default=None, repr=False)
    elasticsearch_password: str | None = field(default=None, repr=False)
    elasticsearch_api_key: str | None = field(default=None, repr=False)
    elasticsearch_ca_certs: Path | None = None  # the CA that signed the cluster's certificate
    index_alias: str = "news-articles"
    feeds_file: Path = CONFIG_DIR / "feeds.yaml"
    config_dir: Path = CONFIG_DIR
    http: HttpSettings = HttpSettings()
    archive: ArchiveSettings = ArchiveSettings()
    polling: PollSettings = PollSettings()
    max_attempts: int = 3
    batch_size: int = 100
    flush_after_s: float = 120.0
    fetch_workers: int = 4  # a feed's pages fetched at once (the per-host limits still hold)
    feed_workers: int = 64  # feeds one process polls at once (`newsroom ingest`, a DAG task)
    cpu_workers: int = 0  # processes that read and enrich pages (0: one per core)
    reading_timeout_s: float = 30.0  # a page's reading (extraction, relevance) stopped after
    ledger_retention_days: int = 365
    reindex_lease_s: float = 300.0
    replicas: int = 0  # copies of every shard on other nodes (elasticsearch.replicas)

    @property
    def elasticsearch_display_url(self) -> str:
        """The cluster URL without any credentials written into it, for messages and logs."""
        parts = urlsplit(self.elasticsearch_url)
        if not (parts.username or parts.password):
            return self.elasticsearch_url
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=f"***@{netloc}"))

    @property
    def ledger_index(self) -> str:
        return f"{self.index_alias}-ledger"

    @property
    def feed_state_index(self) -> str:
        return f"{self.index_alias}-feeds"

    @property
    def feed_health_index(self) -> str:
        return f"{self.index_alias}-feed-health"

    @property
    def quarantine_index(self) -> str:
        return f"{self.index_alias}-quarantine"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, *,
             maintenance: bool = False) -> Settings:
        """Read config/newsroom.yaml and the NEWSROOM_* / ELASTICSEARCH_* environment.
        `maintenance`: for setup and maintenance work (indices, reindex, pruning), which under
        Airflow connects with the connection NEWSROOM_ES_MAINTENANCE_CONN_ID names when set;
        the ingest role may not create or delete indices."""
        env = os.environ if environ is None else environ
        config_dir = Path(env.get("NEWSROOM_CONFIG_DIR", str(CONFIG_DIR)))
        raw = load_yaml(config_dir / "newsroom.yaml")
        _check_keys(raw, required=set(),
                    optional={"http", "ingest", "archive", "polling", "maintenance",
                              "elasticsearch"},
                    where="newsroom.yaml")
        http_raw = raw.get("http") or {}
        _check_keys(http_raw, required=set(),
                    optional={"user_agent", "connect_timeout", "read_timeout", "total_timeout",
                              "max_bytes",
                              "max_redirects", "per_host_concurrency", "per_host_delay",
                              "max_pause", "host_strikes", "host_rest", "respect_robots"},
                    where="newsroom.yaml http")
        ingest_raw = raw.get("ingest") or {}
        _check_keys(ingest_raw, required=set(),
                    optional={"max_attempts", "batch_size", "flush_after_s",
                              "ledger_retention_days", "fetch_workers", "feed_workers",
                              "cpu_workers", "reading_timeout_s"},
                    where="newsroom.yaml ingest")
        archive_raw = raw.get("archive") or {}
        _check_keys(archive_raw, required=set(), optional=set(ArchiveSettings.__dataclass_fields__),
                    where="newsroom.yaml archive")
        es_raw = raw.get("elasticsearch") or {}
        _check_keys(es_raw, required=set(), optional={"replicas"},
                    where="newsroom.yaml elasticsearch")
        try:
            replicas = int(env.get("NEWSROOM_REPLICAS") or es_raw.get("replicas", 0))
        except ValueError as exc:
            raise ConfigError("NEWSROOM_REPLICAS must be a whole number") from exc
        if replicas < 0:
            raise ConfigError("elasticsearch.replicas (NEWSROOM_REPLICAS) must be 0 or more")
        maintenance_raw = raw.get("maintenance") or {}
        _check_keys(maintenance_raw, required=set(), optional={"reindex_lease_s"},
                    where="newsroom.yaml maintenance")
        polling_raw = raw.get("polling") or {}
        _check_keys(polling_raw, required=set(), optional=set(PollSettings.__dataclass_fields__),
                    where="newsroom.yaml polling")
        polling = PollSettings(**polling_raw)
        if not 0 < polling.backoff_floor_s <= polling.backoff_ceiling_s:
            raise ConfigError("newsroom.yaml polling: need 0 < backoff_floor_s <= "
                              "backoff_ceiling_s")
        reading_timeout_s = float(ingest_raw.get("reading_timeout_s", cls.reading_timeout_s))
        if reading_timeout_s <= 0:  # every page would fail at once
            raise ConfigError("newsroom.yaml ingest: reading_timeout_s must be above 0")
        http = HttpSettings(
            **{k: http_raw[k] for k in http_raw},
            allow_nets=parse_nets(env.get("NEWSROOM_ALLOW_NETS", "")),
        )
        if env.get("NEWSROOM_HOST_DELAY"):
            try:
                http = replace(http, per_host_delay=float(env["NEWSROOM_HOST_DELAY"]))
            except ValueError as exc:
                raise ConfigError("NEWSROOM_HOST_DELAY must be a number of seconds") from exc
        url, username, password, api_key, ca_certs = (
            env.get("ELASTICSEARCH_URL", cls.elasticsearch_url),
            env.get("ELASTICSEARCH_USERNAME") or None,
            env.get("ELASTICSEARCH_PASSWORD") or None,
            env.get("ELASTICSEARCH_API_KEY") or None,
            env.get("ELASTICSEARCH_CA_CERTS") or None,
        )
        conn_id = env.get("NEWSROOM_ES_CONN_ID")
        if maintenance and env.get("NEWSROOM_ES_MAINTENANCE_CONN_ID"):
            conn_id = env["NEWSROOM_ES_MAINTENANCE_CONN_ID"]
        if conn_id:
            url, username, password, api_key, ca_certs = airflow_connection(conn_id)
        return cls(
            elasticsearch_url=url,
            elasticsearch_username=username,
            elasticsearch_password=password,
            elasticsearch_api_key=api_key,
            elasticsearch_ca_certs=Path(ca_certs) if ca_certs else None,
            index_alias=env.get("NEWSROOM_INDEX", cls.index_alias),
            feeds_file=Path(env.get("NEWSROOM_FEEDS", str(config_dir / "feeds.yaml"))),
            config_dir=config_dir,
            http=http,
            archive=ArchiveSettings(**archive_raw),
            polling=polling,
            max_attempts=int(ingest_raw.get("max_attempts", cls.max_attempts)),
            batch_size=int(ingest_raw.get("batch_size", cls.batch_size)),
            flush_after_s=float(ingest_raw.get("flush_after_s", cls.flush_after_s)),
            fetch_workers=max(1, int(ingest_raw.get("fetch_workers", cls.fetch_workers))),
            feed_workers=max(1, int(ingest_raw.get("feed_workers", cls.feed_workers))),
            cpu_workers=max(0, int(ingest_raw.get("cpu_workers", cls.cpu_workers))),
            reading_timeout_s=reading_timeout_s,
            ledger_retention_days=int(ingest_raw.get("ledger_retention_days",
                                                     cls.ledger_retention_days)),
            reindex_lease_s=float(maintenance_raw.get("reindex_lease_s", cls.reindex_lease_s)),
            replicas=replicas,
        )


def airflow_connection(conn_id: str
                       ) -> tuple[str, str | None, str | None, str | None, str | None]:
    """URL, user, password, API key and CA file of the Elasticsearch cluster from an Airflow
    connection (how the docker-compose stack passes them): host, port, schema `http`/`https`,
    login and password, or an `api_key` in the extras, and `ca_certs` in the extras for a
    cluster whose certificate a private CA signed. Read only where NEWSROOM_ES_CONN_ID (or, for
    maintenance, NEWSROOM_ES_MAINTENANCE_CONN_ID) names one."""
    try:
        from airflow.sdk import Connection
    except ImportError as exc:
        raise ConfigError("NEWSROOM_ES_CONN_ID is set but Airflow is not installed") from exc
    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # the SDK raises its own types for a missing connection
        raise ConfigError(f"Airflow connection {conn_id!r} cannot be read: "
                          f"{type(exc).__name__}") from exc
    if not conn.host:
        raise ConfigError(f"Airflow connection {conn_id!r} has no host")
    scheme = conn.schema if conn.schema in ("http", "https") else "http"
    url = f"{scheme}://{conn.host}:{conn.port or 9200}"
    extra = conn.extra_dejson or {}
    return (url, conn.login or None, conn.password or None, extra.get("api_key") or None,
            extra.get("ca_certs") or None)


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


# libyaml's safe loader where PyYAML was built with it (its wheels are): the gazetteer, the
# topic model and the cleaning rules took 0.9 s to read in pure Python, in every process and
# every worker that loads them, against 0.1 s
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_SAFE_LOADER)
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

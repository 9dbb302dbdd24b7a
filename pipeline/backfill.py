"""backfill: fill a past time window from the sources' archive listings, or from a list of
URLs.

The `news_backfill` DAG runs one day per run (its data interval) and maps over the sources;
`newsroom backfill` runs a whole range at once. Both call `Ingestor.ingest_archive`, so they
leave the same corpus, and neither indexes anything twice: the ledger skips settled items and
document ids are stable. `newsroom backfill --urls FILE` takes the pages a file lists instead
(`Ingestor.ingest_urls`), under the same window and the same guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from elasticsearch import Elasticsearch

from pipeline.archive import Window
from pipeline.ingest import Ingestor, summarize
from pipeline.progress import NO_PROGRESS, Progress
from pipeline.settings import ConfigError, Feed, Settings

MODES = ("poll", "sweep", "backfill")  # what `ingest.mode` records on documents and ledger


def run_mode(run_type: str) -> str:
    """What a `news_backfill` run records as `ingest.mode`: `sweep` for the schedule's own
    daily runs, `backfill` for Airflow backfills and manual runs."""
    return "sweep" if run_type.lower().endswith("scheduled") else "backfill"


def run_window(start: datetime | None, end: datetime | None,
               now: datetime | None = None) -> Window:
    """A run's data interval as a window; a manual run without one fills yesterday (UTC)."""
    if start is None or end is None or start >= end:
        return Window.day((now or datetime.now(UTC)) - timedelta(days=1))
    return Window(start, end)


def archive_sources(feeds: Iterable[Feed],
                    names: Iterable[str] | None = None) -> dict[str, list[Feed]]:
    """The feeds that declare archive listings, grouped by source name (all sources, or those
    in `names`; a name that is not such a source is a `ConfigError`)."""
    groups: dict[str, list[Feed]] = {}
    for feed in feeds:
        if feed.has_archive:
            groups.setdefault(feed.source_name, []).append(feed)
    wanted = list(names or [])
    unknown = sorted(set(wanted) - groups.keys())
    if unknown:
        raise ConfigError(f"no source with an archive listing is named {unknown}; "
                          f"sources with one: {sorted(groups)}")
    return {name: group for name, group in groups.items() if not wanted or name in wanted}


def days_window(first: date, last: date) -> Window:
    """The window covering the UTC days `first` to `last`, both included."""
    if last < first:
        raise ConfigError(f"--to {last} is before --from {first}")
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return Window(start, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1))


def read_urls(path: Path) -> list[str]:
    """The http(s) URLs a file lists, one a line (blank lines and `#` comments skipped), each
    once; a `ConfigError` naming the lines that are not such URLs."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the URL list {path}: {exc}") from exc
    urls: list[str] = []
    bad: list[str] = []
    for number, line in enumerate(lines, start=1):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            bad.append(f"line {number}: {url[:80]!r}")
        else:
            urls.append(url)
    if bad:
        raise ConfigError(f"{path}: not http(s) URLs: {'; '.join(bad[:5])}"
                          + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
    return list(dict.fromkeys(urls))


def backfill_urls(urls: list[str], settings: Settings, window: Window, run_id: str,
                  mode: str = "backfill", reprocess: bool = False, dry_run: bool = False,
                  es: Elasticsearch | None = None,
                  progress: Progress = NO_PROGRESS) -> dict[str, Any]:
    """The pages at `urls` published in `window`, through every stage; the run's summary."""
    with Ingestor(settings, es=es, progress=progress) as ingestor:
        report = ingestor.ingest_urls(urls, window, run_id, mode, reprocess=reprocess,
                                      dry_run=dry_run).as_dict()
    return {**summarize(run_id, [report]), "mode": mode, "window": {
        "start": window.start.isoformat(), "end": window.end.isoformat()}}


def backfill(feeds: Iterable[Feed], settings: Settings, window: Window, run_id: str,
             mode: str = "backfill", sources: Iterable[str] | None = None,
             reprocess: bool = False, dry_run: bool = False,
             es: Elasticsearch | None = None,
             progress: Progress = NO_PROGRESS) -> dict[str, Any]:
    """Every selected source's articles published in `window`, through every stage; the run's
    summary (one report per source)."""
    groups = archive_sources(feeds, sources)
    with Ingestor(settings, es=es, progress=progress) as ingestor:
        reports = [ingestor.ingest_archive(group, window, run_id, mode, reprocess=reprocess,
                                           dry_run=dry_run).as_dict()
                   for group in groups.values()]
    return {**summarize(run_id, reports), "mode": mode, "window": {
        "start": window.start.isoformat(), "end": window.end.isoformat()}}

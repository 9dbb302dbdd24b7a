"""The `newsroom` command line (the contract in docs/architecture.md): the same functions the
DAGs call.

Exit codes: 0 done (item and feed problems are in the report, not the exit code); 1 the run
could not happen (Elasticsearch unreachable, bad configuration, local node trouble); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, TransportError

from pipeline.backfill import archive_sources, backfill, backfill_urls, days_window, read_urls
from pipeline.extract import default_rules, extract_article
from pipeline.fetch import HttpClient
from pipeline.gazetteer import Gazetteer
from pipeline.health import FeedHealth
from pipeline.ingest import COUNTS, ingest
from pipeline.ledger import Ledger
from pipeline.localnode import LocalNode, LocalNodeError
from pipeline.maintenance import prune_ledger, reindex, replay_quarantine
from pipeline.progress import terminal_progress
from pipeline.provision import setup
from pipeline.records import ItemError, Page
from pipeline.reenrich import reenrich
from pipeline.relevance import TopicModel, score_relevance
from pipeline.search import MARK, search_articles
from pipeline.settings import ConfigError, Settings, load_feeds
from pipeline.store import StoreUnavailable, check_available, connect, open_store


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The client logs every failed attempt with a traceback; our own error line says it once.
    logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
    try:
        return int(args.handler(args))
    except (StoreUnavailable, ConfigError, LocalNodeError) as exc:
        print(f"newsroom: error: {exc}", file=sys.stderr)
        return 1
    except (ApiError, TransportError) as exc:
        print(f"newsroom: error: Elasticsearch failed during the run ({type(exc).__name__}: "
              f"{exc}); nothing unfinished was marked done, run again", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsroom", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("ingest", help="run the ingest pipeline once")
    p.add_argument("--feeds", type=Path, help="feeds file (default: NEWSROOM_FEEDS or "
                                              "config/feeds.yaml)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_ingest)

    p = commands.add_parser("backfill", help="ingest what the sources published in a past "
                                             "date range, from their archive listings")
    p.add_argument("--from", dest="first", type=_day, required=True, help="first day (UTC)")
    p.add_argument("--to", dest="last", type=_day, required=True, help="last day, included")
    listed = p.add_mutually_exclusive_group()
    listed.add_argument("--feeds", type=Path, help="feeds file (default: NEWSROOM_FEEDS or "
                                                   "config/feeds.yaml)")
    listed.add_argument("--urls", type=Path, help="a file of article URLs, one a line, to "
                                                  "take instead of the archive listings")
    p.add_argument("--source", action="append", dest="sources",
                   help="only this source (repeatable; default: every source with a listing)")
    p.add_argument("--reprocess", action="store_true",
                   help="fetch and index again what the ledger has settled")
    p.add_argument("--dry-run", action="store_true", help="list what would be fetched")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_backfill)

    p = commands.add_parser("feeds", help="each feed's health after its latest poll")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_feeds)

    p = commands.add_parser("extract", help="one page -> cleaned article fields")
    p.add_argument("path_or_url")
    p.add_argument("--url", help="the URL the page was published at (for a file)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_extract)

    p = commands.add_parser("search", help="search the indexed articles")
    p.add_argument("query", nargs="?", default="")
    p.add_argument("--entity", help="only articles naming this entity (any alias)")
    p.add_argument("--since", type=_date, help="published on or after this date (YYYY-MM-DD)")
    p.add_argument("--lang", help="only articles in this language (en, ru, zh, or another code)")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_search)

    p = commands.add_parser("ledger", help="outcomes by count for a run (default: the latest)")
    p.add_argument("--run", help="run id (default: the latest run)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_ledger)

    p = commands.add_parser("reenrich", help="re-link the entities of the whole corpus")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--max-batches", type=int, help="stop after this many (a rerun goes on)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_reenrich)

    p = commands.add_parser("reindex", help="move the corpus to the mapping file's version "
                                            "(copy, then swap the alias)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_reindex)

    p = commands.add_parser("quarantine", help="the documents Elasticsearch refused for good")
    quarantine = p.add_subparsers(dest="quarantine_action", required=True)
    q = quarantine.add_parser("replay", help="index them again, once the mapping takes them")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=_replay_quarantine)

    p = commands.add_parser("prune-ledger", help="delete settled ledger records older than "
                                                 "the retention")
    p.add_argument("--days", type=int, help="default: ingest.ledger_retention_days")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_prune_ledger)

    p = commands.add_parser("setup", help="indices, roles and users (security on), Kibana "
                                          "saved objects (KIBANA_URL set)")
    p.set_defaults(handler=_setup)

    p = commands.add_parser("es", help="the local development Elasticsearch node")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(handler=_es)
    return parser


def _ingest(args: argparse.Namespace) -> int:
    settings = Settings.load()
    feeds = load_feeds(args.feeds or settings.feeds_file)
    es = open_store(settings)
    run_id = f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    with terminal_progress("ingest", "page") as progress:
        report = ingest(feeds, settings, run_id, es=es, progress=progress)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"run {run_id}: {_counts(report)}")
        for feed in report["feeds"]:
            print(f"  {feed['name']}: {feed['status']}, {feed['indexed']} indexed")
            for error in feed["errors"]:
                print(f"    {error['reason']}: {error['url']} ({error['error']})")
    return 0


def _counts(report: dict[str, Any]) -> str:
    return " ".join(f"{key}={report[key]}" for key in COUNTS)


def _backfill(args: argparse.Namespace) -> int:
    settings = Settings.load()
    window = days_window(args.first, args.last)
    run_id = f"cli-backfill__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    if args.urls:
        if args.sources:
            raise ConfigError("--source selects archive listings; it does not go with --urls")
        urls = read_urls(args.urls)  # a bad file fails before Elasticsearch is asked
        es = open_store(settings)
        with terminal_progress("backfill", "page") as progress:
            report = backfill_urls(urls, settings, window, run_id, reprocess=args.reprocess,
                                   dry_run=args.dry_run, es=es, progress=progress)
    else:
        feeds = load_feeds(args.feeds or settings.feeds_file)
        archive_sources(feeds, args.sources)  # a bad --source fails before Elasticsearch
        es = open_store(settings)
        with terminal_progress("backfill", "page") as progress:
            report = backfill(feeds, settings, window, run_id, sources=args.sources,
                              reprocess=args.reprocess, dry_run=args.dry_run, es=es,
                              progress=progress)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"run {run_id} ({args.first} to {args.last}): {_counts(report)}")
    for source in report["feeds"]:
        outside = source["out_of_window"]
        print(f"  {source['name']}: {source['status']}, {source['seen']} listed, "
              f"{source['indexed']} indexed"
              + (f", {outside} published outside the range" if outside else ""))
        for url in source["planned"]:
            print(f"    would fetch {url}")
        for error in source["errors"]:
            print(f"    {error['reason']}: {error['url']} ({error['error']})")
    return 0


def _feeds(args: argparse.Namespace) -> int:
    settings = Settings.load()
    es = open_store(settings)
    feeds = FeedHealth(es, settings.feed_health_index).latest()
    if args.json:
        print(json.dumps({"feeds": feeds}, ensure_ascii=False))
        return 0
    if not feeds:
        print("no feed has been polled yet")
    for feed in feeds:
        latency = feed["median_fetch_ms"]
        print(f"{feed['feed']}: {feed['status']} at {feed['run_at'][:19]}, "
              f"last success {(feed['last_success'] or 'never')[:19]}, "
              f"{feed['consecutive_failures']} failures in a row, "
              f"{feed['items_seen']} seen, {feed['indexed']} indexed, "
              f"fetch failures {feed['fetch_failure_rate']:.0%}, "
              f"extraction failures {feed['extraction_failure_rate']:.0%}, "
              f"median fetch {'-' if latency is None else f'{latency:.0f} ms'}")
        if feed["next_poll_at"]:
            print(f"  backed off until {feed['next_poll_at'][:19]}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    settings = Settings.load()
    source = args.path_or_url
    try:
        if Path(source).is_file():
            page = Page(url=args.url or Path(source).resolve().as_uri(),
                        final_url=args.url or Path(source).resolve().as_uri(), status=200,
                        content_type="text/html", charset=None,
                        body=Path(source).read_bytes(), fetched_at=datetime.now(UTC))
        else:
            with HttpClient(settings.http) as http:
                page = http.get(source)
        article = extract_article(page, rules=default_rules(settings.config_dir))
    except ItemError as exc:
        if args.json:
            print(json.dumps({"error": {"reason": exc.reason, "detail": exc.detail}}))
        else:
            print(f"newsroom: {exc.reason}: {exc.detail}", file=sys.stderr)
        return 1
    gazetteer = Gazetteer.load(settings.config_dir / "entities.yaml")
    relevance = score_relevance(article.title, article.text,
                                TopicModel.load(settings.config_dir / "topic.yaml", gazetteer),
                                article.language)
    fields: dict[str, Any] = {
        "url": article.url,
        "title": article.title,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "authors": list(article.authors),
        "language": article.language,
        "source": {"name": article.source.name, "domain": article.source.domain},
        "word_count": article.word_count,
        "relevance": {"score": relevance.score, "relevant": relevance.relevant,
                      "reasons": list(relevance.reasons)},
        "text": article.text,
    }
    if args.json:
        print(json.dumps(fields, ensure_ascii=False))
    else:
        for key in ("title", "url", "published_at", "authors", "language", "word_count"):
            print(f"{key}: {fields[key]}")
        print(f"relevance: {relevance.score} ({'relevant' if relevance.relevant else 'not'})")
        print()
        print(article.text)
    return 0


def _search(args: argparse.Namespace) -> int:
    settings = Settings.load()
    es = connect(settings)  # only reads (no index setup): an analyst's identity is enough
    check_available(es, settings)
    gazetteer = Gazetteer.load(settings.config_dir / "entities.yaml")
    result = search_articles(es, settings.index_alias, args.query, entity=args.entity,
                             since=args.since, lang=args.lang, limit=args.limit,
                             gazetteer=gazetteer)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    # matched words in bold on a terminal, between asterisks otherwise
    bold = ("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("*", "*")
    print(f"{result['total']} articles")
    for hit in result["hits"]:
        print(f"{hit['score']:7.2f}  {(hit['published_at'] or '')[:10]}  "
              f"[{hit['source']}] {hit['title']}")
        print(f"         {hit['url']}")
        for passage in hit["highlights"]:
            print("         … " + passage.replace(MARK[0], bold[0]).replace(MARK[1], bold[1])
                  + " …")
    return 0


def _ledger(args: argparse.Namespace) -> int:
    settings = Settings.load()
    es = open_store(settings)
    ledger = Ledger(es, settings.ledger_index, settings.max_attempts)
    run_id = args.run or ledger.latest_run()
    counts = ledger.counts(run_id)
    failures = ledger.failures(run_id)
    if args.json:
        print(json.dumps({"run_id": run_id, "counts": counts, "failures": failures},
                         ensure_ascii=False))
    else:
        summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(f"run {run_id}: {summary or 'no items settled'}")
        for failure in failures:
            print(f"  failed {failure['reason']}: {failure['url']} ({failure['error']})")
    return 0


def _reenrich(args: argparse.Namespace) -> int:
    settings = Settings.load()
    es = open_store(settings)
    with terminal_progress("reenrich", "doc") as progress:
        report = reenrich(es, settings, batch_size=args.batch_size,
                          max_batches=args.max_batches, progress=progress)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print(f"enrichment {report.version}: {report.updated} documents updated, "
              f"{report.failed} failed")
        for error in report.errors:
            print(f"  {error['id']}: {error['error']}")
    return 0


def _reindex(args: argparse.Namespace) -> int:
    settings = Settings.load(maintenance=True)
    es = open_store(settings, reindexing=True)
    with terminal_progress("reindex", "doc") as progress:
        report = reindex(es, settings, progress=progress)
    if args.json:
        print(json.dumps(report.as_dict()))
    elif report.status == "current":
        print(f"{settings.index_alias} is on {report.target} already")
    else:
        print(f"copied {report.copied} documents from {', '.join(report.sources)} into "
              f"{report.target}; {settings.index_alias} now points there")
    return 0


def _replay_quarantine(args: argparse.Namespace) -> int:
    settings = Settings.load(maintenance=True)
    counts = replay_quarantine(open_store(settings), settings)
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"replayed {counts['replayed']} quarantined documents; "
              f"{counts['still_refused']} still refused (see {settings.quarantine_index})")
    return 0


def _prune_ledger(args: argparse.Namespace) -> int:
    settings = Settings.load(maintenance=True)
    days = args.days if args.days is not None else settings.ledger_retention_days
    deleted = prune_ledger(open_store(settings), settings, days)
    if args.json:
        print(json.dumps({"deleted": deleted, "older_than_days": days}))
    else:
        print(f"deleted {deleted} ledger records settled more than {days} days ago")
    return 0


def _setup(args: argparse.Namespace) -> int:
    settings = Settings.load(maintenance=True)
    es = connect(settings)
    check_available(es, settings)
    print(json.dumps(setup(es, settings, os.environ)))
    return 0


def _es(args: argparse.Namespace) -> int:
    node = LocalNode.from_env()
    if args.action == "start":
        print(f"Elasticsearch at {node.url} is {node.start()['status']}")
        _note_whose(node)
    elif args.action == "stop":
        if node.stop():
            print("stopped")
        else:
            print("not running")
            _note_whose(node)  # what answers on the port is not ours to stop
    else:
        health = node.health()
        if health is None:
            print(f"Elasticsearch at {node.url} is not running")
            return 1
        print(f"Elasticsearch at {node.url} is {health['status']} "
              f"({health['number_of_nodes']} node)")
        _note_whose(node)
    return 0


def _note_whose(node: LocalNode) -> None:
    """On stderr, when the node answering at the URL is another checkout's."""
    if notice := node.not_ours():
        print(f"note: {notice}", file=sys.stderr)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def _date(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date: {value!r}") from exc


if __name__ == "__main__":
    sys.exit(main())

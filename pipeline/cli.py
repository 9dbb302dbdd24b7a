"""The `newsroom` command line (the contract in DESIGN.md): the same functions the DAGs call.

Exit codes: 0 done (item and feed problems are in the report, not the exit code); 1 the run
could not happen (Elasticsearch unreachable, bad configuration, local node trouble); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, TransportError

from pipeline.extract import extract_article
from pipeline.fetch import HttpClient
from pipeline.gazetteer import Gazetteer
from pipeline.ingest import ingest
from pipeline.ledger import Ledger
from pipeline.localnode import LocalNode, LocalNodeError
from pipeline.records import ItemError, Page
from pipeline.reenrich import reenrich
from pipeline.relevance import TopicModel, score_relevance
from pipeline.search import search_articles
from pipeline.settings import ConfigError, Settings, load_feeds
from pipeline.store import StoreUnavailable, open_store


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

    p = commands.add_parser("extract", help="one page -> cleaned article fields")
    p.add_argument("path_or_url")
    p.add_argument("--url", help="the URL the page was published at (for a file)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_extract)

    p = commands.add_parser("search", help="search the indexed articles")
    p.add_argument("query", nargs="?", default="")
    p.add_argument("--entity", help="only articles naming this entity (any alias)")
    p.add_argument("--since", type=_date, help="published on or after this date (YYYY-MM-DD)")
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

    p = commands.add_parser("es", help="the local development Elasticsearch node")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(handler=_es)
    return parser


def _ingest(args: argparse.Namespace) -> int:
    settings = Settings.load()
    feeds = load_feeds(args.feeds or settings.feeds_file)
    es = open_store(settings)
    run_id = f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    report = ingest(feeds, settings, run_id, es=es)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        counts = " ".join(f"{k}={report[k]}" for k in
                          ("seen", "fetched", "indexed", "duplicate", "irrelevant", "failed"))
        print(f"run {run_id}: {counts}")
        for feed in report["feeds"]:
            print(f"  {feed['name']}: {feed['status']}, {feed['indexed']} indexed")
            for error in feed["errors"]:
                print(f"    {error['reason']}: {error['url']} ({error['error']})")
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
        article = extract_article(page)
    except ItemError as exc:
        if args.json:
            print(json.dumps({"error": {"reason": exc.reason, "detail": exc.detail}}))
        else:
            print(f"newsroom: {exc.reason}: {exc.detail}", file=sys.stderr)
        return 1
    gazetteer = Gazetteer.load(settings.config_dir / "entities.yaml")
    relevance = score_relevance(article.title, article.text,
                                TopicModel.load(settings.config_dir / "topic.yaml", gazetteer))
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
    es = open_store(settings)
    gazetteer = Gazetteer.load(settings.config_dir / "entities.yaml")
    result = search_articles(es, settings.index_alias, args.query, entity=args.entity,
                             since=args.since, limit=args.limit, gazetteer=gazetteer)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"{result['total']} articles")
        for hit in result["hits"]:
            print(f"{hit['score']:7.2f}  {(hit['published_at'] or '')[:10]}  "
                  f"[{hit['source']}] {hit['title']}")
            print(f"         {hit['url']}")
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
    report = reenrich(es, settings, batch_size=args.batch_size, max_batches=args.max_batches)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print(f"enrichment {report.version}: {report.updated} documents updated, "
              f"{report.failed} failed")
        for error in report.errors:
            print(f"  {error['id']}: {error['error']}")
    return 0


def _es(args: argparse.Namespace) -> int:
    node = LocalNode.from_env()
    if args.action == "start":
        print(f"Elasticsearch at {node.url} is {node.start()['status']}")
    elif args.action == "stop":
        print("stopped" if node.stop() else "not running")
    else:
        health = node.health()
        if health is None:
            print(f"Elasticsearch at {node.url} is not running")
            return 1
        print(f"Elasticsearch at {node.url} is {health['status']} "
              f"({health['number_of_nodes']} node)")
    return 0


def _date(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date: {value!r}") from exc


if __name__ == "__main__":
    sys.exit(main())

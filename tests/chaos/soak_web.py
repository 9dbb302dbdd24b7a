"""The soak's web on loopback: four hosts and four overlapping RSS feeds.

- the origin serves sample-corpus articles (tests/sample_site/) at their own paths, the sample's
  AMP page and syndicated copy, and lists some articles again as `?amp=1` and `?utm_...`
  variants (each page names its clean URL as rel=canonical) and the sample's missing page (404);
- the mirror republishes some of those articles, and some of the two hosts' below, an hour
  later under its own URLs (`republished_later`): copies whose original is elsewhere;
- the slow host answers archived sample articles (no feed of the sample lists them) after 1 to
  3 seconds, within any fetch timeout, and serves one of the feeds the same way;
- the rate-limited host answers other archived articles with 429 and `Retry-After: 1` or `2`
  the first one or two times each is asked for, then serves them.

Every item goes into one to three of the four feeds, each feed in its own order: the feeds
overlap, so concurrent workers meet the same items, the variants of one page and the copies of
one text. What goes where, the delays and the 429s are drawn from the soak's seeded `Random`.
Each item knows the URL its page names as canonical: the variants of one page share it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from xml.sax.saxutils import escape

import yaml

from tests.chaos import server as chaos
from tests.chaos.server import ChaosServer
from tests.chaos.suite import Item, rss
from tests.conftest import SampleArticle, republished_later, sample_articles

FEEDS = 4
RSS = "application/rss+xml; charset=utf-8"
FEED_DELAY = 1.5  # seconds the slow host takes to answer the feed it serves


def page_body(article: SampleArticle, base: str) -> bytes:
    """The article's sample page as a site at `base` serves it."""
    assert article.page_path is not None
    return article.page_path.read_bytes().replace(b"{BASE_URL}", base.encode())


@dataclass(frozen=True)
class WebBudget:
    """How much of the sample corpus the web serves, and how many of each variant."""

    articles: int | None  # origin articles from the sample's feeds (None: all of them)
    amp_params: int  # origin articles also listed as `?amp=1`
    tracking: int  # items (origin, mirror, slow) also listed with utm parameters
    copies: int  # origin articles the mirror republishes
    slow: int  # archived articles on the slow host
    limited: int  # archived articles on the rate-limited host
    remote_copies: int  # of the slow and of the rate-limited host's articles, republished


@dataclass(frozen=True)
class SoakItem:
    """One URL the feeds list."""

    url: str
    canonical: str  # the URL its page names as its own: a page's variants share it
    kind: str  # article | amp | amp_param | tracking | syndicated | copy | slow | limited | missing
    title: str


@dataclass(frozen=True)
class FeedFiles:
    """The feeds files the runs take: one feed each, and all four together."""

    each: list[Path]
    together: Path


class SoakWeb:
    """The four hosts and the feeds, built from `budget` and `rng`; use as a context manager."""

    def __init__(self, budget: WebBudget, rng: random.Random) -> None:
        self.budget = budget
        self.rng = rng
        self.origin = ChaosServer()
        self.mirror = ChaosServer()
        self.slow = ChaosServer()
        self.limited = ChaosServer()
        self.items: list[SoakItem] = []
        self.feeds: list[list[SoakItem]] = [[] for _ in range(FEEDS)]
        self.feed_urls: list[str] = []
        self.delays: dict[str, float] = {}  # slow item URL -> seconds
        self.refusals: dict[str, tuple[int, str]] = {}  # limited item URL -> (429s, Retry-After)
        self._build()

    @property
    def servers(self) -> list[ChaosServer]:
        return [self.origin, self.mirror, self.slow, self.limited]

    @property
    def listed(self) -> list[str]:
        """Every URL any feed lists, once."""
        return [item.url for item in self.items]

    def __enter__(self) -> Self:
        for server in self.servers:
            server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()

    def fresh_start(self) -> None:
        """The rate-limited host refuses each page anew: every run of the soak meets it."""
        for server in self.servers:
            server.forget_counts()

    def write_feed_files(self, folder: Path) -> FeedFiles:
        entries = [{"name": f"Soak feed {n}", "url": url}
                   for n, url in enumerate(self.feed_urls)]
        each = []
        for n, entry in enumerate(entries):
            path = folder / f"feeds-{n}.yaml"
            path.write_text(yaml.safe_dump({"feeds": [entry]}), encoding="utf-8")
            each.append(path)
        together = folder / "feeds-all.yaml"
        together.write_text(yaml.safe_dump({"feeds": entries}), encoding="utf-8")
        return FeedFiles(each=each, together=together)

    def describe(self) -> str:
        """One line: what the feeds list."""
        kinds: dict[str, int] = {}
        for item in self.items:
            kinds[item.kind] = kinds.get(item.kind, 0) + 1
        listed = sum(len(feed) for feed in self.feeds)
        return (f"{len(self.items)} item URLs ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), "
                f"{listed} listings over {FEEDS} feeds")

    # --- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        originals = self._origin_articles()
        self._variants(originals)
        remote = self._remote_articles()
        self._copies(originals, remote)
        self._tracking()
        self._feeds()

    def _add(self, url: str, canonical: str, kind: str, title: str) -> SoakItem:
        item = SoakItem(url=url, canonical=canonical, kind=kind, title=title)
        self.items.append(item)
        return item

    def _serve(self, server: ChaosServer, article: SampleArticle, kind: str,
               route: chaos.Route | None = None) -> SoakItem:
        """Serve the sample page of `article` on `server` at its own path; list it."""
        base = server.base_url
        server.route(f"/{article.outlet}/{article.raw['page']}",
                     route or chaos.page(page_body(article, base)))
        return self._add(article.url(base), article.raw["canonical"].replace("{BASE_URL}", base),
                         kind, article.raw["title"])

    def _origin_articles(self) -> list[SoakItem]:
        """The origin's articles (a seeded choice in small budgets, always with the originals
        of the sample's AMP page, tracking link and syndicated copy), those three, and the
        missing page."""
        everything = sample_articles(None)
        specials = {a.raw["kind"]: a for a in everything
                    if a.raw["kind"] in ("amp_copy", "tracking_link", "syndicated_copy")}
        needed = {special.raw["duplicate_of"] for special in specials.values()}
        articles = [a for a in everything if a.raw["kind"] == "article"]
        must = [a for a in articles if f"{a.outlet}/{a.raw['page']}" in needed]
        rest = [a for a in articles if a not in must]
        if self.budget.articles is not None:
            rest = self.rng.sample(rest, max(0, self.budget.articles - len(must)))
        originals = [self._serve(self.origin, a, "article") for a in [*must, *rest]]
        self._serve(self.origin, specials["amp_copy"], "amp")
        self._serve(self.origin, specials["syndicated_copy"], "syndicated")
        tracking = specials["tracking_link"]
        base = self.origin.base_url
        self._add(tracking.raw["feed_link"].replace("{BASE_URL}", base),
                  tracking.raw["canonical"].replace("{BASE_URL}", base), "tracking",
                  tracking.raw["title"])
        (missing,) = [a for a in everything if a.raw["kind"] == "missing"]
        url = missing.raw["feed_link"].replace("{BASE_URL}", base)
        self._add(url, url, "missing", missing.raw["title"])
        return originals

    def _variants(self, originals: list[SoakItem]) -> None:
        for item in self.rng.sample(originals, min(self.budget.amp_params, len(originals))):
            self._add(f"{item.url}?amp=1", item.canonical, "amp_param", item.title)

    def _remote_articles(self) -> list[tuple[SampleArticle, SoakItem]]:
        """Archived articles on the slow and the rate-limited host."""
        archived = sample_articles("archived")
        self.rng.shuffle(archived)
        slow = archived[:self.budget.slow]
        limited = archived[self.budget.slow:self.budget.slow + self.budget.limited]
        served = []
        for article in slow:
            delay = round(self.rng.uniform(1.0, 3.0), 2)
            body = page_body(article, self.slow.base_url)
            item = self._serve(self.slow, article, "slow",
                               chaos.delayed_headers(delay, chaos.page(body)))
            self.delays[item.url] = delay
            served.append((article, item))
        for article in limited:
            times, wait = self.rng.choice((1, 2)), self.rng.choice(("1", "2"))
            body = page_body(article, self.limited.base_url)
            item = self._serve(self.limited, article, "limited", chaos.fail_then(
                [(429, {"Retry-After": wait})] * times, chaos.page(body)))
            self.refusals[item.url] = (times, wait)
            served.append((article, item))
        return served

    def _copies(self, originals: list[SoakItem],
                remote: list[tuple[SampleArticle, SoakItem]]) -> None:
        """The mirror's copies, published an hour after their originals."""
        by_url = {a.url(self.origin.base_url): a for a in sample_articles("article")
                  if a.raw["relevant"]}
        chosen = [by_url[item.url] for item in originals if item.url in by_url]
        chosen = self.rng.sample(chosen, min(self.budget.copies, len(chosen)))
        for kind in ("slow", "limited"):
            relevant = [a for a, item in remote if item.kind == kind and a.raw["relevant"]]
            chosen += relevant[:self.budget.remote_copies]
        for article in chosen:
            page = republished_later(article, self.mirror.base_url).encode("utf-8")
            self._serve(self.mirror, article, "copy", chaos.page(page))

    def _tracking(self) -> None:
        taken = [item for item in self.items if item.kind in ("article", "copy", "slow")]
        for n, item in enumerate(self.rng.sample(taken, min(self.budget.tracking, len(taken)))):
            self._add(f"{item.url}?utm_source=soak&utm_medium=rss&utm_campaign=c{n}",
                      item.canonical, "tracking", item.title)

    def _feeds(self) -> None:
        """Each item into one to three feeds; each feed in its own order. Each feed is on a host
        of its own (so that the DAG, which gives each site's feeds to one task, maps four
        tasks): the origin, the mirror, the rate-limited host (its feed answers at once) and,
        last, the slow host."""
        for item in self.items:
            for n in self.rng.sample(range(FEEDS), self.rng.choice((1, 2, 2, 3))):
                self.feeds[n].append(item)
        for n, feed in enumerate(self.feeds):
            if not feed:
                feed.append(self.items[n % len(self.items)])
            self.rng.shuffle(feed)
            body = rss(Item(item.url, escape(item.title)) for item in feed)
            path = f"/feeds/soak-{n}.xml"
            if n == FEEDS - 1:
                self.feed_urls.append(self.slow.route(
                    path, chaos.delayed_headers(FEED_DELAY, chaos.page(body, RSS))))
            else:
                host = (self.origin, self.mirror, self.limited)[n % 3]
                self.feed_urls.append(host.route(path, chaos.page(body, RSS)))

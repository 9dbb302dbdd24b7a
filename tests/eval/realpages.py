"""Real pages with ground truth from public sets (tests/eval/real/sets.yaml), kept outside the
repository: `prepare` writes them from fetched snapshots into a folder (and the labelled real
news texts of the repositories sets.yaml lists, `tests.eval.realtexts`), `load_sets` reads that
folder for `make eval` (EVAL_CORPORA).

    python -m tests.eval.realpages prepare --mirror /work/.mirror --out ../eval-corpora

The folder holds one subfolder per set: `pages.jsonl` (one page a line: id, url, html file,
gold `text` or null, `with` / `without` snippets, title, authors, published, language) and the
pages' bytes as served under `html/`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.eval.realentities import prepare_entities
from tests.eval.realtexts import prepare_texts, snapshot, snapshot_files

SETS_FILE = Path(__file__).resolve().parent / "real" / "sets.yaml"


@dataclass(frozen=True)
class RealPage:
    set: str
    id: str
    url: str
    body: bytes
    text: str | None  # the gold body, when the set has one
    with_: tuple[str, ...]  # snippets a right extraction holds
    without: tuple[str, ...]  # snippets of boilerplate it must not hold
    title: str | None
    authors: tuple[str, ...]
    published: str | None  # as the set gives it: a date or a date-time
    language: str | None


def load_sets(root: Path) -> dict[str, list[RealPage]]:
    """Every prepared set under `root`, by name, in the order of sets.yaml."""
    found: dict[str, list[RealPage]] = {}
    for name in _declared():
        manifest = root / name / "pages.jsonl"
        if not manifest.is_file():
            continue
        pages = []
        for line in manifest.read_text(encoding="utf-8").split("\n"):
            if not line:
                continue
            raw = json.loads(line)
            pages.append(RealPage(
                set=name, id=raw["id"], url=raw["url"],
                body=(root / name / "html" / raw["html"]).read_bytes(), text=raw["text"],
                with_=tuple(raw["with"]), without=tuple(raw["without"]), title=raw["title"],
                authors=tuple(raw["authors"]), published=raw["published"],
                language=raw["language"]))
        found[name] = pages
    return found


def prepare(mirror: Path, out: Path) -> None:
    """Write each set of sets.yaml from its fetched snapshot under `mirror` into `out`."""
    for name, spec in _declared().items():
        gitdir = snapshot(mirror, spec["repo"], name)
        if gitdir is None:
            continue
        reader = _READERS[spec["reader"]]
        folder = out / name
        (folder / "html").mkdir(parents=True, exist_ok=True)
        count = 0
        with (folder / "pages.jsonl").open("w", encoding="utf-8") as manifest:
            for record, body in reader(gitdir, spec["commit"]):
                record["html"] = f"{record['id']}.html"
                (folder / "html" / record["html"]).write_bytes(body)
                manifest.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        print(f"{name}: {count} pages from {spec['repo']}@{spec['commit'][:10]} -> {folder}")
    prepare_texts(mirror, out)
    prepare_entities(mirror, out)


def _declared() -> dict[str, dict[str, str]]:
    sets: dict[str, dict[str, str]] = yaml.safe_load(SETS_FILE.read_text(encoding="utf-8"))["sets"]
    return sets


def _record(id_: str, url: str, *, text: str | None = None, with_: list[str] | None = None,
            without: list[str] | None = None, title: str | None = None,
            authors: list[str] | None = None, published: str | None = None,
            language: str | None = None) -> dict[str, Any]:
    return {"id": id_, "url": url, "text": text, "with": with_ or [], "without": without or [],
            "title": title, "authors": authors or [], "published": published,
            "language": language}


def _wcxb(gitdir: Path, commit: str) -> Iterator[tuple[dict[str, Any], bytes]]:
    """WCXB's dev split, article pages only (its test split is never read)."""
    files = dict(snapshot_files(gitdir, commit, "dev", "metadata.json"))
    domains = {k: v["domain"] for k, v in json.loads(files["metadata.json"])["files"].items()}
    for path in sorted(p for p in files if p.startswith("dev/ground-truth/")):
        raw = json.loads(files[path])
        truth = raw["ground_truth"]
        if raw["_internal"]["page_type"]["primary"] != "article" or not truth.get("main_content"):
            continue
        file_id = Path(path).stem
        html = files.get(f"dev/html/{file_id}.html.gz")
        if html is None:
            continue
        author = truth.get("author")
        url = raw.get("url") or f"https://{domains[file_id]}/"
        yield _record(file_id, url, text=truth["main_content"],
                      with_=truth.get("with"), without=truth.get("without"),
                      title=truth.get("title"), authors=[author] if author else [],
                      published=truth.get("publish_date")), gzip.decompress(html)


def _newspaper4k(gitdir: Path, commit: str) -> Iterator[tuple[dict[str, Any], bytes]]:
    """newspaper4k's test pages that have an expected text."""
    files = dict(snapshot_files(gitdir, commit, "tests/data/html", "tests/data/txt",
                                "tests/data/metadata"))
    for path in sorted(p for p in files if p.startswith("tests/data/html/")):
        name = Path(path).stem
        text = files.get(f"tests/data/txt/{name}.txt")
        if text is None:
            continue
        meta = json.loads(files.get(f"tests/data/metadata/{name}.json", b"{}"))
        url = meta.get("url") or f"https://{name}.example/"
        yield _record(name, url, text=text.decode("utf-8"), title=meta.get("title"),
                      authors=meta.get("authors"), published=meta.get("publish_date"),
                      language=meta.get("language") or meta.get("meta_lang")), files[path]


def _trafilatura(gitdir: Path, commit: str) -> Iterator[tuple[dict[str, Any], bytes]]:
    """trafilatura's evaluation pages: snippets a right extraction holds and does not hold."""
    files = dict(snapshot_files(gitdir, commit, "tests/evaldata.json", "tests/cache",
                                "tests/eval"))
    evaldata = json.loads(files["tests/evaldata.json"])
    for number, (url, item) in enumerate(sorted(evaldata.items())):
        body = files.get(f"tests/cache/{item['file']}") or files.get(f"tests/eval/{item['file']}")
        if body is None:
            continue
        slug = re.sub(r"[^\w.-]+", "_", item["file"])[:60]
        yield _record(f"{number:04d}-{slug}", url, with_=item["with"],
                      without=item["without"]), body


def _gne(gitdir: Path, commit: str) -> Iterator[tuple[dict[str, Any], bytes]]:
    """GeneralNewsExtractor's test pages, Chinese news and blog pages (tests/<site>/<n>.html)
    with no gold: what they measure is where an extractor finds no text, and what they show is
    read by hand."""
    for path, body in snapshot_files(gitdir, commit, "tests"):
        parts = Path(path).parts
        if len(parts) == 3 and path.endswith(".html"):
            site, name = parts[1], Path(path).stem
            yield _record(f"{site}-{name}", f"https://{site}.example/{name}.html"), body


_READERS = {"wcxb": _wcxb, "newspaper4k": _newspaper4k, "trafilatura": _trafilatura,
            "gne": _gne}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.eval.realpages")
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="write the sets from fetched snapshots")
    prep.add_argument("--mirror", type=Path, required=True,
                      help="the folder holding <owner>+<name>/repo git directories")
    prep.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    prepare(args.mirror, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

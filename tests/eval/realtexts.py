"""Real news texts for the relevance evaluation: our labels are committed
(tests/eval/real/relevance-*.yaml: id, URL, language, label, category, reason, and where the
text comes from); the texts are not our writing and live outside the repository, in
`$EVAL_CORPORA/relevance/*.jsonl` (one object a line: id, url, title, text, and the day it was
published where the source gives one).

Two kinds of source:
- public repositories of news texts, pinned in tests/eval/real/sets.yaml (`texts:`: RT's Russian
  articles, CCTV's evening news, English articles of a media-bias dataset, the news articles of
  a SemEval task in nine languages): `prepare_texts` writes the labelled ones from their fetched
  snapshots (run by `python -m tests.eval.realpages prepare`);
- the search tool's stored web pages (its `pages` corpus), which a script cannot call: to
  bring them back, run each label's `query` with the tool (or have a helper session do it) and
  write the result whose address is the label's `url` into that folder, its first line as
  `title` when it is a headline.
See tests/eval/real/README.md.
"""

from __future__ import annotations

import html
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

LABELS = Path(__file__).resolve().parent / "real"


@dataclass(frozen=True)
class LabelledText:
    part: str  # the label file's name: relevance-<part>.yaml
    id: str
    url: str
    language: str
    relevant: bool
    category: str
    both_named: bool
    hard_call: bool  # the labeller marked the reason "(borderline)"
    title: str
    text: str
    published: str | None  # the day (YYYY-MM-DD) the source gives, where it gives one

    @property
    def split(self) -> str:
        """`dev` or `test`: half of each part's texts, by id, are held out from tuning (by the
        id's last part: its number, or a checksum of it where the source's ids are not
        numbers)."""
        tail = self.id.rsplit("-", 1)[1]
        number = int(tail) if tail.isdigit() else zlib.crc32(tail.encode())
        return "test" if number % 2 == 0 else "dev"


def labelled_texts(root: Path) -> tuple[list[LabelledText], list[str]]:
    """The labelled texts whose text is present under `root`/relevance, and the ids of those
    whose text is missing."""
    texts: dict[str, dict[str, str]] = {}
    for path in sorted((root / "relevance").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                record = json.loads(line)
                texts[record["id"]] = record
    found, missing = [], []
    for path in sorted(LABELS.glob("relevance-*.yaml")):
        for label in yaml.safe_load(path.read_text(encoding="utf-8"))["texts"]:
            record = texts.get(label["id"])
            if record is None or record["url"] != label["url"]:
                missing.append(label["id"])
                continue
            found.append(LabelledText(
                part=path.stem.removeprefix("relevance-"), id=label["id"], url=label["url"],
                language=label["language"],
                relevant=bool(label["relevant"]), category=label["category"],
                both_named=bool(label["both_named"]),
                hard_call="(borderline)" in str(label.get("reason", "")),
                title=record.get("title") or "",
                text=record["text"], published=record.get("published")))
    return found, missing


def prepare_texts(mirror: Path, out: Path) -> None:
    """Write the labelled texts of each repository set (sets.yaml, `texts:`) from its fetched
    snapshot under `mirror` into `out`/relevance/<part>.jsonl."""
    sets = yaml.safe_load((LABELS / "sets.yaml").read_text(encoding="utf-8"))["texts"]
    (out / "relevance").mkdir(parents=True, exist_ok=True)
    for part, spec in sets.items():
        gitdir = snapshot(mirror, spec["repo"], part)
        if gitdir is None:
            continue
        wanted = {label["id"] for label in yaml.safe_load(
            (LABELS / f"relevance-{part}.yaml").read_text(encoding="utf-8"))["texts"]}
        count = 0
        with (out / "relevance" / f"{part}.jsonl").open("w", encoding="utf-8") as written:
            for record in _READERS[spec["reader"]](gitdir, spec["commit"]):
                if record["id"] in wanted:
                    written.write(json.dumps(record, ensure_ascii=False) + "\n")
                    count += 1
        print(f"relevance/{part}: {count} of {len(wanted)} labelled texts from "
              f"{spec['repo']}@{spec['commit'][:10]}")


def _git(gitdir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True,
                          capture_output=True).stdout


def _keyword_datasets(gitdir: Path, commit: str) -> Iterator[dict[str, str]]:
    """RT's Russian articles of a keyword-extraction dataset: data/russia_today_<n>.jsonlines.zip,
    one JSON object a line (url, title, content); id `rt-<n>-<line>`."""
    names = _git(gitdir, "ls-tree", "--name-only", commit, "data/").decode().split()
    parts = sorted(int(m.group(1)) for name in names
                   if (m := re.fullmatch(r"data/russia_today_(\d+)\.jsonlines\.zip", name)))
    for part in parts:
        packed = _git(gitdir, "show", f"{commit}:data/russia_today_{part}.jsonlines.zip")
        with zipfile.ZipFile(io.BytesIO(packed)) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".jsonlines"))
            lines = archive.read(name).decode("utf-8").split("\n")
        for number, line in enumerate(lines):
            if line.strip():
                raw = json.loads(line)
                yield {"id": f"rt-{part}-{number:04d}", "url": raw["url"],
                       "title": raw["title"].strip(), "text": raw["content"].strip()}


# one item of a day's programme: "### headline", its HTML paragraphs, "[查看原文](url)"
_ITEM = re.compile(r"^### (.+?)\n(.*?)\n\[查看原文\]\((\S+?)\)", re.DOTALL | re.MULTILINE)


def _evening_news(gitdir: Path, commit: str) -> Iterator[dict[str, str]]:
    """CCTV's evening news, a Markdown file a day (news/<yyyymmdd>.md): each item's headline,
    text (its HTML paragraphs as plain paragraphs), address and day; id `xwlb-<day>-<item>`."""
    for name, raw in snapshot_files(gitdir, commit, "news"):
        if re.fullmatch(r"news/\d{8}\.md", name):
            day = name[5:13]
            for number, (headline, body, url) in enumerate(_ITEM.findall(raw.decode("utf-8"))):
                paragraphs = (html.unescape(re.sub(r"<[^>]+>", "", p)).strip()
                              for p in re.split(r"</p>\s*<p>|<br\s*/?>", body))
                yield {"id": f"xwlb-{day}-{number:02d}", "url": url, "title": headline.strip(),
                       "text": "\n\n".join(p for p in paragraphs if p),
                       "published": f"{day[:4]}-{day[4:6]}-{day[6:]}"}


def _article_bias(gitdir: Path, commit: str) -> Iterator[dict[str, str]]:
    """English articles of a media-bias dataset: data/jsons/<ID>.json, one article a file
    (ID, url, title, date, source, content_original); id `abp-<ID>`."""
    for name, raw in snapshot_files(gitdir, commit, "data/jsons"):
        if name.endswith(".json"):
            article = json.loads(raw)
            yield {"id": f"abp-{article['ID']}", "url": article["url"],
                   "title": article["title"].strip(),
                   "text": article["content_original"].strip(),
                   "published": article.get("date") or None}


# SemEval-2023 task 3's language folders, by ISO 639-1 code where the folder's name is not one
_SEMEVAL_LANGUAGES = {"ge": "de", "po": "pl", "gr": "el"}


def _persuasion_articles(gitdir: Path, commit: str) -> Iterator[dict[str, str]]:
    """News articles of SemEval-2023 task 3 (several languages), in a copy of its data bundle:
    bundle/data/<language>/<split>-articles-subtask-<n>/article<ID>.txt, the headline on the
    first line; an article is in each subtask's folder, and is read once, from the first
    path; id `se-<language>-<ID>`, its path in place of an address."""
    seen = set()
    for name, raw in snapshot_files(gitdir, commit, "bundle/data"):
        found = re.fullmatch(r"bundle/data/(\w+)/[\w-]*articles[\w-]*/article(\d+)\.txt", name)
        if found is None:
            continue
        language = _SEMEVAL_LANGUAGES.get(found.group(1), found.group(1))
        key = f"se-{language}-{found.group(2)}"
        if key in seen:
            continue
        seen.add(key)
        title, _, text = raw.decode("utf-8").strip().partition("\n")
        yield {"id": key, "url": name, "title": title.strip(), "text": text.strip()}


def snapshot(mirror: Path, repo: str, name: str) -> Path | None:
    """The git directory of `repo`'s snapshot under `mirror` (where `fetch` puts it), or None,
    saying so on stderr for the set `name`."""
    gitdir = mirror / repo.replace("/", "+") / "repo"
    if (gitdir / ".git").is_dir():
        return gitdir / ".git"  # a snapshot with a work tree's layout
    if gitdir.is_dir():
        return gitdir
    print(f"{name}: no snapshot at {gitdir}; fetch {repo} first", file=sys.stderr)
    return None


def snapshot_files(gitdir: Path, commit: str, *paths: str) -> Iterator[tuple[str, bytes]]:
    """The files under `paths` at `commit` of a fetched snapshot, path and content, in the
    tree's order (streamed: a folder of many thousand files is never held whole). What git
    says on stderr (a snapshot lacks its largest files) is shown only if it fails."""
    with tempfile.TemporaryFile() as said, subprocess.Popen(
            ["git", f"--git-dir={gitdir}", "archive", "--format=tar", commit, *paths],
            stdout=subprocess.PIPE, stderr=said) as archive:
        assert archive.stdout is not None
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    yield member.name, handle.read()
        archive.wait()
        if archive.returncode:
            said.seek(0)
            raise RuntimeError(f"git archive {commit} {' '.join(paths)} in {gitdir} failed: "
                               f"{said.read().decode(errors='replace').strip()}")


_READERS = {"keyword-datasets": _keyword_datasets, "evening-news": _evening_news,
            "article-bias": _article_bias, "persuasion-articles": _persuasion_articles}

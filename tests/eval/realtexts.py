"""Real news texts for the relevance evaluation: our labels are committed
(tests/eval/real/relevance-*.yaml: id, URL, the query that found the text, language, label,
category, reason); the texts are not our writing and live outside the repository, in
`$EVAL_CORPORA/relevance/*.jsonl` (one object a line: id, url, title, text).

The texts come from the search tool's stored web pages (its `pages` corpus), which a script
cannot call: to bring them back, run each label's `query` with the tool (or have a helper
session do it) and write the result whose address is the label's `url` into that folder, its
first line as `title` when it is a headline. See tests/eval/real/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

LABELS = Path(__file__).resolve().parent / "real"


@dataclass(frozen=True)
class LabelledText:
    id: str
    url: str
    language: str
    relevant: bool
    category: str
    both_named: bool
    title: str
    text: str

    @property
    def split(self) -> str:
        """`dev` or `test`: half of each part's texts, by id, are held out from tuning."""
        return "test" if int(self.id.rsplit("-", 1)[1]) % 2 == 0 else "dev"


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
                id=label["id"], url=label["url"], language=label["language"],
                relevant=bool(label["relevant"]), category=label["category"],
                both_named=bool(label["both_named"]), title=record.get("title") or "",
                text=record["text"]))
    return found, missing

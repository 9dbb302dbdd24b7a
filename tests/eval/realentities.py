"""Entities on real news with gold names (tests/eval/real/sets.yaml, `entities:`), kept outside
the repository: `prepare_entities` writes them from a fetched snapshot, `entities` prints, for
`make eval` (EVAL_CORPORA), the entity sets of our enrich stage beside those of the plain NER
it wraps, against the gold.

CoNLL-2003's English news (Reuters, 1996) is tagged token by token with persons, organisations,
places and miscellaneous names. A document's text is its sentences put back together (the
first, its headline, as the title); its gold is the set of its person, organisation and place
names (miscellaneous ones, nationalities and events, are not entities here). Each side's set is
compared after the same normalising: a name the gazetteer knows in its canonical form, a lone
word of one fuller person name in the document as that name ("Yeltsin" with "Boris Yeltsin"),
case folded. "Plain" is spaCy's model with its labels mapped as ours are and nothing else.
The development split (`testa`) is where the rules may be looked at; the test split (`testb`)
is only measured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from pipeline.enrich import EnrichRules, link_entities, load_nlp
from pipeline.gazetteer import Gazetteer
from pipeline.records import Article, Source
from pipeline.settings import CONFIG_DIR
from tests.eval.realtexts import LABELS, snapshot, snapshot_files

_TYPES = {"PER": "person", "ORG": "organization", "LOC": "location"}
# CoNLL's tokens are split off the word before them: put back without a space
_JOINED = {",", ".", ":", ";", "?", "!", ")", "]", "'s", "'", "n't", "%", "'re", "'ve", "'ll",
           "'d", "'m"}


@dataclass(frozen=True)
class GoldDocument:
    id: str
    split: str  # dev | test
    title: str
    text: str
    entities: frozenset[tuple[str, str]]  # (name, type)


def prepare_entities(mirror: Path, out: Path) -> None:
    """Write each set of sets.yaml's `entities:` from its fetched snapshot under `mirror` into
    `out`/entities/<name>.jsonl."""
    sets = yaml.safe_load((LABELS / "sets.yaml").read_text(encoding="utf-8")).get("entities", {})
    for name, spec in sets.items():
        gitdir = snapshot(mirror, spec["repo"], name)
        if gitdir is None:
            continue
        (out / "entities").mkdir(parents=True, exist_ok=True)
        count = 0
        with (out / "entities" / f"{name}.jsonl").open("w", encoding="utf-8") as written:
            files = dict(snapshot_files(gitdir, spec["commit"], spec["dev"], spec["test"]))
            for split, path in (("dev", spec["dev"]), ("test", spec["test"])):
                for number, document in enumerate(conll_documents(files[path].decode("utf-8"))):
                    written.write(json.dumps({"id": f"{name}-{split}-{number:03d}",
                                              "split": split, **document},
                                             ensure_ascii=False) + "\n")
                    count += 1
        print(f"entities/{name}: {count} documents from {spec['repo']}@{spec['commit'][:10]}")


def conll_documents(conll: str) -> Iterator[dict[str, object]]:
    """The documents of a CoNLL-2003 file (a token a line, its tag last; a blank line between
    sentences, `-DOCSTART-` between documents): title, text and gold entities."""
    for chunk in conll.split("-DOCSTART-"):
        sentences = [[row for line in block.split("\n") if (row := line.split())
                      and row[0] != "-X-"]  # what is left of the -DOCSTART- line
                     for block in chunk.split("\n\n")]
        lines, entities = [], []
        for sentence in sentences:
            tokens = [row[0] for row in sentence]
            if not tokens:
                continue
            text, starts = _joined(tokens)
            lines.append(text)
            for first, last, tag in _spans([row[-1] for row in sentence]):
                if tag in _TYPES:
                    entities.append((text[starts[first]:starts[last] + len(tokens[last])],
                                     _TYPES[tag]))
        if len(lines) > 1:
            yield {"title": lines[0], "text": "\n\n".join(lines[1:]),
                   "entities": sorted(set(entities))}


def _joined(tokens: list[str]) -> tuple[str, list[int]]:
    text, starts = "", []
    for token in tokens:
        if text and token not in _JOINED and not text.endswith(("(", "[", "$")):
            text += " "
        starts.append(len(text))
        text += token
    return text, starts


def _spans(tags: list[str]) -> Iterator[tuple[int, int, str]]:
    """(first, last, type) of each tagged name, from IOB tags (I- continues, B- starts)."""
    current: list[int | str] | None = None
    for position, tag in enumerate(tags + ["O"]):
        kind, _, type_ = tag.partition("-")
        if current is not None and (kind != "I" or type_ != current[2]):
            yield int(current[0]), int(current[1]), str(current[2])
            current = None
        if kind == "I" and current is not None:
            current[1] = position
        elif kind in {"B", "I"}:
            current = [position, position, type_]


def load_documents(root: Path) -> list[GoldDocument]:
    documents = []
    for path in sorted((root / "entities").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line:
                raw = json.loads(line)
                documents.append(GoldDocument(
                    id=raw["id"], split=raw["split"], title=raw["title"], text=raw["text"],
                    entities=frozenset((name, type_) for name, type_ in raw["entities"])))
    return documents


def entities(root: Path) -> None:
    documents = load_documents(root)
    if not documents:
        print(f"\nEntities on real news: none under {root}/entities (see "
              "tests/eval/real/sets.yaml)")
        return
    gazetteer = Gazetteer.load(CONFIG_DIR / "entities.yaml")
    rules = EnrichRules.load(CONFIG_DIR / "enrich.yaml")
    nlp = load_nlp()
    counts: dict[tuple[str, str, bool], list[int]] = {}
    for document, doc in zip(documents, nlp.pipe(f"{d.title}\n\n{d.text}" for d in documents),
                             strict=True):
        article = Article(url=document.id, title=document.title, text=document.text,
                          language="en", published_at=None, authors=(), source=Source("", ""),
                          fetched_at=datetime.now(UTC))
        sides = {
            "ours": {(e.name, e.type) for e in link_entities(article, gazetteer, rules, doc)},
            "plain NER": {(e.text, rules.labels[e.label_]) for e in doc.ents
                          if e.label_ in rules.labels},
        }
        gold = _normalised(document.entities, gazetteer)
        for side, found in sides.items():
            got = _normalised(found, gazetteer)
            for typed in (True, False):
                want_set = gold if typed else {name for name, _ in gold}
                got_set = got if typed else {name for name, _ in got}
                tally = counts.setdefault((document.split, side, typed), [0, 0, 0])
                tally[0] += len(got_set & want_set)
                tally[1] += len(got_set - want_set)
                tally[2] += len(want_set - got_set)
    print(f"\nEntities on {len(documents)} real news documents with gold names (CoNLL-2003, "
          "English, 1996): set precision / recall / F1 per document, summed")
    for (split, side, typed), (shared, extra, missed) in counts.items():
        precision = shared / max(1, shared + extra)
        recall = shared / max(1, shared + missed)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"  {split:<5} {side:<10} {'name and type' if typed else 'name only':<14} "
              f"{precision:.4f} / {recall:.4f} / {f1:.4f}")


def _normalised(entities: Iterable[tuple[str, str]], gazetteer: Gazetteer
                ) -> set[tuple[str, str]]:
    """Canonical names where the gazetteer knows them, a lone word of one fuller person name as
    that name, case folded."""
    named = {(_canonical(name.strip(), gazetteer), type_) for name, type_ in entities}
    fuller = [name for name, type_ in named if type_ == "person" and len(name.split()) > 1]
    result = set()
    for name, type_ in named:
        if type_ == "person" and len(name.split()) == 1:
            holders = [full for full in fuller if name in full.split()]
            if len(holders) == 1:
                name = holders[0]
        result.add((re.sub(r"\s+", " ", name).casefold(), type_))
    return result


def _canonical(name: str, gazetteer: Gazetteer) -> str:
    known = gazetteer.lookup(name)
    return known.name if known is not None else name

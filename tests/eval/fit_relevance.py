"""Fit the relevance weights (config/topic.yaml `bias` and `weights`) by logistic regression on
the `dev` half of the labelled real news texts (tests/eval/real, brought back into
$EVAL_CORPORA) and the team's own labelled articles (tests/eval/relevance); the `test` half is
held out, and both are printed. Without `--write` it only prints.

    EVAL_CORPORA=../eval-corpora python -m tests.eval.fit_relevance [--write]

The features are those of `pipeline.relevance.article_features`, each from 0 to 1; the fit is
plain L2-regularised logistic regression (Newton's method), every text weighing the same. A
text under `min_words` is left out: ingest settles it `too_short` before relevance.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.extract import default_rules
from pipeline.gazetteer import Gazetteer
from pipeline.relevance import FEATURES, TopicModel, article_features, decide
from pipeline.settings import CONFIG_DIR
from pipeline.text import word_count
from tests.eval.corpus import labelled_articles
from tests.eval.real import precision_recall
from tests.eval.realtexts import labelled_texts

L2 = 0.001  # on the mean log-loss


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[float, np.ndarray]:
    """The bias and weights minimising the mean log-loss plus `l2` times the squared weights
    (the bias is not penalised)."""
    rows, columns = x.shape
    design = np.hstack([np.ones((rows, 1)), x])
    penalty = np.full(columns + 1, 2 * l2)
    penalty[0] = 0.0
    beta = np.zeros(columns + 1)
    for _ in range(100):
        p = 1 / (1 + np.exp(-design @ beta))
        gradient = design.T @ (p - y) / rows + penalty * beta
        hessian = (design.T * (p * (1 - p))) @ design / rows + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(beta[0]), beta[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help="write the fitted bias and weights into config/topic.yaml")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("EVAL_CORPORA", "../eval-corpora"))
    texts, _ = labelled_texts(root)
    if not texts:
        print(f"no labelled real texts under {root}/relevance (tests/eval/real/README.md)",
              file=sys.stderr)
        return 1
    topic = CONFIG_DIR / "topic.yaml"
    model = TopicModel.load(topic, Gazetteer.load(CONFIG_DIR / "entities.yaml"))
    min_words = default_rules().cleaning.min_words
    rows: dict[str, list[tuple[str, dict[str, float], bool]]] = {"dev": [], "test": []}
    for text in texts:
        if word_count(text.text) >= min_words:
            features, _ = article_features(text.title, text.text, model)
            rows[text.split].append((text.part, features, text.relevant))
    for article in labelled_articles():
        features, _ = article_features(article["title"], article["text"], model)
        rows["dev"].append(("own", features, bool(article["relevant"])))

    x = np.array([[r[1][f] for f in FEATURES] for r in rows["dev"]])
    y = np.array([float(r[2]) for r in rows["dev"]])
    bias, weights = fit(x, y)
    print(f"fitted on {len(y)} texts ({int(y.sum())} relevant): bias {bias:.2f}")
    for name, weight in zip(FEATURES, weights, strict=True):
        print(f"  {name:<18} {weight:6.2f}  (now {model.weights[name]:.2f})")
    fitted = replace(model, bias=bias, weights=dict(zip(FEATURES, weights, strict=True)))
    for label, rule in (("now", model), ("fitted", fitted)):
        for split, part_rows in rows.items():
            for part in sorted({r[0] for r in part_rows}):
                decisions = ((decide(r[1], rule)[1], r[2]) for r in part_rows if r[0] == part)
                print(f"  {label:<6} {split:<4} {part:<8} {precision_recall(decisions)}")
    if args.write:
        _write(topic, fitted.bias, fitted.weights)
        print(f"written to {topic}")
    return 0


def _write(path: Path, bias: float, weights: dict[str, float]) -> None:
    """Replace the numbers of `bias:` and of each weight's line, keeping the comments."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^bias: -?[\d.]+", f"bias: {bias:.2f}", text)
    for name, weight in weights.items():
        text = re.sub(rf"(?m)^(  {name}: *)-?[\d.]+", lambda m, w=weight: f"{m.group(1)}{w:.2f}",
                      text)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())

"""Fit the extractive answerer's span model and refusal threshold on tuning questions.

`python -m retrieval calibrate eval/tune.jsonl` asks every question as `eval` does, labels each
quotable span by whether it holds a gold quote (half of it verbatim, the coverage metric's rule),
fits the weights that put those spans first (a conditional logit over each question's spans),
then picks the refusal threshold that best separates the answerable questions from the
unanswerable ones (mean of the two rates), and writes both to
retrieval/calibration/<embedding model>.json.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from retrieval.assistant import Assistant
from retrieval.evaluate import found, read_questions
from retrieval.factory import extractive_answerer
from retrieval.support import FEATURES, Model, calibration, missing_kind
from retrieval.types import Turn, turn_of

L2 = 1.0  # ridge penalty on standardised weights: keeps a small set from fitting noise
ITERATIONS, STEP = 500, 0.5


@dataclass(frozen=True)
class Sample:
    """One question's spans: their features and labels, and whether it is answerable at all."""

    features: np.ndarray
    labels: np.ndarray
    answerable: bool
    ruled_out: bool  # refused whatever the threshold: a name it uses is missing, or a name/number/date


def collect(assistant: Assistant, questions: list[dict], model: Model) -> list[Sample]:
    """Spans of every question's retrieved passages, labelled against its gold quotes."""
    answerer = extractive_answerer(assistant, model)
    turns: dict[str, list[Turn]] = {}
    samples = []
    for q in questions:
        history = turns.get(q.get("follows") or "", [])
        question, query, passages = assistant.prepare(q["question"], history)
        spans = answerer.spans(question, passages, history)
        answer = replace(answerer.answer(question, passages, history), standalone=query)
        turns[q["id"]] = [*history, turn_of(answer)]
        gold = q.get("gold_quotes") or []
        ruled_out = not spans or answerer.names_unknown(question, passages)
        window = answerer.kind_window(spans, answerer.authors_named(question, passages))
        ruled_out = ruled_out or bool(missing_kind(question, window, answerer.is_name))
        samples.append(
            Sample(
                np.array([s.features for s in spans], dtype=np.float64).reshape(-1, len(FEATURES)),
                np.array([any(found(g, s.text, 0.5) for g in gold) for s in spans], dtype=np.float64),
                q["type"] != "unanswerable",
                ruled_out,
            )
        )
    return samples


def fit(samples: list[Sample], source: str) -> Model:
    """A conditional logit over each answerable question's spans (gradient descent, ridge), then the
    refusal threshold."""
    groups = [(s.features, s.labels) for s in samples if s.answerable and s.labels.any()]
    x = np.concatenate([f for f, _ in groups])
    mean, scale = x.mean(0), x.std(0) + 1e-9
    groups = [((f - mean) / scale, y) for f, y in groups]
    w = np.zeros(len(FEATURES))
    for _ in range(ITERATIONS):
        grad = L2 * w
        for f, y in groups:
            z = f @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            gold = p * y / (p * y).sum()  # the chance each answering span has, given one answers
            grad += f.T @ (p - gold)
        w -= STEP * grad / len(groups)
    model = Model(tuple(float(v) for v in w), tuple(mean), tuple(scale), 0.0, source)
    return replace(model, threshold=threshold(samples, model))


def threshold(samples: list[Sample], model: Model) -> float:
    """The cut-off on the best span's score that maximises the mean of the share of answerable
    questions answered and the share of unanswerable ones refused (ties: the lower cut-off)."""
    best = [
        (max((model.score(f) for f in s.features), default=-np.inf), s.answerable, s.ruled_out)
        for s in samples
    ]
    answerable = sum(a for _, a, _ in best) or 1
    unanswerable = sum(not a for _, a, _ in best) or 1
    cuts = sorted({p for p, _, _ in best if np.isfinite(p)})
    candidates = [cuts[0] - 1.0] + [(lo + hi) / 2 for lo, hi in itertools.pairwise(cuts)]

    def balance(cut: float) -> float:
        answered = sum(a and not r and p >= cut for p, a, r in best) / answerable
        refused = sum(not a and (r or p < cut) for p, a, r in best) / unanswerable
        return (answered + refused) / 2

    return float(max(candidates, key=lambda cut: (round(balance(cut), 9), -cut)))


def calibrate(assistant: Assistant, files: list[Path], out: Path | None = None) -> Model:
    """Collect, fit and save (by default for the index's embedding model); returns the new model."""
    questions = [q for f in files for q in read_questions(f)]
    provisional = Model((0.0,) * len(FEATURES), (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), -np.inf)
    model = fit(collect(assistant, questions, provisional), ", ".join(f.name for f in files))
    model.save(out or calibration(assistant.settings.embed_model))
    return model

"""The evaluation metrics of eval/README.md: recall@5, answer coverage, refusals, citation validity."""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from pathlib import Path

from ingest.errors import MarginaliaError

_PUNCT = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u00a0": " "}
)


def normalise(text: str) -> str:
    """Case, whitespace, curly quotes and dashes folded, invisible characters dropped."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT)
    text = re.sub(r"[\u00ad\u200b\u2060\ufeff]", "", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def found(quote: str, text: str, share: float = 0.6) -> bool:
    """A gold quote is found when a contiguous run of `share` of its characters is in the text."""
    q, t = normalise(quote), normalise(text)
    if not q:
        return False
    if q in t:
        return True
    match = difflib.SequenceMatcher(None, q, t, autojunk=False).find_longest_match(0, len(q), 0, len(t))
    return match.size >= share * len(q)


def read_questions(path: Path) -> list[dict]:
    """One JSON object a line, blank lines skipped."""
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as err:
        raise MarginaliaError(
            f"{path}: cannot read questions ({err}); expected one JSON object a line"
        ) from err


def by_type(gold: list[dict], results: dict[str, dict], k: int = 5) -> dict[str, dict[str, float]]:
    """The metrics of each question type apart, so a weakness shows where it is."""
    types = sorted({q["type"] for q in gold})
    return {t: score([q for q in gold if q["type"] == t], results, k) for t in types}


def score(gold: list[dict], results: dict[str, dict], k: int = 5) -> dict[str, float]:
    """Metrics over gold questions for results keyed by question id."""
    recall, coverage = [], []
    refused_un = unanswerable = wrongly_refused = answerable = cited = valid = 0
    for q in gold:
        r = results.get(q["id"], {})
        if q["type"] == "unanswerable":
            unanswerable += 1
            refused_un += bool(r.get("refused"))
            continue
        answerable += 1
        if r.get("refused"):
            wrongly_refused += 1
            recall.append(
                _share(q["gold_quotes"], [p.get("text", "") for p in r.get("passages", [])[:k]], 0.6)
            )
            coverage.append(0.0)
            continue
        recall.append(_share(q["gold_quotes"], [p.get("text", "") for p in r.get("passages", [])[:k]], 0.6))
        answer = r.get("answer", "") + " " + " ".join(c.get("quote", "") for c in r.get("citations", []))
        coverage.append(_share(q["gold_quotes"], [answer], 0.5))
        for c in r.get("citations", []):
            cited += 1
            valid += bool(c.get("verified"))
    return {
        "questions": len(gold),
        f"recall@{k}": _mean(recall),
        "answer_coverage": _mean(coverage),
        "refused_unanswerable": round(refused_un / unanswerable, 3) if unanswerable else 1.0,
        "answered_answerable": round(1 - wrongly_refused / answerable, 3) if answerable else 1.0,
        "citation_validity": round(valid / cited, 3) if cited else 1.0,
    }


def _share(quotes: list[str], texts: list[str], need: float) -> float:
    return sum(any(found(g, t, need) for t in texts) for g in quotes) / len(quotes) if quotes else 0.0


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0

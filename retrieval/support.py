"""How well a quotable span answers a question: its features, a calibrated score, and the
checks that what a question asks for (a name, a number, a date) is there at all.

The score is linear in features that mean the same whatever the wording: how close the span's
best sentence is to the question in meaning, how much of the question's weighted vocabulary it
carries, its passage's rank and closeness. The weights are those of a conditional logit (a softmax
over each question's spans, fitted so the spans holding the answer come first) and the refusal
threshold the cut-off on the best span's score that best separates answerable questions from
unanswerable ones; `python -m retrieval calibrate` fits both on the tuning questions and keeps them
in calibration/<embedding model>.json beside this file (the closeness of one model's vectors means
something else than another's). Nothing in them is set by hand.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ingest.errors import MarginaliaError
from ingest.keyword import tokenize
from retrieval.types import Passage

CALIBRATIONS = Path(__file__).with_name("calibration")
FEATURES = ("closeness", "words", "context", "rank", "similarity", "length")


@dataclass(frozen=True)
class Span:
    """A quotable span of a passage (offsets into its essay's text) and what it is scored on."""

    passage: Passage
    start: int
    end: int
    text: str
    features: tuple[float, ...]
    score: float = 0.0


def features(
    *, closeness: float, words: float, context: float, rank: int, similarity: float, size: int
) -> tuple[float, ...]:
    """The model's inputs, in FEATURES order."""
    return (closeness, words, context, 1.0 / max(1, rank), similarity, math.log1p(size))


@dataclass(frozen=True)
class Model:
    """A linear score over standardised features; `threshold` is the refusal cut-off."""

    weights: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float
    fitted_on: str = ""

    def score(self, x: Sequence[float]) -> float:
        return sum(w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.mean, self.scale, strict=True))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"features": FEATURES, **asdict(self)}, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Model:
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise MarginaliaError(
                f"no answer calibration at {path}; make one with: python -m retrieval calibrate "
                "eval/tune.jsonl eval/dev.jsonl eval/paraphrased.jsonl"
            ) from err
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path} was fitted on other features; run: python -m retrieval calibrate")
        return cls(
            weights=tuple(data["weights"]),
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            threshold=float(data["threshold"]),
            fitted_on=str(data.get("fitted_on", "")),
        )


def calibration(embed_model: str) -> Path:
    """Where the calibration for an index made with that embedding model is kept."""
    return CALIBRATIONS / f"{embed_model}.json"


# What a question asks for, when the answer must be of a kind: a name, a number or a date.
_WANTS_NAME = re.compile(
    r"^\s*who\b(?!\s+(?:does|do|did)\b)|\bname of\b|\bwho (?:was|were|is|are|painted|paid|wrote)\b"
    r"|\b(?:which|what) (?:village|town|city|cities|country|countries|nation|nations|state|states"
    r"|minister|official|officials|president|presidents|person|people)\b",
    re.IGNORECASE,
)
_WANTS_DATE = re.compile(
    r"^\s*when\s+(?:did|does|do|was|were|is|are|will|would|had|has|could|should|must)\b"
    r"|\b(?:what|which) year\b|\bon what date\b|\bsince when\b|\band when\s+(?:did|was|were|had)\b",
    re.IGNORECASE,
)
_HOW_MANY = re.compile(
    r"\bhow many\s+([^\W\d_]+)|\bhow much\b|\bwhat (?:share|percentage|proportion)\b", re.I
)
_TIME_UNITS = {"year", "month", "day", "decad", "centuri", "week", "time", "hour", "night"}
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|dozen|half|third|quarter|single|couple)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b\d{3,4}s?\b|\b(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|century|centuries|spring|summer|autumn|winter)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<![.!?:]\s)(?<![.!?:]\s[“\"‘(])(?<!^)\b[A-Z][a-zà-ÿ]+")
_AUTHOR = re.compile(r"\bwho wrote\b|\bauthor\b|\bwritten by\b", re.IGNORECASE)


# The likeliest spans among which what the question asks for must be found (on tune, 8 let near
# misses through).
KIND_WINDOW = 5


def any_word(word: str) -> bool:
    return True


def wanted(question: str, is_name: Callable[[str], bool] = any_word) -> dict[str, Callable[[Span], bool]]:
    """The kinds of answer the question asks for ('a name', 'a number', 'a date'), each with the test a
    span must pass to give one; `is_name` tells a proper name from a capitalised common noun."""
    kinds: dict[str, Callable[[Span], bool]] = {}
    if _WANTS_DATE.search(question):
        kinds["a date"] = lambda s: bool(_DATE.search(s.text))
    count = _HOW_MANY.search(question)
    if count:
        unit = set(tokenize(count.group(1) or ""))
        if unit & _TIME_UNITS:  # 'how many years' is answered by dates as well as numbers
            kinds["a number"] = lambda s: bool(_DATE.search(s.text) or _NUMBER.search(s.text))
        else:
            kinds["a number"] = lambda s: _counts(s.text, unit)
    if _WANTS_NAME.search(question):
        asked = {w.lower() for w in re.findall(r"[^\W\d_]+", question)}
        # Who wrote a paper is answered by its essay's author as well as by its text.
        by_author = bool(_AUTHOR.search(question))

        def named(s: Span) -> bool:
            author = s.passage.essay.author if by_author else ""
            return any(
                n.lower() not in asked and (n in author or is_name(n))
                for n in _NAME.findall(f" {s.text} {author}")
            )

        kinds["a name"] = named
    return kinds


def missing_kind(question: str, spans: Sequence[Span], is_name: Callable[[str], bool] = any_word) -> str:
    """What the question asks for that none of the spans gives ('a name', 'a number', 'a date'), or ''."""
    for kind, gives in wanted(question, is_name).items():
        if not any(gives(s) for s in spans):
            return kind
    return ""


def _counts(text: str, unit: set[str]) -> bool:
    """A number in the text, standing within a few words before the counted word when one is given."""
    tokens = re.findall(r"[^\W_]+", text.lower())
    for i, t in enumerate(tokens):
        if (t.isdigit() or _NUMBER.fullmatch(t)) and (
            not unit or unit & set(tokenize(" ".join(tokens[i + 1 : i + 5])))
        ):
            return True
    return False

"""Follow-up questions rewritten into standalone queries from the conversation, without an LLM."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.types import Turn

_OPENERS = re.compile(r"^\s*(and|but|so|also|then|what about|how about|and why|and how)\b", re.IGNORECASE)
_BACK_REFERENCES = re.compile(
    r"\b(he|she|it|they|him|her|his|its|their|them|that|those|these|this|there|the same|the first|"
    r"the second|the other|the latter|the former|such)\b",
    re.IGNORECASE,
)


def is_follow_up(question: str) -> bool:
    """A question that leans on the one before: opens with 'and', or points back with a pronoun."""
    return bool(_OPENERS.match(question) or _BACK_REFERENCES.search(question))


def standalone(question: str, history: Sequence[Turn]) -> str:
    """The query to search with: a follow-up carries the previous standalone question with it."""
    if not history or not is_follow_up(question):
        return question
    previous = history[-1].standalone or history[-1].question
    return f"{previous} {question}"

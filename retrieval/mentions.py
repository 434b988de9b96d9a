"""Which essays, authors or quoted phrases a question names: 'in Federalist No. 10', 'Bacon says'."""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.types import EssayInfo

_QUOTED = re.compile(r"[\"“‘']([^\"“”‘’']{3,}?)[\"”’'](?!\w)")
_NUMBER_REF = re.compile(r"\b(?:no\.?|number|paper|essay|#)\s*(\d{1,3})\b", re.IGNORECASE)
_TITLE_NUMBER = re.compile(r"\bno\.\s*(\d{1,3})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Mentions:
    """Essays and authors a question points at, and the phrases it quotes."""

    essays: frozenset[str] = frozenset()
    authors: frozenset[str] = frozenset()
    phrases: tuple[str, ...] = ()


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'").replace("‘", "'")).strip()


class MentionFinder:
    """Matches question text against essay titles, numbers and author surnames."""

    def __init__(self, essays: dict[str, EssayInfo]) -> None:
        self._titles: list[tuple[re.Pattern[str], str, bool]] = []
        self._numbers: dict[tuple[str, str], set[str]] = {}
        self._authors: dict[str, set[str]] = {}
        for info in essays.values():
            for alias in _title_aliases(info.title):
                one_word = " " not in alias
                self._titles.append(
                    (re.compile(rf"\b{re.escape(alias)}\b", re.IGNORECASE), info.id, one_word)
                )
            m = _TITLE_NUMBER.search(info.title)
            if m and info.collection:
                self._numbers.setdefault((info.collection, m.group(1).lstrip("0")), set()).add(info.id)
            if info.author:
                surname = info.author.split()[-1]
                self._authors.setdefault(surname, set()).add(info.author)
        self._collections = {c for c, _ in self._numbers}

    def find(self, question: str) -> Mentions:
        essays: set[str] = set()
        for pattern, essay_id, one_word in self._titles:
            for m in pattern.finditer(question):
                # A one-word title ('Circles') counts only when capitalised mid-sentence or quoted.
                if not one_word or (m.start() > 0 and m.group(0)[0].isupper()) or _is_quoted(question, m):
                    essays.add(essay_id)
        lowered = question.lower()
        for collection in self._collections:
            if collection.rstrip("s") in lowered:
                for m in _NUMBER_REF.finditer(question):
                    essays |= self._numbers.get((collection, m.group(1).lstrip("0")), set())
        phrases = tuple(_norm(p) for p in _QUOTED.findall(question) if len(p.split()) >= 3)
        return Mentions(frozenset(essays), self.authors(question), phrases)

    def authors(self, question: str) -> frozenset[str]:
        """The authors a question names by surname (cheap: no title is matched)."""
        return frozenset(
            full
            for surname, names in self._authors.items()
            if re.search(rf"\b{surname}\b", question)
            for full in names
        )


def _title_aliases(title: str) -> list[str]:
    """The title and its short forms: 'Federalist No. 10: X' gives X; 'Of Boldness' stays whole."""
    aliases = {title.strip()}
    if ":" in title:
        aliases.add(title.split(":", 1)[1].strip())
    return [a for a in aliases if len(a) >= 4 and not a.lower().startswith("the same subject")]


def _is_quoted(text: str, m: re.Match[str]) -> bool:
    before, after = text[m.start() - 1 : m.start()], text[m.end() : m.end() + 1]
    return before in {"'", '"', "‘", "“"} and after in {"'", '"', "’", "”"}

"""Which essays, authors or quoted phrases a question names: 'in Federalist No. 10', 'Bacon says'.

Titles and author surnames are found in one pass by an Aho-Corasick automaton (pyahocorasick)
over all of them: one pattern per title cost 11 ms a question at 100k passages (4.8k essays) and
grew with every essay; the automaton's cost grows with the question's length instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

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


@dataclass(frozen=True)
class _Title:
    essay_id: str
    one_word: bool


@dataclass(frozen=True)
class _Surname:
    surname: str  # matched case-sensitively, as written
    authors: frozenset[str]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'").replace("‘", "'")).strip()


def _lower(text: str) -> str:
    """Lower case, one character for one, so offsets in the result are offsets in the text."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)  # 'İ' lowers to two


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] has a word boundary at both ends, as regex's \\b defines it."""

    def boundary(i: int) -> bool:
        before = i > 0 and _is_word(text[i - 1])
        after = i < len(text) and _is_word(text[i])
        return before != after

    return boundary(start) and boundary(end)


class MentionFinder:
    """Matches question text against essay titles, numbers and author surnames."""

    def __init__(self, essays: dict[str, EssayInfo]) -> None:
        found: dict[str, list[_Title | _Surname]] = {}
        self._numbers: dict[tuple[str, str], set[str]] = {}
        surnames: dict[str, set[str]] = {}
        for info in essays.values():
            for alias in _title_aliases(info.title):
                found.setdefault(_lower(alias), []).append(_Title(info.id, " " not in alias))
            m = _TITLE_NUMBER.search(info.title)
            if m and info.collection:
                self._numbers.setdefault((info.collection, m.group(1).lstrip("0")), set()).add(info.id)
            if info.author:
                surnames.setdefault(info.author.split()[-1], set()).add(info.author)
        for surname, authors in surnames.items():
            found.setdefault(_lower(surname), []).append(_Surname(surname, frozenset(authors)))
        self._collections = {c for c, _ in self._numbers}
        self._automaton: ahocorasick.Automaton | None = None
        if found:
            self._automaton = ahocorasick.Automaton()
            for key, entries in found.items():
                self._automaton.add_word(key, (len(key), tuple(entries)))
            self._automaton.make_automaton()

    def _matches(self, question: str) -> list[tuple[int, int, _Title | _Surname]]:
        """Every title or surname occurring in the question between word boundaries: (start, end, entry)."""
        if self._automaton is None:
            return []
        out: list[tuple[int, int, _Title | _Surname]] = []
        for last, (length, entries) in self._automaton.iter(_lower(question)):
            start, end = last + 1 - length, last + 1
            if _bounded(question, start, end):
                out.extend((start, end, entry) for entry in entries)
        return out

    def find(self, question: str) -> Mentions:
        essays: set[str] = set()
        authors: set[str] = set()
        for start, end, entry in self._matches(question):
            if isinstance(entry, _Surname):
                if question[start:end] == entry.surname:  # surnames are matched as capitalised
                    authors |= entry.authors
            # A one-word title ('Circles') counts only when capitalised mid-sentence or quoted.
            elif not entry.one_word or _capitalised_or_quoted(question, start, end):
                essays.add(entry.essay_id)
        lowered = question.lower()
        for collection in self._collections:
            if collection.rstrip("s") in lowered:
                for m in _NUMBER_REF.finditer(question):
                    essays |= self._numbers.get((collection, m.group(1).lstrip("0")), set())
        phrases = tuple(_norm(p) for p in _QUOTED.findall(question) if len(p.split()) >= 3)
        return Mentions(frozenset(essays), frozenset(authors), phrases)

    def authors(self, question: str) -> frozenset[str]:
        """The authors a question names by surname."""
        return frozenset(
            name
            for start, end, entry in self._matches(question)
            if isinstance(entry, _Surname) and question[start:end] == entry.surname
            for name in entry.authors
        )


def _title_aliases(title: str) -> list[str]:
    """The title and its short forms: 'Federalist No. 10: X' gives X; 'Of Boldness' stays whole."""
    aliases = {title.strip()}
    if ":" in title:
        aliases.add(title.split(":", 1)[1].strip())
    return [a for a in aliases if len(a) >= 4 and not a.lower().startswith("the same subject")]


def _capitalised_or_quoted(text: str, start: int, end: int) -> bool:
    return (start > 0 and text[start].isupper()) or _is_quoted(text, start, end)


def _is_quoted(text: str, start: int, end: int) -> bool:
    before, after = text[start - 1 : start], text[end : end + 1]
    return before in {"'", '"', "‘", "“"} and after in {"'", '"', "’", "”"}

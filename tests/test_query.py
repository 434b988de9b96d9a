"""The words a question is searched for by meaning (retrieval/query.py)."""

from __future__ import annotations

import pytest

from retrieval.query import meaning


@pytest.mark.parametrize(
    ("question", "authors", "expected"),
    [
        (
            "According to Hamilton, why would one government give fewer excuses for war?",
            ["Alexander Hamilton"],
            "why would one government give fewer excuses for war?",
        ),
        ("What does the author say about France's mistakes?", [], "What about France's mistakes?"),
        ("Is it true that Emerson's essay praises travel?", ["Ralph Waldo Emerson"], "essay praises travel?"),
        ("In his view, what makes a faction dangerous?", [], "what makes a faction dangerous?"),
        ("Why did Jay think treaties would be kept?", [], "Why treaties would be kept?"),
        # A name that is the subject, not the source, stays.
        ("Why did Louis XIV insult Genoa?", [], "Why did Louis XIV insult Genoa?"),
    ],
)
def test_scaffolding_and_named_authors_are_left_out(question: str, authors: list[str], expected: str) -> None:
    assert meaning(question, authors) == expected


def test_a_question_that_is_only_scaffolding_is_searched_as_it_stands() -> None:
    assert meaning("What does Bacon say?", ["Francis Bacon"]) == "What does Bacon say?"
    assert meaning("Why?") == "Why?"


def test_capitalised_words_only_count_as_names_where_a_name_is_expected() -> None:
    # 'according to tradition' is content, not a named source; 'do people think' keeps its subject.
    assert meaning("What do people think of solitude, according to tradition?") == (
        "What do people think of solitude, according to tradition?"
    )

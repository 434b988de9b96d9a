"""Mention finding: titles, short forms, surnames and numbered references, on tiny literal inputs."""

from __future__ import annotations

from retrieval.mentions import MentionFinder
from retrieval.types import EssayInfo

ESSAYS = {
    e.id: e
    for e in (
        EssayInfo("bacon/of-revenge", "Of Revenge", "Francis Bacon", collection="bacon"),
        EssayInfo("emerson/circles", "Circles", "Ralph Waldo Emerson", collection="emerson"),
        EssayInfo(
            "federalist/10",
            "Federalist No. 10: The Union as a Safeguard Against Domestic Faction",
            "James Madison",
            collection="federalist",
        ),
        EssayInfo(
            "federalist/11",
            "Federalist No. 11: The Same Subject Continued",
            "Alexander Hamilton",
            collection="federalist",
        ),
        EssayInfo("montaigne/of-idleness", "Of Idleness", "Michel de Montaigne", collection="montaigne"),
        EssayInfo("misc/friendship", "Friendship", "Ralph Waldo Emerson", collection="emerson"),
    )
}


def essays(question: str) -> set[str]:
    return set(MentionFinder(ESSAYS).find(question).essays)


def test_a_title_is_found_in_any_case_between_word_boundaries() -> None:
    assert essays("what does of revenge say about wild justice?") == {"bacon/of-revenge"}
    assert essays("What does OF REVENGE say?") == {"bacon/of-revenge"}
    assert essays("What does Of Revenges say?") == set()  # no boundary after the title
    assert essays("What does Proof Revenge say?") == set()  # nor before it


def test_a_one_word_title_counts_only_capitalised_mid_sentence_or_quoted() -> None:
    assert essays("What does Emerson say in Circles about growth?") == {"emerson/circles"}
    assert essays("Why do circles widen, says Emerson?") == set()
    assert essays("Circles widen: why?") == set()  # capitalised, but only as the first word
    assert essays("what does 'circles' argue?") == {"emerson/circles"}
    assert essays("Compare Circles and Friendship.") == {"emerson/circles", "misc/friendship"}


def test_a_titles_short_form_after_the_colon_names_the_essay() -> None:
    assert essays("How does the union as a safeguard against domestic faction work?") == {"federalist/10"}
    # "The Same Subject Continued" is shared by many papers, so it names none.
    assert essays("What does the same subject continued argue?") == set()


def test_numbered_references_name_the_paper_of_a_collection_the_question_names() -> None:
    assert essays("What does Federalist No. 11 say about commerce?") == {"federalist/11"}
    assert essays("In federalist paper 10, what is faction?") == {"federalist/10"}
    assert essays("What does No. 10 say?") == set()  # no collection named
    assert essays("What does Federalist No. 12 say?") == set()  # no such paper indexed


def test_authors_are_found_by_surname_as_written() -> None:
    finder = MentionFinder(ESSAYS)
    assert finder.find("What did Bacon think of revenge?").authors == {"Francis Bacon"}
    assert finder.authors("Compare Emerson and Montaigne on idleness") == {
        "Ralph Waldo Emerson",
        "Michel de Montaigne",
    }
    assert finder.authors("is bacon good for breakfast?") == frozenset()  # lower case: the food
    assert finder.authors("What did Baconian scholars say?") == frozenset()


def test_quoted_phrases_of_three_words_or_more_are_kept_normalised() -> None:
    found = MentionFinder(ESSAYS).find('Who wrote "Revenge is a  kind of wild justice"?')
    assert found.phrases == ("revenge is a kind of wild justice",)
    assert MentionFinder(ESSAYS).find('Who said "wild justice"?').phrases == ()


def test_no_essays_finds_nothing() -> None:
    found = MentionFinder({}).find("What does Federalist No. 10 say?")
    assert not found.essays and not found.authors

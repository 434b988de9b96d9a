"""The answerer's calibrated span score and its checks, on small literal inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ingest.essay import Chunk
from ingest.keyword import names, tokenize
from retrieval.calibrate import Sample, fit
from retrieval.extractive import WORDS, ExtractiveAnswerer, _mentioned, asks_for_a_list
from retrieval.support import FEATURES, Model, Span, calibration, missing_kind
from retrieval.types import EssayInfo, Passage

_PASSAGE = Passage(Chunk("e.md", 0, "x", 0, 1), EssayInfo("e.md", "An Essay", "Jane Roe"), 1.0, 1)


def _spans(*texts: str) -> list[Span]:
    return [Span(_PASSAGE, 0, len(t), t, ()) for t in texts]


@pytest.mark.parametrize(
    ("question", "texts", "missing"),
    [
        ("Who painted the panorama he saw?", ["I saw a panorama painted by a friend."], "a name"),
        ("Who painted the panorama he saw?", ["I saw a panorama painted by Banvard."], ""),
        ("Who does he credit with the Reformation?", ["The Reformation is the shadow of Luther."], ""),
        ("In what year did he go to Italy?", ["When I went to Italy I saw Raphael."], "a date"),
        ("In what year did he go to Italy?", ["In 1833 I went to Italy."], ""),
        ("When he sets out, which way does he go?", ["I turn to the west."], ""),
        ("How many soldiers does Takuba have?", ["Takuba was added in 2020."], "a number"),
        ("How many soldiers does Takuba have?", ["Takuba has 600 soldiers."], ""),
        ("How many years separate the two coups?", ["The coups of 2012 and 2020."], ""),
        ("What does Bacon say about anger?", ["Anger is a kind of baseness."], ""),
    ],
)
def test_a_question_asking_for_a_name_number_or_date_needs_one(
    question: str, texts: list[str], missing: str
) -> None:
    assert missing_kind(question, _spans(*texts)) == missing


def test_who_wrote_is_answered_by_the_essays_author() -> None:
    assert missing_kind("Who wrote the paper that says this?", _spans("It says this plainly.")) == ""


def test_a_capitalised_common_noun_is_no_name_when_the_essays_say_which_words_are_names() -> None:
    texts = [
        "The States keep their powers, as the State shows.",
        "Each state and the states differ.",
    ]
    # A word opening a sentence says nothing of its case: 'Hamilton' counts where it stands mid-sentence.
    known = names([*texts, "So wrote Hamilton of New York; the brave Lovejoy fell.", "Hamilton wrote it."])
    assert {"Hamilton", "Lovejoy", "York"} <= known and "States" not in known and "State" not in known
    question = "Who were the members of the council?"
    assert missing_kind(question, _spans(*texts), known.__contains__) == "a name"
    assert missing_kind(question, _spans("It met under the brave Lovejoy."), known.__contains__) == ""
    # Without what the essays say, any capitalised word passes for a name.
    assert missing_kind(question, _spans(*texts)) == ""
    # Who wrote a paper is answered by its author, whatever the essays' words.
    assert (
        missing_kind("Who wrote the paper that says this?", _spans("It says this."), known.__contains__) == ""
    )


def _sample(rng: np.random.Generator, answerable: bool) -> Sample:
    x = rng.uniform(0, 1, size=(12, len(FEATURES)))
    labels = np.zeros(12)
    if answerable:
        labels[int(np.argmax(x[:, 0] + x[:, 1]))] = 1.0  # the span closest in meaning and words answers
        x[labels == 1, 0] += 0.5  # and an answerable question has one clearly close span
    return Sample(x, labels, answerable, ruled_out=False)


def test_fit_puts_answering_spans_first_and_separates_unanswerable_questions() -> None:
    rng = np.random.default_rng(7)
    samples = [_sample(rng, answerable=i % 4 != 0) for i in range(200)]
    model = fit(samples, "synthetic")
    first = [s.labels[int(np.argmax([model.score(f) for f in s.features]))] for s in samples if s.answerable]
    assert np.mean(first) > 0.9
    assert model.weights[0] > 0 and model.weights[1] > 0
    best = [(max(model.score(f) for f in s.features), s.answerable) for s in samples]
    answered = np.mean([b >= model.threshold for b, a in best if a])
    refused = np.mean([b < model.threshold for b, a in best if not a])
    assert answered > 0.8 and refused > 0.8


def test_the_shipped_calibration_loads_and_one_fitted_on_other_features_is_refused(tmp_path: Path) -> None:
    model = Model.load(calibration("all-MiniLM-L6-v2"))
    assert len(model.weights) == len(FEATURES) and model.fitted_on
    stale = json.loads(calibration("all-MiniLM-L6-v2").read_text())
    stale["features"] = ["closeness"]
    (tmp_path / "old.json").write_text(json.dumps(stale))
    with pytest.raises(ValueError, match="python -m retrieval calibrate"):
        Model.load(tmp_path / "old.json")


@pytest.mark.parametrize(
    ("question", "listing"),
    [
        ("What new ideas did Hamilton think the ancient republics lacked?", True),
        ("Which feelings does Bacon say overcome the fear of death?", True),
        ("What are the reasons he gives?", True),
        ("What makes a spot a poor choice for a house?", False),
        ("What does Bacon say about anger?", False),
        ("Why was the convention called?", False),
    ],
)
def test_questions_asking_for_several_things_are_answered_as_lists(question: str, listing: bool) -> None:
    assert asks_for_a_list(question) is listing


@pytest.mark.parametrize(
    ("name", "text", "mentioned"),
    [
        ("Arab", "a story from an Arabian writer", True),
        ("Malians", "the people of Mali", True),
        ("Yorkers", "the State of New York", True),
        ("Algeria", "the Algerian talks", True),
        ("Paris", "France and its allies", False),
        ("Darwin", "a dart thrown", False),
    ],
)
def test_a_name_counts_as_mentioned_in_another_form_of_it(name: str, text: str, mentioned: bool) -> None:
    words = set(tokenize(text))
    assert all(_mentioned(stem, words) for stem in tokenize(name)) is mentioned


def test_a_question_naming_what_no_passage_mentions_is_refused_but_a_named_source_is_no_such_name() -> None:
    def passage(essay: EssayInfo, text: str) -> Passage:
        return Passage(Chunk(essay.id, 0, text, 0, len(text)), essay, 1.0, 1)

    bacon = EssayInfo("bacon/judicature.md", "Of Judicature", "Francis Bacon", collection="bacon")
    federalist = EssayInfo(
        "federalist/78.md", "Federalist No. 78", "Alexander Hamilton", collection="federalist"
    )
    passages = [
        passage(bacon, "Judges ought to remember that their office is to interpret law."),
        passage(federalist, "The interpretation of the laws is the proper province of the courts."),
    ]
    model = Model((0.0,) * len(FEATURES), (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), 0.0)
    answerer = ExtractiveAnswerer(essay_text=lambda _: None, idf=lambda _: 1.0, model=model)
    assert not answerer.names_unknown("How do Bacon and Federalist No. 78 each see the judges?", passages)
    assert answerer.names_unknown("What does Bacon say about Darwin and the judges?", passages)


_BACON = EssayInfo("bacon/travel.md", "Of Travel", "Francis Bacon", collection="bacon")
_EMERSON = EssayInfo("emerson/self-reliance.md", "Self-Reliance", "R. W. Emerson", collection="emerson")


def _whole(texts: dict[str, str], *essays: EssayInfo) -> list[Passage]:
    """Each essay's whole text as one passage, ranked in the order given."""
    return [
        Passage(Chunk(e.id, 0, texts[e.id], 0, len(texts[e.id])), e, 1.0, r) for r, e in enumerate(essays, 1)
    ]


def _by_words(essay_text: Callable[[str], str | None], weight: float = 1.0) -> ExtractiveAnswerer:
    """An answerer whose spans score `weight` times the share of the question's words they carry."""
    weights = (0.0, weight) + (0.0,) * (len(FEATURES) - 2)
    model = Model(weights, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), 0.0)
    return ExtractiveAnswerer(essay_text=essay_text, idf=lambda _: 1.0, model=model)


def test_a_clause_of_a_long_sentence_is_quoted_where_the_whole_would_overrun_the_answer() -> None:
    first = (
        "Anger makes a man quarrelsome, and it is the quarrel that he remembers long after the anger "
        "itself has gone, so that a hot word spoken in a moment is paid for over many years by him "
        "and by everyone around him, which is why the wise keep quiet until it passes."
    )
    second = (
        "The remedy is patience with the slow turning of the days; and for the rest, a man should "
        "never let his temper rest upon the faults of others when he has so many of his own to mend, "
        "for that is how the feuds of one hour become the enmities of a lifetime in every village."
    )
    text = f"{first} {second}"
    essay = EssayInfo("bacon/anger.md", "Of Anger", "Francis Bacon")
    (passage,) = _whole({essay.id: text}, essay)
    answerer = _by_words(lambda _: text)
    answer = answerer.answer("Why is the quarrel of anger remembered, and what is the remedy?", [passage])
    quotes = [c.quote for c in answer.citations]
    assert quotes[0] == first  # the best span whole
    assert len(quotes) == 2 and quotes[1] == "The remedy is patience with the slow turning of the days"
    assert all(text[c.start : c.end] == c.quote for c in answer.citations)
    assert "- The remedy is patience with the slow turning of the days… [2]" in answer.text


def test_an_author_the_question_names_is_quoted_and_a_comparison_quotes_each_side() -> None:
    bacon, emerson = _BACON, _EMERSON
    texts = {
        bacon.id: "Travel, in the younger sort, is a part of education, in the elder, a part of experience.",
        emerson.id: "Travelling is a fool's paradise, and the travel of the young is a restless travel of "
        "the mind that sees travel as the cure for everything a young traveller dislikes at home.",
    }
    passages = _whole(texts, emerson, bacon)
    answerer = _by_words(texts.get)
    # Emerson's sentence carries more of the words, but the question asks what Bacon says.
    one = answerer.answer("What does Bacon say travel is for the young?", passages)
    assert [c.essay for c in one.citations] == [bacon.id]
    both = answerer.answer("How does Emerson's view of travel for the young differ from Bacon's?", passages)
    assert sorted(c.essay for c in both.citations) == sorted([bacon.id, emerson.id])


def test_what_a_question_asks_for_must_be_in_a_span_the_answer_could_quote() -> None:
    text = (
        "So was it done in the Commission of Union between England and Scotland, a grave and orderly "
        "assembly of counsel that heard every side before it came to any resolution at all. In 1706 the "
        "queen wrote a long letter about the harvest, the price of bread and the state of the roads in "
        "the north."
    )
    essay = EssayInfo("bacon/counsel.md", "Of Counsel", "Francis Bacon")
    (passage,) = _whole({essay.id: text}, essay)
    # Scores ten times the share of the question's words: the letter's sentence is far below.
    answerer = _by_words(lambda _: text, weight=10.0)
    question = "What year did the Commission of Union between England and Scotland meet?"
    spans = answerer.spans(question, [passage])
    assert any("1706" in s.text for s in spans[:5])  # among the likeliest five, but no answer to quote
    assert answerer.answer(question, [passage]).refused
    assert not answerer.answer(
        "What did the Commission of Union between England and Scotland do?", [passage]
    ).refused


def test_a_name_the_essays_use_elsewhere_is_left_to_the_scores_unless_an_author_is_named() -> None:
    emerson = EssayInfo("emerson/history.md", "History", "Ralph Waldo Emerson", collection="emerson")
    text = "The world exists for the education of each man."
    passages = [Passage(Chunk(emerson.id, 0, text, 0, len(text)), emerson, 1.0, 1)]
    model = Model((0.0,) * len(FEATURES), (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), 0.0)
    corpus = {"darwin", "pari", "western"} | set(tokenize(text))  # stems some other essay uses

    def answerer(known: bool) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(
            essay_text=lambda _: text,
            idf=lambda _: 1.0,
            model=model,
            known=corpus.__contains__ if known else (lambda _: False),
        )

    assert answerer(known=False).names_unknown("Why did the Western plan fail in Paris?", passages)
    assert not answerer(known=True).names_unknown("Why did the Western plan fail in Paris?", passages)
    # Named with an author, a name must be in that author's passages, wherever else it is.
    assert answerer(known=True).names_unknown("What does Emerson say about Darwin?", passages)
    assert answerer(known=True).names_unknown("Why did the Western plan fail in Louisiana?", passages)


def test_an_ellipsis_marks_only_the_sides_where_a_clause_was_cut_from_its_sentence() -> None:
    from retrieval.extractive import _clean

    assert _clean("the former will be exercised", before=";", after=",") == "…the former will be exercised…"
    assert _clean("Hunt and kill the bad guys", before="\n", after="\n") == "Hunt and kill the bad guys"
    assert (
        _clean("1. Not taking the crisis seriously", before="", after="T")
        == "Not taking the crisis seriously"
    )


def test_a_first_span_longer_than_the_whole_budget_gives_way_to_its_best_clause() -> None:
    text = (
        "Although I am of opinion that there would be no real danger of the consequences which seem to be "
        "apprehended by many honest and thoughtful men in every part of the country, because the sense of "
        "the people and the hazard of provoking the resentments of the States would be a complete barrier "
        "against any oppressive use of such a power over them; yet I am willing here to allow that the "
        "States should possess an independent authority to raise their own revenues for their own wants."
    )
    essay = EssayInfo("federalist/32.md", "Federalist No. 32", "Alexander Hamilton")
    (passage,) = _whole({essay.id: text}, essay)
    answerer = _by_words(lambda _: text)
    answer = answerer.answer("Should the States raise their own revenues?", [passage])
    first = answer.citations[0]
    assert len(text.split()) > WORDS and first.quote.startswith("yet I am willing") and first.verified
    assert "…yet I am willing" in answer.text and "their own wants. [1]" in answer.text
    assert all(c.quote != text for c in answer.citations)  # the 87 words are never quoted whole


def test_each_side_of_a_comparison_is_quoted_even_when_one_side_is_long() -> None:
    bacon, emerson = _BACON, _EMERSON
    texts = {
        bacon.id: (
            "That young men travel under some tutor, or grave servant, I allow well; so that he be such "
            "a one that hath the language, and hath been in the country before, whereby he may be able "
            "to tell them what things are worthy to be seen in the country where they go, what "
            "acquaintances they are to seek, and what exercises or discipline the place yieldeth to young "
            "men that travel."
        ),
        emerson.id: "But the rage of travelling is a symptom of a deeper unsoundness affecting the whole "
        "intellectual action of the young who travel.",
    }
    passages = _whole(texts, bacon, emerson)
    answerer = _by_words(texts.get)
    answer = answerer.answer("How does Emerson's view of travel for young men differ from Bacon's?", passages)
    assert len(texts[bacon.id].split()) + len(texts[emerson.id].split()) > WORDS
    assert {c.essay for c in answer.citations} == {bacon.id, emerson.id}
    assert all(c.verified for c in answer.citations)

"""Retrieval and extractive answers on real indexes: known passages, checked citations, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_DIR

from ingest.sentences import sentence_units
from retrieval.__main__ import ask_all
from retrieval.assistant import Assistant
from retrieval.conversation import standalone
from retrieval.evaluate import score
from retrieval.snapshot import Filters
from retrieval.support import Model
from retrieval.types import CANNOT_ANSWER, turn_of

KIDAL = "France contributed, by design or by accident, to what evolved into a de facto partition of Mali"


@pytest.fixture(scope="module")
def small(small_index, embedder) -> Assistant:
    return Assistant(small_index, embedder=embedder)


def test_known_question_finds_the_kidal_passage(small: Assistant) -> None:
    answer = small.ask("What mistakes did the author attribute to France?")
    assert not answer.refused
    assert any(KIDAL in p.chunk.text for p in answer.passages)
    assert answer.citations and all(f"[{c.number}]" in answer.text for c in answer.citations)


def test_phrasing_far_from_the_text_still_finds_bacon_on_studies(small: Assistant) -> None:
    top = small.retrieve("what is reading good for, according to the Elizabethan essayist?", k=5)
    assert any(p.chunk.essay_id == "bacon/50-of-studies.md" for p in top)


def test_citations_are_exact_quotes_of_the_stored_text(small: Assistant) -> None:
    answer = small.ask("Why does Federalist No. 51 say the legislature should be divided?")
    assert answer.citations
    for c in answer.citations:
        text = small.essay_text(c.essay)
        assert text[c.start : c.end] == c.quote and c.verified


def test_a_tampered_citation_is_not_verified(small: Assistant) -> None:
    from dataclasses import replace

    answer = small.ask("How does Bacon characterize revenge?")
    forged = replace(answer, citations=tuple(replace(c, quote=c.quote + " (sic)") for c in answer.citations))
    assert not any(c.verified for c in small.checked(forged).citations)


def test_follow_up_is_rewritten_and_answered_from_the_same_essay(small: Assistant) -> None:
    first = small.ask("What are the two methods of curing the mischiefs of faction in Federalist No. 10?")
    history = [turn_of(first)]
    follow = small.ask("Why does he reject the first of those?", history)
    assert "mischiefs of faction" in follow.standalone
    assert follow.passages[0].chunk.essay_id.startswith("federalist/10-")
    assert standalone("What does Bacon say about travel?", history) == "What does Bacon say about travel?"


def test_a_follow_up_stays_with_the_essays_the_conversation_is_about(shipped_assistant: Assistant) -> None:
    shipped = shipped_assistant
    first = shipped.ask("What does Bacon say about death?")
    turn = turn_of(first)
    assert turn.essays == ("bacon/02-of-death.md",)  # the essays its answer cites
    follow = shipped.ask("And what does he think is the best way for a life to close?", [turn])
    # "Nunc dimittis" shares no word with the question; the conversation's essay brings it in.
    assert any("Nunc dimittis" in p.chunk.text for p in follow.passages)
    assert not follow.refused


def test_a_refusal_keeps_its_closest_essays_for_the_next_question(small: Assistant) -> None:
    refused = small.ask("What does Emerson say about Darwin?")
    assert refused.refused
    assert turn_of(refused).essays == tuple(dict.fromkeys(p.chunk.essay_id for p in refused.passages[:2]))


def test_sentences_are_ranked_by_meaning_from_vectors_stored_at_index_time(
    shipped_assistant: Assistant,
) -> None:
    shipped = shipped_assistant
    question = (
        "When does the author say it was already clear that mistreatment of civilians by Malian troops "
        "would feed the fighting, and what does he fault outsiders for?"
    )
    answer = shipped.ask(question)
    assert not answer.refused and answer.citations
    assert {c.essay for c in answer.citations} == {"sahel/could-malis-coup-have-been-avoided-part-two.txt"}
    # Each passage carries every one of its sentences with its closeness to the question, read from
    # the vectors stored at index time: the same as embedding the sentence now.
    query = shipped.embedder.embed([answer.standalone])[0]
    for p in answer.passages:
        text = shipped.essay_text(p.chunk.essay_id) or ""
        assert [(s.start, s.end) for s in p.sentences] == sentence_units(text, p.chunk)
        fresh = shipped.embedder.embed([text[s.start : s.end] for s in p.sentences]) @ query
        np.testing.assert_allclose([s.closeness for s in p.sentences], fresh, atol=0.01)


def test_spans_are_ranked_by_their_calibrated_score(shipped_assistant: Assistant) -> None:
    question = "What does Bacon say you should do when you lose your temper?"
    _, _, passages = shipped_assistant.prepare(question)
    answerer = shipped_assistant.answerer()
    spans = answerer.spans(question, passages)
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    assert all(s.score == answerer.model.score(s.features) for s in spans)
    answer = answerer.answer(question, passages)
    assert answer.citations[0].essay == "bacon/57-of-anger.md"
    # The best span of the essay the answer quotes leads it.
    own = [s for s in spans if s.passage.chunk.essay_id == answer.citations[0].essay]
    assert answer.citations[0].quote == own[0].text


@pytest.mark.parametrize(
    "question",
    ["What does Emerson say about Darwin?", "Which Federalist paper discusses the Louisiana Purchase?"],
)
def test_questions_about_what_the_corpus_never_names_are_refused(small: Assistant, question: str) -> None:
    answer = small.ask(question)
    assert answer.refused and answer.text == CANNOT_ANSWER and not answer.citations
    assert answer.passages  # the closest passages are still offered


def test_filters_restrict_every_passage(small: Assistant) -> None:
    by_collection = small.retrieve("friendship and counsel", k=5, filters=Filters(collections=("bacon",)))
    assert by_collection and all(p.essay.collection == "bacon" for p in by_collection)
    by_author = small.retrieve("faction", k=5, filters=Filters(authors=("Francis Bacon",)))
    assert all(p.essay.author == "Francis Bacon" for p in by_author)
    one = "emerson/02-self-reliance.md"
    assert all(
        p.chunk.essay_id == one for p in small.retrieve("government", k=5, filters=Filters(essays=(one,)))
    )


def test_langchain_retriever_returns_documents_with_offsets(small: Assistant) -> None:
    from retrieval.langchain import EssayRetriever

    docs = EssayRetriever(assistant=small, k=3).invoke("Revenge is a kind of wild justice")
    assert len(docs) == 3 and docs[0].metadata["essay"] == "bacon/04-of-revenge.md"
    meta = docs[0].metadata
    assert small.essay_text(meta["essay"])[meta["start"] : meta["end"]] == docs[0].page_content


def test_dev_questions_meet_the_quality_bar(shipped_assistant: Assistant) -> None:
    gold = [json.loads(line) for line in (PROJECT_DIR / "eval/dev.jsonl").read_text().splitlines()]
    rows = ask_all(shipped_assistant, gold)
    for row in rows:  # every citation of every answer round-trips to its quote
        for c in row["citations"]:
            assert shipped_assistant.essay_text(c["essay"])[c["start"] : c["end"]] == c["quote"]
            assert c["verified"]
    metrics = score(gold, {r["id"]: r for r in rows})
    assert metrics["citation_validity"] == 1.0
    assert metrics["recall@5"] >= 0.85 and metrics["answer_coverage"] >= 0.6
    assert metrics["answered_answerable"] >= 0.9 and metrics["refused_unanswerable"] >= 0.5


def _cli(*args: str, index: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "retrieval", *args, "--index", str(index)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_json_and_jsonl_schema(small_index, tmp_path: Path) -> None:
    done = _cli("ask", "--json", "How does Bacon characterize revenge?", index=small_index.index_dir)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert {"answer", "refused", "citations", "passages"} <= set(answer)
    assert {"n", "essay", "title", "quote", "start", "end", "verified"} <= set(answer["citations"][0])
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "What are the two methods of curing the mischiefs of faction?"}\n'
        '{"id": "b", "question": "And why does he reject the first?", "follows": "a"}\n'
    )
    done = _cli("ask", "--jsonl", str(questions), index=small_index.index_dir)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert {"rank", "essay", "title", "start", "end", "score", "text"} <= set(rows[1]["passages"][0])
    assert "mischiefs of faction" in rows[1]["standalone"]
    missing = _cli("ask", "anything", index=tmp_path / "none")
    assert missing.returncode == 1 and "python -m ingest" in missing.stderr


def test_cli_eval_reports_each_question_type_and_calibrate_writes_a_model(
    small_index, tmp_path: Path
) -> None:
    rows = [json.loads(line) for line in (PROJECT_DIR / "eval/dev.jsonl").read_text().splitlines()]
    sahel = [r for r in rows if r["essay"] == [] or r["essay"][0].startswith("sahel/")][:12]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in sahel))
    done = _cli("eval", str(questions), "--json", index=small_index.index_dir)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    types = {r["type"] for r in sahel}
    assert set(metrics["by_type"]) == types and metrics["median_answer_words"] > 0
    assert sum(m["questions"] for m in metrics["by_type"].values()) == metrics["questions"] == len(sahel)
    # Several files and indexes are scored side by side (here the same index twice).
    again = tmp_path / "again.jsonl"
    again.write_text(questions.read_text())
    both = _cli(
        "eval",
        str(questions),
        str(again),
        "--compare",
        str(small_index.index_dir),
        "--json",
        index=small_index.index_dir,
    )
    assert both.returncode == 0, both.stderr
    table = json.loads(both.stdout)
    assert list(table) == [f"{f} / all-MiniLM-L6-v2 #{n}" for f in ("q", "again") for n in (1, 2)]
    assert all(
        m["recall@5"] == metrics["recall@5"] for m in table.values()
    )  # the same index, the same answers
    out = tmp_path / "calibration.json"
    done = _cli("calibrate", str(questions), "--out", str(out), index=small_index.index_dir)
    assert done.returncode == 0, done.stderr
    model = Model.load(out)
    assert model.fitted_on == "q.jsonl" and model.weights[0] != 0.0

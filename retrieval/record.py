"""Answers as JSON-ready dicts (the --json / --jsonl schema) and as Markdown with numbered sources."""

from __future__ import annotations

from retrieval.types import Answer, Citation, Passage


def citation_dict(c: Citation) -> dict[str, object]:
    return {
        "n": c.number,
        "essay": c.essay,
        "title": c.title,
        "quote": c.quote,
        "start": c.start,
        "end": c.end,
        "verified": c.verified,
    }


def passage_dict(p: Passage) -> dict[str, object]:
    return {
        "rank": p.rank,
        "essay": p.chunk.essay_id,
        "title": p.essay.title,
        "start": p.chunk.start,
        "end": p.chunk.end,
        "score": round(p.score, 4),
        "text": p.chunk.text,
    }


def answer_dict(answer: Answer, **extra: object) -> dict[str, object]:
    """The documented JSON object for one answered question."""
    out: dict[str, object] = dict(extra)
    out.update(
        question=answer.question,
        standalone=answer.standalone,
        answer=answer.text,
        refused=answer.refused,
        mode=answer.mode,
        notice=answer.notice,
        citations=[citation_dict(c) for c in answer.citations],
        passages=[passage_dict(p) for p in answer.passages],
    )
    return out


def answer_markdown(answer: Answer) -> str:
    """An answer followed by its numbered sources, each quote marked verified or not."""
    lines = [answer.text, ""]
    if answer.notice:
        lines.insert(0, f"> {answer.notice}\n")
    if answer.refused:
        lines.append("Closest passages:")
        lines.extend(
            f"- {p.essay.title} ({p.chunk.essay_id}): “{_short(p.chunk.text)}”" for p in answer.passages
        )
    else:
        lines.append("Sources:")
        for c in answer.citations:
            mark = "verified" if c.verified else "NOT verified"
            lines.append(f"[{c.number}] {c.title} ({c.essay}, chars {c.start}-{c.end}, {mark}): “{c.quote}”")
    return "\n".join(lines)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"

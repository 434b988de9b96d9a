"""Running the incremental ingest from the page: a progress bar while it works, a summary after."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ingest.embed import load_embedder
from ingest.errors import IndexLocked, MarginaliaError
from ingest.pipeline import Summary, run_ingest
from ingest.settings import Settings
from ui.markup import escape

# Share of the bar each stage fills: scanning files is quick, embedding chunks is the work.
_STAGES = {
    "scan": (0.0, 0.1, "Reading essays"),
    "embed": (0.1, 0.95, "Embedding passages and their sentences"),
    "keyword": (0.95, 1.0, "Building the keyword index"),
}


@dataclass(frozen=True)
class Outcome:
    """What a run did, kept in session state so the summary survives the rerun that follows."""

    summary: Summary | None
    error: str = ""
    notes: tuple[str, ...] = ()  # what happened to uploads that were kept
    unsaved: tuple[str, ...] = ()  # uploads refused before the ingest, and why


def reindex(settings: Settings, *, notes: tuple[str, ...] = ()) -> Outcome:
    """Run the incremental ingest with a progress bar in the current container."""
    bar = st.progress(0.0, text="Loading the embedding model (made for this CPU the first time: 10-30 s)…")

    def progress(stage: str, done: int, total: int) -> None:
        low, high, label = _STAGES.get(stage, (0.0, 1.0, stage))
        share = done / total if total else 1.0
        counts = f" ({done} of {total})" if stage != "keyword" and total else ""
        bar.progress(min(1.0, low + (high - low) * share), text=f"{label}{counts}…")

    try:
        embedder = load_embedder(settings)
        bar.progress(0.0, text="Starting (waiting for any other reindex to finish)…")
        summary = run_ingest(settings, progress=progress, embedder=embedder)
    except IndexLocked as err:
        return Outcome(None, f"Another reindex is running, so this one did not start. {err}", notes)
    except MarginaliaError as err:
        return Outcome(None, str(err), notes)
    finally:
        bar.empty()
    return Outcome(summary, "", notes)


def show(outcome: Outcome) -> None:
    """The summary of a run: counts, then each file that changed or was rejected, and why."""
    for note in outcome.unsaved:
        st.warning(escape(note), icon=":material/block:")
    for note in outcome.notes:
        st.info(escape(note), icon=":material/info:")
    if outcome.error:
        st.error(escape(outcome.error), icon=":material/error:")
        return
    s = outcome.summary
    if s is None:
        return
    counts = (
        f"Added {len(s.added)}, updated {len(s.updated)}, removed {len(s.removed)}, "
        f"rejected {len(s.rejected)}; {len(s.unchanged)} unchanged. "
        f"{s.total_chunks} passages in the index ({s.seconds:.1f} s)."
    )
    (st.success if not s.rejected else st.warning)(counts, icon=":material/sync:")
    changes = [f"{kind}: {escape(p)}" for kind in ("added", "updated", "removed") for p in getattr(s, kind)]
    if changes:
        st.caption("  \n".join(changes))
    for r in s.rejected:
        st.warning(f"**{escape(r['path'])}** was not indexed: {escape(r['reason'])}", icon=":material/block:")

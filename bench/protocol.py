"""Readers without a browser: sessions that speak Streamlit's websocket protocol to `streamlit run app.py`.

Each session is a websocket of its own on /_stcore/stream (so a Streamlit session of its own) and
sends what the browser's frontend sends: a `rerun_script` BackMsg as it connects, then one per
question carrying the chat box's value. The server's ForwardMsgs are read back as the browser
reads them: element and block deltas at their paths make up the page, `script_finished` ends a run.
An answer is timed from sending the question to the end of the script run that drew it; the page
then holds what a browser would show, reduced to its text and kept in the same `Shown` a browser
session gives. No browser runs, so the machine's CPU goes to the server and, a little, to this
process parsing the messages: it measures the server, where `bench/readers.py` measures the whole.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import websockets  # Streamlit's own dependency (constraints.txt pins it): nothing new to install
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.typing import Subprotocol

from bench.measure import BenchError
from bench.readers import Shown, Start
from ui.markup import WORD_JOINER  # put inside Markdown triggers; invisible on the page

STREAMLIT = Subprotocol("streamlit")  # the subprotocol the frontend asks for (no XSRF token: no login)
_ICON = re.compile(r"(?<!\\):material/[a-z0-9_]+:")
_DIRECTIVE = re.compile(r"(?<!\\):[a-z]+(?:-[a-z]+)*\[((?:\\.|[^\]\\])*)\]")  # :blue-badge[1] → 1
_BOLD = re.compile(r"(?<!\\)\*\*((?:\\.|[^*\\])+)(?<!\\)\*\*")
_ESCAPED = re.compile(r"\\(.)")


def as_shown(markdown: str) -> str:
    """Streamlit Markdown as the page shows it: badges and colours as their text, icons, bold markers
    and escapes gone (close enough for `letters`, which compares answers by their letters)."""
    text = _DIRECTIVE.sub(r"\1", _ICON.sub("", markdown))
    text = _BOLD.sub(r"\1", text)
    return _ESCAPED.sub(r"\1", text).replace(WORD_JOINER, "")


@dataclass
class _Node:
    proto: Any = None  # an Element or a Block
    children: dict[int, _Node] = field(default_factory=dict)

    def walk(self) -> Iterator[_Node]:
        """This node and everything inside it, in page order."""
        yield self
        for n in sorted(self.children):
            yield from self.children[n].walk()


class Page:
    """What a session's page holds: the elements and blocks of the last script run, by delta path.

    A run sends the whole page again, so the page is rebuilt from each run's deltas; a delta
    replaces whatever was at its path (an `st.empty()` emptied, a placeholder filled)."""

    def __init__(self) -> None:
        self.root = _Node()

    def apply(self, delta, path: Sequence[int]) -> None:
        kind = delta.WhichOneof("type")
        if kind not in ("new_element", "add_block") or not path:
            return  # transients (the spinner) and other deltas are not part of the page
        parent = self.root
        for n in path[:-1]:
            parent = parent.children.setdefault(n, _Node())
        parent.children[path[-1]] = _Node(getattr(delta, kind))

    def main(self) -> _Node:
        return self.root.children.get(0, _Node())

    def messages(self) -> list[_Node]:
        """The chat messages in the main area, in order."""
        return [n for n in self.main().walk() if _block(n) == "chat_message"]

    def chat_input(self) -> str:
        """The chat box's widget id, "" when the page has none."""
        return next((n.proto.chat_input.id for n in self.root.walk() if _element(n) == "chat_input"), "")

    def error(self) -> str:
        """An exception or error the page shows, or ""."""
        for node in self.root.walk():
            kind = _element(node)
            if kind == "exception":
                e = node.proto.exception
                return f"{e.type}: {e.message}"[:500]
            if kind == "alert" and node.proto.alert.format == Alert.ERROR:
                return as_shown(node.proto.alert.body)[:500]
        return ""


def _element(node: _Node) -> str:
    which = getattr(node.proto, "WhichOneof", None)
    return which("type") if which and type(node.proto).__name__ == "Element" else ""


def _block(node: _Node) -> str:
    which = getattr(node.proto, "WhichOneof", None)
    return which("type") if which and type(node.proto).__name__ == "Block" else ""


def text_of(message: _Node) -> str:
    """A chat message's written text, in page order: Markdown, captions, alerts and headings."""
    parts = []
    for node in message.walk():
        kind = _element(node)
        if kind in ("markdown", "alert", "heading"):
            parts.append(as_shown(getattr(node.proto, kind).body))
    return "\n\n".join(parts)


def titles_of(message: _Node) -> tuple[str, ...]:
    """The essay titles of a message's source cards (the bold text in each card), in order, as the
    browser run reads them from `[class*="st-key-card-"] strong`."""
    titles = []
    for card in message.walk():
        if _block(card) and "-card-" in card.proto.id:  # key="card-…"
            for node in card.walk():
                if _element(node) == "markdown":
                    body = node.proto.markdown.body
                    titles += [as_shown(m.group(1)) for m in _BOLD.finditer(body)]
    return tuple(titles)


class Session:
    """One websocket session: `run()` sends a rerun (with the chat box's value, if any) and reads the
    page the script run draws, until it has finished."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.page = Page()
        self.page_hash = ""

    async def run(self, question: str | None = None) -> str:
        """One script run; an error the run ended with or the page shows, or ""."""
        back = BackMsg()
        back.rerun_script.query_string = ""
        back.rerun_script.page_script_hash = self.page_hash
        if question is not None:
            widget = back.rerun_script.widget_states.widgets.add()
            widget.id = self.page.chat_input()
            widget.chat_input_value.data = question
        await self.ws.send(back.SerializeToString())
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self.ws.recv())
            kind = msg.WhichOneof("type")
            if kind == "new_session":  # a run starts: the page is drawn afresh
                self.page = Page()
                self.page_hash = msg.new_session.page_script_hash
            elif kind == "delta":
                self.page.apply(msg.delta, msg.metadata.delta_path)
            elif kind == "ref_hash":  # only sent for messages a client says it has cached; we say none
                return f"the server referred to a cached message {msg.ref_hash}"
            elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
                return f"app.py failed to compile: {msg.session_event.script_compilation_exception.message}"
            elif kind == "script_finished":
                if msg.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY:
                    return f"the script run ended with status {msg.script_finished}"
                return self.page.error()


async def _session(
    url: str,
    number: int,
    questions: Sequence[str],
    start: Start,
    timeout_s: float,
    again: Callable[[], bool],
) -> list[Shown]:
    """The conversation, asked in a session of its own; asked again in a new session (a reader
    opening a new tab) as long as `again()` says so and no answer failed."""
    shown: list[Shown] = []
    began = 0.0
    for round_ in itertools.count():
        try:
            async with websockets.connect(
                stream_url(url), subprotocols=[STREAMLIT], max_size=None, open_timeout=timeout_s
            ) as ws:
                session = Session(ws)
                first = await asyncio.wait_for(session.run(), timeout_s)
                if first or not session.page.chat_input():
                    raise BenchError(f"session {number}: the page has no chat box ({first or 'no error'})")
                began = began or await start.wait()
                answers = await _conversation(session, number, round_, questions, began, timeout_s)
        except (OSError, TimeoutError, websockets.WebSocketException, BenchError) as err:
            if not began:
                raise  # before the sessions start asking: there is nothing to measure
            # A reader opening a new tab mid-run and not getting the page: its first question is lost.
            at = round(time.monotonic() - began, 3)
            answers = [Shown(number, 0, questions[0], at, 0.0, "", "", (), f"new session: {err}", round_)]
        shown += answers
        if any(a.error for a in answers) or not again():
            return shown
    raise AssertionError("unreachable")


async def _conversation(
    session: Session, number: int, round_: int, questions: Sequence[str], began: float, timeout_s: float
) -> list[Shown]:
    shown: list[Shown] = []
    for turn, question in enumerate(questions):
        before = len(session.page.messages())
        sent = time.monotonic()
        try:
            error = await asyncio.wait_for(session.run(question), timeout_s)
        except TimeoutError:
            late = f"no answer within {timeout_s:.0f} s"
            shown.append(Shown(number, turn, question, round(sent - began, 3), 0.0, "", "", (), late, round_))
            break
        except websockets.ConnectionClosed as err:
            error = f"connection closed: {err}"
        seconds = time.monotonic() - sent
        messages = session.page.messages()
        echo = messages[before] if len(messages) > before else None
        answer = messages[before + 1] if len(messages) > before + 1 else None
        if answer is None and not error:
            error = "no answer shown"
        shown.append(
            Shown(
                number,
                turn,
                question,
                round(sent - began, 3),
                round(seconds, 3),
                text_of(echo) if echo else "",
                text_of(answer) if answer else "",
                titles_of(answer) if answer else (),
                error,
                round_,
            )
        )
        if error:
            break
    return shown


def stream_url(url: str) -> str:
    """The websocket route of the app at `url` (http://host:port/)."""
    return re.sub(r"^http", "ws", url.rstrip("/")) + "/_stcore/stream"


async def _read(
    url: str,
    conversations: Sequence[Sequence[str]],
    timeout_s: float,
    on_start: Callable[[], None],
    on_end: Callable[[], None],
    again: Callable[[], bool],
) -> list[list[Shown]]:
    start = Start(len(conversations), on_start)
    sessions = (_session(url, n, qs, start, timeout_s, again) for n, qs in enumerate(conversations))
    shown = list(await asyncio.gather(*sessions))
    on_end()
    return shown


def read(
    url: str,
    conversations: Sequence[Sequence[str]],
    *,
    timeout_s: float = 60,
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
    again: Callable[[], bool] = lambda: False,
) -> list[list[Shown]]:
    """As `bench.readers.read`, over websockets: every session connects and is shown the page, then
    all ask their questions at once, each in order; what each session's page showed. A session that
    has asked its questions asks them again, in a new session, while `again()` is true (the whole
    reindex, which eight bare sessions would otherwise outpace)."""
    return asyncio.run(_read(url, conversations, timeout_s, on_start, on_end, again))

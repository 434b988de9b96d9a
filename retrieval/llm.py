"""Generative answers from a configured chat model (Ollama or OpenAI-compatible), grounded and verified."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage

from ingest.errors import MarginaliaError, SettingsError
from ingest.settings import Settings
from retrieval.ground import MARKER, EssayText, UngroundedReply, ground, is_refusal
from retrieval.prompts import answer_messages, condense_messages
from retrieval.types import CANNOT_ANSWER, Answer, Answerer, Passage, Turn

logger = logging.getLogger(__name__)

BACKENDS = ("openai", "ollama")
FALLBACK = "Showing the extractive answer instead"
# Reasoning models served through Ollama or llama.cpp may prepend their thinking to the reply.
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_LABEL = re.compile(r"^(?:standalone|rewritten|follow-up)?\s*question\s*:\s*", re.IGNORECASE)


class LLMUnavailable(MarginaliaError):
    """The configured LLM backend cannot be used as set up (missing package or setting)."""


class AnswerStream(Iterator[str]):
    """Text chunks as the model writes them; `.answer` is the verified Answer once they run out."""

    def __init__(
        self,
        chunks: Iterator[str],
        *,
        finish: Callable[[str], Answer],
        fail: Callable[[BaseException], Answer],
    ) -> None:
        self._chunks, self._finish, self._fail = chunks, finish, fail
        self._parts: list[str] = []
        self._answer: Answer | None = None

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self) -> str:
        if self._answer is not None:
            raise StopIteration
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._answer = self._finish(self.text)
            raise
        # A stream is an edge: a broken backend ends it with a notice, not a traceback.
        except Exception as err:  # noqa: BLE001
            self._answer = self._fail(err)
            raise StopIteration from None
        self._parts.append(chunk)
        return chunk

    @property
    def text(self) -> str:
        """The raw text streamed so far, before markers are cleaned and citations checked."""
        return "".join(self._parts)

    @property
    def answer(self) -> Answer:
        """The final Answer, reading the rest of the stream first if it has not been read."""
        while self._answer is None:
            next(self, None)
        return self._answer


class LLMAnswerer:
    """Answers with a chat model, then grounds and verifies the reply; on any fault, the fallback answers."""

    def __init__(
        self,
        settings: Settings,
        *,
        essay_text: EssayText,
        fallback: Answerer,
        chat_model: BaseChatModel | None = None,
        max_tokens: int = 512,
        context_chars: int = 12_000,
    ) -> None:
        if chat_model is None and settings.answer_mode not in BACKENDS:
            raise SettingsError(
                f"MARGINALIA_ANSWER_MODE={settings.answer_mode!r} is not an LLM backend; use openai or ollama"
            )
        self.settings, self.essay_text, self.fallback = settings, essay_text, fallback
        self.mode = f"llm:{settings.llm_model or 'default'}"
        self._chat_model, self._max_tokens, self._context_chars = chat_model, max_tokens, context_chars

    @property
    def chat_model(self) -> BaseChatModel:
        """The LangChain chat model, built on first use so a missing package surfaces as a notice."""
        if self._chat_model is None:
            self._chat_model = build_chat_model(self.settings, max_tokens=self._max_tokens)
        return self._chat_model

    def answer(self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = ()) -> Answer:
        """A cited, verified answer, the refusal, or the fallback's answer with a notice."""
        if not passages:
            return self._settle(question, passages, history, "")
        try:
            reply = self.chat_model.invoke(self._messages(question, passages, history)).text
        # The backend is an edge: every fault becomes a notice and the fallback's answer.
        except Exception as err:  # noqa: BLE001
            return self._fall_back(question, passages, history, err)
        return self._settle(question, passages, history, reply)

    def stream(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = ()
    ) -> AnswerStream:
        """Like `answer`, but yields text as it arrives; the result is on the stream's `.answer`."""

        def chunks() -> Iterator[str]:
            if not passages:
                return
            for chunk in self.chat_model.stream(self._messages(question, passages, history)):
                if chunk.text:
                    yield chunk.text

        return AnswerStream(
            chunks(),
            finish=partial(self._settle, question, passages, history),
            fail=partial(self._fall_back, question, passages, history),
        )

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        """The follow-up rewritten as a standalone question; the question as typed if that fails."""
        if not history or not question.strip():
            return question
        try:
            # One line is all we want; stopping there keeps a chatty model from answering the question too.
            reply = self.chat_model.invoke(condense_messages(question, history), stop=["\n"]).text
        # The backend is an edge: the question as typed still gets an answer.
        except Exception as err:  # noqa: BLE001
            logger.warning("%s; using the question as typed", describe_fault(err, self.settings))
            return question
        return standalone_question(reply, question)

    def _messages(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn]
    ) -> list[BaseMessage]:
        return answer_messages(question, passages, history, context_chars=self._context_chars)

    def _settle(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn], reply: str
    ) -> Answer:
        if not passages:
            return Answer(CANNOT_ANSWER, refused=True, question=question, mode=self.mode)
        try:
            grounded = ground(_THINK.sub("", reply), passages, self.essay_text)
        except UngroundedReply as err:
            return self._fall_back(question, passages, history, err)
        return Answer(
            text=grounded.text,
            citations=grounded.citations,
            refused=grounded.refused,
            passages=tuple(passages),
            question=question,
            mode=self.mode,
        )

    def _fall_back(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn], err: BaseException
    ) -> Answer:
        notice = f"{describe_fault(err, self.settings)}. {FALLBACK}."
        logger.info("%s", notice)  # the Answer carries the notice to the person; this is for the log
        # The traceback helps whoever debugs a backend, but must not reach the person's screen or terminal.
        logger.debug("LLM fault behind that notice", exc_info=err)
        return replace(self.fallback.answer(question, passages, history), notice=notice)


def build_chat_model(settings: Settings, *, max_tokens: int = 512) -> BaseChatModel:
    """The LangChain chat model for settings.answer_mode, at temperature 0 and without retries."""
    if settings.answer_mode == "openai":
        try:  # imported here: langchain-openai is an optional install (requirements-llm.txt)
            from langchain_openai import ChatOpenAI
            from pydantic import SecretStr
        except ImportError as err:
            raise LLMUnavailable(
                "langchain-openai is not installed; run pip install -r requirements-llm.txt"
            ) from err
        return ChatOpenAI(
            base_url=settings.llm_base_url or None,
            # Local servers need no key, but the client refuses to start without one.
            api_key=SecretStr(settings.llm_api_key or "not-needed"),
            model=settings.llm_model or "default",
            timeout=settings.llm_timeout,
            max_retries=0,  # a retry would double the wait before the fallback
            temperature=0,
            max_completion_tokens=max_tokens,
            # langchain-openai sends the limit as max_completion_tokens, which llama.cpp and other
            # OpenAI-compatible servers ignore; they read max_tokens. OpenAI itself gets only the former.
            extra_body={"max_tokens": max_tokens} if settings.llm_base_url else None,
        )
    if settings.answer_mode == "ollama":
        try:  # imported here: langchain-ollama is an optional install (requirements-llm.txt)
            from langchain_ollama import ChatOllama
        except ImportError as err:
            raise LLMUnavailable(
                "langchain-ollama is not installed; run pip install -r requirements-llm.txt"
            ) from err
        if not settings.llm_model:
            raise LLMUnavailable(
                "MARGINALIA_LLM_MODEL is empty; set it to a model the Ollama server has pulled"
            )
        return ChatOllama(
            base_url=settings.llm_base_url or None,
            model=settings.llm_model,
            temperature=0,
            num_predict=max_tokens,
            client_kwargs={"timeout": settings.llm_timeout},
        )
    raise SettingsError(
        f"MARGINALIA_ANSWER_MODE={settings.answer_mode!r} is not an LLM backend; use openai or ollama"
    )


def describe_fault(err: BaseException, settings: Settings) -> str:
    """One line for the person: what went wrong with the LLM and which setting to look at."""
    if isinstance(err, MarginaliaError):
        return str(err)
    where = settings.llm_base_url or (
        "the default Ollama address" if settings.answer_mode == "ollama" else ""
    )
    where = f"the LLM at {where}" if where else "the LLM"
    subject = "T" + where[1:]  # str.capitalize would lower-case the URL
    names = _exception_names(err)
    if any("Timeout" in name for name in names):
        seconds = f"{settings.llm_timeout:g} s"
        return f"{subject} did not answer within {seconds} (MARGINALIA_LLM_TIMEOUT)"
    if names & {"RemoteProtocolError", "ReadError"}:
        return f"The connection to {where} broke off mid-answer"
    if any("Connect" in name for name in names):
        return f"Could not reach {where}; check that it is running and MARGINALIA_LLM_BASE_URL is right"
    detail = " ".join(str(err).split())[:160]
    return f"{subject} failed ({type(err).__name__}: {detail})"


def standalone_question(reply: str, question: str) -> str:
    """The model's rewrite if it looks like one question; otherwise the question as typed."""
    lines = [line.strip() for line in _THINK.sub("", reply).splitlines() if line.strip()]
    if not lines:
        return question
    rewrite = _LABEL.sub("", lines[0]).strip(" \"'“”")
    too_long = len(rewrite) > max(300, 3 * len(question))
    if not rewrite or too_long or is_refusal(rewrite) or MARKER.search(rewrite):
        return question
    if question.rstrip().endswith("?") and not rewrite.endswith("?"):
        return question  # an answer, not a question
    return rewrite


def _exception_names(err: BaseException) -> set[str]:
    names: set[str] = set()
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:  # the chain can loop back on itself
        seen.add(id(link))
        names.update(cls.__name__ for cls in type(link).__mro__)
        link = link.__cause__ or link.__context__
    return names

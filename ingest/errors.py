"""The project's own exceptions; every message says what went wrong and what to do next."""

from __future__ import annotations


class MarginaliaError(Exception):
    """Base class for errors shown to the person using Marginalia."""


class RejectedFile(MarginaliaError):
    """A corpus file that cannot be indexed; `reason` is one line for the summary."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class SkippedFile(RejectedFile):
    """A corpus file with nothing to index (empty, whitespace only): reported, not an error."""


class IndexLocked(MarginaliaError):
    """Another ingest holds the index lock."""


class StoreUnavailable(MarginaliaError):
    """The Chroma server cannot be reached or refuses our credentials."""


class IndexMissing(MarginaliaError):
    """No index has been built yet at the configured location."""


class SettingsError(MarginaliaError):
    """A setting has a value we cannot use."""


class IndexMismatch(MarginaliaError):
    """The index was made with another embedding model than the one asked for."""


class ModelMissing(MarginaliaError):
    """The chosen embedding model is not installed on this machine."""

"""Domain errors: each says what went wrong and what to do next, in words a user can act on.

The core raises these; the fronts turn them into a one-line message (CLI, non-zero exit) or a
polite reply (bot). Anything else escaping the core is a bug and is logged with its traceback.
"""

from __future__ import annotations


class QABotError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code = 1


class InvalidQuestionError(QABotError):
    """The question is empty, too long, or has nothing to search for."""

    exit_code = 2


class SeedsError(QABotError):
    """The seeds folder is missing, unreadable or holds no usable article."""

    exit_code = 3


class IndexError_(QABotError):
    """The index on disk is missing, corrupted, locked or built for another setup."""

    exit_code = 4


class IndexMissingError(IndexError_):
    pass


class IndexCorruptError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    pass


class IndexLockedError(IndexError_):
    pass


class IndexWriteError(IndexError_):
    """Writing the new index failed (disk full, read-only folder); the old one is intact."""


class StoreUnavailableError(IndexError_):
    """The search engine holding the index (Milvus) cannot be reached; nothing was changed."""


class ModelError(QABotError):
    """A configured model (the embedder, the ranker, a reranker) cannot be loaded or used."""

    exit_code = 5

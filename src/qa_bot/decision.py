"""Whether the best passages answer the question: the learned decision, and the hand-made one
it replaced (kept for ``retrieval.ranker = "hand"`` and for models the learned one was not
trained for).

The learned decision is a logistic regression over :data:`qa_bot.features.QUESTION_FEATURES`
(how strongly the reranked best passages answer, how much of the question no article holds);
it answers when its probability reaches ``retrieval.answer_threshold``. It was trained with
answer-removed passages as negatives: the same question asked of the articles once the
sentence holding its answer is gone, which is exactly an on-topic question the articles do
not answer.

The hand-made evidence is ``coverage + evidence_dense_weight * cosine``: coverage is the
IDF-weighted share of the question's words in the best single passage of the top three (with
its article's title, outlet and date), the cosine the best of the top five.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa_bot.features import passage_coverage
from qa_bot.text import terms

if TYPE_CHECKING:
    from qa_bot.models import Hit
    from qa_bot.query import Query
    from qa_bot.settings import RetrievalSettings

#: Coverage that counts as every word of the question (rounding aside).
ALL_WORDS = 1.0 - 1e-9


@dataclass(frozen=True)
class Verdict:
    """Whether the best passages answer the question, and why (said to people who ask)."""

    answerable: bool
    #: IDF-weighted share of the question's words in the best passage (with its title).
    coverage: float
    reason: str
    #: The learned decision's probability that the question is answered, when it decided.
    confidence: float | None = None


def best_coverage(query: Query, hits: Sequence[Hit]) -> float:
    """The share of the question's words in the best single passage of the top three, with
    its title, outlet and date (pooling passages would let an off-topic question collect its
    words from unrelated articles)."""
    return max((passage_coverage(h, query.weights) for h in hits[:3]), default=0.0)


def learned_decision(
    query: Query,
    hits: Sequence[Hit],
    logit: float,
    settings: RetrievalSettings,
    *,
    read: bool,
    topic: float | None = None,
    tuned: bool = False,
) -> Verdict:
    """Answer when the answer model's probability reaches ``answer_threshold`` (or
    ``reader_answer_threshold`` when the reader has read the best passages: its decision is
    calibrated apart; ``reader_tuned_threshold`` when its decision for the articles it was
    tuned on weighed them, ``tuned``), unless the reader's topic model (``topic``, a logit)
    finds the question about something else than what the articles cover (below
    ``reader_topic_threshold``)."""
    probability = sigmoid(logit)
    coverage = best_coverage(query, hits)
    if topic is not None and sigmoid(topic) < settings.reader_topic_threshold:
        on_topic, needs = sigmoid(topic), settings.reader_topic_threshold
        reason = (
            f"the topic model gives {on_topic:.2f} that the question is about what the "
            f"articles cover (needs {needs:g})"
        )
        return Verdict(False, coverage, reason, probability)
    threshold = answer_threshold(settings, read=read, tuned=tuned)
    answerable = probability >= threshold
    who = "the answer model and the reader give" if read else "the answer model gives"
    which = ", the decision for the articles the reader was tuned on" if read and tuned else ""
    reason = f"{who} {probability:.2f} that the best passages answer (needs {threshold:g}{which})"
    return Verdict(answerable, coverage, reason, probability)


def answer_threshold(settings: RetrievalSettings, *, read: bool, tuned: bool) -> float:
    """The probability the learned decision answers at: with the reader's passages read, at
    the reader's threshold, or the tuned articles' when their decision weighed them."""
    if not read:
        return settings.answer_threshold
    return settings.reader_tuned_threshold if tuned else settings.reader_answer_threshold


def logit(probability: float) -> float:
    """The logit of a probability (infinite at 0 and 1: a threshold there always or never
    holds)."""
    if probability <= 0.0:
        return -math.inf
    if probability >= 1.0:
        return math.inf
    return math.log(probability / (1.0 - probability))


def sigmoid(logit: float) -> float:
    """A logistic model's probability from its logit."""
    return 1.0 / (1.0 + math.exp(-logit))


def decide(query: Query, hits: Sequence[Hit], settings: RetrievalSettings) -> Verdict:
    """The hand-made decision: coverage plus cosine must reach ``min_evidence``.

    Either alone fails: an on-topic question the corpus does not answer can have a higher
    cosine than an answerable one, and a paraphrased answerable question can share few words.
    One passage holding *every* word of the question needs only ``min_dense_all_words`` of
    cosine ("Who is Churkin?" embeds far from any window naming him in passing); so does a
    question asking who or what a name is, of a passage naming it.
    """
    weight, needed = settings.evidence_dense_weight, settings.min_evidence
    return _evidence_verdict(query, hits, settings, weight, needed)


def decide_about(query: Query, hits: Sequence[Hit], settings: RetrievalSettings) -> Verdict:
    """The same rule for a question about the article itself, with its own weight and
    threshold (``about_evidence_dense_weight``, ``about_min_evidence``): fitted by
    ``training/fit_about_evidence.py`` on such questions asked of the seeds, whose answer is
    the article's date line, outlet or headline, and on the same kind of question about
    stories the seeds do not hold, which it must decline."""
    weight, needed = settings.about_evidence_dense_weight, settings.about_min_evidence
    return _evidence_verdict(query, hits, settings, weight, needed)


def _evidence_verdict(
    query: Query,
    hits: Sequence[Hit],
    settings: RetrievalSettings,
    weight: float,
    needed: float,
) -> Verdict:
    """Coverage plus ``weight`` x cosine must reach ``needed``, or one of the exceptions."""
    if not hits:
        return Verdict(False, 0.0, "nothing matched")
    best = best_coverage(query, hits)
    top_dense = max((h.dense for h in hits[:5]), default=0.0)
    evidence = best + weight * top_dense
    reason = f"coverage {best:.2f} + {weight:g} x cosine {top_dense:.2f}"
    if evidence >= needed and top_dense >= settings.min_dense:
        return Verdict(True, best, f"{reason} = {evidence:.2f} (needs {needed:g})")
    low = settings.min_dense_all_words
    if best >= ALL_WORDS and top_dense >= low:
        why = f"one passage holds every word of the question, and cosine {top_dense:.2f}"
        return Verdict(True, best, f"{why} (needs {low:g})")
    subject = query.subject
    if subject is not None and subject.is_name and top_dense >= low:
        wanted = set(terms(subject.subject))
        if wanted and any(wanted <= set(terms(h.chunk.text)) for h in hits[:3]):
            why = f"a passage names “{subject.subject}”, whom or what the question asks about"
            return Verdict(True, best, f"{why}, and cosine {top_dense:.2f} (needs {low:g})")
    return Verdict(False, best, f"{reason} = {evidence:.2f} (needs {needed:g})")

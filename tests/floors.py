"""Floors for question files scored in groups of sets (``test_answers_realistic.py``,
``test_answers_heldout.py``): one test per group lets ``pytest -n 2`` share the work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qa_bot.evaluation import EvalQuestion, Report, evaluate
from qa_bot.service import QAService


@dataclass(frozen=True)
class Group:
    """Some sets of a file and the floors they keep: what they scored when they joined (or
    were last changed on purpose), three questions lower and rounded down, so that a package
    update or another CPU moving a question at the edge of the decision does not fail the
    suite.

    Since the forty-third round every floor is what the group's sample scored with the shipped
    path then (the forty-first round's reader, R40; benchmarks/README.md, "Test suite time,
    fourth part"). The groups the forty-fourth round added or moved to every fourth question
    have what theirs scored with the reader adopted then (R44), and those the forty-fifth round
    added what theirs scored with its export (plain attention); those the forty-sixth round
    added, and those the forty-seventh and forty-eighth rounds added, what theirs scored with
    that same path; those the forty-ninth round added, what theirs scored reading in two steps;
    those the fiftieth round added, what theirs scored reading one passage and one adapter read
    first; those the fifty-first round added, what theirs scored with that path (the adapter's
    gate) or with the adapter's reads among all the first stage's candidates (R51b's gate and
    after); those the fifty-second round added, what theirs scored with the shipped path (R52
    was not adopted). Each adoption kept every other group's floors.
    """

    sets: tuple[str, ...]
    first_quote: float
    answered: float
    declined: float
    #: Score every n-th of the group's questions (in file order), floors taken on those: 4 for
    #: groups whose every set a training script read (their scores measure nothing blind, and a
    #: quarter still catches a change that breaks the path), 2 for the blind checks nothing
    #: read (``test_training.py`` checks both). Every set was scored whole once, as a blind
    #: check; here they guard against regressions, at a suite time CI can afford.
    every: int


def grouped_sets(groups: Mapping[str, Group]) -> set[str]:
    """Every set the groups name; a set in two groups fails."""
    grouped = [s for g in groups.values() for s in g.sets]
    assert len(grouped) == len(set(grouped))
    return set(grouped)


def floored_report(service: QAService, questions: Sequence[EvalQuestion], group: Group) -> Report:
    """The group's questions (every ``group.every``-th) scored, after checking that every
    quote is verbatim and that first quotes, answers and declines keep the group's floors."""
    report = evaluate(service, questions[:: group.every], warmup=False, timed=False)
    assert report.faithfulness == 1.0
    assert report.first_quote_answer_rate is not None
    assert report.first_quote_answer_rate >= group.first_quote
    assert report.answered_rate is not None and report.answered_rate >= group.answered
    assert report.abstention_recall is not None and report.abstention_recall >= group.declined
    return report

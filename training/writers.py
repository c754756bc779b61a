"""The split of the seeds' realistic question sets by writer (the set id that starts a
question's id in ``tests/realistic_questions.jsonl``): which writers train the reader, which fit
its join and its decision, and which are only reported. ``tune_reader.py`` reads it, and so do
``train_quote.py`` and ``train_adapter.py``, so that one list says who is held out from what."""

from __future__ import annotations

from train_ranker import Example

#: The writers the query adapter trained on (and the ninth round's reader).
ADAPTER_WRITERS = tuple("cdefghijkopqstuvw")
#: The reader trains on those and on the blind checks of the eighth to tenth rounds (sets 5 to
#: 9, A and B, once they had served): more people's on-topic questions the articles do not answer.
TRAIN_WRITERS = ADAPTER_WRITERS + tuple("56789ab")
#: The blind checks of the sixth to thirteenth rounds, once they had served (R, X, Y, Z, 1 to
#: 4, P1 to P8), which the reader never trained on: since the fifteenth round they fit the
#: decision with L and M, for more people's on-topic questions the articles do not answer.
CHECKED_WRITERS = tuple("rxyz1234") + tuple(f"p{i}" for i in range(1, 9))
FIT_WRITERS = ("l", "m", *CHECKED_WRITERS)
#: The blind checks of the fourteenth to sixteenth rounds (P11 to P18, once they had served):
#: since the nineteenth round the shipped reader is the twelfth round's trained one more epoch
#: on them (``--base`` that reader ``--writers`` these), and they leave the report.
SERVED_WRITERS = tuple(f"p{i}" for i in range(11, 19))
#: The blind checks of the twenty-ninth to thirty-seventh rounds (P69 to P110, once they had
#: served), in no other list: since the thirty-eighth round the shipped reader is the
#: SERVED_WRITERS reader trained one more epoch on them (``--base`` it ``--writers`` these).
LATER_SERVED_WRITERS = tuple(f"p{i}" for i in range(69, 111))
#: The formal blind checks H72 to H94 and H111 to H118 (``tests/heldout_questions.jsonl``,
#: once they had served), in no other list but FOURTH_EPOCH_WRITERS: the thirty-ninth round
#: trained the shipped reader one more epoch on them alone (R39, measured, not adopted).
#: H95 to H110 stay out of every list, the read sets that measured it.
SERVED_FORMAL_SETS = tuple(f"h{i}" for i in [*range(72, 95), *range(111, 119)])
#: What the shipped reader's fourth epoch read (since the fortieth round; R39m, measured in the
#: thirty-ninth): the served formal checks and, again, the third epoch's P91 to P110, so that
#: people's questions keep their weight beside the formal ones (``--base`` the third-epoch
#: reader ``--writers`` these).
FOURTH_EPOCH_WRITERS = (*SERVED_FORMAL_SETS, *(f"p{i}" for i in range(91, 111)))
#: The blind checks of the thirty-eighth to fortieth rounds, once they had served (H119 to
#: H128 and P111 to P131), in no other list: what the shipped reader's fifth epoch read (since
#: the forty-first round; ``--base`` the fourth-epoch reader ``--writers`` these).
FIFTH_EPOCH_WRITERS = (*(f"h{i}" for i in range(119, 129)), *(f"p{i}" for i in range(111, 132)))
#: What the shipped reader's sixth epoch read (since the forty-fourth round; R44): the questions
#: written for training that describe where the articles name (WRITTEN_QUESTIONS' da to df) and
#: the blind checks of the forty-second and forty-third rounds, once they had served (P146 to
#: P157), in no other list (``--base`` the fifth-epoch reader ``--writers`` these).
SIXTH_EPOCH_WRITERS = (*(f"d{c}" for c in "abcdef"), *(f"p{i}" for i in range(146, 158)))
#: What a seventh epoch read (fifty-second round, R52, measured and not adopted): the vague and
#: yes/no questions written for training (``asked_examples.VAGUE_QUESTIONS``' va to vf) and the
#: blind checks P158 to P169, once they had served, which no epoch and no fit had read
#: (``--base`` the shipped sixth-epoch reader ``--writers`` these).
SEVENTH_EPOCH_WRITERS = (*(f"v{c}" for c in "abcdef"), *(f"p{i}" for i in range(158, 170)))
#: The blind checks of people's questions that served in the twenty-ninth to forty-ninth rounds
#: (P69 to P199), none of which fit the join or the decision or is reported by
#: ``tune_reader.py``: what ``train_adapter.py --served`` adds to ADAPTER_WRITERS (fifty-first
#: round), reporting the later checks P200 to P225 (ADAPTER_SERVED_REPORT) instead.
ADAPTER_SERVED_WRITERS = tuple(f"p{i}" for i in range(69, 200))
ADAPTER_SERVED_REPORT = tuple(f"p{i}" for i in range(200, 226))
#: The blind checks of the seventeenth to twenty-third rounds (P19 to P40, once they had
#: served), which the reader never trained on: since the twenty-sixth round they fit the
#: decision for the tuned articles with FIT_WRITERS, boosted trees needing more rows.
#: Since the thirty-first round (measured as D30 and E30 in the thirtieth), so do those of
#: the twenty-fourth to twenty-eighth (P41 to P62).
DECISION_WRITERS = tuple(f"p{i}" for i in range(19, 63))
#: The formal blind checks of the twenty-seventh to twenty-ninth rounds (H57 to H71 of
#: ``tests/heldout_questions.jsonl``, once they had served): since the thirty-first round they
#: fit that decision beside the written formal questions.
DECISION_FORMAL_SETS = tuple(f"h{i}" for i in range(57, 72))
#: Reported, never fitted: writer N and the blind checks of the fourteenth to sixteenth and
#: twenty-ninth and thirtieth rounds (less those an epoch trained on); the later ones (P69
#: on) are in no list, so that the shipped reader's record is what the script writes.
REPORT_WRITERS = ("n", *(f"p{i}" for i in [*range(11, 19), *range(63, 69)]))


def writer(e: Example) -> str:
    return e.question.set_id


def as_written(items: list[Example]) -> list[Example]:
    """Each question once, as its writer typed it (the typed copy adds nothing to a report)."""
    seen: set[str] = set()
    out = []
    for e in items:
        if e.question.id not in seen:
            seen.add(e.question.id)
            out.append(e)
    return out


def tuned_articles(seeds: list[Example], lineage: tuple[str, ...]) -> frozenset[str]:
    """The content hashes of the articles whose passages the reader read people's questions
    over in its epochs (those of the writers in ``lineage``): the decision for them is fitted
    apart (``fit_join.fit_decisions``)."""
    return frozenset(h.article.content_hash for e in seeds if writer(e) in lineage for h in e.hits)


def reported_writers(trained: tuple[str, ...]) -> tuple[str, ...]:
    """REPORT_WRITERS less those the reader trained on: a served check an epoch read is no
    longer a measure of it. A reader trained on a writer that fits the join is refused
    (ValueError): a decision fitted on questions the reader trained on trusts it too much."""
    overlap = sorted(set(trained) & {*FIT_WRITERS, *DECISION_WRITERS, *DECISION_FORMAL_SETS})
    if overlap:
        raise ValueError(f"the reader trains on {','.join(overlap)}, which fit the join")
    return tuple(w for w in REPORT_WRITERS if w not in trained)

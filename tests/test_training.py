"""The training scripts' labels: what the shipped reader's span head learned to point at.

The scripts are not part of the package (they need the external data sets and hours of CPU),
but a wrong target would train a head that points at the wrong tokens without any error, so
the step from a gold answer to its tokens is checked here with the packaged tokenizer. So is
the join's choice of the order's weights, which the shipped reader holds rather than fits.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training" / "data"))

import fit_about_evidence
import fit_join
import reader_record
import select_stories
import train_about
import train_reader

from qa_bot.evaluation import EvalQuestion
from qa_bot.ranker import LinearModel
from qa_bot.reader import ReaderSpec, load_spec
from qa_bot.settings import PACKAGED_READER
from qa_bot.trees import BoostedTrees


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from qa_bot.embedding import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(train_reader.BASE_MODEL))


def _encode(tokenizer, batch: list[train_reader.Pair]):
    return train_reader.encoded(tokenizer, batch, offsets=True)


def test_span_targets_point_at_the_answer_or_at_not_there(tokenizer) -> None:
    passage = "The drone flew over the convoy NEAR Aleppo at dawn, officials said."
    batch: list[train_reader.Pair] = [
        train_reader.Pair(
            "where did the drone fly", passage, 1.0, ("missing words", "near Aleppo")
        ),
        train_reader.Pair("where did the drone fly", passage, 0.0, ()),  # "not there"
        train_reader.Pair("who said it", passage, 1.0, ("nowhere in it",)),  # none found
    ]
    enc = _encode(tokenizer, batch)
    starts, ends, allowed = train_reader.span_targets(enc, batch)
    ids = enc["input_ids"][0, int(starts[0]) : int(ends[0]) + 1].tolist()
    # The first answer found in the passage, found case-insensitively, whole and nothing more.
    assert tokenizer.decode(ids) == "near aleppo"
    assert (int(starts[1]), int(ends[1])) == (0, 0)
    assert (int(starts[2]), int(ends[2])) == (0, 0)
    # What may be picked: the first token ("not there") and the passage, never the question
    # or a separator.
    segment = enc.sequence_ids(0)
    picked = [k for k, ok in enumerate(allowed[0].tolist()) if ok]
    assert picked[0] == 0 and all(segment[k] == 1 for k in picked[1:])
    assert len(picked) - 1 == sum(s == 1 for s in segment)


def test_span_loss_is_lowest_when_the_head_points_at_the_targets(tokenizer) -> None:
    import torch

    batch: list[train_reader.Pair] = [
        train_reader.Pair("what flew", "A drone flew over the convoy.", 1.0, ("A drone",)),
        train_reader.Pair("what flew", "Nothing about it here.", 0.0, ()),
    ]
    enc = _encode(tokenizer, batch)
    targets = train_reader.span_targets(enc, batch)
    starts, ends, _ = targets
    length = enc["input_ids"].shape[1]
    right = torch.zeros(2, length, 2)
    for row in range(2):
        right[row, int(starts[row]), 0] = right[row, int(ends[row]), 1] = 20.0
    wrong = torch.zeros(2, length, 2)
    wrong[:, 1, :] = 20.0  # a question token, which the loss never lets the head pick
    assert float(train_reader.span_loss(right, targets)) < 1e-3
    assert float(train_reader.span_loss(wrong, targets)) > 1.0


def _example(answers: tuple[str, ...], passages: list[tuple[str, bool]]):
    """An object shaped like train_ranker's Example, as far as ``pairs`` reads one."""
    from types import SimpleNamespace as NS

    return NS(
        query=NS(text="how many trucks were hit"),
        question=NS(answers=answers, unanswerable=not answers),
        hits=[NS(chunk=NS(text=text)) for text, _ in passages],
        labels=np.array([y for _, y in passages]),
    )


def test_the_answer_removed_passage_is_a_negative_counted_by_its_weight() -> None:
    import random

    answering = "The convoy was attacked at dawn. Eighteen trucks were hit. Aid was halted."
    e = _example(("Eighteen trucks",), [(answering, True), ("Talks resumed in Geneva.", False)])
    made = train_reader.pairs([e], random.Random(1), removed_weight=3.0)
    removed = [p for p in made if "convoy" in p.passage and p.label == 0.0]
    assert [p.passage for p in removed] == ["The convoy was attacked at dawn. Aid was halted."]
    assert removed[0].weight == 3.0 and removed[0].answers == ()
    # Every other pair counts once; an unanswerable question has no answer to remove.
    assert all(p.weight == 1.0 for p in made if p not in removed)
    none = _example((), [(answering, False)])
    assert all(p.weight == 1.0 for p in train_reader.pairs([none], random.Random(1), 10, 3.0))


def test_a_pair_counts_in_the_loss_by_its_weight() -> None:
    import torch

    batch = [
        train_reader.Pair("q", "answers", 1.0, ("a",)),
        train_reader.Pair("q", "removed", 0.0, (), 3.0),
    ]
    logit = torch.tensor([0.5, 1.5])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    each = bce(logit, torch.tensor([1.0, 0.0]), reduction="none")
    assert torch.isclose(train_reader.pair_loss(logit, batch), (each[0] + 3 * each[1]) / 2)
    plain = [b._replace(weight=1.0) for b in batch]
    assert torch.isclose(train_reader.pair_loss(logit, plain), each.mean())


def _joined_rows(count: int) -> list[dict]:
    """Rows as ``train_reader.scored`` makes them: the ranker puts a wrong passage first, and
    only a reader weighed at 4 or more moves the right one above it."""
    from qa_bot.features import QUESTION_FEATURES

    rng = np.random.default_rng(3)
    rows = []
    for i in range(count):
        unanswerable = i % 3 == 0
        reader = rng.normal(-3.0 if unanswerable else 1.0, 1.0, size=3)
        rows.append(
            {
                "set": "fold",
                "unanswerable": unanswerable,
                "all": {
                    "labels": np.array([0, 0, 0] if unanswerable else [0, 1, 0]),
                    "ranker": np.array([1.0, 0.0, -1.0]),
                    "near": np.zeros(3),
                    "reader": reader if unanswerable else np.array([0.0, 0.3, 0.0]) + reader[0],
                    "span": np.zeros(3),
                    "answer": float(rng.normal()),
                    "asked": rng.normal(size=len(QUESTION_FEATURES)),
                },
            }
        )
    return rows


def test_the_order_held_keeps_its_weights_and_the_same_decision() -> None:
    rows = _joined_rows(60)
    fitted = fit_join.fit_combination(rows, True)
    held = fit_join.fit_combination(rows, True, (2.0, 10.0))
    assert fitted[:2] == (4.0, 0.0)  # the smallest reader weight that puts the answer first
    assert held[:2] == (2.0, 10.0)
    assert held[2].names == fitted[2].names
    for part in ("mean", "scale", "coef"):
        np.testing.assert_array_equal(getattr(held[2], part), getattr(fitted[2], part))
    assert held[2].intercept == fitted[2].intercept


def test_the_order_is_chosen_on_its_own_rows_and_the_decision_on_the_join() -> None:
    rows = _joined_rows(60)
    # Rows where the adapted cosine alone finds the answer: only they can move the order there.
    near = [
        {**r, "all": {**r["all"], "reader": np.zeros(3), "near": np.array([0.0, 0.2, 0.0])}}
        for r in rows
    ]
    alone = fit_join.fit_combination(rows, True)
    apart = fit_join.fit_combination(rows, True, order_rows=near)
    assert alone[:2] == (4.0, 0.0)
    assert apart[:2] == (0.0, 10.0)  # the smallest adapter weight that puts the answer first
    for part in ("mean", "scale", "coef"):
        np.testing.assert_array_equal(getattr(apart[2], part), getattr(alone[2], part))


def test_the_decision_reads_the_passages_as_the_held_order_ranks_them() -> None:
    from qa_bot.reader import PASSAGE_INPUTS, READER_INPUTS, SPAN_INPUTS

    rows = _joined_rows(60)
    by_reader = fit_join.fit_combination(rows, True, (4.0, 0.0), passages=True)
    by_ranker = fit_join.fit_combination(rows, True, (0.0, 0.0), passages=True)
    names = by_reader[2].names
    # No span head in these rows: the decision reads no span input, and every other one.
    assert names[:2] == READER_INPUTS[:2] and not set(SPAN_INPUTS) & set(names)
    assert set(PASSAGE_INPUTS) - set(SPAN_INPUTS) <= set(names)
    first = names.index("reader_first")
    answered = [r for r in rows if not r["unanswerable"]]
    # The reader weighed at 4 puts the right passage (the reader's second logit) first; the
    # ranker alone, the first passage. The decision's rows read the one each order quotes.
    for order, position in (((4.0, 0.0), 1), ((0.0, 0.0), 0)):
        got = [fit_join.decision_inputs(r["all"], names, order)[first] for r in answered]
        assert got == [float(r["all"]["reader"][position]) for r in answered]
    assert by_reader[2].mean[first] != by_ranker[2].mean[first]


def test_the_topic_model_learns_off_topic_questions_from_their_set() -> None:
    from qa_bot.features import QUESTION_FEATURES

    rows = _joined_rows(60)
    # Off-topic questions asked of the articles: passages far from them (a low cosine), and
    # a reader that cannot tell them apart from the on-topic questions the articles lack.
    dense = QUESTION_FEATURES.index("best_dense")
    off = []
    for i, r in enumerate(rows[:30]):
        asked = r["all"]["asked"].copy()
        asked[dense] -= 3.0
        name = fit_join.OFF_TOPIC + ("-written" if i % 2 else "")
        off.append({**r, "set": name, "unanswerable": True, "all": {**r["all"], "asked": asked}})
    _, _, answer = fit_join.fit_combination(rows, True, (4.0, 0.0), passages=True)
    topic = fit_join.fit_topic(rows + off, answer.names, (4.0, 0.0))
    assert topic.names == answer.names
    dense_at = answer.names.index("best_dense")
    for model, fitted in ((answer, rows), (topic, rows + off)):  # the range of their own rows
        assert model.low is not None and model.high is not None
        seen = [fit_join.decision_inputs(r["all"], answer.names, (4.0, 0.0)) for r in fitted]
        np.testing.assert_array_equal(model.low, np.min(seen, axis=0))
        np.testing.assert_array_equal(model.high, np.max(seen, axis=0))
    assert topic.low[dense_at] < answer.low[dense_at]  # the off-topic rows' cosines are lower
    assert topic.coef[answer.names.index("best_dense")] > 1.0
    spec = ReaderSpec("m", 6, 128, 4.0, answer, topic=topic)
    off_declined = [not fit_join.answers(spec, r["all"], 0.0, 0.5) for r in off]
    on_answered = [fit_join.answers(spec, r["all"], 0.0, 0.5) for r in rows]
    assert np.mean(off_declined) > 0.9 and np.mean(on_answered) > 0.9
    # Without a topic threshold, the decision alone answers (here at 0: everything).
    assert all(fit_join.answers(spec, r["all"], 0.0, 0.0) for r in off)


def test_the_decision_reads_the_span_fits_only_when_asked_and_with_a_span_head() -> None:
    from qa_bot.reader_spans import SPAN_FIT_INPUTS

    rows = _joined_rows(60)
    for r in rows:  # a span head, and what its span in each passage holds
        r["all"] = {**r["all"], "span": r["all"]["reader"] / 2, "fits": np.ones((3, 4)) * 0.5}
    plain = fit_join.fit_combination(rows, True, (4.0, 0.0), passages=True)[2]
    fitted = fit_join.fit_combination(rows, True, (4.0, 0.0), passages=True, span_fits=True)[2]
    assert not set(SPAN_FIT_INPUTS) & set(plain.names)
    assert set(SPAN_FIT_INPUTS) <= set(fitted.names)
    at = fitted.names.index("span_new_words")
    assert fit_join.decision_inputs(rows[0]["all"], fitted.names, (4.0, 0.0))[at] == 0.5
    no_head = fit_join.fit_combination(
        _joined_rows(60), True, (4.0, 0.0), passages=True, span_fits=True
    )[2]
    assert not set(SPAN_FIT_INPUTS) & set(no_head.names)


def test_the_articles_the_reader_was_tuned_on_get_a_decision_of_their_own() -> None:
    """Rows whose first passage is from a tuned article fit one decision, the others another;
    with too few of either kind, one decision weighs every row, as before."""
    order = (4.0, 0.0)
    tuned = [{**r, "all": {**r["all"], "articles": ["t"] * 3}} for r in _joined_rows(300)]
    rng = np.random.default_rng(5)
    unread = []  # on articles it never read the reader says nothing; the answer model does
    for r in _joined_rows(300):
        told = -2.0 if r["unanswerable"] else 2.0
        a = {**r["all"], "articles": ["u"] * 3, "reader": rng.normal(size=3)}
        unread.append({**r, "all": {**a, "answer": told + float(rng.normal())}})
    general, own = fit_join.fit_decisions(tuned + unread, frozenset({"t"}), order)
    assert isinstance(general, LinearModel) and isinstance(own, BoostedTrees)
    assert own.names == general.names
    spec = ReaderSpec("m", 6, 128, 4.0, general, answer_tuned=own, tuned_articles=frozenset("t"))
    for rows in (tuned, unread):
        right = [fit_join.answers(spec, r["all"], 0.5, 0.0) != r["unanswerable"] for r in rows]
        assert np.mean(right) > 0.9
    # Weighed by the general decision alone, the tuned rows fare worse: it trusts the reader
    # as little as the unread articles call for.
    alone = replace(spec, answer_tuned=None)
    right = [fit_join.answers(alone, r["all"], 0.5, 0.0) != r["unanswerable"] for r in tuned]
    assert np.mean(right) < 0.9
    # The tuned decision may be fitted on rows of its own (more people's questions).
    _, fewer = fit_join.fit_decisions(
        tuned + unread, frozenset({"t"}), order, own_rows=tuned + tuned[:60]
    )
    assert fewer is not None and not np.array_equal(fewer.value, own.value)
    few = tuned[: 3 * fit_join.MIN_TUNED_ROWS // 2]  # about half of them unanswerable
    alone, none = fit_join.fit_decisions(few + unread, frozenset({"t"}), order)
    assert none is None
    every = fit_join.fit_decision(few + unread, True, order, True)
    np.testing.assert_array_equal(alone.coef, every.coef)


def test_flat_trees_give_what_the_classifier_that_fitted_them_gives() -> None:
    """``fit_join.trees_of`` reads the fitted classifier's nodes, which scikit-learn does not
    document: the flat trees must give its own decision function, missing inputs included."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(11)
    x = rng.normal(size=(600, 4))
    x[rng.random(x.shape) < 0.05] = np.nan
    y = (np.nan_to_num(x[:, 0]) * np.nan_to_num(x[:, 1]) + 0.3 * rng.normal(size=600)) > 0
    model = HistGradientBoostingClassifier(**fit_join.TREES, early_stopping=False, random_state=0)
    model.fit(x, y)
    trees = fit_join.trees_of(model, ("a", "b", "c", "d"))
    rows = rng.normal(size=(200, 4))
    rows[rng.random(rows.shape) < 0.1] = np.nan
    np.testing.assert_allclose(trees.logits(rows), model.decision_function(rows), atol=1e-9)
    again = BoostedTrees.from_json(json.loads(json.dumps(trees.to_json())))
    np.testing.assert_array_equal(again.logits(rows), trees.logits(rows))


def test_scored_rows_are_kept_per_group_for_the_same_inputs_only(tmp_path: Path) -> None:
    import tune_reader

    @dataclass(frozen=True)
    class Question:
        id: str
        question: str = "asked"

    @dataclass(frozen=True)
    class Item:
        question: Question

    weights = tmp_path / "weights.npz"
    weights.write_bytes(b"one")
    groups = {"fitted": [Item(Question("a-1")), Item(Question("a-2"))]}
    groups["reported"] = [Item(Question("n-1"))]
    calls: list[int] = []

    def scored(items: list) -> list[dict]:
        calls.append(len(items))
        return [{"id": item.question.id} for item in items]

    cache = tmp_path / "rows.pkl"
    first = tune_reader.scored_rows(cache, [weights], "int8", groups, scored)
    assert calls == [2, 1] and first["reported"] == [{"id": "n-1"}]
    assert tune_reader.scored_rows(cache, [weights], "int8", groups, scored) == first
    assert calls == [2, 1]  # read back, nothing scored again
    weights.write_bytes(b"two")  # other weights: their rows are scored afresh
    tune_reader.scored_rows(cache, [weights], "int8", groups, scored)
    assert calls == [2, 1, 2, 1]
    grown = {**groups, "reported": [*groups["reported"], Item(Question("n-2"))]}
    assert tune_reader.scored_rows(cache, [weights], "int8", grown, scored)["reported"][1] == {
        "id": "n-2"
    }
    assert calls == [2, 1, 2, 1, 2]  # only the group a question joined
    edited = {**grown, "fitted": [Item(Question("a-1", "asked again")), groups["fitted"][1]]}
    tune_reader.scored_rows(cache, [weights], "int8", edited, scored)
    assert calls == [2, 1, 2, 1, 2, 2]  # a question's words changed
    tune_reader.scored_rows(cache, [weights], "torch", {"fitted": edited["fitted"]}, scored)
    assert calls[-1:] == [2]  # the same questions read by the torch module
    tune_reader.scored_rows(None, [weights], "int8", groups, scored)
    assert calls[-2:] == [2, 1]
    cache.write_bytes(pickle.dumps({"key": "k", "rows": {}}))  # the layout of before
    tune_reader.scored_rows(cache, [weights], "int8", groups, scored)
    assert calls[-2:] == [2, 1]


def test_a_served_check_the_epoch_read_leaves_the_report_and_a_fit_writer_is_refused() -> None:
    import writers

    shipped = writers.reported_writers(writers.SERVED_WRITERS)
    assert shipped[0] == "n" and not set(shipped) & set(writers.SERVED_WRITERS)
    assert set(shipped) | set(writers.SERVED_WRITERS) == set(writers.REPORT_WRITERS)
    assert writers.reported_writers(writers.TRAIN_WRITERS) == writers.REPORT_WRITERS
    with pytest.raises(ValueError, match="l,p3, which fit the join"):
        writers.reported_writers(("p11", "p3", "l"))
    # Nor may it train on the writers that fit the decision for the tuned articles alone.
    with pytest.raises(ValueError, match="p20, which fit the join"):
        writers.reported_writers(("p11", "p20"))
    # Nor on the formal checks that fit it beside them.
    with pytest.raises(ValueError, match="h60, which fit the join"):
        writers.reported_writers(("h72", "h60"))
    assert writers.reported_writers(writers.SERVED_FORMAL_SETS) == writers.REPORT_WRITERS
    assert not {"h95", "h110"} & set(writers.SERVED_FORMAL_SETS)  # the read sets
    assert not set(writers.DECISION_WRITERS) & set(writers.REPORT_WRITERS)
    # What ships was trained on the served checks, and reports the rest.
    record = load_spec(PACKAGED_READER).provenance["writers"]
    assert tuple(record["train"]) == writers.SIXTH_EPOCH_WRITERS
    assert set(record["report"]) <= set(shipped)
    # The fifth and sixth epochs each read writers no earlier epoch read and nothing fits.
    fitted = {
        *writers.REPORT_WRITERS,
        *writers.FIT_WRITERS,
        *writers.DECISION_WRITERS,
        *writers.DECISION_FORMAL_SETS,
    }
    earlier = {*writers.FOURTH_EPOCH_WRITERS, *writers.LATER_SERVED_WRITERS}
    for epoch in (writers.FIFTH_EPOCH_WRITERS, writers.SIXTH_EPOCH_WRITERS):
        assert not set(epoch) & (earlier | fitted)
        earlier |= set(epoch)
    assert set(writers.FOURTH_EPOCH_WRITERS) - set(writers.SERVED_FORMAL_SETS) <= set(
        writers.LATER_SERVED_WRITERS
    )
    assert not set(writers.LATER_SERVED_WRITERS) & {
        *writers.REPORT_WRITERS,
        *writers.FIT_WRITERS,
        *writers.DECISION_WRITERS,
        *writers.SERVED_WRITERS,
    }


def test_the_adapter_trains_on_served_checks_that_fit_or_report_nothing_else() -> None:
    """``train_adapter.py --served``: its added checks fit no join or decision and leave no
    report of the reader's, and the checks it reports instead are none it trains on."""
    import writers

    served = set(writers.ADAPTER_SERVED_WRITERS)
    assert len(served) == 131 and {"p69", "p199"} <= served
    assert not served & {
        *writers.FIT_WRITERS,
        *writers.DECISION_WRITERS,
        *writers.REPORT_WRITERS,
        *writers.ADAPTER_WRITERS,
    }
    assert not served & set(writers.ADAPTER_SERVED_REPORT)
    assert {"p200", "p225"} <= set(writers.ADAPTER_SERVED_REPORT)


def test_groups_a_training_script_read_are_sampled_sparser_than_blind_checks() -> None:
    """A floor group (tests/floors.py, ``Group.every``) whose every set a training script read
    (an epoch of the shipped reader, the fit of its join or decision, or the ranker) is scored
    on every fourth question; one holding a blind check nothing read, on every second."""
    import train_ranker
    import writers

    from tests import test_answers_heldout, test_answers_realistic

    read = {
        *reader_record.trained_writers(load_spec(PACKAGED_READER).provenance),
        *writers.FIT_WRITERS,
        *writers.DECISION_WRITERS,
        *writers.DECISION_FORMAL_SETS,
        *train_ranker.SEED_SETS,
    }
    groups = {**test_answers_realistic.GROUPS, **test_answers_heldout.GROUPS}
    for name, group in groups.items():
        assert group.every == (4 if set(group.sets) <= read else 2), name
    assert {g.every for g in groups.values()} == {2, 4}  # both kinds are in the files


def test_the_writers_a_reader_trained_on_are_read_back_through_its_bases() -> None:
    import writers

    record = {
        "writers": {"train": ["p11", "p12"]},
        "base": {"writers": {"train": ["c", "p11"]}, "base": {"script": "train_reader.py"}},
    }
    assert reader_record.trained_writers(record) == ("p11", "p12", "c")
    assert reader_record.trained_writers({"script": "train_reader.py"}) == ()
    # The shipped reader: its sixth epoch's written questions and served checks, its fifth,
    # fourth, third and second epochs' served checks and its first epoch's writers.
    shipped = reader_record.trained_writers(load_spec(PACKAGED_READER).provenance)
    assert set(shipped) == {
        *writers.SIXTH_EPOCH_WRITERS,
        *writers.FIFTH_EPOCH_WRITERS,
        *writers.FOURTH_EPOCH_WRITERS,
        *writers.LATER_SERVED_WRITERS,
        *writers.SERVED_WRITERS,
        *writers.TRAIN_WRITERS,
    }


def test_a_masked_passage_keeps_the_sentence_and_loses_the_answer() -> None:
    passage = "The spokesman John Kirby said the army lost 62 troops on September 17."
    who = train_reader.masked(passage, "who was the spokesman", ("John Kirby", "Kirby"))
    assert who is not None and "Kirby" not in who
    assert who.startswith("The spokesman ") and who.endswith(
        " said the army lost 62 troops on September 17."
    )
    # A stand-in of the kind asked for, the same for the same question.
    assert any(m in who for m in train_reader.MASKS["person"])
    assert who == train_reader.masked(passage, "who was the spokesman", ("John Kirby", "Kirby"))
    many = train_reader.masked(passage, "how many troops did it lose", ("62 TROOPS",))
    assert many is not None and any(f"lost {m} on" in many for m in train_reader.MASKS["number"])
    # No answer in the passage: nothing to mask, no pair.
    assert train_reader.masked(passage, "who ordered it", ("Putin",)) is None


def test_the_masked_negative_joins_the_pairs_only_when_asked() -> None:
    import random

    answering = "The convoy was attacked at dawn. Eighteen trucks were hit. Aid was halted."
    e = _example(("Eighteen trucks",), [(answering, True), ("Talks resumed in Geneva.", False)])
    plain = train_reader.pairs([e], random.Random(1))
    with_mask = train_reader.pairs([e], random.Random(1), mask=True)
    added = [p for p in with_mask if p not in plain]
    assert len(added) == 1 and added[0].label == 0.0 and added[0].answers == ()
    assert "Eighteen" not in added[0].passage and "were hit" in added[0].passage


def _asked(
    text: str, *, test: bool = False, set_id: str = "", doc: str = "x.txt", set_name: str = ""
):
    """An example whose one answering passage says ``text``, asked as ``text`` too: what
    ``epoch_pairs`` reads."""
    e = _example(("Eighteen trucks",), [(f"{text} Eighteen trucks were hit.", True)])
    e.question.set_id, e.question.docs, e.question.id, e.test = set_id, (doc,), text, test
    e.query.text, e.set_name = text, set_name
    return e


def _epoch_args(**changes):
    """``tune_reader``'s arguments for what an epoch reads: nothing, no option on, but
    ``changes``."""
    from argparse import Namespace

    nothing = {
        "writers": (),
        "replay": 0,
        "removed_weight": 1.0,
        "masked": False,
        "swapped": False,
        "news": False,
        "xquad": False,
        "reorder": 0,
    }
    return Namespace(**{**nothing, **changes})


def _trained_doc() -> str:
    """A document outside the combination fold (one in five by crc32), which the replay reads."""
    return next(
        f"s{i}.txt"
        for i in range(20)
        if not train_reader.in_fold(_asked("d", doc=f"s{i}.txt").question)
    )


def test_the_fourth_batch_joins_the_epoch_only_when_asked_and_never_its_held_out_stories() -> None:
    from argparse import Namespace

    import tune_reader

    seeds = [_asked("Seeds written.", set_id="p11"), _asked("Seeds other.", set_id="p40")]
    data = [_asked("Replayed.", doc=_trained_doc())]
    news = [_asked("News trained."), _asked("News held out.", test=True)]
    args = _epoch_args(writers=("p11",), replay=10)

    def read(args: Namespace) -> set[str]:
        pairs, _ = tune_reader.epoch_pairs(args, seeds, data, news)
        return {p.passage.split(".")[0] for p in pairs}

    assert read(args) == {"Seeds written", "Replayed"}
    args.news = True
    assert read(args) == {"Seeds written", "Replayed", "News trained"}


def test_xquad_adds_its_pairs_the_replay_left_and_no_other_set_s() -> None:
    from argparse import Namespace
    from collections import Counter

    import tune_reader

    doc = _trained_doc()
    data = [
        _asked("Wiki.", doc=doc, set_name="xquad"),
        _asked("News.", doc=doc, set_name="reuters"),
    ]
    # Each question gives two pairs (its passage and the passage with its answer removed);
    # the replay draws one of the four.
    args = _epoch_args(replay=1)

    def read(args: Namespace) -> tuple[Counter, int]:
        pairs, added = tune_reader.epoch_pairs(args, [], data, [])
        return Counter(p.question for p in pairs), added

    replayed, added = read(args)
    assert sum(replayed.values()) == 1 and added == 0
    args.xquad = True
    read_more, added = read(args)
    # Both of XQuAD's pairs, once each; of the other set, only what the replay drew.
    assert read_more["Wiki."] == 2 and read_more["News."] == replayed["News."]
    assert added == 2 - replayed["Wiki."]


def test_reorder_reads_the_same_pairs_in_another_order() -> None:
    import tune_reader

    doc = _trained_doc()
    data = [_asked(f"Replayed {i}.", doc=doc) for i in range(12)]
    shipped, _ = tune_reader.epoch_pairs(_epoch_args(replay=24), [], data, [])
    again, _ = tune_reader.epoch_pairs(_epoch_args(replay=24), [], data, [])
    other, _ = tune_reader.epoch_pairs(_epoch_args(replay=24, reorder=1), [], data, [])
    assert again == shipped and other != shipped and sorted(other) == sorted(shipped)


@pytest.mark.skipif(not select_stories.REUTERS.is_dir(), reason="shared/external not present")
def test_the_fourth_batch_quotes_its_stories_seven_questions_a_writer() -> None:
    import json
    from collections import Counter

    root = Path(__file__).resolve().parents[1] / "training" / "data"
    chosen = (root / "selected_docs4.txt").read_text().split()
    lines = (root / "reuters_questions4.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len({r["id"] for r in rows}) == len(rows)
    # Seven questions a story from each writer who read it (one in four stories had two).
    per_story = Counter(r["doc"] for r in rows)
    assert sorted(per_story) == sorted(chosen) and set(per_story.values()) <= {7, 14}
    for r in rows:
        story = select_stories.body(r["doc"])
        if r.get("unanswerable"):
            assert r["answers"] == [], r["id"]
        else:
            assert r["answers"] and all(a in story for a in r["answers"]), r["id"]


@pytest.mark.parametrize(
    ("name", "writers", "unanswerable"),
    [
        ("FORMAL_QUESTIONS", {"fa": 120, "fb": 120}, 60),
        (
            "WRITTEN_QUESTIONS",
            {
                **{f"f{c}": 120 for c in "cdef"},
                **{f"t{c}": 100 for c in "abcdefghijklmnopqr"},
                **{f"d{c}": 100 for c in "abcdef"},
            },
            4 * 30 + 18 * 33 + 6 * 20,
        ),
    ],
)
def test_the_questions_written_for_the_decision_quote_the_seeds_they_name(
    name: str, writers: dict[str, int], unanswerable: int
) -> None:
    """The questions the decision for the tuned articles is fitted on (the written ones with
    ``--written``): each answer is in a seed its row names, verbatim (a normal-space copy of a
    span that crosses a non-breaking space only beside the exact one), and the unanswerable
    ones name none."""
    import asked_examples

    from qa_bot.evaluation import load_questions

    questions = load_questions(getattr(asked_examples, name))
    assert len({q.id for q in questions}) == len(questions)
    assert Counter(q.set_id for q in questions) == writers
    assert sum(q.unanswerable for q in questions) == unanswerable
    seeds = Path(__file__).resolve().parents[1] / "seeds"
    texts = {p.name[:3]: p.read_text(encoding="utf-8") for p in seeds.glob("*.txt")}
    for q in questions:
        if q.unanswerable:
            assert not q.answers and not q.docs, q.id
            continue
        held = [d for d in q.docs if any(a in texts[d] for a in q.answers)]
        assert held == list(q.docs), q.id
        for a in q.answers:
            exact = any(a in texts[d] for d in q.docs)
            assert (
                exact
                or any(a.replace(" ", "\u00a0") in texts[d] for d in q.docs)
                or any(b != a and b.replace("\u00a0", " ") == a for b in q.answers)
            ), (q.id, a)


def test_refits_leave_the_chain_of_what_made_the_weights() -> None:
    """A --join-only refit writes its weights' epoch record again: records in a row with the
    same epoch are one epoch, refitted, and leave the chain; another epoch, or a record
    before EPOCH_RECORD named a key, stays; the writers trained on are the same."""

    first = {"script": "train_reader.py", "seed": 7}
    epoch_a = {"script": "tune_reader.py", "writers": {"train": ["c"]}, "pairs": 9, "base": first}
    refit_a = {**epoch_a, "join": "again", "base": epoch_a}
    epoch_b = {**epoch_a, "writers": {"train": ["p11"]}, "pairs": 5, "base": refit_a}
    record = {
        **epoch_b,
        **reader_record.EPOCH_RECORD,
        "pairs": 5,
        "base": {**epoch_b, "base": epoch_b},
    }
    chain = reader_record.epoch_chain(record)
    assert chain["base"] == {**epoch_a, "join": "again", "base": first}
    assert (
        reader_record.trained_writers(chain)
        == reader_record.trained_writers(record)
        == ("p11", "c")
    )
    assert reader_record.epoch_chain(first) == first and reader_record.epoch_chain(None) is None


def test_reader_json_is_written_with_each_list_of_values_on_one_line(tmp_path: Path) -> None:
    """The spec reads back the same, and a tree's thousands of nodes are one line each, not
    one line a number."""
    spec = load_spec(PACKAGED_READER)
    written = reader_record.write_spec(tmp_path, spec, {"script": "test", "lists": [[1, 2], []]})
    text = written.read_text(encoding="utf-8")
    provenance = {"script": "test", "lists": [[1, 2], []]}
    assert json.loads(text) == replace(spec, provenance=provenance).to_json()
    again = ReaderSpec.from_json(json.loads(text))
    assert again.to_json() == replace(spec, provenance=provenance).to_json()
    assert len(text.splitlines()) < 300
    assert '  "left": [' in text and any(line.count(",") > 1000 for line in text.splitlines())
    assert reader_record.spec_text({"a": [{"b": []}], "c": {}}) == (
        '{\n "a": [\n  {\n   "b": []\n  }\n ],\n "c": {}\n}'
    )


def test_an_epoch_on_written_questions_keeps_them_out_of_the_decision() -> None:
    """``--writers`` may name writers of the written questions; ``--written`` beside them would
    fit the decision on questions the reader trained on, and is refused."""
    import argparse

    import tune_reader

    def args(writers: tuple[str, ...], written: bool = False, join_only: bool = False):
        return argparse.Namespace(writers=writers, written=written, join_only=join_only)

    seeds = {"p11", "p12", "c"}
    assert not tune_reader.reads_written(args(("p11", "p12")), seeds)
    assert tune_reader.reads_written(args(("p11", "ta")), seeds)
    assert not tune_reader.reads_written(args(("ta",), written=True, join_only=True), seeds)
    with pytest.raises(ValueError, match="--written"):
        tune_reader.reads_written(args(("ta",), written=True), seeds)
    # The formal blind checks an epoch may read are neither written questions nor refused.
    assert not tune_reader.reads_written(args(("p11", "h72", "h111")), seeds)
    assert not tune_reader.reads_written(args(("h72",), written=True), seeds)
    assert tune_reader.epoch_formal(args(("h72",), join_only=True)) == []
    assert tune_reader.epoch_formal(args(("p11", "ta"))) == []


def test_the_ranker_reads_the_seed_sets_it_was_trained_on_and_not_later_blind_checks() -> None:
    import train_ranker

    from qa_bot.evaluation import load_questions

    read = train_ranker.seed_sets()
    assert {q.set_id for q in read} == set(train_ranker.SEED_SETS)
    # The file holds more (blind checks appended once they had served), read by the tests only.
    everything = load_questions(train_ranker.ROOT / "tests/heldout_questions.jsonl")
    assert len(read) == 314 < len(everything)


def test_where_a_gold_answer_lies_labels_what_a_question_asks_of_its_article() -> None:
    page = (
        "Moscow answers the ultimatum\n\n28 Sep, 2016 15:59\n\nMoscow answered the US "
        "ultimatum, which 20 civilians had died before, Atwan told RT.\n"
    )
    article = train_about.parse_article(page, article_id="a", path="a.txt", digest="")
    assert train_about.located("28 Sep, 2016", article) == "date"
    assert train_about.located("20", article) == "none"  # not the "20" of "2016"
    assert train_about.located("answers the ultimatum", article) == "headline"
    assert train_about.located("ultimatum", article) == "none"  # the story says it too
    assert train_about.located("RT", article) == "outlet"


@pytest.mark.skipif(not select_stories.REUTERS.is_dir(), reason="shared/external not present")
def test_the_questions_about_articles_quote_their_articles() -> None:
    import re

    path = train_about.DATA / "about_questions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len({r["id"] for r in rows}) == len(rows) == 520
    assert Counter(r["id"].split("-")[0] for r in rows) == {
        "ra": 150,
        "rb": 150,
        "fg": 120,
        "fh": 100,
    }
    by_doc = train_about.articles(select_stories.REUTERS.parents[1])
    for r in rows:
        assert r["class"] in {*train_about.WRITTEN_PART, "story"} and r["style"] in {
            "formal",
            "casual",
        }
        texts = [re.sub(r"\s+", " ", by_doc[d].text).casefold() for d in r["docs"]]
        for answer in r["answers"]:
            wanted = re.sub(r"\s+", " ", answer).casefold()
            assert any(wanted in t for t in texts), r["id"]


def test_questions_about_articles_are_labelled_by_whether_the_seeds_hold_their_article() -> None:
    seeds = {"000", "004"}

    def asked(**fields: object) -> EvalQuestion:
        return EvalQuestion(id="fg-001", question="when was it published", **fields)

    label = fit_about_evidence.label
    assert label(asked(answers=("22 Sep",), docs=("004",)), seeds) == 1
    assert label(asked(answers=("1987-03-02",), docs=("reuters_00344.txt",)), seeds) == 0
    assert label(asked(unanswerable=True, kind="off-topic"), seeds) == 0
    # On topic, unanswered: whether the article is there is not what it asks.
    assert label(asked(unanswerable=True), seeds) is None


def test_the_fitted_rule_is_written_as_the_settings_write_it() -> None:
    rng = np.random.default_rng(0)
    there = np.column_stack([rng.uniform(0.5, 1.0, 60), rng.uniform(0.3, 0.7, 60)])
    elsewhere = np.column_stack([rng.uniform(0.0, 0.4, 60), rng.uniform(0.0, 0.3, 60)])
    x, y = np.vstack([there, elsewhere]), np.array([1] * 60 + [0] * 60)
    weight, threshold = fit_about_evidence.fitted(x, y, 10.0)
    answered = x[:, 0] + weight * x[:, 1] >= threshold
    assert weight > 0 and answered[:60].mean() > 0.95 and answered[60:].mean() < 0.05


def test_asked_examples_read_the_further_files_as_if_appended_and_key_the_cache_by_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asked_examples
    import train_ranker

    def row(qid: str) -> str:
        return json.dumps({"id": qid, "question": f"q {qid}", "answers": ["a"], "docs": ["000"]})

    first, vague = tmp_path / "written.jsonl", tmp_path / "vague.jsonl"
    first.write_text(row("fa-001") + "\n" + row("fa-002") + "\n", encoding="utf-8")
    vague.write_text(row("va-001") + "\n", encoding="utf-8")
    asked: list[list[str]] = []

    def examples(
        service: object, set_name: str, questions: list, test_of: object, rng: object
    ) -> list:
        asked.append([q.id for q in questions])
        return [q.id for q in questions]

    monkeypatch.setattr(asked_examples, "corpus_service", lambda work, corpus: None)
    monkeypatch.setattr(train_ranker, "examples", examples)

    def run() -> list:
        return asked_examples.asked_examples(
            tmp_path, first, "written", lambda q: False, "written", more=(vague,)
        )

    assert run() == ["fa-001", "fa-002", "va-001"]
    assert run() == ["fa-001", "fa-002", "va-001"] and len(asked) == 1  # cached
    vague.write_text(row("va-001") + "\n" + row("va-002") + "\n", encoding="utf-8")
    assert run()[-1] == "va-002" and len(asked) == 2  # the further file keys the cache too

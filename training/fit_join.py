"""How the reader's outputs join the learned stages: the order's two weights and the decision,
fitted over rows that ``train_reader.scored`` makes, and the report both scripts print.

Kept apart from the reader's training so that each part stays small; ``train_reader.py`` fits
the base reader's join with it, ``tune_reader.py`` the shipped one's.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import train_ranker
from train_ranker import SEED, fit

from qa_bot.decision import sigmoid
from qa_bot.features import QUESTION_FEATURES
from qa_bot.ranker import LinearModel
from qa_bot.reader import (
    PASSAGE_INPUTS,
    READER_INPUTS,
    SPAN_INPUTS,
    ReaderSpec,
    Reading,
    decision_row,
)
from qa_bot.reader_spans import SPAN_FIT_INPUTS
from qa_bot.trees import BoostedTrees, DecisionModel

#: The set name of questions asked of articles on another subject (``train_ranker`` names
#: its own so, and ``tune_reader`` the written off-topic questions).
OFF_TOPIC = "off-topic"
#: Weights tried for the reader's logit in the order (``--fit-order``).
RANK_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
#: Weights tried for the passages' cosines with the adapted question (when they are known).
ADAPTER_WEIGHTS = (0.0, 2.0, 5.0, 10.0, 20.0, 40.0)


#: Fewest rows of each kind (answered, not) the decision for the tuned articles is fitted on;
#: with fewer, one decision weighs every question.
MIN_TUNED_ROWS = 100
#: The boosted trees of the decision for the tuned articles (``fit_trees``): chosen among a
#: few by log loss over people's questions, held out a writer at a time (benchmarks/README.md,
#: "Twenty-sixth round").
TREES = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "l2_regularization": 1.0}
#: The inputs that say the passages answer (the reader's, the ranker's and the adapted
#: cosine's): the trees' probability may only rise with each. A region of the rows where a
#: surer reader or ranker meant "declined" is a quirk of those rows, not something to learn.
RISING = frozenset(
    {"answer_logit", "reader_best", "span_best", "reader_first", "span_first", "ranker_best"}
    | {"top_logit", "near_best"}
)


def reading_of(read: dict, tuned: frozenset[str] = frozenset()) -> Reading:
    """A scored row's passages read, as serving's reading stage hands them to the decision
    (``tuned``: the content hashes of the articles the reader was tuned on)."""
    near = read.get("near", np.zeros(len(read["reader"])))
    fits = read.get("fits")
    marks = np.array([a in tuned for a in read.get("articles", ())], dtype=bool)
    return Reading(
        read["reader"],
        read["span"],
        ranker=read["ranker"],
        near=near,
        fits=fits,
        tuned=marks if len(marks) else None,
    )


def first_right(r: dict, weight: float, adapter_weight: float = 0.0) -> int:
    a = r["all"]
    return int(a["labels"][reading_of(a).first((weight, adapter_weight))])


def fit_combination(
    rows: list[dict],
    questions: bool = False,
    order: tuple[float, float] | None = None,
    order_rows: list[dict] | None = None,
    passages: bool = False,
    span_fits: bool = False,
) -> tuple[float, float, LinearModel]:
    """The order's weights (:func:`fit_order`, on ``order_rows`` when given, else on ``rows``)
    and the decision over ``rows`` (:func:`fit_decision`), which reads the passages as ranked
    by that order (with ``span_fits``, also what the reader's span there holds)."""
    weight, adapter_weight = fit_order(rows if order_rows is None else order_rows, order)
    answer = fit_decision(rows, questions, (weight, adapter_weight), passages, span_fits)
    return weight, adapter_weight, answer


def fit_order(rows: list[dict], order: tuple[float, float] | None = None) -> tuple[float, float]:
    """The order's weights of the reader's logit and of the adapted cosine: the best top-1 on
    ``rows``, the smallest among equals; or ``order`` when given."""
    ranked = [r for r in rows if not r["unanswerable"] and r["all"]["labels"].any()]
    adapted = any(np.any(r["all"]["near"]) for r in ranked)
    grid = [(w, v) for w in RANK_WEIGHTS for v in (ADAPTER_WEIGHTS if adapted else (0.0,))]
    grid = grid if order is None else [order]
    scores = {wv: np.mean([first_right(r, *wv) for r in ranked]) for wv in grid}
    print(f"  fold top-1 by (reader, adapter) weight: {scores}", file=sys.stderr)
    return max(grid, key=lambda wv: (scores[wv], -wv[0], -wv[1]))


def decision_names(
    rows: list[dict], questions: bool, passages: bool, span_fits: bool
) -> tuple[str, ...]:
    """The inputs a decision over ``rows`` reads (:func:`fit_decision` says which)."""
    spans = any(np.any(r["all"]["span"]) for r in rows)
    names = READER_INPUTS[: 3 if spans else 2]
    names += tuple(n for n in PASSAGE_INPUTS if spans or n not in SPAN_INPUTS) if passages else ()
    names += SPAN_FIT_INPUTS if passages and span_fits and spans else ()
    return names + (QUESTION_FEATURES if questions else ())


def decision_data(
    rows: list[dict], names: tuple[str, ...], order: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decision's inputs, labels (1: answered) and weights over ``rows``: each question
    whose passages hold its answer or that nothing answers, and each answer-removed copy as
    unanswered, at half weight."""
    x, y, w = [], [], []
    for r in rows:
        if r["unanswerable"] or r["all"]["labels"].any():
            x.append(decision_inputs(r["all"], names, order))
            y.append(0 if r["unanswerable"] else 1)
            w.append(1.0)
        if "removed" in r:
            x.append(decision_inputs(r["removed"], names, order))
            y.append(0), w.append(0.5)
    return np.array(x), np.array(y), np.array(w)


def fit_decision(
    rows: list[dict],
    questions: bool = False,
    order: tuple[float, float] = (0.0, 0.0),
    passages: bool = False,
    span_fits: bool = False,
) -> LinearModel:
    """The decision over the reader's logit and span margin (with ``questions``, over the
    question features too, their weights fitted again beside the reader's; with ``passages``,
    over what the reader made of the passages as ``order`` ranks them, PASSAGE_INPUTS; with
    ``span_fits`` too, over what its span in the first of them holds, SPAN_FIT_INPUTS).
    Answer-removed copies count as unanswered, at half weight."""
    names = decision_names(rows, questions, passages, span_fits)
    x, y, w = decision_data(rows, names, order)
    answer = fit(x, y, 1.0, w, bounded=True)
    return replace(answer, names=names)


def fit_decisions(
    rows: list[dict],
    tuned: frozenset[str],
    order: tuple[float, float],
    span_fits: bool = False,
    own_rows: list[dict] | None = None,
) -> tuple[LinearModel, DecisionModel | None]:
    """The decision for articles the reader never read, a logistic regression fitted
    (:func:`fit_decision`, over the passages as ``order`` ranks them and the question) on the
    rows of ``rows`` whose passages are of that kind, and the one for the articles it was
    tuned on (``tuned``), boosted trees (:func:`fit_trees`) fitted on those of ``own_rows``
    (default ``rows``) whose passages all are: far more people's questions are asked of them,
    enough for trees to learn how the inputs weigh each other. The second is None when either
    side has fewer than MIN_TUNED_ROWS answerable or unanswerable rows, and the first is then
    fitted on every row of ``rows``."""
    own_rows = rows if own_rows is None else own_rows
    general = [r for r in rows if not reading_of(r["all"], tuned).all_tuned]
    own = [r for r in own_rows if reading_of(r["all"], tuned).all_tuned]
    counts = [
        (sum(not r["unanswerable"] for r in part), sum(r["unanswerable"] for r in part))
        for part in (general, own)
    ]
    if min(min(c) for c in counts) < MIN_TUNED_ROWS:
        return fit_decision(rows, True, order, True, span_fits), None
    answer = fit_decision(general, True, order, True, span_fits)
    return answer, fit_trees(own, answer.names, order)


def fit_trees(rows: list[dict], names: tuple[str, ...], order: tuple[float, float]) -> BoostedTrees:
    """Boosted trees (scikit-learn's HistGradientBoostingClassifier, TREES settings, seeded)
    over the decision's inputs ``names`` of ``rows``, as serving reads them."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y, w = decision_data(rows, names, order)
    rising = [int(n in RISING) for n in names]
    model = HistGradientBoostingClassifier(
        **TREES, monotonic_cst=rising, early_stopping=False, random_state=SEED
    )
    return trees_of(model.fit(x, y, sample_weight=w), names)


def trees_of(model, names: tuple[str, ...]) -> BoostedTrees:
    """A fitted binary HistGradientBoostingClassifier's trees, flat (``qa_bot.trees``). Its
    nodes are read from the fitted predictors, which scikit-learn does not document: the
    version is pinned in constraints.txt, and a test checks that the flat trees give the
    classifier's own decision function."""
    roots, feature, threshold, missing, left, right, value = [], [], [], [], [], [], []
    for (predictor,) in model._predictors:
        nodes, start = predictor.nodes, len(feature)
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits are not read")
        roots.append(start)
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(len(nodes)) + start
        feature += np.where(leaf, 0, nodes["feature_idx"]).tolist()
        threshold += np.where(leaf, 0.0, nodes["num_threshold"]).tolist()  # read by no row
        missing += nodes["missing_go_to_left"].astype(bool).tolist()
        left += np.where(leaf, own, nodes["left"].astype(np.int64) + start).tolist()
        right += np.where(leaf, own, nodes["right"].astype(np.int64) + start).tolist()
        value += np.where(leaf, nodes["value"], 0.0).tolist()
    return BoostedTrees(
        names,
        float(np.ravel(model._baseline_prediction)[0]),
        np.array(roots),
        np.array(feature),
        np.array(threshold),
        np.array(missing, dtype=bool),
        np.array(left),
        np.array(right),
        np.array(value),
    )


def fit_topic(rows: list[dict], names: tuple[str, ...], order: tuple[float, float]) -> LinearModel:
    """The topic model over the decision's inputs ``names``: a question of a set whose name
    starts with OFF_TOPIC (asked of articles on another subject) is off their topic, any other
    one (answerable or not) on it. Answer-removed copies are left out: their question is on
    the topic."""
    x = [decision_inputs(r["all"], names, order) for r in rows]
    y = [int(not r["set"].startswith(OFF_TOPIC)) for r in rows]
    topic = fit(np.array(x), np.array(y), 1.0, bounded=True)
    return replace(topic, names=names)


def answers(
    spec: ReaderSpec,
    read: dict,
    threshold: float,
    topic_threshold: float,
    tuned_threshold: float | None = None,
) -> bool:
    """Whether serving answers a scored row's question (``qa_bot.decision.learned_decision``
    with the reader; at ``tuned_threshold``, when given, on the articles it was tuned on)."""
    reading = reading_of(read, spec.tuned_articles)
    topic = spec.topic_logit(read["answer"], reading, read["asked"])
    if topic is not None and sigmoid(topic) < topic_threshold:
        return False
    if tuned_threshold is not None and spec.tuned_reading(reading):
        threshold = tuned_threshold
    return sigmoid(spec.answer_logit(read["answer"], reading, read["asked"])) >= threshold


def decision_inputs(
    read: dict, names: tuple[str, ...], order: tuple[float, float] = (0.0, 0.0)
) -> list[float]:
    """What the decision named ``names`` reads of the passages read (as serving does)."""
    return decision_row(read["answer"], reading_of(read), read["asked"], names, order)


def report(
    rows: list[dict],
    spec: ReaderSpec,
    threshold: float,
    topic_threshold: float = 0.0,
    tuned_threshold: float | None = None,
) -> dict[str, dict]:
    out = {}
    for name in sorted({r["set"] for r in rows}):
        part = [r for r in rows if r["set"] == name]
        ranked = [r for r in part if not r["unanswerable"] and r["all"]["labels"].any()]
        entry = {"questions": len(part)}
        if ranked:
            entry["ranker_top1"] = round(float(np.mean([first_right(r, 0.0) for r in ranked])), 4)
            joined = [first_right(r, *spec.order) for r in ranked]
            entry["with_reader_top1"] = round(float(np.mean(joined)), 4)
        for label, with_reader in (("ranker", False), ("with_reader", True)):
            right, declined = [], []
            for r in part:
                a = r["all"]
                answered = (
                    answers(spec, a, threshold, topic_threshold, tuned_threshold)
                    if with_reader
                    else sigmoid(a["answer"]) >= threshold
                )
                if r["unanswerable"]:
                    declined.append(not answered)
                else:
                    first = first_right(r, *(spec.order if with_reader else (0.0, 0.0)))
                    right.append(answered and bool(first))
            entry[f"{label}_first_passage_answers"] = train_ranker._mean(right)
            entry[f"{label}_unanswerable_declined"] = train_ranker._mean(declined)
        out[name] = entry
    return out

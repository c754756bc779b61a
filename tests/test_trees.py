"""The boosted trees serving reads as the decision for the tuned articles: walked by hand-built
trees, kept in JSON, refused when their nodes do not fit, and loaded from a reader's folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa_bot.ranker import LinearModel
from qa_bot.reader import WEIGHTS_FILE, ReaderError, ReaderSpec, load_spec
from qa_bot.trees import BoostedTrees, decision_from_json

NAMES = ("answer_logit", "reader_best")


def _trees() -> BoostedTrees:
    """Two trees: the first splits on answer_logit at 0 (left -1, right +1), its right child
    again on reader_best at 2 (+1 or +3); the second is a single leaf of 0.5. Missing inputs go
    right at the root, left at the second split."""
    return BoostedTrees(
        NAMES,
        baseline=-0.25,
        roots=np.array([0, 5]),
        feature=np.array([0, 0, 1, 0, 0, 0]),
        threshold=np.array([0.0, np.inf, 2.0, np.inf, np.inf, np.inf]),
        missing_left=np.array([False, False, True, False, False, False]),
        left=np.array([1, 1, 3, 3, 4, 5]),
        right=np.array([2, 1, 4, 3, 4, 5]),
        value=np.array([0.0, -1.0, 0.0, 1.0, 3.0, 0.5]),
    )


def test_a_row_takes_each_trees_leaf_and_a_missing_input_its_side() -> None:
    rows = np.array(
        [
            [-1.0, 9.0],  # left at the root: -1
            [0.0, 9.0],  # at the threshold goes left too: -1
            [1.0, 2.0],  # right, then left: +1
            [1.0, 2.5],  # right, then right: +3
            [np.nan, np.nan],  # right at the root, left at the second split: +1
        ]
    )
    want = -0.25 + 0.5 + np.array([-1.0, -1.0, 1.0, 3.0, 1.0])
    np.testing.assert_allclose(_trees().logits(rows), want)
    np.testing.assert_allclose(_trees().logits(rows[3]), want[3:4])  # one row alone


def test_trees_keep_in_json_and_a_linear_decision_names_no_kind() -> None:
    trees = _trees()
    data = json.loads(json.dumps(trees.to_json()))
    again = decision_from_json(data)
    assert isinstance(again, BoostedTrees) and again.names == NAMES
    rows = np.array([[0.5, 1.0], [0.5, 3.0], [-2.0, 0.0]])
    np.testing.assert_array_equal(again.logits(rows), trees.logits(rows))
    linear = LinearModel(NAMES, np.zeros(2), np.ones(2), np.array([1.0, 2.0]), 0.5)
    assert "kind" not in linear.to_json()
    assert isinstance(decision_from_json(linear.to_json()), LinearModel)
    with pytest.raises(ValueError, match="unknown kind"):
        decision_from_json({**data, "kind": "forest"})


@pytest.mark.parametrize(
    "broken",
    [
        {"left": [1, 1, 3, 3, 4, 6]},  # a child past the last node
        {"roots": [0, -1]},
        {"feature": [0, 0, 2, 0, 0, 0]},  # an input the decision does not read
        {"value": [0.0, -1.0, 0.0]},  # fewer values than nodes
        {"left": [1, 1, 0, 3, 4, 5]},  # a walk back to the root never ends on a leaf
    ],
)
def test_trees_whose_nodes_do_not_fit_are_refused(broken: dict) -> None:
    data = {**_trees().to_json(), **broken}
    with pytest.raises(ValueError, match="do not fit together"):
        decision_from_json(data)


def test_a_readers_folder_with_trees_loads_them_and_broken_ones_say_why(tmp_path: Path) -> None:
    answer = LinearModel(NAMES, np.zeros(2), np.ones(2), np.array([1.0, 0.0]), 0.0)
    spec = ReaderSpec(
        "m", 6, 128, 1.0, answer, answer_tuned=_trees(), tuned_articles=frozenset("a")
    )
    (tmp_path / "reader.json").write_text(json.dumps(spec.to_json()), encoding="utf-8")
    (tmp_path / WEIGHTS_FILE).write_bytes(b"")  # what the weights are is not read here
    loaded = load_spec(tmp_path)
    assert isinstance(loaded.answer_tuned, BoostedTrees)
    assert loaded.tuned_articles == {"a"}
    rows = np.array([[1.0, 2.5], [-1.0, 0.0]])
    np.testing.assert_array_equal(loaded.answer_tuned.logits(rows), _trees().logits(rows))
    broken = spec.to_json()
    broken["answer_tuned"]["left"] = [0]
    (tmp_path / "reader.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ReaderError, match="do not fit together"):
        load_spec(tmp_path)

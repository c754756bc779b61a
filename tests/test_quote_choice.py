"""The learned choice of the first quote's sentences (qa_bot.quote_choice)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa_bot.answer import compose, first_quote, hand_choice, quote_region
from qa_bot.errors import ModelError
from qa_bot.models import Chunk, Hit
from qa_bot.quote_choice import (
    INPUTS,
    QuoteModel,
    Sentences,
    choose,
    sentence_rows,
)
from qa_bot.ranker import LinearModel
from qa_bot.retrieval import Retrieval
from qa_bot.settings import RetrievalSettings

from .conftest import make_meta, windows

TEXT = (
    "Convoy attack\n\n"
    "Maria Zakharova spoke to reporters in Moscow on Thursday.\n\n"
    "The accusations against Russia are groundless and cynical, she said.\n\n"
    "The convoy was hit near Aleppo on Monday evening.\n\n"
    "Twenty people were killed, the Red Crescent said."
)
QUESTION = "who said the accusations against russia were groundless"


def _sentences(read: str | None = None) -> tuple[Sentences, Hit, list[Hit], dict[int, Chunk]]:
    chunks = windows(TEXT)
    best = next(i for i, c in enumerate(chunks) if "groundless" in c.text.split(".")[0])
    hit = Hit(best, chunks[best], make_meta(), 1.0, 1.0, 1.0)
    if read is not None:
        hit = Hit(best, chunks[best], make_meta(), 1.0, 1.0, 1.0, answer_at=TEXT.index(read))
    context = dict(enumerate(chunks))
    sentences = quote_region(hit, [hit], context, TEXT)
    assert sentences is not None
    return sentences, hit, [hit], context


def _index(sentences: Sentences, fragment: str) -> int:
    return next(i for i in range(len(sentences.spans)) if fragment in sentences.sentence(i))


def _steered(coef: dict[str, float]) -> QuoteModel:
    """A quote model that reads only the inputs named in ``coef``, unstandardised."""
    n = len(INPUTS)
    weights = np.array([coef.get(name, 0.0) for name in INPUTS])
    return QuoteModel(LinearModel(INPUTS, np.zeros(n), np.ones(n), weights, 0.0), {})


def test_the_region_and_its_neighbours_are_the_body_sentences_around_the_window() -> None:
    sentences, *_ = _sentences()
    said = _index(sentences, "groundless")
    assert said in sentences.region
    assert "Maria Zakharova" in sentences.sentence(said - 1)
    assert all(sentences.sentence(i) != "Convoy attack" for i in range(len(sentences.spans)))


def test_a_who_question_marks_the_neighbour_naming_someone_new() -> None:
    sentences, *_ = _sentences()
    rows = sentence_rows(QUESTION, sentences, {"accusations": 2.0, "groundless": 3.0}, None)
    column = {name: rows[:, k] for k, name in enumerate(INPUTS)}
    named, said = _index(sentences, "Zakharova"), _index(sentences, "groundless")
    assert column["who_names_new"][named] == 1.0
    assert column["who_names_new"][said] == 0.0
    assert column["who_pronoun_said"][said] == 1.0
    assert column["best_coverage"][said] == 1.0 and column["coverage"][named] == 0.0
    plain = sentence_rows("what was groundless", sentences, {"groundless": 3.0}, None)
    assert not plain[:, INPUTS.index("who_names_new")].any()


def test_the_reader_inputs_measure_the_distance_to_its_sentence() -> None:
    sentences, *_ = _sentences(read="cynical")
    said = _index(sentences, "groundless")
    assert sentences.read == said
    rows = sentence_rows(QUESTION, sentences, {}, None)
    assert rows[said, INPUTS.index("read")] == 1.0
    assert rows[said - 1, INPUTS.index("read_near")] == 1.0
    assert rows[said + 1, INPUTS.index("after_read")] == 1.0
    assert rows[said - 1, INPUTS.index("after_read")] == 0.0


def test_the_quote_grows_towards_the_better_scored_side() -> None:
    sentences, *_ = _sentences()
    said = _index(sentences, "groundless")
    scores = np.zeros(len(sentences.spans))
    scores[said] = 3.0
    scores[said - 1] = 2.0
    scores[said + 1] = 1.0
    limit = len(sentences.sentence(said)) + len(sentences.sentence(said - 1)) + 5
    quote = TEXT[slice(*choose(sentences, scores, limit, 3))]
    assert quote.startswith("Maria Zakharova") and quote.endswith("cynical, she said.")
    scores[said + 1] = 2.5
    quote = TEXT[slice(*choose(sentences, scores, limit, 3))]
    assert quote.startswith("The accusations") and quote.endswith("Monday evening.")
    # The better side not fitting, the other is taken; room for all, three sentences.
    assert TEXT[slice(*choose(sentences, scores, 1000, 3))].count(".") == 3


def test_the_quote_starts_from_the_best_scored_sentence_of_the_window_only() -> None:
    sentences, *_ = _sentences()
    scores = np.zeros(len(sentences.spans))
    outside = [i for i in range(len(sentences.spans)) if i not in sentences.region]
    assert outside
    scores[outside] = 9.0  # a neighbour is where growth may go, never where a quote starts
    start, end = choose(sentences, scores, 1, 3)
    assert (start, end) in [sentences.spans[i] for i in sentences.region]


def test_first_quote_uses_the_model_when_given_and_the_hand_order_without() -> None:
    sentences, hit, hits, context = _sentences(read="cynical")
    weights = {"accusations": 2.0, "groundless": 3.0}
    limit = 140
    hand = TEXT[slice(*first_quote(hit, hits, context, TEXT, limit, weights))]
    assert hand.startswith("The accusations") and "Zakharova" not in hand
    assert first_quote(hit, hits, context, TEXT, limit, weights) == hand_choice(
        sentences, weights, None, limit
    )
    model = _steered({"read": 5.0, "who_names_new": 3.0})
    learned = TEXT[
        slice(
            *first_quote(hit, hits, context, TEXT, limit, weights, question=QUESTION, model=model)
        )
    ]
    assert learned.startswith("Maria Zakharova") and learned.endswith("cynical, she said.")


def test_compose_passes_the_model_to_the_first_quote() -> None:
    _, _, hits, context = _sentences(read="cynical")
    retrieval = Retrieval(
        hits=hits,
        coverage=1.0,
        answerable=True,
        context=context,
        weights={"accusations": 2.0, "groundless": 3.0},
    )
    settings = RetrievalSettings(max_quote_chars=140)
    plain = compose(QUESTION, retrieval, lambda _: TEXT, settings)
    learned = compose(
        QUESTION,
        retrieval,
        lambda _: TEXT,
        settings,
        quote_model=_steered({"read": 5.0, "who_names_new": 3.0}),
    )
    assert "Zakharova" not in plain.citations[0].quote
    assert "Zakharova" in learned.citations[0].quote


def test_the_model_round_trips_and_refuses_other_inputs(tmp_path: Path) -> None:
    model = _steered({"read": 1.5, "coverage": 0.5})
    path = tmp_path / "quote.json"
    path.write_text(model.to_json(), encoding="utf-8")
    again = QuoteModel.load(path)
    assert again.model.names == INPUTS
    rows = np.random.default_rng(0).random((4, len(INPUTS)))
    assert np.allclose(again.scores(rows), model.scores(rows))
    data = json.loads(path.read_text(encoding="utf-8"))
    data["quote"]["names"] = [*INPUTS[:-1], "something_else"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match="reads"):
        QuoteModel.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="unreadable"):
        QuoteModel.load(path)


def test_the_packaged_model_loads_and_reads_this_versions_inputs() -> None:
    model = QuoteModel.load()
    assert model.model.names == INPUTS
    assert model.provenance.get("script") == "training/train_quote.py"
    assert model.model.low is not None  # it reads inputs within the range it was fitted on


def test_the_setting_names_the_packaged_model_a_file_or_none(tmp_path: Path) -> None:
    assert RetrievalSettings(quote_model="none").quote_model is None
    packaged = RetrievalSettings(quote_model="packaged").quote_model
    assert packaged is not None and packaged.name == "quote_model.json"
    assert (
        RetrievalSettings(quote_model=str(tmp_path / "q.json")).quote_model == tmp_path / "q.json"
    )

"""The passage reader: its shipped form, its ONNX export, and how it joins the learned stages."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import qa_bot.reader as reader_impl
import qa_bot.reader_export as reader_export_impl
from qa_bot.cli.base import report_lines
from qa_bot.errors import ModelError
from qa_bot.onnx_embedding import INT8_RECIPE
from qa_bot.ranker import LinearModel
from qa_bot.reader import (
    CONFIG_FILE,
    DECISION_INPUTS,
    GRAPH_FILE,
    SPEC_FILE,
    WEIGHTS_FILE,
    PassageReader,
    ReaderError,
    ReaderSpec,
    Reading,
    load_spec,
    open_reader,
    reader_dir,
)
from qa_bot.reader_export import (
    EXPORT_TOLERANCE,
    FRESH_HEADS,
    assemble,
    export_reader,
    first_layers_products,
    pack_deltas,
    reader_module,
    unpack_deltas,
)
from qa_bot.reader_spans import SPAN_FIT_INPUTS, best_spans, span_margins
from qa_bot.retrieval import Rankers
from qa_bot.service import QAService
from qa_bot.settings import PACKAGED_READER

from .conftest import CountingEmbedder, copy_project, make_settings, write_article
from .test_learned import _weights, tiny_bert

WORDS = "drone convoy flew over the siege city troops airport air base altitude how many".split()


def _answer(reader_weight: float, bias: float = 0.0) -> LinearModel:
    names = ("answer_logit", "reader_best")
    return LinearModel(names, np.zeros(2), np.ones(2), np.array([1.0, reader_weight]), bias)


def _span_answer() -> LinearModel:
    names = ("answer_logit", "reader_best", "span_best")
    return LinearModel(names, np.zeros(3), np.ones(3), np.array([1.0, 0.5, 1.0]), 0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReaderSpec, Path, Path]:
    """A tiny reader's folder as training writes it (its layers changed, a head), its weights
    file, and its export."""
    root = tmp_path_factory.mktemp("tiny-reader")
    base = tiny_bert(root / "base", WORDS, classifier=False)  # a stand-in for MiniLM
    return _tiny_reader(root, ReaderSpec(str(base), 2, 32, 1.0, _answer(1.0)))


@pytest.fixture(scope="module")
def tiny_span(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReaderSpec, Path, Path]:
    """The same with a span head, its decision reading the best span."""
    root = tmp_path_factory.mktemp("tiny-span-reader")
    base = tiny_bert(root / "base", WORDS, classifier=False)
    spec = ReaderSpec(str(base), 2, 32, 1.0, _span_answer(), span=True, max_span=4)
    return _tiny_reader(root, spec)


def _tiny_reader(root: Path, spec: ReaderSpec) -> tuple[ReaderSpec, Path, Path]:
    import torch

    module = reader_module(spec.base_model, spec.layers, span=spec.span)
    before = {k: v.numpy().copy() for k, v in module.state_dict().items()}
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not name.startswith("bert.embeddings."):
                p.add_(0.2 * torch.randn_like(p))
    tuned = {n: p.detach().numpy() for n, p in module.named_parameters() if "embeddings" not in n}
    trained = root / "trained"
    trained.mkdir()
    weights = trained / WEIGHTS_FILE
    base_state = {k: v for k, v in before.items() if not k.startswith(FRESH_HEADS)}
    np.savez_compressed(weights, **pack_deltas(tuned, base_state))
    (trained / SPEC_FILE).write_text(json.dumps(spec.to_json()), encoding="utf-8")
    return spec, weights, export_reader(spec, weights, root / "export")


def test_differences_round_trip_within_a_step_of_int8() -> None:
    rng = np.random.default_rng(0)
    base = {"m": rng.normal(size=(5, 7)).astype(np.float32), "v": np.ones(3, np.float32)}
    tuned = {"m": base["m"] + rng.normal(scale=0.01, size=(5, 7)), "v": np.full(3, 1.5)}
    got = unpack_deltas(pack_deltas(tuned, base))
    step = np.abs(tuned["m"] - base["m"]).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(got["m"] - (tuned["m"] - base["m"])) <= step / 2 + 1e-7)
    assert np.allclose(got["v"], 0.5)


def test_the_export_scores_as_the_assembled_model(tiny: tuple[ReaderSpec, Path, Path]) -> None:
    import torch
    from transformers import AutoTokenizer

    spec, weights, export = tiny
    passages = ["the drone flew over the convoy", "troops siege the city airport", "air base"]
    question = "how many drone flew over the convoy"
    got = PassageReader(export).scores(question, passages)
    module = assemble(spec, weights)
    enc = AutoTokenizer.from_pretrained(spec.base_model)(
        [question] * 3, passages, padding=True, truncation="only_second", return_tensors="pt"
    )
    with torch.no_grad():
        expected = module(**enc).numpy()
    assert got.shape == (3,)
    assert np.all(np.abs(got - expected) <= EXPORT_TOLERANCE)
    assert PassageReader(export).scores(question, []).shape == (0,)


def test_a_long_passage_is_cut_never_the_question(tiny: tuple[ReaderSpec, Path, Path]) -> None:
    reader = PassageReader(tiny[2])
    long = " ".join(["convoy"] * 500)
    assert np.isfinite(reader.scores("how many troops", [long])).all()


def test_a_damaged_export_is_refused_and_left_unused(
    tiny: tuple[ReaderSpec, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trained = tiny[1].parent
    folder = reader_dir(tmp_path, trained)
    shutil.copytree(tiny[2], folder)
    assert open_reader(tmp_path, trained) is not None
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    config["check_logit"] += 1.0
    (folder / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ReaderError, match="check pair") as caught:
        PassageReader(folder).verify()
    assert isinstance(caught.value, ModelError)
    with caplog.at_level(logging.WARNING):
        assert open_reader(tmp_path, trained) is None
    assert "without the reader" in caplog.text
    (folder / CONFIG_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ReaderError, match="no usable reader export"):
        PassageReader(folder)


def test_weights_naming_unknown_parameters_are_refused(
    tiny: tuple[ReaderSpec, Path, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"bert.nothing.weight:h": np.zeros(3, np.float16)})
    with pytest.raises(ReaderError, match="parameters the model lacks"):
        assemble(tiny[0], bad)


def test_a_trained_folder_is_read_and_checked(
    tiny: tuple[ReaderSpec, Path, Path], tmp_path: Path
) -> None:
    assert load_spec(tiny[1].parent).to_json() == tiny[0].to_json()
    with pytest.raises(ReaderError, match="no usable reader"):
        load_spec(tmp_path)
    (tmp_path / SPEC_FILE).write_text(json.dumps(tiny[0].to_json()), encoding="utf-8")
    with pytest.raises(ReaderError, match=r"reader_weights\.npz is missing"):
        load_spec(tmp_path)
    # Retrained weights are exported afresh: the export's folder is named by them.
    before = reader_dir(tmp_path, tmp_path)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"retrained")
    assert reader_dir(tmp_path, tmp_path) != before


def test_a_new_int8_recipe_exports_the_reader_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An export made by an older recipe answers differently on some CPUs: never reuse it.
    (tmp_path / WEIGHTS_FILE).write_bytes(b"weights")
    before = reader_dir(tmp_path, tmp_path)
    monkeypatch.setattr(reader_impl, "INT8_RECIPE", {**INT8_RECIPE, "reduce_range": False})
    reader_impl._digest.cache_clear()
    recipe = reader_dir(tmp_path, tmp_path)
    assert recipe != before
    # Nor one that quantized other layers, nor one traced with another attention.
    monkeypatch.setattr(reader_impl, "FLOAT_LAYERS", reader_impl.FLOAT_LAYERS + 1)
    reader_impl._digest.cache_clear()
    layers = reader_dir(tmp_path, tmp_path)
    assert layers not in {before, recipe}
    monkeypatch.setattr(reader_impl, "READER_ATTENTION", "sdpa")
    reader_impl._digest.cache_clear()
    assert reader_dir(tmp_path, tmp_path) not in {before, recipe, layers}
    reader_impl._digest.cache_clear()


def test_the_export_keeps_the_first_layers_in_float_and_quantizes_the_rest(
    tiny: tuple[ReaderSpec, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    spec, weights, _ = tiny
    monkeypatch.setattr(reader_export_impl, "FLOAT_LAYERS", 1)  # the tiny model has two
    export = export_reader(spec, weights, tmp_path / "export")
    nodes = onnx.load(str(export / GRAPH_FILE)).graph.node
    ops = {layer: {n.op_type for n in nodes if f"/layer.{layer}/" in n.name} for layer in (0, 1)}
    assert "MatMulInteger" not in ops[0]  # its weights' products, kept in float
    assert "MatMulInteger" in ops[1]
    assert PassageReader(export).scores("who flew", ["the drone flew"]).shape == (1,)


def test_the_reader_is_traced_with_plain_attention(tiny: tuple[ReaderSpec, Path, Path]) -> None:
    # torch's default attention traces its mask through Where and IsNaN in every layer.
    import onnx

    nodes = onnx.load(str(tiny[2] / GRAPH_FILE)).graph.node
    layers = {n.op_type for n in nodes if "/layer." in n.name}
    assert "Softmax" in layers
    assert not layers & {"IsNaN", "Where"}


def test_the_first_layers_products_are_found_by_their_layer_number(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    names = ["/bert/encoder/layer.0/q/MatMul", "/bert/encoder/layer.1/q/MatMul"]
    names += ["/bert/encoder/layer.10/q/MatMul", "/head/Gemm"]
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("MatMul", ["x", "x"], [f"y{i}"], name=n) for i, n in enumerate(names)]
    nodes.append(helper.make_node("Add", ["x", "x"], ["z"], name="/bert/encoder/layer.0/Add"))
    graph = helper.make_graph(
        nodes, "g", [vi("x", TensorProto.FLOAT, [2, 2])], [vi("z", TensorProto.FLOAT, [2, 2])]
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "g.onnx"))
    assert first_layers_products(tmp_path / "g.onnx", 2) == names[:2]
    assert first_layers_products(tmp_path / "g.onnx", 0) == []


# --- the span head -------------------------------------------------------------------------------


def test_span_margins_read_only_the_passage_and_the_longest_span_allowed() -> None:
    # [CLS] q q [SEP] p p p p [SEP] pad: the passage is tokens 4 to 7.
    types = np.array([[0, 0, 0, 0, 1, 1, 1, 1, 1, 0]])
    batch = {"token_type_ids": types, "attention_mask": np.array([[1] * 9 + [0]])}
    span = np.zeros((1, 10, 2))
    span[0, 0] = (1.0, 1.0)  # "not there": 2
    span[0, 1] = (50.0, 50.0)  # a question token: never picked
    span[0, 8] = (50.0, 50.0)  # the closing separator: never picked
    span[0, 4, 0], span[0, 7, 1] = 3.0, 4.0  # a span of four tokens...
    span[0, 5, 1] = 1.0  # ... and a shorter, weaker one
    assert span_margins(span, batch, max_span=4)[0] == pytest.approx(3.0 + 4.0 - 2.0)
    assert span_margins(span, batch, max_span=3)[0] == pytest.approx(3.0 + 1.0 - 2.0)
    # An end before the start is no span.
    span[0, 4, 1], span[0, 7, 0] = 0.0, 0.0
    span[0, 6, 0], span[0, 5, 1] = 9.0, 9.0
    assert span_margins(span, batch, max_span=4)[0] == pytest.approx(9.0 + 4.0 - 2.0)
    margins, firsts, lasts = best_spans(span, batch, max_span=4)
    assert margins[0] == pytest.approx(9.0 + 4.0 - 2.0)
    assert (firsts[0], lasts[0]) == (6, 7)  # where it starts and ends
    empty = {"token_type_ids": np.zeros((1, 10), int), "attention_mask": np.ones((1, 10), int)}
    assert best_spans(span, empty, max_span=4)[1][0] == -1


def test_a_span_export_reads_as_the_assembled_model(
    tiny_span: tuple[ReaderSpec, Path, Path],
) -> None:
    import torch
    from transformers import AutoTokenizer

    spec, weights, export = tiny_span
    passages = ["the drone flew over the convoy", "troops siege the city airport", "air base"]
    question = "how many drone flew over the convoy"
    got = PassageReader(export).read(question, passages)
    enc = AutoTokenizer.from_pretrained(spec.base_model)(
        [question] * 3, passages, padding=True, truncation="only_second", return_tensors="pt"
    )
    with torch.no_grad():
        logits, span = assemble(spec, weights)(**enc)
    batch = {k: v.numpy() for k, v in enc.items()}
    expected = span_margins(span.numpy().astype(np.float64), batch, spec.max_span)
    assert np.all(np.abs(got.logits - logits.numpy()) <= EXPORT_TOLERANCE)
    assert got.spans.shape == (3,) and np.all(np.abs(got.spans - expected) <= 2 * EXPORT_TOLERANCE)
    assert len(set(np.round(got.spans, 3))) == 3  # one margin per passage, not one for all
    assert PassageReader(export).read(question, []).spans.shape == (0,)
    # Where each best span starts: a word of its passage, never of the question.
    for row, passage in enumerate(passages):
        at = got.start_of(row)
        assert 0 <= at < len(passage) and (at == 0 or passage[at - 1] == " ")
    # What each span holds, one row per passage; the question asks for a number, not someone.
    assert got.fits is not None and got.fits.shape == (3, len(SPAN_FIT_INPUTS))
    assert not got.fits[:, SPAN_FIT_INPUTS.index("asks_person")].any()


def test_a_decision_reading_spans_needs_a_span_head(
    tiny_span: tuple[ReaderSpec, Path, Path], tiny: tuple[ReaderSpec, Path, Path], tmp_path: Path
) -> None:
    spec = tiny_span[0]
    with pytest.raises(ValueError, match="span_best"):
        replace(spec, span=False)
    assert load_spec(tiny_span[1].parent).to_json() == spec.to_json()
    (tmp_path / WEIGHTS_FILE).write_bytes(b"")
    (tmp_path / SPEC_FILE).write_text(
        json.dumps({**spec.to_json(), "span": False}), encoding="utf-8"
    )
    with pytest.raises(ReaderError, match="no usable reader"):
        load_spec(tmp_path)
    # A spec naming a span head over weights trained without one is refused, not made up.
    with pytest.raises(ReaderError, match="span head"):
        assemble(replace(tiny[0], span=True), tiny[1])


# --- joining the learned stages ------------------------------------------------------------------


class SteeredReader:
    """A reader that likes passages holding one word: it steers the stage, to see it obeyed."""

    def __init__(self, word: str, spec: ReaderSpec):
        self.word, self.spec = word, spec
        self.passages: list[str] = []

    def read(self, question: str, passages: list[str]) -> Reading:
        self.passages += passages
        logits = np.array([8.0 if self.word in p else -8.0 for p in passages])
        if not self.spec.span:
            return Reading(logits, np.zeros(len(passages)))
        return Reading(logits, logits / 2, np.array([p.find(self.word) for p in passages]))


def _learned_service(tmp_path: Path, *, reader: Path | None = None) -> QAService:
    seeds = tmp_path / "seeds"
    for i, text in enumerate(
        [
            "A drone flew over the convoy at dawn, officials said.",
            "The convoy left the city at noon with 31 trucks.",
            "Troops guarded the convoy near the air base at Incirlik.",
        ]
    ):
        write_article(seeds, f"{i}.txt", f"Convoy report {i}", text)
    path = tmp_path / "r.json"
    path.write_text(_weights("counting-fake", 3.0).to_json(), encoding="utf-8")
    # It reads its passages at once (tests/test_read_steps.py reads them in two steps).
    retrieval = {"ranker_path": path, "reader": reader, "reader_first_depth": 30}
    service = QAService(
        make_settings(tmp_path, seeds, retrieval=retrieval), embedder=CountingEmbedder()
    )
    service.index()
    return service


def _steer(service: QAService, reader: SteeredReader) -> None:
    learned = service.rankers.learned
    assert learned is not None
    service.__dict__["rankers"] = Rankers(learned, None, reader)  # type: ignore[arg-type]


def test_the_reader_orders_the_best_passages_and_joins_the_decision(tmp_path: Path) -> None:
    service = _learned_service(tmp_path)  # the steered reader is put in below
    question = "what was near the convoy"
    plain = service.search(question)
    assert plain is not None and plain.answerable
    spec = ReaderSpec("all-MiniLM-L6-v2", 6, 128, 1.0, _answer(0.0))
    reader = SteeredReader("Incirlik", spec)
    _steer(service, reader)
    read = service.search(question)
    assert read is not None
    assert "Incirlik" in read.hits[0].chunk.text
    assert len(reader.passages) == min(service.settings.retrieval.reader_depth, len(plain.hits))
    # Its best logit joins the decision as the spec's answer model weighs it.
    _steer(service, SteeredReader("Incirlik", ReaderSpec("m", 6, 128, 1.0, _answer(-5.0))))
    declined = service.search(question)
    assert declined is not None and not declined.answerable


def test_the_best_span_joins_the_decision_when_the_reader_has_a_span_head(
    tmp_path: Path,
) -> None:
    service = _learned_service(tmp_path)
    names = ("answer_logit", "reader_best", "span_best")

    def spec(span_weight: float) -> ReaderSpec:
        answer = LinearModel(names, np.zeros(3), np.ones(3), np.array([0, 0, span_weight]), 0.0)
        return ReaderSpec("m", 6, 128, 1.0, answer, span=True)

    for word, weight, answerable in (("Incirlik", 1.0, True), ("Incirlik", -1.0, False)):
        _steer(service, SteeredReader(word, spec(weight)))
        got = service.search("what was near the convoy")
        assert got is not None and got.answerable is answerable


def test_the_first_hit_says_where_the_reader_found_the_answer(tmp_path: Path) -> None:
    """With a span head, a passage read is marked with the article offset of its best span,
    when the span beats "not there" by ``quote_span_margin``; when off, or below, never."""
    service = _learned_service(tmp_path)
    names = ("answer_logit", "reader_best", "span_best")
    answer = LinearModel(names, np.zeros(3), np.ones(3), np.array([0.0, 1.0, 0.0]), 0.0)
    reader = SteeredReader("Incirlik", ReaderSpec("m", 6, 128, 1.0, answer, span=True))
    _steer(service, reader)
    got = service.search("what was near the convoy")
    assert got is not None and got.answerable
    top = got.hits[0]
    assert top.answer_at == top.chunk.start + top.chunk.text.index("Incirlik")
    retrieval = service.settings.retrieval
    for off in ({"quote_from_span": False}, {"quote_span_margin": 5.0}):  # the margin is 4
        settings = retrieval.model_copy(update=off)
        service.__dict__["settings"] = service.settings.model_copy(update={"retrieval": settings})
        again = service.search("what was near the convoy")
        assert again is not None and again.hits[0].answer_at is None


def test_the_decision_reads_the_question_features_its_spec_names(tmp_path: Path) -> None:
    # "how many" asks for a number (asks_kind 1), "what was near" asks for no kind (0): a
    # decision that weighs asks_kind answers or declines the first, and reads 0 for the other.
    service = _learned_service(tmp_path)
    names = ("reader_best", "asks_kind")

    def spec(kind_weight: float) -> ReaderSpec:
        answer = LinearModel(names, np.zeros(2), np.ones(2), np.array([0, kind_weight]), 0.0)
        return ReaderSpec("m", 6, 128, 1.0, answer)

    for weight in (3.0, -3.0):
        _steer(service, SteeredReader("trucks", spec(weight)))
        counted = service.search("how many trucks left the city")
        assert counted is not None and counted.answerable is (weight > 0)
        unkinded = service.search("what was near the convoy")
        assert unkinded is not None and unkinded.answerable  # probability 0.5


def test_the_decision_reads_the_passage_the_service_quotes(tmp_path: Path) -> None:
    """The reading stage hands the decision the ranker's logits with the reader's: a decision
    over the reader's logit at the first passage follows the steered reader's liking."""
    service = _learned_service(tmp_path)
    names = ("reader_first", "ranker_best")
    for weight in (1.0, -1.0):
        answer = LinearModel(names, np.zeros(2), np.ones(2), np.array([weight, 0.0]), 0.0)
        _steer(service, SteeredReader("Incirlik", ReaderSpec("m", 6, 128, 1.0, answer)))
        got = service.search("what was near the convoy")
        assert got is not None and "Incirlik" in got.hits[0].chunk.text
        assert got.answerable is (weight > 0)


def test_the_articles_the_reader_was_tuned_on_are_weighed_by_their_own_decision(
    tmp_path: Path,
) -> None:
    """When every passage read is from an article the reader was tuned on (by its content
    hash), the spec's ``answer_tuned`` weighs the question, at ``reader_tuned_threshold``; a
    reading with any other article, or any with ``reader_tuned_decision`` off, is weighed by
    its ``answer``."""
    service = _learned_service(tmp_path)
    names = ("reader_first",)

    def model(weight: float) -> LinearModel:
        return LinearModel(names, np.zeros(1), np.ones(1), np.array([weight]), 0.0)

    spec = ReaderSpec("m", 6, 128, 1.0, model(1.0), answer_tuned=model(-1.0))

    def answerable(tuned: frozenset[str], **retrieval: object) -> bool:
        settings = service.settings.retrieval.model_copy(update=retrieval)
        service.__dict__["settings"] = service.settings.model_copy(update={"retrieval": settings})
        _steer(service, SteeredReader("Incirlik", replace(spec, tuned_articles=tuned)))
        got = service.search("what was near the convoy")
        assert got is not None and "Incirlik" in got.hits[0].chunk.text  # its logit there: +8
        return got.answerable

    metas = service.snapshot().articles_by_id(["0", "1", "2"])
    every = frozenset(m.content_hash for m in metas.values())
    assert answerable(frozenset())
    assert not answerable(every)
    got = service.search("what was near the convoy")
    assert got is not None and "the decision for the articles the reader was tuned on" in got.reason
    for some in every:  # a reading with an article it was not tuned on
        assert answerable(every - {some})
    assert answerable(every, reader_tuned_decision=False)
    # The tuned decision's own threshold: at logit -0.8, 0.31.
    spec = replace(spec, answer_tuned=model(-0.1))
    assert answerable(every, reader_tuned_decision=True, reader_tuned_threshold=0.3)
    assert not answerable(every, reader_tuned_threshold=0.35, reader_answer_threshold=0.0)


def test_a_spec_keeps_its_decision_for_the_tuned_articles_and_an_older_one_has_none() -> None:
    tuned = ReaderSpec(
        "m", 6, 128, 1.0, _answer(1.0), answer_tuned=_answer(2.0), tuned_articles=frozenset("ba")
    )
    data = json.loads(json.dumps(tuned.to_json()))
    assert data["tuned_articles"] == ["a", "b"]
    again = ReaderSpec.from_json(data)
    assert again.tuned_articles == {"a", "b"}
    assert again.answer_tuned is not None and list(again.answer_tuned.coef) == [1.0, 2.0]
    older = ReaderSpec("m", 6, 128, 1.0, _answer(1.0)).to_json()
    assert "answer_tuned" not in older and "tuned_articles" not in older
    assert ReaderSpec.from_json(older).answer_tuned is None
    with pytest.raises(ValueError, match="decision reads"):
        replace(tuned, answer_tuned=_span_answer())  # a span input without a span head


def test_the_settings_name_the_packaged_reader_a_folder_or_none(tmp_path: Path) -> None:
    def reader(value: object) -> Path | None:
        return make_settings(tmp_path, tmp_path, retrieval={"reader": value}).retrieval.reader

    assert make_settings(tmp_path, tmp_path).retrieval.reader == PACKAGED_READER
    assert reader("packaged") == PACKAGED_READER
    assert reader(" None ") is None and reader("off") is None and reader("") is None
    assert reader(str(tmp_path / "mine")) == tmp_path / "mine"
    # What ships is a whole trained folder: the MiniLM it was tuned from, with its span head,
    # fitted to join.
    spec = load_spec(PACKAGED_READER)
    assert spec.base_model == "all-MiniLM-L6-v2" and spec.layers == 6 and spec.span
    # Its decision reads every input, what its answer span holds too (adopted in the
    # thirty-first round: more on-topic questions the articles do not answer declined).
    assert set(SPAN_FIT_INPUTS) <= set(DECISION_INPUTS)
    assert spec.rank_weight > 0 and spec.answer.names == DECISION_INPUTS
    assert spec.provenance["script"] == "training/tune_reader.py"
    assert spec.provenance["join"]["inputs"] == "passages and span fits"
    # And a decision of its own for the seeds' five articles, which it was tuned on.
    assert spec.answer_tuned is not None and spec.answer_tuned.names == DECISION_INPUTS
    assert len(spec.tuned_articles) == 5


@pytest.mark.model
def test_the_packaged_reader_was_tuned_on_the_seeds_as_they_are_indexed(
    seeds_service: QAService,
) -> None:
    """The packaged decision for the articles the reader was tuned on names them by content
    hash: the seeds as indexed must be those, or it silently never applies."""
    ids = [path.stem for path in sorted(seeds_service.settings.seeds_dir.glob("*.txt"))]
    metas = seeds_service.snapshot().articles_by_id(ids)
    assert len(metas) == 5
    assert {m.content_hash for m in metas.values()} == load_spec(PACKAGED_READER).tuned_articles


def test_the_reader_is_off_when_the_settings_say_none(
    tmp_path: Path, tiny: tuple[ReaderSpec, Path, Path]
) -> None:
    service = _learned_service(tmp_path / "off")
    assert service.rankers.learned is not None and service.rankers.reader is None
    assert not list((service.settings.index_dir / "onnx").glob("reader-*"))
    named = _learned_service(tmp_path / "on", reader=tiny[1].parent)
    assert named.rankers.reader is not None  # exported by the build, read by questions
    report = named.index()
    assert not report.reader_exported  # once is enough
    shutil.rmtree(reader_dir(named.settings.index_dir, tiny[1].parent))
    stale = named.settings.index_dir / "onnx" / "reader-0123456789ab"  # a reader since retrained
    stale.mkdir()
    report = named.index()
    assert report.reader_exported
    assert not stale.exists()
    assert reader_dir(named.settings.index_dir, tiny[1].parent).is_dir()
    assert ("info", "exported the passage reader named in retrieval.reader") in report_lines(report)
    retrieval = named.search("what was near the convoy")
    assert retrieval is not None and "the reader give" in retrieval.reason


@pytest.mark.model
def test_an_index_made_before_the_reader_was_named_gets_its_export(
    seeds_service: QAService, tmp_path: Path, tiny: tuple[ReaderSpec, Path, Path]
) -> None:
    root = copy_project(seeds_service, tmp_path / "old")
    retrieval = seeds_service.settings.retrieval.model_copy(update={"reader": tiny[1].parent})
    settings = seeds_service.settings.model_copy(
        update={
            "seeds_dir": root / "seeds",
            "index_dir": root / "embeddings",
            "retrieval": retrieval,
        }
    )
    service = QAService(settings, embedder=seeds_service.embedder)
    assert service.rankers.reader is None
    service.ensure_index()  # nothing to rebuild; the reader is exported
    assert service.rankers.reader is not None
    retrieval = service.search("how long were syrian troops besieged at deir ez-zor")
    assert retrieval is not None and "the reader give" in retrieval.reason


def test_a_named_reader_without_its_export_is_said_when_questions_load_the_rankers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new or retrained reader answers nothing until ``qa-bot index`` exports it: the
    question path says so, once the export exists it says nothing, nor without the learned
    stages the reader joins."""
    from qa_bot.ranker import LearnedRanker
    from qa_bot.retrieval import say_if_unexported
    from qa_bot.settings import RetrievalSettings

    settings = RetrievalSettings(reader=PACKAGED_READER)
    learned = Rankers(learned=LearnedRanker.load())
    with caplog.at_level(logging.WARNING):
        say_if_unexported(learned, settings, tmp_path)
    assert "not exported" in caplog.text and "qa-bot index" in caplog.text
    caplog.clear()
    reader_dir(tmp_path, PACKAGED_READER).mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        say_if_unexported(learned, settings, tmp_path)  # exported (refused ones say why)
        say_if_unexported(Rankers(), settings, tmp_path / "other")  # no learned stages
        say_if_unexported(learned, RetrievalSettings(reader=None), tmp_path / "other")
    assert caplog.text == ""

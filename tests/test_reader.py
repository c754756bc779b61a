"""The passage reader: its shipped form, its ONNX export, and how it joins the learned stages."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa_bot.cli.base import report_lines
from qa_bot.errors import ModelError
from qa_bot.ranker import LinearModel
from qa_bot.reader import (
    CONFIG_FILE,
    SPEC_FILE,
    WEIGHTS_FILE,
    PassageReader,
    ReaderError,
    ReaderSpec,
    load_spec,
    open_reader,
    reader_dir,
)
from qa_bot.reader_export import (
    EXPORT_TOLERANCE,
    assemble,
    export_reader,
    pack_deltas,
    reader_module,
    unpack_deltas,
)
from qa_bot.retrieval import Rankers
from qa_bot.service import QAService
from qa_bot.settings import PACKAGED_READER

from .conftest import CountingEmbedder, copy_project, make_settings, write_article
from .test_learned import _weights, tiny_bert

WORDS = "drone convoy flew over the siege city troops airport air base altitude how many".split()


def _answer(reader_weight: float, bias: float = 0.0) -> LinearModel:
    names = ("answer_logit", "reader_best")
    return LinearModel(names, np.zeros(2), np.ones(2), np.array([1.0, reader_weight]), bias)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReaderSpec, Path, Path]:
    """A tiny reader's folder as training writes it (its layers changed, a head), its weights
    file, and its export."""
    import torch

    root = tmp_path_factory.mktemp("tiny-reader")
    base = tiny_bert(root / "base", WORDS, classifier=False)  # a stand-in for MiniLM
    spec = ReaderSpec(str(base), 2, 32, 1.0, _answer(1.0))
    module = reader_module(spec.base_model, spec.layers)
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
    base_state = {k: v for k, v in before.items() if not k.startswith("head.")}
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


# --- joining the learned stages ------------------------------------------------------------------


class SteeredReader:
    """A reader that likes passages holding one word: it steers the stage, to see it obeyed."""

    def __init__(self, word: str, spec: ReaderSpec):
        self.word, self.spec = word, spec
        self.read: list[str] = []

    def scores(self, question: str, passages: list[str]) -> np.ndarray:
        self.read += passages
        return np.array([8.0 if self.word in p else -8.0 for p in passages])


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
    retrieval = {"ranker_path": path, "reader": reader}
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
    assert len(reader.read) == min(service.settings.retrieval.reader_depth, len(plain.hits))
    # Its best logit joins the decision as the spec's answer model weighs it.
    _steer(service, SteeredReader("Incirlik", ReaderSpec("m", 6, 128, 1.0, _answer(-5.0))))
    declined = service.search(question)
    assert declined is not None and not declined.answerable


def test_the_settings_name_the_packaged_reader_a_folder_or_none(tmp_path: Path) -> None:
    def reader(value: object) -> Path | None:
        return make_settings(tmp_path, tmp_path, retrieval={"reader": value}).retrieval.reader

    assert make_settings(tmp_path, tmp_path).retrieval.reader == PACKAGED_READER
    assert reader("packaged") == PACKAGED_READER
    assert reader(" None ") is None and reader("off") is None and reader("") is None
    assert reader(str(tmp_path / "mine")) == tmp_path / "mine"
    # What ships is a whole trained folder: the MiniLM it was tuned from, fitted to join.
    spec = load_spec(PACKAGED_READER)
    assert spec.base_model == "all-MiniLM-L6-v2" and spec.layers == 6
    assert spec.rank_weight > 0 and spec.answer.names == ("answer_logit", "reader_best")
    assert spec.provenance["script"] == "training/tune_reader.py"


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

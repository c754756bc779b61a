"""The ONNX backend gives the sentence-transformers vectors, in order, without importing torch.

The reference vectors come from conftest's session-wide ``real_embedder``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa_bot.embedding import Embedder, SentenceTransformerEmbedder
from qa_bot.errors import IndexMissingError
from qa_bot.indexer import update_index
from qa_bot.onnx_embedding import (
    CONFIG_FILE,
    FP32_FILE,
    INT8_FILE,
    TOKENIZER_FILE,
    OnnxEmbedder,
    OnnxExportError,
)
from qa_bot.onnx_export import (
    INT8_MIN_COSINE,
    _quantize,
    _replace_dir,
    _supported_modules,
)
from qa_bot.service import QAService

from .conftest import make_settings

pytestmark = pytest.mark.model

LONG_TEXT = " ".join(
    f"In paragraph {i}, the cooperative reported that cocoa arrivals at Ilheus and Itabuna "
    "rose despite the drought, while exporters hedged their positions."
    for i in range(20)
)

TEXTS = [
    "?",
    "!",
    "...",
    "a",
    "Oil.",
    "Who bought the company?",
    "What did the central bank do with interest rates?",
    "OPEC agreed to cut output by 1.5 mln barrels per day from March.",
    "The U.S. trade deficit narrowed to $10.4 billion in January, the Commerce Department said.",
    "Müller’s café in Zürich raised “fair trade” coffee prices by 5%.",
    "Le ministre a déclaré que l’économie française croîtra de 2 % cette année.",
    "Die Bundesbank ließ die Leitzinsen unverändert.",
    "日本銀行は金利を据え置いた。",
    "Центральный банк повысил ставку.",
    "emoji test 📈📉 markets",
    "‘Single’ and “double” curly quotes — and an em dash…",
    "    leading and trailing spaces    ",
    "line one\nline two\ttabbed",
    "UPPER CASE HEADLINE: WHEAT PRICES SOAR",
    "1987-02-26T15:01:01",
    "ACME Corp <ACME.N> said it would acquire Widget Inc for 12 dlrs a share in cash.",
    "Showers continued throughout the week in the Bahia cocoa zone, alleviating the drought "
    "since early January and improving prospects for the coming temporao.",
    "The dry period means the temporao will be late this year.",
    "Shares of the airline fell 3 pct after it warned that fuel costs would hurt profits.",
    "Sugar exports from Brazil are expected to fall next season because of lower cane output.",
    "The Federal Reserve added reserves to the banking system via customer repurchase agreements.",
    LONG_TEXT,
    LONG_TEXT.upper(),
    "word " * 400,
    "x",
]

PASSAGES = [
    "The Bundesbank left its discount and Lombard rates unchanged at its council meeting.",
    "The Federal Reserve cut the discount rate to 5.5 pct from 6 pct, effective immediately.",
    "OPEC ministers agreed to hold output at 15.8 mln barrels per day in the second half.",
    "Crude oil prices rose one dlr a barrel on reports of lower Saudi production.",
    "Bahia cocoa arrivals reached 5.93 mln bags, against 5.81 mln a year earlier.",
    "Ghana's cocoa purchases fell in the week as the main crop harvest ended.",
    "ACME Corp agreed to buy Widget Inc for 300 mln dlrs in cash and stock.",
    "Shareholders of Gadget Co approved the takeover by Global Holdings.",
    "Brazil's sugar and alcohol institute forecast a smaller cane crop this season.",
    "U.S. wheat export inspections rose to 20 mln bushels last week.",
    "The Japanese yen firmed against the dollar in quiet Tokyo trading.",
    "Britain's trade deficit widened to 1.2 billion stg in February.",
    "The company reported a first-quarter net loss on lower copper prices.",
    "Gold prices fell as the dollar strengthened in early European trade.",
    "Coffee quota talks in London broke down without agreement on export quotas.",
    "The airline ordered ten new jets worth 400 mln dlrs for delivery in 1989.",
]

QUERIES = [
    "Did the central bank change interest rates?",
    "How much oil will OPEC produce?",
    "Who is buying Widget?",
    "cocoa harvest",
    "What happened to the trade deficit?",
]


@pytest.fixture(scope="session")
def onnx_embedder(export_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(export_dir, batch_size=8)


def test_export_folder_describes_itself(export_dir: Path) -> None:
    assert sorted(p.name for p in export_dir.iterdir()) == sorted(
        [CONFIG_FILE, TOKENIZER_FILE, FP32_FILE]
    )
    config = json.loads((export_dir / CONFIG_FILE).read_text())
    assert config["pooling"] == "mean"
    assert config["max_seq_length"] == 256
    assert config["min_cosine"] >= 0.999
    assert not [p for p in export_dir.parent.iterdir() if p.name.startswith(".")]


def test_is_an_embedder_in_the_same_space(
    onnx_embedder: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder
) -> None:
    assert isinstance(onnx_embedder, Embedder)
    assert onnx_embedder.model_id == real_embedder.model_id
    assert onnx_embedder.dimension == 384


def test_vectors_match_sentence_transformers(
    onnx_embedder: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder
) -> None:
    got = onnx_embedder.embed(TEXTS)
    expected = real_embedder.embed(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * expected).sum(axis=1)
    worst = int(cosines.argmin())
    assert cosines.min() >= 0.999, f"cosine {cosines[worst]:.5f} on {TEXTS[worst][:40]!r}"


def test_long_texts_are_truncated_like_the_model(
    export_dir: Path, onnx_embedder: OnnxEmbedder
) -> None:
    from tokenizers import Tokenizer

    pieces = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE)).encode(LONG_TEXT)
    assert len(pieces.ids) > 2 * onnx_embedder.max_seq_length
    head, longer = onnx_embedder.embed([LONG_TEXT, LONG_TEXT + " A tail past the cut-off."])
    np.testing.assert_allclose(head, longer, atol=1e-6)


def test_same_top5_as_sentence_transformers(
    onnx_embedder: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder
) -> None:
    def top5(embedder: Embedder) -> list[list[int]]:
        scores = embedder.embed(QUERIES) @ embedder.embed(PASSAGES).T
        return np.argsort(-scores, axis=1, kind="stable")[:, :5].tolist()

    assert top5(onnx_embedder) == top5(real_embedder)


def test_order_is_kept_across_batches_of_mixed_lengths(export_dir: Path) -> None:
    embedder = OnnxEmbedder(export_dir, batch_size=3)
    texts = [TEXTS[i] for i in np.random.default_rng(7).permutation(len(TEXTS))]
    one_by_one = np.stack([embedder.embed([text])[0] for text in texts])
    done: list[int] = []
    batched = embedder.embed(texts, progress=done.append)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert sum(done) == len(texts)
    assert max(done) <= 3


def test_sentence_transformers_keeps_order_across_slices_sorted_by_length(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    """Texts are embedded longest first across slices (less padding); rows come back in the
    order they were given."""
    embedder = SentenceTransformerEmbedder(batch_size=2)  # slices of 8 texts
    embedder._model = real_embedder.model  # the loaded model, not a second load
    texts = [TEXTS[i] for i in np.random.default_rng(11).permutation(len(TEXTS))]
    done: list[int] = []
    batched = embedder.embed(texts, progress=done.append)
    one_by_one = np.stack([real_embedder.embed([text])[0] for text in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert sum(done) == len(texts) and max(done) <= 8 and len(done) > 1


def test_int8_stays_close_to_fp32(export_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "int8"
    folder.mkdir()
    os.link(export_dir / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    _quantize(export_dir / FP32_FILE, folder / INT8_FILE)
    config = json.loads((export_dir / CONFIG_FILE).read_text())
    # made by hand from the fp32 export: its check vector is the fp32 graph's, so drop it
    config.update(onnx_file=INT8_FILE, quantized=True, check_text="", check_vector=[])
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    int8, fp32 = OnnxEmbedder(folder), OnnxEmbedder(export_dir)
    assert int8.model_id == fp32.model_id
    cosines = (int8.embed(PASSAGES) * fp32.embed(PASSAGES)).sum(axis=1)
    assert cosines.min() >= INT8_MIN_COSINE


def test_int8_weights_keep_seven_bits(export_dir: Path, tmp_path: Path) -> None:
    # Full 8-bit weights saturate onnxruntime's u8s8 products on CPUs without VNNI, so the same
    # graph answered differently on two machines; 7 bits never saturate.
    import onnx
    from onnx import numpy_helper

    _quantize(export_dir / FP32_FILE, tmp_path / INT8_FILE)
    weights = [
        numpy_helper.to_array(t)
        for t in onnx.load(str(tmp_path / INT8_FILE)).graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    assert weights and all(w.min() >= -64 and w.max() <= 64 for w in weights)


def test_no_texts_give_an_empty_matrix(onnx_embedder: OnnxEmbedder) -> None:
    assert onnx_embedder.embed([]).shape == (0, 384)


def test_embedding_does_not_import_torch(export_dir: Path) -> None:
    script = (
        "import sys\n"
        "from qa_bot.onnx_embedding import OnnxEmbedder\n"
        f"vectors = OnnxEmbedder({str(export_dir)!r}, threads=1).embed(['Who bought ACME?'])\n"
        "assert vectors.shape == (1, 384)\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _copy_export(source: Path, target: Path) -> Path:
    """A cheap copy: hard links, so each broken variant below costs no 90 MB write."""
    target.mkdir()
    for item in source.iterdir():
        os.link(item, target / item.name)
    return target


def _replace_file(path: Path, content: bytes) -> None:
    path.unlink()  # do not write through the hard link into the shared export
    path.write_bytes(content)


BROKEN = {
    "missing folder": lambda d: d.rename(d.with_name("gone")),
    "no settings": lambda d: (d / CONFIG_FILE).unlink(),
    "corrupt settings": lambda d: _replace_file(d / CONFIG_FILE, b"{not json"),
    "settings of another shape": lambda d: _replace_file(d / CONFIG_FILE, b'{"model_id": 1}'),
    "no graph": lambda d: (d / FP32_FILE).unlink(),
    "corrupt graph": lambda d: _replace_file(d / FP32_FILE, b"\x00garbage" * 100),
    "no tokenizer": lambda d: (d / TOKENIZER_FILE).unlink(),
    "corrupt tokenizer": lambda d: _replace_file(d / TOKENIZER_FILE, b"[]"),
    "weights changed": lambda d: _damage_weights(d / FP32_FILE),
    "another vocabulary": lambda d: _swap_vocabulary(d / TOKENIZER_FILE),
}


def _damage_weights(path: Path) -> None:
    """Zero a run of bytes in the middle of the graph: still a loadable model, wrong vectors."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4_000_000] = bytes(4_000_000)
    _replace_file(path, bytes(data))


def _swap_vocabulary(path: Path) -> None:
    """A tokenizer that still loads but maps words to other ids."""
    tokenizer = json.loads(path.read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    words = sorted(w for w in vocab if w.isalpha() and vocab[w] > 2000)
    ids = [vocab[w] for w in words]
    vocab.update(zip(words, reversed(ids), strict=True))
    _replace_file(path, json.dumps(tokenizer).encode())


@pytest.mark.parametrize("damage", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_export_says_to_rebuild(export_dir: Path, tmp_path: Path, damage) -> None:
    folder = _copy_export(export_dir, tmp_path / "export")
    damage(folder)
    with pytest.raises(OnnxExportError, match="run `qa-bot index`"):
        OnnxEmbedder(folder).embed(["any question"])


class Transformer:
    do_lower_case = False


class Pooling:
    def __init__(self, mode: object) -> None:
        self.pooling_mode = mode


class Dense:
    pass


class FakeModel(list):
    default_prompt_name = None


UNSUPPORTED = {
    "cls pooling": (FakeModel([Transformer(), Pooling("cls")]), "'cls' pooling"),
    "max pooling": (FakeModel([Transformer(), Pooling("max")]), "'max' pooling"),
    "two poolings": (FakeModel([Transformer(), Pooling(("mean", "max"))]), "'mean\\+max'"),
    "dense layer": (FakeModel([Transformer(), Pooling("mean"), Dense()]), "Dense"),
}


@pytest.mark.parametrize(("model", "message"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported_models_are_refused(model: FakeModel, message: str) -> None:
    with pytest.raises(OnnxExportError, match=message):
        _supported_modules(model, "some-model")


def test_a_default_prompt_is_refused() -> None:
    model = FakeModel([Transformer(), Pooling("mean")])
    model.default_prompt_name = "query"
    with pytest.raises(OnnxExportError, match="default prompt"):
        _supported_modules(model, "some-model")


def test_replacing_an_export_leaves_only_the_new_one(tmp_path: Path) -> None:
    target = tmp_path / "export"
    target.mkdir()
    (target / "old").write_text("old")
    new = tmp_path / ".export.new"
    new.mkdir()
    (new / "new").write_text("new")
    _replace_dir(new, target)
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert [p.name for p in target.iterdir()] == ["new"]


@pytest.mark.parametrize("force", [False, True], ids=["index", "index --force"])
def test_index_rebuilds_a_damaged_export(
    export_dir: Path,
    tmp_path: Path,
    corpus: Path,
    real_embedder: SentenceTransformerEmbedder,
    caplog: pytest.LogCaptureFixture,
    force: bool,
) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, real_embedder)  # the index alone, no export
    target = QAService(settings, embedder=real_embedder).onnx_dir()
    target.parent.mkdir(parents=True)
    _copy_export(export_dir, target)
    _damage_weights(target / FP32_FILE)

    asking = QAService(settings, embedder=real_embedder)
    assert asking.query_embedder is real_embedder  # answers meanwhile, and says why
    assert "run `qa-bot index` to rebuild it" in caplog.text
    assert asking.ask("At what altitude was the drone?").answered

    report = QAService(settings, embedder=real_embedder).index(force=force)
    assert report.onnx_exported
    fresh = QAService(settings, embedder=real_embedder)
    assert isinstance(fresh.query_embedder, OnnxEmbedder)
    assert fresh.ask("At what altitude was the drone?").answered


def test_index_makes_the_export_the_onnx_backend_asks_for(
    tmp_path: Path, corpus: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path, corpus, embedding={"backend": "onnx"})
    with pytest.raises(IndexMissingError, match="run `qa-bot index` to make it"):
        _ = QAService(settings, embedder=real_embedder).query_embedder
    assert QAService(settings, embedder=real_embedder).index().onnx_exported
    assert isinstance(QAService(settings, embedder=real_embedder).query_embedder, OnnxEmbedder)

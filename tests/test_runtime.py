"""What an entry point sets for the whole process (qa_bot.runtime)."""

from __future__ import annotations

import logging
import os

import pytest

from qa_bot.runtime import QuantizerAdvice, prepare_process


def _record(path: str, message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("root", level, path, 990, message, None, None)


QUANTIZE = "/venv/lib/python3.11/site-packages/onnxruntime/quantization/quantize.py"


def test_the_quantizers_advice_is_dropped_and_nothing_else() -> None:
    advice = QuantizerAdvice()
    assert not advice.filter(
        _record(QUANTIZE, "Please consider to run pre-processing before quantization. Refer to")
    )
    assert advice.filter(_record(QUANTIZE, "Inference failed or unsupported type to quantize"))
    assert advice.filter(_record("/src/qa_bot/indexer.py", "pre-processing skipped"))


def test_the_root_logger_drops_it_once_an_entry_point_prepared_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prepare_process()
    prepare_process()  # a second entry point in the same process adds nothing
    root = logging.getLogger()
    assert sum(isinstance(f, QuantizerAdvice) for f in root.filters) == 1
    with caplog.at_level(logging.WARNING):
        root.handle(_record(QUANTIZE, "Please consider pre-processing before quantization."))
        root.handle(_record("/src/qa_bot/indexer.py", "a warning of our own"))
    assert [r.getMessage() for r in caplog.records] == ["a warning of our own"]


def test_progress_bars_of_the_model_libraries_are_off_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    prepare_process()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    prepare_process()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"

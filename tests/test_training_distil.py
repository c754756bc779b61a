"""The distillation of the passage reader into fewer layers (``training/distil_reader.py``):
what the student reads, what it starts from, and that its losses pull it towards the teacher."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

import distil_reader
import train_reader

from tests.test_training import _asked, _trained_doc


def test_the_student_reads_the_teacher_s_writers_and_training_questions_only() -> None:
    from reader_record import trained_writers

    record = {"writers": {"train": ["p69"]}, "base": {"writers": {"train": ["c"]}}}
    lineage = trained_writers(record)
    seeds = [
        _asked("Trained now.", set_id="p69"),
        _asked("Trained before.", set_id="c"),
        _asked("Fits the join.", set_id="l"),
        _asked("Only reported.", set_id="p11"),
    ]
    data = [
        _asked("Replayed.", doc=_trained_doc()),
        _asked("Held out.", doc=_trained_doc(), test=True),
        *[_asked(f"Document {i}.", doc=f"s{i}.txt") for i in range(20)],
    ]
    pairs = distil_reader.teacher_pairs(seeds, data, lineage, (100, 100))
    read = {p.passage.split(".")[0] for p in pairs}
    assert {"Trained now", "Trained before", "Replayed"} <= read
    assert not read & {"Fits the join", "Only reported", "Held out"}
    # A document of the combination fold (one in five), which fits the join, is never read.
    folded = {e.query.text[:-1] for e in data if train_reader.stack_fold(e)}
    assert folded and not read & folded
    assert len(read) == 3 + 20 - len(folded)
    # The counts cap each side, and the same inputs give the same pairs in the same order.
    assert len(distil_reader.teacher_pairs(seeds, data, lineage, (1, 1))) == 2
    assert pairs == distil_reader.teacher_pairs(seeds, data, lineage, (100, 100))


@pytest.fixture(scope="module")
def teacher():
    """A small reader with a span head, its heads fixed by a seed: what the student learns."""
    import torch

    from qa_bot.reader_export import reader_module

    torch.manual_seed(3)
    module = reader_module(train_reader.BASE_MODEL, 2, span=True).eval()
    with torch.no_grad():  # logits of a few units, as a trained reader's are, not near zero
        module.head.weight.mul_(40.0)
    return module


def test_the_student_is_the_teacher_s_first_layers_and_leaves_the_teacher_whole(
    teacher,
) -> None:
    import torch

    student = distil_reader.student_of(teacher, 1)
    assert len(student.bert.encoder.layer) == 1 and student.bert.config.num_hidden_layers == 1
    assert len(teacher.bert.encoder.layer) == 2 and teacher.bert.config.num_hidden_layers == 2
    first = teacher.bert.encoder.layer[0].state_dict()
    for name, value in student.bert.encoder.layer[0].state_dict().items():
        assert torch.equal(value, first[name])
    assert torch.equal(student.head.weight, teacher.head.weight)
    with torch.no_grad():
        student.head.weight.add_(1.0)
    assert not torch.equal(student.head.weight, teacher.head.weight)


def test_the_soft_span_loss_is_lowest_at_the_teacher_s_distribution() -> None:
    import torch

    torch.manual_seed(0)
    teacher_span = torch.randn(2, 6, 2) * 3
    allowed = torch.tensor([[True, False, True, True, True, False]] * 2)
    at_teacher = distil_reader.soft_span_loss(teacher_span, teacher_span, allowed)
    elsewhere = distil_reader.soft_span_loss(torch.randn(2, 6, 2) * 3, teacher_span, allowed)
    assert float(at_teacher) < float(elsewhere)
    # Tokens a span may not take count for nothing, whatever either side gives them.
    moved = teacher_span.clone()
    moved[:, 1, :] = moved[:, 5, :] = 50.0
    assert float(distil_reader.soft_span_loss(moved, teacher_span, allowed)) == pytest.approx(
        float(at_teacher), abs=1e-5
    )


def test_an_epoch_of_distillation_brings_the_student_s_logits_nearer_the_teacher_s(
    teacher,
) -> None:
    import torch
    from transformers import AutoTokenizer

    from qa_bot.embedding import resolve_model_path

    passages = [
        "The convoy was attacked at dawn near Aleppo, officials said.",
        "Talks resumed in Geneva on Monday after a week of delays.",
        "Eighteen trucks carrying food were hit, the Red Crescent said.",
        "The minister said the ceasefire would hold through the winter.",
    ]
    questions = ["where was the convoy attacked", "when did talks resume", "how many trucks"]
    pairs = [
        train_reader.Pair(q, p, float(p.startswith("The convoy")), ())
        for q in questions
        for p in passages
    ]
    rng = random.Random(5)
    epoch = [rng.choice(pairs) for _ in range(16 * 12)]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(train_reader.BASE_MODEL))
    enc = tokenizer([p.question for p in pairs], [p.passage for p in pairs], padding=True)
    inputs = {k: torch.tensor(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}

    def gap(student) -> float:
        with torch.no_grad():
            return float(((student(**inputs)[0] - teacher(**inputs)[0]) ** 2).mean())

    student = distil_reader.student_of(teacher, 1)
    before = gap(student)
    distil_reader.distil(teacher, student, epoch)
    assert gap(student) < 0.5 * before
    # With the hidden states' share, the student's last states come nearer the teacher's too.

    def states(module):
        with torch.no_grad():
            return module.bert(**inputs).last_hidden_state

    plain, matched = distil_reader.student_of(teacher, 1), distil_reader.student_of(teacher, 1)
    distil_reader.distil(teacher, plain, epoch)
    distil_reader.distil(teacher, matched, epoch, hidden_weight=10.0)
    mask, taught = inputs["attention_mask"], states(teacher)
    apart = [float(distil_reader.hidden_gap(states(s), taught, mask)) for s in (plain, matched)]
    assert apart[1] < apart[0]
    assert not teacher.bert._forward_hooks and not matched.bert._forward_hooks


def test_the_hidden_gap_counts_real_tokens_only() -> None:
    import torch

    teacher = torch.zeros(1, 3, 4)
    student = torch.tensor([[[1.0] * 4, [1.0] * 4, [9.0] * 4]])
    mask = torch.tensor([[1, 1, 0]])
    assert float(distil_reader.hidden_gap(student, teacher, mask)) == 1.0


def test_the_teacher_s_folder_is_never_written_over(tmp_path: Path, capsys) -> None:
    teacher = tmp_path / "reader"
    teacher.mkdir()
    (teacher / "reader.json").write_text("{}", "utf-8")
    assert distil_reader.main(["--teacher", str(teacher), "--out", str(tmp_path / "reader")]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert [p.name for p in teacher.iterdir()] == ["reader.json"]

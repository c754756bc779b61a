r"""Distil the passage reader into one with fewer encoder layers, for CPUs where six are slow.

On a CPU without int8 dot-product instructions the reader is most of a question's time, and
that time grows with its layers (benchmarks/README.md, "Forty-fifth round"). The student is
the teacher's first ``--layers`` encoder layers with its heads, trained one epoch to give the
teacher's logit (squared error) and its answer span (cross-entropy against the teacher's
start and end distributions), and, weighted GOLD_WEIGHT, the gold labels and spans
(``train_reader``'s losses). Its pairs are drawn, with a fixed seed, from the questions the
teacher's epochs trained on (the seeds' realistic writers, the served formal checks and the
written questions its record names, ``reader_record.trained_writers``) and from the base
reader's training questions; never from the writers that fit or report the join, nor from the
combination fold or the held-out XQuAD and Reuters questions. Then fit the student's join::

    python training/distil_reader.py --layers 3 --out /tmp/qa-train/distilled   # ~40 min
    python training/tune_reader.py --base /tmp/qa-train/distilled \
        --out /tmp/qa-train/distilled --join-only --span-fits                   # ~25 min
"""

from __future__ import annotations

import argparse
import copy
import pickle
import random
import sys
from dataclasses import replace
from pathlib import Path

import train_reader
from asked_examples import realistic_examples, served_formal_examples, written_examples
from reader_record import trained_writers, write_spec
from train_ranker import SEED, Example
from tune_reader import formal_sets
from writers import writer

from qa_bot.reader import WEIGHTS_FILE, load_spec
from qa_bot.reader_export import assemble
from qa_bot.runtime import prepare_process

ROOT = Path(__file__).resolve().parents[1]

#: How many pairs the student reads from the teacher's seed questions and from the base
#: reader's training questions (XQuAD and Reuters).
SEED_PAIRS = 24000
BASE_PAIRS = 16000

#: The gold labels' and spans' share of the loss, beside the teacher's.
GOLD_WEIGHT = 0.5

#: The share of the squared gap between the student's and the teacher's last hidden states
#: (each token's, per dimension) in the loss; 0, the default, leaves it out (D3). Both heads read
#: those states. At 1.0, with four layers (H4), they moved the student along the trade between
#: answering and declining, not above it, and it was not adopted (benchmarks/README.md,
#: "Forty-eighth round").
HIDDEN_WEIGHT = 0.0


def distil_pairs(args: argparse.Namespace, teacher_record: dict) -> list[train_reader.Pair]:
    """The student's pairs (``teacher_pairs``) from the cached questions in ``args.work``."""
    lineage = trained_writers(teacher_record)
    seeds = realistic_examples(args.work) + written_examples(args.work)
    seeds += served_formal_examples(args.work, formal_sets(tuple(sorted(lineage))))
    sys.modules["__main__"].Example = Example  # the cache pickles train_ranker's Example
    data = pickle.loads((args.work / "examples.pkl").read_bytes())
    return teacher_pairs(seeds, data, lineage, (args.seed_pairs, args.base_pairs))


def teacher_pairs(
    seeds: list[Example], data: list[Example], lineage: tuple[str, ...], counts: tuple[int, int]
) -> list[train_reader.Pair]:
    """Shuffled, ``counts[0]`` pairs from the questions over the seeds whose writer is in
    ``lineage`` (those the teacher trained on) and ``counts[1]`` from the base reader's
    training questions (``data`` less its held-out questions and its combination fold)."""
    tuning = [e for e in seeds if writer(e) in set(lineage)]
    base_training = [e for e in data if not e.test and not train_reader.stack_fold(e)]
    pairs = train_reader.pairs(tuning, random.Random(SEED), counts[0])
    pairs += train_reader.pairs(base_training, random.Random(SEED + 1), counts[1])
    random.Random(SEED + 4).shuffle(pairs)
    print(f"distilling on {len(tuning)} seed questions, {len(pairs)} pairs", file=sys.stderr)
    return pairs


def student_of(teacher, layers: int):
    """The teacher's first ``layers`` encoder layers with its heads, a separate module."""
    student = copy.deepcopy(teacher)
    student.bert.encoder.layer = student.bert.encoder.layer[:layers]
    student.bert.config.num_hidden_layers = layers
    return student


def soft_span_loss(student_span, teacher_span, allowed):
    """Cross-entropy of the student's start and end against the teacher's distributions, over
    the tokens a span may take."""
    import torch

    loss = 0.0
    for k in (0, 1):
        target = torch.softmax(train_reader.within_span(teacher_span[..., k], allowed), -1)
        guess = torch.log_softmax(train_reader.within_span(student_span[..., k], allowed), -1)
        loss = loss + 0.5 * -(target * guess.masked_fill(~allowed, 0.0)).sum(-1).mean()
    return loss


def hidden_gap(student_hidden, teacher_hidden, attention_mask):
    """The mean squared gap between two sets of last hidden states, over real tokens only."""
    weights = attention_mask.unsqueeze(-1).to(student_hidden.dtype)
    gap = ((student_hidden - teacher_hidden) ** 2 * weights).sum()
    return gap / (weights.sum() * student_hidden.shape[-1])


def last_hidden(module) -> tuple[dict, object]:
    """A dict that holds, after each forward of ``module``, its encoder's last hidden states,
    and the hook's handle (``remove()`` it when done)."""
    held: dict = {}
    handle = module.bert.register_forward_hook(
        lambda _, __, out: held.__setitem__("states", out.last_hidden_state)
    )
    return held, handle


def distil(teacher, student, pairs: list[train_reader.Pair], hidden_weight: float = HIDDEN_WEIGHT):
    """One epoch of the student against the teacher (and, GOLD_WEIGHT, the gold; with
    ``hidden_weight``, the teacher's last hidden states), with ``train_reader``'s batch, rates,
    warm-up and decay; returns the student."""
    import math

    import torch
    from transformers import AutoTokenizer

    from qa_bot.embedding import resolve_model_path

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(train_reader.BASE_MODEL))
    rates = (train_reader.LEARNING_RATE, train_reader.HEAD_LEARNING_RATE)
    body, groups = train_reader.parameter_groups(student, rates, 1.0)
    steps = math.ceil(len(pairs) / train_reader.BATCH)
    optimiser, schedule = train_reader.optimiser_for(groups, steps)
    teacher.eval(), student.train()
    (taught, hooked), (learnt, hooking) = last_hidden(teacher), last_hidden(student)
    running = 0.0
    for step in range(steps):
        batch = pairs[step * train_reader.BATCH : (step + 1) * train_reader.BATCH]
        enc = train_reader.encoded(tokenizer, batch, offsets=True)
        inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            t_logit, t_span = teacher(**inputs)
        logit, span = student(**inputs)
        targets = train_reader.span_targets(enc, batch)
        loss = torch.nn.functional.mse_loss(logit, t_logit)
        loss = loss + soft_span_loss(span, t_span, targets[2])
        gold = train_reader.pair_loss(logit, batch) + train_reader.span_loss(span, targets)
        loss = loss + GOLD_WEIGHT * gold
        if hidden_weight:
            mask = inputs["attention_mask"]
            loss = loss + hidden_weight * hidden_gap(learnt["states"], taught["states"], mask)
        running = train_reader.stepped(loss, body, (optimiser, schedule), running, (step, steps))
    hooked.remove(), hooking.remove()
    return student.eval()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-train"))
    parser.add_argument("--teacher", type=Path, default=ROOT / "src" / "qa_bot" / "trained_reader")
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-train/distilled"))
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--seed-pairs", type=int, default=SEED_PAIRS)
    parser.add_argument("--base-pairs", type=int, default=BASE_PAIRS)
    parser.add_argument("--hidden-weight", type=float, default=HIDDEN_WEIGHT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(2)
    if args.out.resolve() == args.teacher.resolve():
        print("--out must not be the teacher's folder: it would overwrite it", file=sys.stderr)
        return 2
    spec = load_spec(args.teacher)
    if not 1 <= args.layers < spec.layers:
        print(f"--layers must be 1 to {spec.layers - 1}", file=sys.stderr)
        return 2
    teacher = assemble(spec, args.teacher / WEIGHTS_FILE)
    pairs = distil_pairs(args, spec.provenance or {})
    student = distil(teacher, student_of(teacher, args.layers), pairs, args.hidden_weight)
    args.out.mkdir(parents=True, exist_ok=True)
    train_reader.save_weights(student, args.out / WEIGHTS_FILE)
    record = {
        "script": "training/distil_reader.py",
        "seed": SEED,
        "writers": {"train": []},
        "pairs": len(pairs),
        "distilled": {
            "teacher_layers": spec.layers,
            "seed_pairs": args.seed_pairs,
            "base_pairs": args.base_pairs,
            "gold_weight": GOLD_WEIGHT,
            "hidden_weight": args.hidden_weight,
        },
        "base": spec.provenance,
    }
    student_spec = replace(spec, layers=args.layers)
    path = write_spec(args.out, student_spec, record)
    print(f"wrote {args.out / WEIGHTS_FILE} and {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())

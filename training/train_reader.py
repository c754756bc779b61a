"""Train a passage reader: the folder (``reader.json``, ``reader_weights.npz``) that
``retrieval.reader`` names.

Made from the questions ``train_ranker.py`` gathers (same data, same split, its cache reused;
fixed seed; run from the repository root after it)::

    python training/train_ranker.py --reuse     # the learned ranker, and the question cache
    python training/train_reader.py             # about 40 minutes on 2 cores; --out FOLDER

The packaged MiniLM is fine-tuned as a cross-encoder (question and passage read together, the
mean of the last hidden states to a logit), its word embeddings frozen, on pairs from the
training questions: every candidate holding a gold answer (up to two), the three best-ranked
that do not, one more drawn from the rest, and the best answer-holding candidate with the
sentences holding the answer removed (an on-topic passage that no longer answers). The
questions over one training article or story in five are kept out of the reader's training:
the combination with the learned ranker (a weight for the order, a small model for the
decision) is fitted there.
The held-out split of ``train_ranker.py`` is never trained on; the script reports on it.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fit_join
import reader_record
from train_ranker import SEED, Example

from qa_bot.answer_types import asks_person, expected_answer
from qa_bot.evaluation import EvalQuestion, contains_answer
from qa_bot.features import question_features
from qa_bot.ranker import LearnedRanker, LinearModel
from qa_bot.read_stage import reading_positions
from qa_bot.reader import (
    WEIGHTS_FILE,
    PassageReader,
    ReaderSpec,
    encoded_pairs,
)
from qa_bot.reader_export import assemble, pack_deltas, reader_module
from qa_bot.reader_spans import SPAN_FIT_INPUTS, read_spans
from qa_bot.runtime import prepare_process
from qa_bot.text import sentence_spans

ROOT = Path(__file__).resolve().parents[1]
BASE_MODEL = "all-MiniLM-L6-v2"
LAYERS = 6
MAX_LENGTH = 128
#: How many of the learned ranker's best passages the reader reads (``retrieval.reader_depth``).
DEPTH = 5
BATCH = 16
LEARNING_RATE = 5e-5
HEAD_LEARNING_RATE = 1e-3
MAX_PAIRS = 30000
#: The longest answer span the span head may point at, in tokens (``ReaderSpec.max_span``).
MAX_SPAN = 30


def stack_fold(e: Example) -> bool:
    """Whether the example's question is in the combination fold (:func:`in_fold`)."""
    return in_fold(e.question)


def in_fold(question: EvalQuestion) -> bool:
    """One training article or story in five: the reader never trains on its questions. By
    article, not by question: a reader that has read other questions over the same passage
    would look better on the fold than on articles it never saw, and the weight fitted there
    would be too high."""
    key = question.docs[0] if question.docs else question.id
    return zlib.crc32(key.encode()) % 5 == 0


def without_answer(text: str, answers: tuple[str, ...]) -> str | None:
    """The passage with every sentence holding a gold answer removed, if anything is left."""
    kept = [text[a:b].strip() for a, b in sentence_spans(text)]
    left = " ".join(s for s in kept if s and not contains_answer(s, answers)).strip()
    return left if left and not contains_answer(left, answers) else None


#: What may stand in a masked passage for the answer a question asks for, by the kind of
#: answer (``qa_bot.answer_types``; "number" for every kind asking for one, "other" for the
#: rest): the sentence stays, and says no more than a vague phrase. Several, so that the reader
#: cannot learn the phrase instead of the missing answer.
MASKS = {
    "person": ("an official", "a spokesman", "someone", "a source", "one of them"),
    "date": ("earlier", "recently", "that week", "at one point"),
    "number": ("several", "a number of", "dozens of", "many"),
    "other": ("something", "it", "that", "this"),
}


def masked(text: str, question: str, answers: tuple[str, ...]) -> str | None:
    """The passage with every gold answer in it replaced by a vague stand-in of its kind (an
    on-topic passage that names no answer: the sentence that would hold it is still there), or
    None when no answer is found in it or one is left."""
    kind = expected_answer(question)
    if asks_person(question):
        name = "person"
    elif kind is not None:
        name = "date" if kind.name in ("date", "year") else "number"
    else:
        name = "other"
    mask = random.Random(zlib.crc32(question.encode())).choice(MASKS[name])
    out = text
    for answer in sorted({a for a in answers if a.strip()}, key=len, reverse=True):
        pattern = r"\s+".join(re.escape(part) for part in answer.split())
        out = re.sub(pattern, mask, out, flags=re.IGNORECASE)
    return out if out != text and not contains_answer(out, answers) else None


class Pair(NamedTuple):
    """A training pair: question, passage, 1.0 if it answers, the answers it holds (if any),
    and how much its loss counts (an answer-removed passage may count more: it is the on-topic
    passage that does not answer, the one a reader most needs to tell apart)."""

    question: str
    passage: str
    label: float
    answers: tuple[str, ...]
    weight: float = 1.0


def pairs(
    items: list[Example],
    rng: random.Random,
    limit: int | None = MAX_PAIRS,
    removed_weight: float = 1.0,
    mask: bool = False,
    swap: Callable[[str, str], str | None] | None = None,
) -> list[Pair]:
    """Each question's pairs: its best two passages that answer, three that do not and one
    further down, the first answering one with its answer sentences removed (counted
    ``removed_weight``), with ``mask`` with its answer replaced by a vague stand-in, and with
    ``swap`` asked the question with one of its names swapped (``swapped.swapped``);
    shuffled, the first ``limit`` of them (None: all)."""
    out: list[Pair] = []
    for e in items:
        q = e.query.text
        answers = tuple(e.question.answers)
        positive = [h for h, y in zip(e.hits, e.labels, strict=True) if y][:2]
        negative = [h for h, y in zip(e.hits, e.labels, strict=True) if not y]
        out += [Pair(q, h.chunk.text, 1.0, answers) for h in positive]
        out += [Pair(q, h.chunk.text, 0.0, ()) for h in negative[:3]]
        if len(negative) > 3:
            out.append(Pair(q, rng.choice(negative[3:]).chunk.text, 0.0, ()))
        if positive and not e.question.unanswerable:
            removed = without_answer(positive[0].chunk.text, e.question.answers)
            if removed:
                out.append(Pair(q, removed, 0.0, (), removed_weight))
            hidden = masked(positive[0].chunk.text, q, answers) if mask else None
            if hidden:
                out.append(Pair(q, hidden, 0.0, ()))
            other = swap(q, positive[0].chunk.text) if swap else None
            if other:
                out.append(Pair(other, positive[0].chunk.text, 0.0, ()))
    rng.shuffle(out)
    return out[:limit]


def span_targets(enc, batch: list[Pair]):
    """Each pair's first and last token of the first answer found in its passage, or the
    first token (0, 0) when it holds none; and which tokens may be picked (passage, first)."""
    import torch

    starts, ends, allowed = [], [], []
    for row, (_, passage, label, answers, _) in enumerate(batch):
        segment = enc.sequence_ids(row)
        offsets = enc["offset_mapping"][row].tolist()
        allowed.append([k == 0 or s == 1 for k, s in enumerate(segment)])
        tokens: list[int] = []
        for answer in answers if label > 0 else ():
            at = passage.lower().find(answer.lower())
            if at >= 0:
                end = at + len(answer)
                tokens = [
                    k
                    for k, (s, (a, b)) in enumerate(zip(segment, offsets, strict=True))
                    if s == 1 and b > at and a < end
                ]
                if tokens:
                    break
        starts.append(tokens[0] if tokens else 0)
        ends.append(tokens[-1] if tokens else 0)
    return torch.tensor(starts), torch.tensor(ends), torch.tensor(allowed)


def span_loss(span, targets):
    """Cross-entropy of the span head's start and end over the tokens it may pick
    (``targets``: :func:`span_targets` of the batch)."""
    import torch

    starts, ends, allowed = targets
    ce = torch.nn.functional.cross_entropy
    start, end = (within_span(span[..., k], allowed) for k in (0, 1))
    return 0.5 * (ce(start, starts) + ce(end, ends))


def within_span(values, allowed):
    """``values`` with the tokens a span may not take set far below the rest, so that a
    softmax over them gives those tokens nothing."""
    import torch

    return values.masked_fill(~allowed, torch.finfo(values.dtype).min / 2)


def pair_loss(logit, batch: list[Pair]):
    """The batch's binary cross-entropy, each pair's counting by its weight (the mean over the
    batch, so that weights of 1 give the plain loss)."""
    import torch

    labels = torch.tensor([b.label for b in batch])
    counts = torch.tensor([b.weight for b in batch])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return (bce(logit, labels, reduction="none") * counts).mean()


def train(
    examples: list[Pair],
    layers: int = LAYERS,
    start=None,
    rates: tuple[float, float] = (LEARNING_RATE, HEAD_LEARNING_RATE),
    span_weight: float = 0.0,
    seed: int = SEED,
):
    """One epoch of binary cross-entropy (each pair's counting by its weight), linear warm-up
    and decay, torch seeded with ``seed``; returns the module.

    ``start``, when given, is a reader to train further (``tune_reader.py``) instead of the
    packaged MiniLM; ``rates`` are the body's and the head's learning rates. With
    ``span_weight``, a span head (new, unless ``start`` has one) learns where the answer is,
    its loss weighted so, at the base reader's head rate."""
    import torch
    from transformers import AutoTokenizer

    from qa_bot.embedding import resolve_model_path

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(BASE_MODEL))
    module = reader_module(BASE_MODEL, layers) if start is None else start
    if span_weight and module.span_head is None:
        module.span_head = torch.nn.Linear(module.bert.config.hidden_size, 2)
    body, groups = parameter_groups(module, rates, span_weight)
    steps = math.ceil(len(examples) / BATCH)
    optimiser, schedule = optimiser_for(groups, steps)
    module.train()
    running = 0.0
    for step in range(steps):
        batch = examples[step * BATCH : (step + 1) * BATCH]
        enc = encoded(tokenizer, batch, offsets=bool(span_weight))
        out = module(**{k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
        logit, span = out if isinstance(out, tuple) else (out, None)
        loss = pair_loss(logit, batch)
        if span_weight:
            loss = loss + span_weight * span_loss(span, span_targets(enc, batch))
        running = stepped(loss, body, (optimiser, schedule), running, (step, steps))
    return module.eval()


def optimiser_for(groups: list[dict], steps: int):
    """AdamW over ``groups`` with a linear warm-up over a tenth of ``steps``, then a linear
    decay: what every epoch of the reader's training uses."""
    import torch

    optimiser = torch.optim.AdamW(groups, weight_decay=0.01)
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / steps)
    )
    return optimiser, schedule


def stepped(loss, body: list, optimising: tuple, running: float, at: tuple[int, int]) -> float:
    """One optimiser step on ``loss`` (the body's gradients clipped to norm 1, the schedule
    advanced); returns the running loss, printed every 100 steps (``at``: step, steps)."""
    import torch

    optimiser, schedule = optimising
    loss.backward()
    torch.nn.utils.clip_grad_norm_(body, 1.0)
    optimiser.step(), schedule.step(), optimiser.zero_grad()
    running = 0.98 * running + 0.02 * loss.item()
    if at[0] % 100 == 0:
        print(f"  step {at[0]}/{at[1]} loss {running:.3f}", file=sys.stderr, flush=True)
    return running


def encoded(tokenizer, batch: list[Pair], *, offsets: bool):
    """A batch of pairs as the reader reads them: the passage cut at MAX_LENGTH tokens, padded
    to the longest pair (with ``offsets``, each token's characters, which the span needs)."""
    return tokenizer(
        [b[0] for b in batch],
        [b[1] for b in batch],
        truncation="only_second",
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
        return_offsets_mapping=offsets,
    )


def parameter_groups(module, rates: tuple[float, float], span_weight: float):
    """The encoder's layers (its embeddings stay frozen) at the body's rate, the logit's head
    at the head's, and a span head being trained at the base reader's head rate."""
    for p in module.bert.embeddings.parameters():
        p.requires_grad = False
    body = [p for n, p in module.named_parameters() if p.requires_grad and n.startswith("bert.")]
    groups = [
        {"params": body, "lr": rates[0]},
        {"params": list(module.head.parameters()), "lr": rates[1]},
    ]
    if span_weight:
        groups.append({"params": list(module.span_head.parameters()), "lr": HEAD_LEARNING_RATE})
    return body, groups


def save_weights(module, out: Path) -> None:
    """What training changed (never the frozen word embeddings), against the packaged model."""
    layers = module.bert.config.num_hidden_layers
    base = {k: v.numpy() for k, v in reader_module(BASE_MODEL, layers).state_dict().items()}
    tuned = {
        n: p.detach().numpy()
        for n, p in module.named_parameters()
        if not n.startswith("bert.embeddings.") and not n.startswith("bert.pooler.")
    }
    base = {k: v for k, v in base.items() if not k.startswith("head.")}
    np.savez_compressed(out, **pack_deltas(tuned, base))


def passage_reading(module, spec: ReaderSpec) -> Callable:
    """What ``module`` (the torch module, or a ``PassageReader`` over the int8 export) reads
    of a question's passages, as serving reads it: their logits, span margins and what each
    best span holds (zeros without a span head)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from qa_bot.embedding import resolve_model_path

    hf_tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(spec.base_model))
    tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())

    def read(question: str, hits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        passages = [h.chunk.text for h in hits]
        if isinstance(module, PassageReader):
            got = module.read(question, passages)
            none = np.zeros((len(hits), len(SPAN_FIT_INPUTS)))
            return got.logits, got.spans, none if got.fits is None else got.fits
        encoded = encoded_pairs(tokenizer, spec, question, passages)
        with torch.no_grad():
            out = module(**{name: torch.from_numpy(v) for name, v in encoded[0].items()})
        if not isinstance(out, tuple):
            none = np.zeros((len(hits), len(SPAN_FIT_INPUTS)))
            return out.numpy().astype(np.float64), np.zeros(len(hits)), none
        span = out[1].numpy().astype(np.float64)
        spans, _, fits = read_spans(question, passages, span, encoded, MAX_SPAN)
        return out[0].numpy().astype(np.float64), spans, fits

    return read


def scored(
    module,
    spec: ReaderSpec,
    items: list[Example],
    ranker: LearnedRanker,
    near: Callable[[Example], np.ndarray] | None = None,
    extra: int = 0,
) -> list[dict]:
    """For each question: the passages read (the learned order's best DEPTH, and with ``near``,
    the cosines of the candidates with the adapted question, the ``extra`` nearest of the
    others), their labels, ranker and reader logits and cosines, the answer model's logit;
    and the same for the candidates left when the answer is removed. Pairs are encoded as
    serving encodes them (``encoded_pairs``), so that the join is fitted on what it will read;
    ``module`` is the torch module, or the int8 export serving runs (a ``PassageReader``),
    whose outputs differ from the module's by more than rounding."""
    read = passage_reading(module, spec)
    rows = []
    for e in items:
        row = {"set": e.set_name, "unanswerable": e.question.unanswerable}
        logits = ranker.candidates.logits(e.rows)
        cosines = near(e) if near is not None else np.zeros(len(e.hits))
        for key, keep in (("all", np.ones(len(e.hits), bool)), ("removed", e.labels == 0)):
            if key == "removed" and (e.question.unanswerable or keep.all() or not keep.any()):
                continue
            idx = np.flatnonzero(keep)
            order = idx[np.argsort(-logits[idx], kind="stable")]
            hits = [e.hits[i] for i in order]
            asked = question_features(e.query, hits, logits[order], e.rows[order])
            positions = reading_positions(cosines[order], DEPTH, extra if near is not None else 0)
            top = [int(order[i]) for i in positions]
            reader, spans, fits = read(e.query.text, [e.hits[i] for i in top])
            row[key] = {
                "labels": e.labels[top].astype(int),
                "ranker": logits[top],
                "near": cosines[top],
                "reader": reader,
                "span": spans,
                "fits": fits,
                "articles": [e.hits[i].article.content_hash for i in top],
                "answer": float(ranker.answer.logits(asked[None, :])[0]),
                "asked": asked,
            }
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-train"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-train/reader"))
    parser.add_argument("--threshold", type=float, default=0.35)
    parser.add_argument("--layers", type=int, default=LAYERS, help="MiniLM layers kept (1-6)")
    parser.add_argument("--max-pairs", type=int, default=MAX_PAIRS, help="training pairs")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    cache = args.work / "examples.pkl"
    if not cache.is_file():
        print(f"no {cache}: run training/train_ranker.py first", file=sys.stderr)
        return 2
    sys.modules["__main__"].Example = Example  # the cache pickles train_ranker's Example
    data = pickle.loads(cache.read_bytes())
    training = [e for e in data if not e.test and not stack_fold(e)]
    fold = [e for e in data if not e.test and stack_fold(e)]
    test = [e for e in data if e.test]
    print(
        f"reader: {len(training)} questions, fold {len(fold)}, held out {len(test)}",
        file=sys.stderr,
    )
    module = train(pairs(training, random.Random(SEED), args.max_pairs), args.layers)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / WEIGHTS_FILE
    save_weights(module, weights)
    ranker = LearnedRanker.load()
    blank = LinearModel(("answer_logit", "reader_best"), np.zeros(2), np.ones(2), np.zeros(2), 0.0)
    spec = ReaderSpec(BASE_MODEL, args.layers, MAX_LENGTH, 0.0, blank)
    shipped = assemble(spec, weights)  # what ships: the int8 differences, not the module
    weight, _, answer = fit_join.fit_combination(scored(shipped, spec, fold, ranker))
    spec = replace(spec, rank_weight=weight, answer=answer)
    held = fit_join.report(scored(shipped, spec, test, ranker), spec, args.threshold)
    print(json.dumps(held, indent=1))
    provenance = {
        "script": "training/train_reader.py",
        "seed": SEED,
        "depth": DEPTH,
        "training_questions": len(training),
        "fold_questions": len(fold),
        "held_out": held,
    }
    written = reader_record.write_spec(args.out, spec, provenance)
    print(f"wrote {weights} and {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())

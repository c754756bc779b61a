"""Train the query adapter: ``src/qa_bot/query_adapter.npz`` (:mod:`qa_bot.query_adapter`).

A question worded unlike its answer ("how many lost their lives" of "the death toll rose to
41") loses the answering passage in the first stage, before the learned ranker or the reader
see it. The adapter is a linear map on the question's MiniLM vector, trained so that the
passages holding a question's answer come nearest among its candidates (the passages the
first stage gathers for it: the hard negatives), with a softmax over the candidates' cosines.

Questions, each asked as written and as people type it (``train_ranker.typed``):
- the training part of XQuAD and of the first and third Reuters batches (``train_ranker``'s
  split; the same held-out part is reported), without the reader's combination fold
  (``train_reader.in_fold``), where ``tune_reader.py`` fits the adapter's weight;
- over the seeds: the realistic questions the ninth round's reader trained on
  (``writers.ADAPTER_WRITERS``; the reader now trains on later sets too). Writers ``l``,
  ``m`` and ``n`` (``m`` and ``l`` fit the join) and ``tests/heldout_questions.jsonl``'s sets
  the ranker trains on (``train_ranker.SEED_SETS``, a regression set of the seeds) are
  reported, never trained on.

Fixed seed; run from the repository root after ``train_ranker.py`` has built its indexes
(``--work``), then fit the reader's join with the adapter's passages (``tune_reader.py``
reads the adapter's nearest passages too, and weighs their cosine)::

    python training/train_adapter.py               # about 3 min
    python training/tune_reader.py --join-only --out src/qa_bot/trained_reader

The learned ranker is not trained over adapted vectors: the adapter has learned its own
training questions (and the stories they are about) far better than new ones, so a ranker
trained on those cosines trusts them too much (benchmarks/README.md, "Seventh round").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asked_examples
import train_ranker
import train_reader
import writers
from train_ranker import SEED

from qa_bot.evaluation import EvalQuestion, contains_answer, load_questions
from qa_bot.query import analyse
from qa_bot.query_adapter import QueryAdapter
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import PACKAGED_ADAPTER

ROOT = Path(__file__).resolve().parents[1]
#: Candidates per question, from each side of the first stage (cosine and BM25).
POOL = 50
#: Softmax temperature over cosines, weight decay on the map, passes and batch size.
TEMPERATURE = 0.05
DECAY = 1e-2
EPOCHS = 10
BATCH = 64
RATE = 1e-3
#: The realistic writers reported (never trained on).
REPORT_WRITERS = ("l", "m", "n")


@dataclass(frozen=True)
class Asked:
    """One asked question: its set, its unadapted vector, its candidates' and their labels."""

    set_name: str
    kind: str
    held_out: bool
    vector: np.ndarray
    passages: np.ndarray
    labels: np.ndarray


def asked(
    service: QAService,
    set_name: str,
    questions: Sequence[EvalQuestion],
    held_out: Callable[[EvalQuestion], bool],
    rng: random.Random,
) -> list[Asked]:
    """Each answerable question as written and as typed, with its first-stage candidates; a
    question with no answering candidate teaches nothing and is left out."""
    snapshot = service.snapshot()
    answerable = [q for q in questions if not q.unanswerable]
    pairs = train_ranker.written_and_typed(answerable, rng)
    vectors = service.query_embedder.embed([text for _, text in pairs])
    k = min(POOL, snapshot.n_chunks)
    out = []
    for (q, text), qv in zip(pairs, vectors, strict=True):
        terms = analyse(text, snapshot.lexical).terms
        ids = sorted({int(i) for i in snapshot.candidates(qv, terms, k).ids})
        chunks = snapshot.chunks(ids)
        labels = np.array([contains_answer(chunks[i].text, q.answers) for i in ids])
        if labels.any():
            passages = snapshot.vectors_of(ids).astype(np.float16)
            out.append(Asked(set_name, q.kind, held_out(q), qv, passages, labels))
    return out


def outside_fold(
    questions: Sequence[EvalQuestion], held_out: Callable[[EvalQuestion], bool]
) -> list[EvalQuestion]:
    """The questions without the training ones of the reader's combination fold: the join is
    fitted there, so the adapter must not have learned them (it would look far better there
    than on new articles)."""
    return [q for q in questions if held_out(q) or not train_reader.in_fold(q)]


def collect(
    work: Path, shared: Path, rng: random.Random, served: bool = False
) -> tuple[list[Asked], str]:
    """The questions asked of XQuAD and Reuters and of the seeds, and the query model's name;
    ``served`` adds the served blind checks of ``writers.ADAPTER_SERVED_WRITERS`` to the
    training questions and reports ``writers.ADAPTER_SERVED_REPORT``."""
    xr = train_ranker.service_for(work / "xr_seeds", work / "xr_index")
    seeds = train_ranker.service_for(ROOT / "seeds", work / "seeds_index")
    xquad = load_questions(shared / "external/xquad_en/questions_dev.jsonl")
    data = asked(
        xr, "xquad", outside_fold(xquad, train_ranker.xquad_test), train_ranker.xquad_test, rng
    )
    for batch in ("reuters_questions.jsonl", "reuters_questions3.jsonl"):
        reuters = outside_fold(
            load_questions(ROOT / "training/data" / batch), train_ranker.reuters_test
        )
        data += asked(xr, "reuters", reuters, train_ranker.reuters_test, rng)
    data += asked(seeds, "seeds", train_ranker.seed_sets(), lambda q: True, rng)
    realistic = load_questions(asked_examples.REALISTIC)
    report = REPORT_WRITERS + (writers.ADAPTER_SERVED_REPORT if served else ())
    trained = writers.ADAPTER_WRITERS + (writers.ADAPTER_SERVED_WRITERS if served else ())
    chosen = [q for q in realistic if q.set_id in trained + report]
    data += asked(seeds, "realistic", chosen, lambda q: q.set_id in report, rng)
    return data, Path(seeds.query_embedder.model_id).name


def train(items: Sequence[Asked], dimension: int) -> np.ndarray:
    """The map ``M`` (``q -> normalise(q + q @ M)``), from zero, by Adam on the softmax loss
    over each question's candidates (padded to the batch's longest list, and masked)."""
    import torch

    torch.manual_seed(SEED)
    matrix = torch.zeros(dimension, dimension, requires_grad=True)
    optimiser = torch.optim.Adam([matrix], lr=RATE)
    shuffle = np.random.default_rng(SEED)
    for epoch in range(EPOCHS):
        total = 0.0
        order = shuffle.permutation(len(items))
        for start in range(0, len(items), BATCH):
            batch = [items[i] for i in order[start : start + BATCH]]
            q, passages, present, labels = _padded(batch)
            moved = q + q @ matrix
            moved = moved / moved.norm(dim=-1, keepdim=True)
            scores = torch.einsum("bkd,bd->bk", passages, moved) / TEMPERATURE
            scores = scores.masked_fill(~present, float("-inf"))
            answering = scores.masked_fill(~labels, float("-inf"))
            loss = (torch.logsumexp(scores, 1) - torch.logsumexp(answering, 1)).mean()
            loss = loss + DECAY * (matrix**2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        print(f"  epoch {epoch + 1}: loss {total / len(items):.4f}", file=sys.stderr)
    return matrix.detach().numpy()


def _padded(batch: Sequence[Asked]) -> tuple[Any, Any, Any, Any]:
    import torch

    width = max(len(a.labels) for a in batch)
    dimension = batch[0].vector.shape[0]
    passages = np.zeros((len(batch), width, dimension), dtype=np.float32)
    present = np.zeros((len(batch), width), dtype=bool)
    labels = np.zeros((len(batch), width), dtype=bool)
    for j, a in enumerate(batch):
        passages[j, : len(a.labels)] = a.passages
        present[j, : len(a.labels)] = True
        labels[j, : len(a.labels)] = a.labels
    vectors = np.stack([a.vector for a in batch]).astype(np.float32)
    return (
        torch.from_numpy(vectors),
        torch.from_numpy(passages),
        torch.from_numpy(present),
        torch.from_numpy(labels),
    )


def recall(items: Sequence[Asked], adapter: QueryAdapter | None) -> dict[str, float]:
    """Share of questions whose nearest candidate by cosine holds the answer, and among the
    nearest five."""
    ranks = []
    for a in items:
        q = adapter.apply(a.vector[None, :])[0] if adapter else a.vector
        order = np.argsort(-(a.passages @ q), kind="stable")
        ranks.append(int(np.flatnonzero(a.labels[order])[0]) + 1)
    r = np.array(ranks)
    return {
        "questions": len(r),
        "top1": round(float(np.mean(r <= 1)), 4),
        "top5": round(float(np.mean(r <= 5)), 4),
    }


def report(data: Sequence[Asked], adapter: QueryAdapter) -> dict[str, dict[str, object]]:
    """Held-out recall by set (and by class for the realistic writers), without and with."""
    groups: dict[str, list[Asked]] = {}
    for a in data:
        if a.held_out:
            groups.setdefault(a.set_name, []).append(a)
            if a.set_name == "realistic":
                groups.setdefault(f"realistic/{a.kind}", []).append(a)
    return {
        name: {"without": recall(items, None), "with": recall(items, adapter)}
        for name, items in sorted(groups.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-train"))
    parser.add_argument("--out", type=Path, default=PACKAGED_ADAPTER)
    parser.add_argument(
        "--served",
        action="store_true",
        help="train on the served blind checks P69 to P199 too, and report P200 to P225",
    )
    args = parser.parse_args(argv)
    data, model_id = collect(args.work, args.shared, random.Random(SEED), args.served)
    training = [a for a in data if not a.held_out]
    print(
        f"questions asked: {len(training)} training, {len(data) - len(training)} held out",
        file=sys.stderr,
    )
    matrix = train(training, int(training[0].vector.shape[0]))
    held = report(data, QueryAdapter(model_id, matrix))
    print(json.dumps(held, indent=1))
    provenance = {
        "script": "training/train_adapter.py",
        "seed": SEED,
        "training_questions": len(training),
        **({"served": True} if args.served else {}),
        "held_out": held,
    }
    QueryAdapter(model_id, matrix, provenance).save(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())

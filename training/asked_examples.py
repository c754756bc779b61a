"""The question sets ``tune_reader.py`` reads besides ``train_ranker``'s cache: each asked of
its corpus (the seeds, or XQuAD and Reuters as ``train_ranker`` indexed them), ranked by the
hand-made stages and featurised, cached in the work folder by the file's content so that a set
added to a file is never missed.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from pathlib import Path

import fit_join
import keyed_cache
import numpy as np
import train_ranker
import train_reader
from train_ranker import SEED, Example

from qa_bot.evaluation import EvalQuestion, load_questions
from qa_bot.query_adapter import QueryAdapter
from qa_bot.service import QAService

ROOT = Path(__file__).resolve().parents[1]
REALISTIC = ROOT / "tests" / "realistic_questions.jsonl"
#: The fourth batch of Reuters questions (``--news``): formal paraphrases, people asked for by
#: name, and people and figures the story does not give, over stories no other batch read.
NEWS = ROOT / "training" / "data" / "reuters_questions4.jsonl"
#: Its set name; its stories whose id is a multiple of 4 are only reported.
NEWS_SET = "reuters4"
#: Questions on other subjects than the seeds', written blind for the topic model.
OFF_TOPIC_QUESTIONS = ROOT / "training" / "data" / "offtopic_questions.jsonl"
#: The set name of the written off-topic questions (reported apart from train_ranker's).
WRITTEN_OFF_TOPIC = fit_join.OFF_TOPIC + "-written"
#: Formal questions over the seeds, answerable and not, written blind for the decision for the
#: articles the reader was tuned on: people's sets hold few questions worded in full.
FORMAL_QUESTIONS = ROOT / "training" / "data" / "formal_questions.jsonl"
#: More questions over the seeds written blind for that decision, never a blind check: formal
#: ones (writers fc to ff) and people's (ta to tr, in the blind checks' mix of kinds);
#: ``tune_reader.py --written`` fits the decision on them too (measured, not adopted).
WRITTEN_QUESTIONS = ROOT / "training" / "data" / "written_questions.jsonl"
#: Questions over the seeds written blind for the reader's seventh epoch (fifty-second round,
#: writers va to vf): vague and loose yes/no ones as people half-remembering the news type
#: them, and on-topic ones worded the same way that the articles do not answer. A file apart,
#: so that what reads only WRITTEN_QUESTIONS (the about model, the quote model) is unchanged;
#: ``written_examples`` reads it after WRITTEN_QUESTIONS, as if appended to it.
VAGUE_QUESTIONS = ROOT / "training" / "data" / "vague_questions.jsonl"
#: The seeds' formal blind checks, appended once they had served.
HELDOUT = ROOT / "tests" / "heldout_questions.jsonl"


def realistic_examples(work: Path) -> list[Example]:
    """The seeds' realistic questions, ranked by the hand-made stages and featurised (cached by
    the question file's content, so that a set added to it is never missed)."""
    return asked_examples(work, REALISTIC, "realistic", lambda q: True, "realistic_examples")


def off_topic_examples(work: Path) -> list[Example]:
    """The written off-topic questions asked of the seeds, ranked and featurised (cached by
    the file's content); one question in five (by a hash of its id) is ``test``, only
    reported."""
    return asked_examples(
        work, OFF_TOPIC_QUESTIONS, WRITTEN_OFF_TOPIC, train_reader.in_fold, "off_topic_examples"
    )


def formal_examples(work: Path) -> list[Example]:
    """The written formal questions asked of the seeds, ranked and featurised (cached by the
    file's content); all of them fit the decision, none is reported."""
    return asked_examples(work, FORMAL_QUESTIONS, "formal-written", lambda q: False, "formal")


def served_formal_examples(work: Path, sets: tuple[str, ...]) -> list[Example]:
    """The formal blind checks of ``sets`` (``tests/heldout_questions.jsonl``, once they had
    served) asked of the seeds, ranked and featurised (cached by the file and the sets); all
    of them fit the decision, none is reported."""
    return asked_examples(
        work, HELDOUT, "formal-served", lambda q: False, "served_formal", sets=sets
    )


def written_examples(work: Path) -> list[Example]:
    """WRITTEN_QUESTIONS and then VAGUE_QUESTIONS asked of the seeds, ranked and featurised
    (cached by the files' content); with ``--written`` all of them fit the decision, none is
    reported."""
    return asked_examples(
        work, WRITTEN_QUESTIONS, "written", lambda q: False, "written", more=(VAGUE_QUESTIONS,)
    )


def news_examples(work: Path) -> list[Example]:
    """The fourth batch asked of XQuAD and Reuters as ``train_ranker`` indexed them, ranked and
    featurised (cached by the file's content); held out like the ranker's Reuters batches."""
    stem = "news_examples"
    return asked_examples(work, NEWS, NEWS_SET, train_ranker.reuters_test, stem, corpus="xr")


def asked_examples(
    work: Path,
    path: Path,
    set_name: str,
    test_of: Callable[[EvalQuestion], bool],
    stem: str,
    corpus: str = "seeds",
    sets: tuple[str, ...] = (),
    more: tuple[Path, ...] = (),
) -> list[Example]:
    """The questions in ``path`` and then in ``more`` (only those of ``sets``, when given)
    asked of the seeds (``corpus`` "xr": of XQuAD and Reuters) as ``set_name``, ranked and
    featurised, cached in ``work`` as ``stem`` and the first digits of the files' digest."""
    files = [path, *more]
    cache = work / f"{stem}_{keyed_cache.digest(files, list(sets))[:12]}.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    service = corpus_service(work, corpus)
    asked = [q for f in files for q in load_questions(f)]
    questions = [q for q in asked if not sets or q.set_id in sets]
    data = train_ranker.examples(service, set_name, questions, test_of, random.Random(SEED))
    cache.write_bytes(pickle.dumps(data))
    return data


def corpus_service(work: Path, corpus: str) -> QAService:
    """The service over the seeds (``corpus`` "seeds") or over XQuAD and Reuters ("xr"), as
    ``train_ranker`` copied and indexed them in ``work``."""
    folder = work / "xr_seeds" if corpus == "xr" else ROOT / "seeds"
    return train_ranker.service_for(folder, work / f"{corpus}_index")


def adapted_cosines(work: Path, adapter: QueryAdapter) -> Callable[[Example], np.ndarray]:
    """The cosines of a question's candidates with its adapted question vector, read from the
    index it was asked of (the seeds', or XQuAD and Reuters' as ``train_ranker`` built it)."""
    services: dict[str, QAService] = {}

    def near(e: Example) -> np.ndarray:
        folder = e.hits[0].article.path.split("/")[0]
        corpus = "xr" if folder in train_ranker.XR_FOLDERS else "seeds"
        if corpus not in services:
            services[corpus] = corpus_service(work, corpus)
        service = services[corpus]
        question = adapter.apply(service.query_embedder.embed([e.query.text]))[0]
        return service.snapshot().vectors_of([h.chunk_id for h in e.hits]) @ question

    return near

"""End to end with the real model on the real seeds: questions written blind the way people type
in a chat (lowercase, typos, paraphrase, vague, two-part, yes/no, "he said", on-topic questions
the articles do not answer), each set scored once before it joined the tests.

They were the blind checks of the learned ranker and of the passage reader (benchmarks/README.md,
"Learned first-quote ranker and answer decision", "Passage reader"); now they hold what those
reached, per set and overall. Sets C to K and O to Q also trained the reader, L and M fitted how
it joins the ranker (training/tune_reader.py): on those, these floors are not a blind measure.
Sets S to W were written for training, never as blind checks; R, X and Y were the sixth
round's blind checks; Z and 1 to 4 the seventh round's; 6 and 7 the eighth round's (set 5 was
scored, then lost with its machine). The query adapter (training/train_adapter.py) trained on
the reader's training sets too, and the seventh round's join was fitted on L and M again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_bot.evaluation import evaluate, load_questions
from qa_bot.service import QAService

#: Sets C to Z (ids c.., d.., ... z..), then 1 to 4, 6 and 7 (ids 1-.., ... 7-..), 2,424
#: questions, with their class.
REALISTIC = Path(__file__).with_name("realistic_questions.jsonl")


# Over two thousand questions through the whole path: minutes on a busy machine, past the
# suite's default timeout.
@pytest.mark.timeout(1800)
def test_realistic_questions_keep_their_floor(seeds_service: QAService) -> None:
    report = evaluate(seeds_service, load_questions(REALISTIC), warmup=False)
    assert report.faithfulness == 1.0
    assert report.first_quote_answer_rate is not None and report.first_quote_answer_rate >= 0.79
    assert report.answered_rate is not None and report.answered_rate >= 0.90
    # 0.540 with sets 6 and 7 (they decline about one in three): the floor is a little below.
    assert report.abstention_recall is not None and report.abstention_recall >= 0.53
    assert report.median_quoted_chars is not None and report.median_quoted_chars <= 450
    assert set(report.by_class) == {
        "attribution",
        "lowercase",
        "paraphrase",
        "two-part",
        "typo",
        "unanswerable",
        "vague",
        "yes-no",
    }

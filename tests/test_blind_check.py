"""The check a blind set's writer runs before the set is scored (``benchmarks/blind``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).resolve().parents[1] / "benchmarks" / "blind" / "check_set.py"


def _seeds(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "000_a.txt").write_text("The convoy was hit at night.\nTwenty people died.")
    (seeds / "001_b.txt").write_text("Talks resume in Geneva.")
    return seeds


def _formal_set(path: Path, answer: str = "at night") -> Path:
    """70 answerable questions, 20 on-topic and 10 off-topic ones the articles do not answer."""
    rows = []
    for n in range(1, 101):
        row = {"id": f"h1-{n:03d}", "question": "When was the convoy hit?", "answers": [answer]}
        row |= {"docs": ["000"], "class": "formal"}
        if n > 70:
            row |= {"answers": [], "docs": [], "unanswerable": True}
            row["class"] = "unanswerable" if n <= 90 else "off-topic"
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n")
    return path


def _check(*args: object) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(CHECK), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_a_well_written_set_passes(tmp_path: Path) -> None:
    seeds = _seeds(tmp_path)
    done = _check(_formal_set(tmp_path / "h1.jsonl", "AT  NIGHT"), "--seeds", seeds, "--formal")
    assert (done.returncode, done.stdout.strip()) == (0, "OK")


def test_an_answer_not_in_its_article_and_the_wrong_mix_are_named(tmp_path: Path) -> None:
    seeds = _seeds(tmp_path)
    path = _formal_set(tmp_path / "h1.jsonl", "in Geneva")  # in 001, not in the doc named
    done = _check(path, "--seeds", seeds)  # the realistic mix asked of a formal set
    assert done.returncode == 1
    assert "h1-001: answer 'in Geneva' is not verbatim in docs ['000']" in done.stdout
    assert "wanted {'lowercase': 11" in done.stdout


def test_gold_on_an_unanswerable_question_and_a_bad_line_are_named(tmp_path: Path) -> None:
    seeds = _seeds(tmp_path)
    path = _formal_set(tmp_path / "h1.jsonl")
    lines = path.read_text().splitlines()
    lines[80] = lines[80].replace('"answers": []', '"answers": ["Twenty people"]')
    lines[5] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    done = _check(path, "--seeds", seeds, "--formal")
    assert done.returncode == 1
    assert "h1-081: unanswerable, yet it has answers or docs" in done.stdout
    assert "line 6: not JSON" in done.stdout and "99 questions, 100 wanted" in done.stdout

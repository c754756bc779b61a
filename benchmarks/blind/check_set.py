"""Check a question set written blind (``prompt_realistic.txt``, ``prompt_formal.txt``) before
it is scored: its shape, ids and class mix, and every gold answer verbatim in an article it
names. The writer runs it until it prints OK, so that a set fails on its writing, never on
the bot.

    .venv/bin/python benchmarks/blind/check_set.py P212.jsonl --seeds seeds
    .venv/bin/python benchmarks/blind/check_set.py H158.jsonl --seeds seeds --formal
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from qa_bot.text import clean_inline, fold

#: The class mix of a set of 100, as the prompts ask for it.
REALISTIC_MIX = {
    "lowercase": 11,
    "typo": 12,
    "paraphrase": 11,
    "formal": 10,
    "attribution": 8,
    "two-part": 5,
    "vague": 5,
    "yes-no": 5,
    "unanswerable": 25,
    "off-topic": 8,
}
FORMAL_MIX = {"formal": 70, "unanswerable": 20, "off-topic": 10}
FIELDS = ("id", "question", "answers", "docs", "class")


def folded(text: str) -> str:
    """The text as the scorer matches answers in quotes (``qa_bot.text.fold``), runs of white
    space (no-break spaces too) as one space (``clean_inline``), so that an answer written on
    one line matches an article that breaks it over two."""
    return fold(clean_inline(text))


def articles(seeds: Path) -> dict[str, str]:
    """Each article's text by its doc id, the three-digit prefix of its file name."""
    return {p.name[:3]: folded(p.read_text(encoding="utf-8")) for p in sorted(seeds.glob("*.txt"))}


def row_problems(row: dict, texts: dict[str, str]) -> list[str]:
    """What is wrong with one question: a missing field, gold where there should be none (or
    none where there should be), an unknown doc, an answer not verbatim in its docs."""
    name = row.get("id", "?")
    out = [f"{name}: missing {k}" for k in FIELDS if k not in row]
    declined = bool(row.get("unanswerable"))
    answers, docs = row.get("answers") or [], row.get("docs") or []
    if declined and (answers or docs):
        out.append(f"{name}: unanswerable, yet it has answers or docs")
    if not declined and not answers:
        out.append(f"{name}: no answers, and not marked unanswerable")
    if row.get("class") in ("unanswerable", "off-topic") and not declined:
        out.append(f'{name}: class {row["class"]} needs "unanswerable": true')
    unknown = [d for d in docs if d not in texts]
    if unknown:
        out.append(f"{name}: unknown docs {unknown}")
    for answer in answers:
        if not any(folded(answer) in texts[d] for d in docs if d in texts):
            out.append(f"{name}: answer {answer!r} is not verbatim in docs {docs}")
    return out


def problems(path: Path, seeds: Path, formal: bool) -> list[str]:
    """Every problem of the set at ``path``; none means it may be scored."""
    texts = articles(seeds)
    rows, out = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append(f"line {number}: not JSON ({exc})")
            continue
        rows.append(row)
        out += row_problems(row, texts)
    if len(rows) != 100:
        out.append(f"{len(rows)} questions, 100 wanted")
    ids = [r.get("id") for r in rows]
    if len(set(ids)) != len(ids):
        out.append("some ids are repeated")
    mix = dict(Counter(r.get("class") for r in rows))
    wanted = FORMAL_MIX if formal else REALISTIC_MIX
    if mix != wanted:
        out.append(f"classes {mix}, wanted {wanted}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path)
    parser.add_argument("--seeds", type=Path, required=True)
    parser.add_argument("--formal", action="store_true", help="the formal prompt's class mix")
    args = parser.parse_args(argv)
    found = problems(args.set, args.seeds, args.formal)
    print("\n".join(found) if found else "OK")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

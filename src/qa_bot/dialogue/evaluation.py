"""Score follow-up questions: answered with the conversation's context versus asked alone.

A dialogue file has one JSON object per line::

    {"id": "c01", "turns": ["Who did the US say attacked the convoy?", "When was that?"],
     "answers": ["September 19"], "docs": ["004"]}

Every turn but the last is asked first, in one conversation; the last turn is judged. ``answers``
are gold strings for it (verbatim in the article) and ``docs`` file-name prefixes of the gold
articles. ``"follow_up": false`` marks a *control*: a self-contained question after an unrelated
one, which must get exactly the answer it gets when asked alone (``"unanswerable": true`` when
the right answer is to decline, for a follow-up too: one the articles do not answer). An
optional ``"class"`` names the kind of last turn ("pronoun", "new-person", "outlet-switch",
"control", ...), and the report breaks its scores down by it, as blind sets are written.

The headline numbers are *answer@1*: the share of follow-ups whose first quote holds a gold
answer (compared after :func:`qa_bot.text.fold`), with the context and without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from qa_bot.dialogue.asking import ask_in_conversation
from qa_bot.dialogue.memory import Conversation
from qa_bot.errors import InvalidQuestionError, QABotError
from qa_bot.files import read_jsonl
from qa_bot.text import fold

if TYPE_CHECKING:
    from qa_bot.models import Answer
    from qa_bot.service import QAService


class DialogueDataError(QABotError):
    """The dialogue file cannot be read or a line is not a dialogue."""

    exit_code = 2


@dataclass(frozen=True)
class Dialogue:
    id: str
    turns: tuple[str, ...]
    answers: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    #: False for a control: the last question stands alone and must not be changed by context.
    follow_up: bool = True
    unanswerable: bool = False
    #: The follow-up written out as a self-contained question: what a perfect rewrite scores.
    rewrite: str | None = None
    #: The kind of last turn the set's writer meant ("pronoun", "control", ...), if given.
    kind: str | None = None


def is_dialogue_file(path: Path) -> bool:
    """Whether a JSONL file holds dialogues (its first object has ``turns``), not questions."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    data = json.loads(line)
                    return isinstance(data, dict) and "turns" in data
    except (OSError, ValueError):
        return False
    return False


def load_dialogues(path: Path | str) -> list[Dialogue]:
    path = Path(path)
    dialogues: list[Dialogue] = []
    for number, data in read_jsonl(path, DialogueDataError, "a dialogue"):
        try:
            turns = tuple(str(t) for t in data["turns"])
            if len(turns) < 2:
                raise ValueError("a dialogue needs at least two turns")
            dialogue = Dialogue(
                id=str(data.get("id", f"line{number}")),
                turns=turns,
                answers=tuple(str(a) for a in data.get("answers", ())),
                docs=tuple(str(d) for d in data.get("docs", ())),
                follow_up=bool(data.get("follow_up", True)),
                unanswerable=bool(data.get("unanswerable", False)),
                rewrite=str(data["rewrite"]) if data.get("rewrite") else None,
                kind=str(data["class"]) if data.get("class") else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DialogueDataError(f"{path}:{number}: not a dialogue ({exc})") from exc
        if not dialogue.unanswerable and not dialogue.answers:
            raise DialogueDataError(f"{path}:{number}: give gold answers or mark unanswerable")
        dialogues.append(dialogue)
    if not dialogues:
        raise DialogueDataError(f"{path} holds no dialogue")
    return dialogues


@dataclass(frozen=True)
class Attempt:
    """How one way of asking the last turn went."""

    answered: bool
    first_quote: str | None
    first_doc: str | None
    #: The first quote holds a gold answer (or, for an unanswerable control, it declined).
    hit: bool
    doc_hit: bool
    text: str


@dataclass(frozen=True)
class DialogueOutcome:
    dialogue: Dialogue
    #: Whether the last turn was taken as a follow-up (the context was used).
    used_context: bool
    cue: str | None
    with_context: Attempt
    alone: Attempt
    rewritten: Attempt | None = None
    error: str | None = None


@dataclass
class DialogueReport:
    dialogues: int
    follow_ups: int
    controls: int
    #: Follow-ups recognized as such.
    detected: float | None
    answer_at_1_with_context: float | None
    answer_at_1_without_context: float | None
    doc_at_1_with_context: float | None
    doc_at_1_without_context: float | None
    #: answer@1 of the hand-written self-contained rewrites, where the set gives them: the
    #: ceiling for any follow-up logic on top of this retrieval.
    answer_at_1_rewritten: float | None
    #: Controls taken for follow-ups (their answer may then change).
    controls_taken_as_follow_ups: int
    #: Controls whose answer is exactly the one they get when asked alone.
    controls_unchanged: float | None
    #: Follow-ups the articles do not answer (counted in answer@1 as hits when declined), and
    #: the share of them declined with the context.
    unanswerable_follow_ups: int = 0
    unanswerable_declined: float | None = None
    #: By the set's ``class`` of last turn: dialogues, and the share right with the context
    #: (a gold first quote, or a decline where the articles do not answer).
    by_class: dict[str, dict[str, float | int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}

    def render(self) -> str:
        """A plain-text report for the terminal."""

        def pct(value: float | None) -> str:
            return "    -" if value is None else f"{value:5.3f}"

        lines = [
            f"{self.dialogues} dialogues: {self.follow_ups} follow-ups, {self.controls} controls",
            f"{pct(self.answer_at_1_with_context)}  follow-up answer@1 with context",
            f"{pct(self.answer_at_1_without_context)}  follow-up answer@1 asked alone",
            f"{pct(self.answer_at_1_rewritten)}  follow-up answer@1 rewritten by hand (ceiling)",
            f"{pct(self.doc_at_1_with_context)}  follow-up gold article first, with context",
            f"{pct(self.doc_at_1_without_context)}  follow-up gold article first, asked alone",
            f"{pct(self.detected)}  follow-ups recognized as follow-ups",
            f"{pct(self.controls_unchanged)}  self-contained questions answered as if alone",
        ]
        if self.controls_taken_as_follow_ups:
            lines.append(
                f"{self.controls_taken_as_follow_ups:>5}  self-contained questions taken for "
                "follow-ups"
            )
        if self.unanswerable_follow_ups:
            lines.append(
                f"{pct(self.unanswerable_declined)}  of {self.unanswerable_follow_ups} "
                "follow-ups the articles do not answer, declined"
            )
        for kind, row in self.by_class.items():
            lines.append(f"{pct(float(row['right']))}  {kind} ({row['dialogues']}), right")
        for row in self.failures:
            lines.append(f"- {row['id']} ({row['failure']}): {' / '.join(row['turns'])}")
            lines.append(f"    gold: {' | '.join(row['gold']) or '(decline)'}")
            quote = " ".join((row["first_quote"] or "(declined)").split())
            lines.append(f"    first quote: {quote}")
        if not self.failures:
            lines.append("no failures")
        return "\n".join(lines)


def evaluate_dialogues(
    service: QAService,
    path: Path | str,
    *,
    progress: Callable[[int], None] | None = None,
) -> DialogueReport:
    """Run every dialogue of ``path`` through a fresh conversation and score its last turn.

    Args:
        service: the service to ask, with the same code path as ``qa-bot chat`` and the bot.
        path: a dialogue file (see the module docstring).
        progress: called with 1 after each dialogue (for a progress bar).
    """
    outcomes = []
    for dialogue in load_dialogues(path):
        outcomes.append(run_dialogue(service, dialogue))
        if progress is not None:
            progress(1)
    return summarize(outcomes)


def run_dialogue(service: QAService, dialogue: Dialogue) -> DialogueOutcome:
    conversation = Conversation(ttl_seconds=3600, max_turns=len(dialogue.turns))
    try:
        for i, question in enumerate(dialogue.turns[:-1]):
            ask_in_conversation(service, conversation, question, now=float(i))
        reply = ask_in_conversation(
            service, conversation, dialogue.turns[-1], now=float(len(dialogue.turns))
        )
        alone = service.ask(dialogue.turns[-1])
        rewritten = service.ask(dialogue.rewrite) if dialogue.rewrite else None
    except InvalidQuestionError as exc:
        empty = Attempt(False, None, None, False, False, "")
        return DialogueOutcome(dialogue, False, None, empty, empty, error=str(exc))
    return DialogueOutcome(
        dialogue,
        used_context=reply.follow_up,
        cue=reply.cue,
        with_context=judge(dialogue, reply.answer),
        alone=judge(dialogue, alone),
        rewritten=judge(dialogue, rewritten) if rewritten is not None else None,
    )


def judge(dialogue: Dialogue, answer: Answer) -> Attempt:
    first = answer.citations[0] if answer.answered and answer.citations else None
    quote = first.quote if first is not None else None
    doc = PurePosixPath(first.article.path).name if first is not None else None
    if dialogue.unanswerable:
        hit = not answer.answered
    else:
        hit = quote is not None and any(fold(a) in fold(quote) for a in dialogue.answers)
    doc_hit = doc is not None and any(doc.startswith(prefix) for prefix in dialogue.docs)
    return Attempt(answer.answered, quote, doc, hit, doc_hit, answer.text)


def summarize(outcomes: Sequence[DialogueOutcome]) -> DialogueReport:
    follow = [o for o in outcomes if o.dialogue.follow_up]
    controls = [o for o in outcomes if not o.dialogue.follow_up]
    unanswerable = [o for o in follow if o.dialogue.unanswerable]

    def share(items: Sequence[DialogueOutcome], test: Any) -> float | None:
        return sum(1 for o in items if test(o)) / len(items) if items else None

    failures: list[dict[str, Any]] = []
    for o in outcomes:
        reason = None
        if o.error:
            reason = f"error: {o.error}"
        elif o.dialogue.follow_up and not o.used_context:
            reason = "not recognized as a follow-up"
        elif o.dialogue.follow_up and not o.with_context.hit:
            reason = "no gold answer in the first quote"
        elif not o.dialogue.follow_up and o.with_context.text != o.alone.text:
            reason = "context changed a self-contained answer"
        if reason:
            failures.append(
                {
                    "id": o.dialogue.id,
                    "failure": reason,
                    "turns": list(o.dialogue.turns),
                    "gold": list(o.dialogue.answers),
                    "cue": o.cue,
                    "first_quote": o.with_context.first_quote,
                    "first_doc": o.with_context.first_doc,
                    "alone_hit": o.alone.hit,
                }
            )
    return DialogueReport(
        dialogues=len(outcomes),
        follow_ups=len(follow),
        controls=len(controls),
        detected=share(follow, lambda o: o.used_context),
        answer_at_1_with_context=share(follow, lambda o: o.with_context.hit),
        answer_at_1_without_context=share(follow, lambda o: o.alone.hit),
        doc_at_1_with_context=share(follow, lambda o: o.with_context.doc_hit),
        doc_at_1_without_context=share(follow, lambda o: o.alone.doc_hit),
        answer_at_1_rewritten=share(
            [o for o in follow if o.rewritten is not None],
            lambda o: o.rewritten is not None and o.rewritten.hit,
        ),
        controls_taken_as_follow_ups=sum(1 for o in controls if o.used_context),
        controls_unchanged=share(controls, lambda o: o.with_context.text == o.alone.text),
        unanswerable_follow_ups=len(unanswerable),
        unanswerable_declined=share(unanswerable, lambda o: not o.with_context.answered),
        by_class=_by_class(outcomes),
        failures=failures,
    )


def _by_class(outcomes: Sequence[DialogueOutcome]) -> dict[str, dict[str, float | int]]:
    """Dialogues and the share right with the context, by the kind of last turn, in the order
    the kinds first appear (empty when the set names none)."""
    kinds: dict[str, list[bool]] = {}
    for o in outcomes:
        if o.dialogue.kind is not None:
            kinds.setdefault(o.dialogue.kind, []).append(o.with_context.hit)
    return {k: {"dialogues": len(h), "right": round(sum(h) / len(h), 4)} for k, h in kinds.items()}


__all__ = [
    "Attempt",
    "Dialogue",
    "DialogueDataError",
    "DialogueOutcome",
    "DialogueReport",
    "evaluate_dialogues",
    "is_dialogue_file",
    "judge",
    "load_dialogues",
    "run_dialogue",
    "summarize",
]

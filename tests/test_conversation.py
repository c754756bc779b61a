"""Follow-ups: detection, per-chat memory (expiry, reset, max_turns, persistence) and answers.

The pure logic runs against a recording fake service and tiny corpora; the end-to-end checks
and the dialogue evaluation use the session's real model over the seeds.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qa_bot.conversation import (
    Conversation,
    Conversations,
    Turn,
    ask_in_conversation,
    context_note,
    follow_up_cue,
    is_follow_up,
    key_words,
)
from qa_bot.conversation_eval import (
    DialogueDataError,
    evaluate_dialogues,
    is_dialogue_file,
    load_dialogues,
)
from qa_bot.errors import InvalidQuestionError
from qa_bot.models import Answer, ArticleMeta, Citation
from qa_bot.service import QAService
from qa_bot.settings import ConversationSettings
from qa_bot.text import fold

from .conftest import DEV_QUESTIONS, SEEDS, CountingEmbedder, make_settings

DIALOGUES = Path(__file__).with_name("dialogues.jsonl")
OUTLETS = ("Press TV", "RT", "TASS")


# --- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "follows"),
    [
        # the issue's examples
        ("What did Russia say about that?", True),
        ("When was that?", True),
        ("And according to TASS?", True),
        ("Who said it?", True),
        ("How many were injured there?", True),
        # connectives and ellipsis
        ("What about the drone?", True),
        ("How about Aleppo?", True),
        ("Also, who denied it?", True),
        ("According to RT?", True),
        ("In Aleppo?", True),
        ("Why?", True),
        ("Where?", True),
        ("Unless Russia does what?", True),
        ("What did TASS report?", True),
        # pronouns and demonstratives without an antecedent in the question
        ("What did he say about Kerry?", True),
        ("Where did she say it?", True),
        ("At what altitude was it flying?", True),
        ("Where exactly were those troops?", True),
        ("Who was there?", True),
        ("What happened then?", True),
        ("Is that true?", True),
        ("That's Lavrov's view; what did Kerry say?", True),
        ("What’s it called now?", True),
        ("It's possible that Russia bombed the convoy?", False),
        # too vague to pick out an event
        ("How many soldiers were killed?", True),
        ("How many people died?", True),
        ("Who was killed?", True),
        # self-contained questions
        ("Who attacked the convoy?", False),
        ("Why did the ceasefire collapse?", False),
        ("What are bunker buster bombs?", False),
        ("Who is Vitaly Churkin?", False),
        ("Who did the US say attacked the convoy?", False),
        ("Who is Russia's ambassador to the UN?", False),
        ("Who is Churkin?", False),
        ("Who co-chairs the ISSG?", False),
        ("What did Lavrov say about the strike that killed 62 troops?", False),
        ("Did Lavrov say that the US lied?", False),
        ("What did Lavrov say he would do about the ceasefire?", False),
        ("Is there a ceasefire in Aleppo?", False),
        ("What happened this week in Aleppo?", False),
        ("Is it possible that Russia bombed the convoy?", False),
        ("Those who attacked Syrian troops at Deir ez-Zor, who were they backed by?", False),
        ("What is the boiling point of water at sea level?", False),
        ("How long had Syrian troops been besieged by IS at Deir ez-Zor?", False),
        ("According to TASS, what did Ryabkov say about the agreement?", False),
    ],
)
def test_follow_up_cues(question: str, follows: bool) -> None:
    cue = follow_up_cue(question, outlets=OUTLETS)
    assert (cue is not None) is follows, cue


def test_a_reply_to_the_bot_is_always_a_follow_up() -> None:
    assert follow_up_cue("Who is Churkin?", is_reply_to_bot=True) is not None


def _turn(question: str = "Who attacked the convoy?", at: float = 0.0, **kw: Any) -> Turn:
    return Turn(
        question=question,
        words=kw.pop("words", key_words(question)),
        articles=kw.pop("articles", ("a1",)),
        at=at,
        topic=kw.pop("topic", question),
        **kw,
    )


def test_no_follow_up_without_context_or_after_expiry() -> None:
    conversation = Conversation(ttl_seconds=60, max_turns=3)
    assert not is_follow_up("When was that?", conversation, now=0)
    conversation.add(_turn(at=0))
    assert is_follow_up("When was that?", conversation, now=59)
    assert not is_follow_up("Who is Churkin?", conversation, now=1)
    assert is_follow_up("Who is Churkin?", conversation, is_reply_to_bot=True, now=1)
    assert not is_follow_up("When was that?", conversation, now=60)


def test_key_words_keep_the_topic_not_the_frame() -> None:
    assert key_words("What did Lavrov tell Sputnik about a zone of silence?") == (
        "Lavrov",
        "Sputnik",
        "zone",
        "silence",
    )
    assert key_words("What did the US try to include in the regime of calm?") == (
        "US",
        "regime",
        "calm",
    )
    assert key_words("And according to TASS?", outlets=OUTLETS) == ()


# --- memory ---------------------------------------------------------------------------------------


def test_conversation_keeps_max_turns_and_forgets_after_ttl() -> None:
    conversation = Conversation(ttl_seconds=100, max_turns=2)
    for i in range(3):
        conversation.add(_turn(f"Question number {i} about Aleppo?", at=i * 10))
    assert [t.question for t in conversation.turns(now=25)] == [
        "Question number 1 about Aleppo?",
        "Question number 2 about Aleppo?",
    ]
    assert [t.at for t in conversation.turns(now=115)] == [20]
    assert conversation.last(now=120) is None
    assert len(conversation) == 0


def test_ttl_zero_keeps_nothing() -> None:
    conversation = Conversation(ttl_seconds=0, max_turns=3)
    conversation.add(_turn(at=0))
    assert conversation.last(now=0) is None


def test_reset_forgets() -> None:
    conversation = Conversation(ttl_seconds=100, max_turns=3)
    conversation.add(_turn(at=0))
    conversation.reset()
    assert conversation.last(now=1) is None


# --- asking, with a recording fake service --------------------------------------------------------


@dataclass
class _Snapshot:
    def outlets(self) -> list[str]:
        return list(OUTLETS)


@dataclass
class RecordingService:
    """Answers every question with one citation of ``article``, and records how it was asked."""

    article: str = "a1"
    calls: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> _Snapshot:
        return _Snapshot()

    def ask(self, question: str, **kwargs: Any) -> Answer:
        if not question.strip():
            raise InvalidQuestionError("the question is empty")
        self.calls.append({"question": question, **kwargs})
        meta = ArticleMeta(self.article, f"{self.article}.txt", "t", None, None, None, None, "h")
        citation = Citation(1, meta, "a quote", 0, 7, 1.0)
        return Answer(question, True, "“a quote” [1]", (citation,), tuple(kwargs.get("notes", ())))


def test_follow_up_is_asked_with_the_topic_and_says_so() -> None:
    service = RecordingService()
    conversation = Conversation(ttl_seconds=100, max_turns=3)
    first = ask_in_conversation(
        service,
        conversation,
        "Who did the US say attacked the convoy?",
        now=0,  # type: ignore[arg-type]
    )
    assert not first.follow_up
    assert service.calls[-1] == {
        "question": "Who did the US say attacked the convoy?",
        "filters": None,
    }

    reply = ask_in_conversation(service, conversation, "When was that?", now=1)  # type: ignore[arg-type]
    assert reply.follow_up
    call = service.calls[-1]
    assert call["question"] == "When was that? US attacked convoy"
    assert reply.searched == "When was that? US attacked convoy"
    assert call["boost_articles"] == ("a1",)
    assert call["notes"] == (context_note("Who did the US say attacked the convoy?"),)
    # the user sees their own question, and the note
    assert reply.answer.question == "When was that?"
    assert reply.answer.notes[0].startswith("Taking your previous question into account: “Who")

    # a chain keeps the original topic
    ask_in_conversation(service, conversation, "And according to TASS?", now=2)  # type: ignore[arg-type]
    assert service.calls[-1]["question"] == "And according to TASS? US attacked convoy"


def test_self_contained_question_is_asked_as_if_alone() -> None:
    service = RecordingService()
    conversation = Conversation(ttl_seconds=100, max_turns=3)
    ask_in_conversation(service, conversation, "Who did the US say attacked the convoy?", now=0)  # type: ignore[arg-type]
    reply = ask_in_conversation(
        service,
        conversation,
        "Who is Russia's ambassador to the UN?",
        now=1,  # type: ignore[arg-type]
    )
    assert not reply.follow_up
    assert service.calls[-1] == {
        "question": "Who is Russia's ambassador to the UN?",
        "filters": None,
    }
    assert conversation.last(now=2).topic == "Who is Russia's ambassador to the UN?"  # type: ignore[union-attr]


def test_topic_words_already_in_the_follow_up_are_not_repeated() -> None:
    service = RecordingService()
    conversation = Conversation(ttl_seconds=100, max_turns=3)
    ask_in_conversation(
        service, conversation, "Does Russia rule out strikes on Jaysh al-Islam?", now=0
    )  # type: ignore[arg-type]
    ask_in_conversation(service, conversation, "Why would Russia strike them?", now=1)  # type: ignore[arg-type]
    assert service.calls[-1]["question"] == "Why would Russia strike them? Jaysh al-Islam"


def test_invalid_question_raises_and_is_not_recorded() -> None:
    service = RecordingService()
    conversation = Conversation(ttl_seconds=100, max_turns=3)
    with pytest.raises(InvalidQuestionError):
        ask_in_conversation(service, conversation, "   ", now=0)  # type: ignore[arg-type]
    assert conversation.last(now=0) is None


# --- many chats -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_chats_are_kept_apart_and_reset_alone() -> None:
    service = RecordingService()
    clock = Clock()
    store = Conversations(ConversationSettings(ttl_seconds=60, max_turns=3), clock=clock)
    store.ask(service, 1, "Who did the US say attacked the convoy?")  # type: ignore[arg-type]
    store.ask(service, 2, "Who is Russia's ambassador to the UN?")  # type: ignore[arg-type]
    assert (
        store.reply(service, 2, "When was that?").topic == "Who is Russia's ambassador to the UN?"
    )  # type: ignore[arg-type]
    assert store.reset(1) is True
    assert store.reset(1) is False
    assert not store.reply(service, 1, "When was that?").follow_up  # type: ignore[arg-type]
    assert store.reply(service, 2, "Why?").follow_up  # type: ignore[arg-type]


def test_chats_expire() -> None:
    service = RecordingService()
    clock = Clock()
    store = Conversations(ConversationSettings(ttl_seconds=60, max_turns=3), clock=clock)
    store.ask(service, 1, "Who did the US say attacked the convoy?")  # type: ignore[arg-type]
    assert len(store) == 1
    clock.now += 61
    assert len(store) == 0
    assert not store.reply(service, 1, "When was that?").follow_up  # type: ignore[arg-type]


def test_least_recent_chats_are_forgotten_first() -> None:
    service = RecordingService()
    store = Conversations(ConversationSettings(), clock=Clock(), max_chats=2)
    for chat in (1, 2, 3):
        store.ask(service, chat, "Who did the US say attacked the convoy?")  # type: ignore[arg-type]
    assert store.context(1) == []
    assert store.context(3)


def test_nothing_is_written_without_persist_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = Conversations(ConversationSettings(), clock=Clock())
    store.ask(RecordingService(), 1, "Who did the US say attacked the convoy?")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_persistence_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "conversations.json"
    settings = ConversationSettings(ttl_seconds=60, max_turns=3, persist_path=path)
    clock = Clock()
    store = Conversations(settings, clock=clock)
    store.ask(RecordingService(), 42, "Who did the US say attacked the convoy?")  # type: ignore[arg-type]
    store.ask(RecordingService(), (-100, 7), "Who is Russia's ambassador to the UN?")  # type: ignore[arg-type]
    assert json.loads(path.read_text())["version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["conversations.json"]  # no temp files left

    restarted = Conversations(settings, clock=clock)
    assert restarted.context(42) == store.context(42)
    assert restarted.reply(RecordingService(), 42, "When was that?").follow_up  # type: ignore[arg-type]
    assert restarted.context((-100, 7))[0].question == "Who is Russia's ambassador to the UN?"

    restarted.reset(42)
    assert Conversations(settings, clock=clock).context(42) == []

    clock.now += 61
    assert len(Conversations(settings, clock=clock)) == 0


@pytest.mark.parametrize(
    "content", ["", "not json", "[]", '{"version": 99, "chats": []}', '{"version": 1}']
)
def test_unreadable_persisted_state_is_ignored(tmp_path: Path, content: str) -> None:
    path = tmp_path / "conversations.json"
    path.write_text(content)
    store = Conversations(ConversationSettings(persist_path=path), clock=Clock())
    assert len(store) == 0
    store.ask(RecordingService(), 1, "Who did the US say attacked the convoy?")  # type: ignore[arg-type]
    assert json.loads(path.read_text())["chats"][0]["chat"] == 1


def test_chats_can_ask_at_the_same_time() -> None:
    service = RecordingService()
    store = Conversations(ConversationSettings(), clock=Clock())
    errors: list[BaseException] = []

    def chat(n: int) -> None:
        try:
            for _ in range(20):
                store.ask(service, n, "Who did the US say attacked the convoy?")  # type: ignore[arg-type]
                assert store.reply(service, n, "When was that?").follow_up  # type: ignore[arg-type]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=chat, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store) == 4


# --- a tiny real index ----------------------------------------------------------------------------


def test_follow_up_on_a_tiny_corpus(tmp_path: Path, corpus: Path) -> None:
    service = QAService(make_settings(tmp_path, corpus), embedder=CountingEmbedder())
    service.index()
    conversation = Conversation()
    first = ask_in_conversation(service, conversation, "What was spotted over the convoy?")
    assert first.answer.answered and "drone" in first.answer.citations[0].quote.casefold()
    reply = ask_in_conversation(service, conversation, "Where had it taken off from?")
    assert reply.follow_up
    assert reply.answer.answered
    assert "Incirlik" in reply.answer.citations[0].quote
    assert reply.answer.question == "Where had it taken off from?"
    assert reply.answer.notes[0] == context_note("What was spotted over the convoy?")


# --- the real model on the seeds ------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Who did the US say attacked the convoy?", "Who is Russia's ambassador to the UN?"),
        ("What drone was spotted near the UN convoy?", "Where will the Syria peace talks resume?"),
        ("Who walked out of the Geneva talks?", "How fast was the Predator drone flying?"),
        ("Who did the US say attacked the convoy?", "What is the boiling point of water?"),
        ("Who co-chairs the International Syria Support Group?", "Who is Samantha Power?"),
    ],
)
def test_new_question_is_not_polluted_by_the_old_one(
    seeds_service: QAService, first: str, second: str
) -> None:
    conversation = Conversation()
    ask_in_conversation(seeds_service, conversation, first)
    reply = ask_in_conversation(seeds_service, conversation, second)
    assert not reply.follow_up
    assert reply.answer == seeds_service.ask(second)


@pytest.mark.model
def test_the_issue_dialogue(seeds_service: QAService) -> None:
    conversation = Conversation()
    ask_in_conversation(seeds_service, conversation, "Who did the US say attacked the convoy?")
    when = ask_in_conversation(seeds_service, conversation, "When was that?").answer
    assert when.answered and "September 19" in when.citations[0].quote
    assert when.notes[0] == context_note("Who did the US say attacked the convoy?")
    assert not seeds_service.ask("When was that?").answered

    tass = ask_in_conversation(seeds_service, conversation, "And according to TASS?").answer
    assert tass.answered and "Searching only articles from TASS." in tass.notes
    assert all(c.article.outlet == "TASS" for c in tass.citations)
    assert "convoy" in tass.citations[0].quote

    injured = Conversation()
    ask_in_conversation(
        seeds_service, injured, "Who carried out the airstrike on Syrian troops near Deir ez-Zor?"
    )
    answer = ask_in_conversation(seeds_service, injured, "How many were injured there?").answer
    assert any(s in answer.citations[0].quote for s in ("over 100", "about 100"))


# --- the dialogue set and its scorer --------------------------------------------------------------


def test_dialogue_set_is_sound() -> None:
    dialogues = load_dialogues(DIALOGUES)
    follow_ups = [d for d in dialogues if d.follow_up]
    assert len(follow_ups) >= 25
    assert len({d.id for d in dialogues}) == len(dialogues)
    articles = {p.name[:3]: fold(p.read_text(encoding="utf-8")) for p in SEEDS.iterdir()}
    for d in dialogues:
        for answer in d.answers:
            assert any(fold(answer) in articles[doc] for doc in d.docs), (d.id, answer)
    if DEV_QUESTIONS.is_file():
        dev = {json.loads(line)["question"] for line in DEV_QUESTIONS.read_text().splitlines()}
        assert not dev & {t for d in dialogues for t in d.turns}
    assert is_dialogue_file(DIALOGUES)
    if DEV_QUESTIONS.is_file():
        assert not is_dialogue_file(DEV_QUESTIONS)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "turns": ["one question?"], "answers": ["a"]}', "at least two turns"),
        ('{"id": "x", "turns": ["q?", "r?"]}', "gold answers"),
        ('{"id": "x", "question": "q?"}', "not a dialogue"),
        ("not json", "not a dialogue"),
        ("", "holds no dialogue"),
    ],
)
def test_bad_dialogue_files(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DialogueDataError, match=message):
        load_dialogues(path)


@pytest.mark.model
def test_context_makes_follow_ups_answerable(seeds_service: QAService) -> None:
    report = evaluate_dialogues(seeds_service, DIALOGUES)
    data = report.to_json()
    assert data["detected"] == 1.0
    assert data["controls_unchanged"] == 1.0
    assert data["controls_taken_as_follow_ups"] == 0
    assert data["answer_at_1_with_context"] >= 0.65
    assert data["answer_at_1_without_context"] <= 0.35
    assert "follow-up answer@1 with context" in report.render()

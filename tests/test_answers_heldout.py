"""End to end with the real model on the real seeds: questions written without looking at the
answers (they need nothing from ../shared, unlike the dev set's tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa_bot.evaluation import load_questions
from qa_bot.service import QAService
from tests.floors import Group, floored_report, grouped_sets

#: Questions about the seeds written without looking at the system's answers, in the dev
#: set's format and kinds, with a share of paraphrases (see benchmarks/README.md, "Held-out
#: questions"): what the dev set, seen by every session, can no longer tell.
HELDOUT = Path(__file__).with_name("heldout_questions.jsonl")


#: Every group is scored on a sample and keeps floors taken on it, as ``floors.Group`` says.
#: The comments tell where the sets came from, and any score they give is what the whole sets
#: scored before.
#: One test per group lets ``pytest -n 2`` share them. A set added to the file must join a
#: group.
GROUPS = {
    "seed-sets-s1-s6": Group(("s1", "s2", "s3", "s4", "s5", "s6"), 0.88, 0.91, 0.72, every=4),
    "twenty-seventh-h57-h61": Group(("h57", "h58", "h59", "h60", "h61"), 0.94, 0.96, 0.90, every=4),
    "twenty-eighth-h62-h65": Group(("h62", "h63", "h64", "h65"), 0.94, 0.94, 0.83, every=4),
    # The twenty-ninth round's gate sets, scored with the reading of questions about the
    # article itself (benchmarks/README.md, "Twenty-ninth round").
    "twenty-ninth-h66-h71": Group(
        ("h66", "h67", "h68", "h69", "h70", "h71"), 0.93, 0.96, 0.93, every=4
    ),
    # The thirtieth round's sets (H72 and H73 written before its change, H74 and H75 after).
    "thirtieth-h72-h75": Group(("h72", "h73", "h74", "h75"), 0.95, 0.95, 0.85, every=4),
    # H76 and H77, the gate of a candidate decision (not adopted), scored with the shipped path.
    "thirtieth-h76-h77": Group(("h76", "h77"), 0.91, 0.91, 0.78, every=4),
    # H78 and H79, the gate of a second candidate decision (not adopted), likewise.
    "thirtieth-h78-h79": Group(("h78", "h79"), 0.86, 0.88, 0.78, every=4),
    # The thirty-first round's sets (H80 written before its change, H81 and H82 after).
    "thirty-first-h80-h82": Group(("h80", "h81", "h82"), 0.90, 0.92, 0.80, every=4),
    # H83 and H84, written after both of the round's changes, scored with them.
    "thirty-first-h83-h84": Group(("h83", "h84"), 0.88, 0.88, 0.73, every=4),
    # H85 and H86, the gate of a candidate decision (E32, not adopted), scored with the path.
    "thirty-first-h85-h86": Group(("h85", "h86"), 0.86, 0.86, 0.75, every=4),
    # The thirty-second round's sets: H87 written before any change, H88 and H89 the gate of
    # a threshold (T32, not adopted), H90 and H91 the gate of the captions' credit, H92 and
    # H93 the gate of a window size with a threshold (W32, not adopted).
    "thirty-second-h87-h89": Group(("h87", "h88", "h89"), 0.91, 0.91, 0.88, every=4),
    "thirty-second-h90-h91": Group(("h90", "h91"), 0.90, 0.90, 0.77, every=4),
    "thirty-second-h92-h93": Group(("h92", "h93"), 0.91, 0.91, 0.76, every=4),
    # H94, the gate of an outlet named as the source (S32, adopted).
    "thirty-second-h94": Group(("h94",), 0.85, 0.85, 0.40, every=4),
    # The thirty-third round's, scored with the path it adopted (a part of the article as the
    # source, H34): H95 written before any change, H96 and H97 the gate of H34, H98 and H99
    # that of A34 (not adopted). Their writers were asked for three questions about the
    # article itself per article in H98 and H99, and to paraphrase: harder than earlier sets.
    "thirty-third-h95-h97": Group(("h95", "h96", "h97"), 0.87, 0.92, 0.88, every=2),
    "thirty-third-h98-h99": Group(("h98", "h99"), 0.85, 0.88, 0.90, every=2),
    # The thirty-fourth round's: H100 and H101, the gate of J35 (not adopted), scored with
    # the adopted path (0.971 / 0.986 / 0.850).
    "thirty-fourth-h100-h101": Group(("h100", "h101"), 0.95, 0.95, 0.90, every=2),
    # The thirty-fifth round's, scored with the shipped path: H102 and H103 written after a
    # candidate decision froze (R36, dropped before its gate), H104 and H105 the gate of a
    # threshold (T36, not adopted) (0.964 / 0.971 / 0.917 and 0.964 / 0.979 / 0.850).
    "thirty-fifth-h102-h103": Group(("h102", "h103"), 0.94, 0.95, 0.85, every=2),
    "thirty-fifth-h104-h105": Group(("h104", "h105"), 0.95, 0.95, 0.81, every=2),
    # H106, the gate of a topic model fitted on more off-topic questions (K36, not adopted)
    # (0.957 / 0.971 / 0.800).
    "thirty-fifth-h106": Group(("h106",), 0.84, 0.87, 0.70, every=2),
    # The thirty-sixth round's, scored with "READ MORE" links as article text (L37): H107
    # and H108 the gate of a reader epoch with descriptor-swapped negatives (S37, not
    # adopted), H109 and H110 that of L37 (0.964 / 0.971 / 0.817 and 0.964 / 0.971 / 0.850).
    "thirty-sixth-h107-h108": Group(("h107", "h108"), 0.93, 0.94, 0.85, every=2),
    "thirty-sixth-h109-h110": Group(("h109", "h110"), 0.95, 0.95, 0.86, every=2),
    # The thirty-seventh round's: H111 and H112, the gate of the site's note of its addresses
    # as article text (M38), scored with it (0.964 / 0.964 / 0.783).
    "thirty-seventh-h111-h112": Group(("h111", "h112"), 0.90, 0.90, 0.84, every=4),
    # H113 and H114, the gate of the tuned decision at 0.2 (T38, not adopted), scored with the
    # shipped path (0.971 / 0.971 / 0.850).
    "thirty-seventh-h113-h114": Group(("h113", "h114"), 0.90, 0.90, 0.84, every=4),
    # The thirty-eighth round's, scored with the reader's third epoch (R38): H115 and H116 its
    # first gate (0.964 / 0.986 / 0.850), H117 and H118 its second (0.950 / 0.979 / 0.883).
    "thirty-eighth-h115-h116": Group(("h115", "h116"), 0.89, 0.89, 0.72, every=4),
    "thirty-eighth-h117-h118": Group(("h117", "h118"), 0.89, 0.89, 0.76, every=4),
    # The thirty-ninth round's, scored with the shipped path: H119 and H120 the first gate of
    # the formal epoch R39 (0.971 / 0.986 / 0.900), H123 and H124 that of C39 (0.979 / 0.993 /
    # 0.883), both not adopted.
    "thirty-ninth-h119-h120": Group(("h119", "h120"), 0.90, 0.90, 0.70, every=4),
    "thirty-ninth-h123-h124": Group(("h123", "h124"), 0.90, 0.90, 0.76, every=4),
    # H121 and H122, the gate of R39m (formal and people's checks, not adopted), scored with
    # the shipped path (0.964 / 0.979 / 0.867).
    "thirty-ninth-h121-h122": Group(("h121", "h122"), 0.92, 0.92, 0.66, every=4),
    # The fortieth round's, the gate that adopted the reader's fourth epoch (R39m), scored with
    # it: H125 and H126 (0.993 / 0.993 / 0.883), H127 and H128 (0.979 / 0.986 / 0.933).
    "fortieth-h125-h126": Group(("h125", "h126"), 0.92, 0.92, 0.55, every=4),
    "fortieth-h127-h128": Group(("h127", "h128"), 0.90, 0.90, 0.83, every=4),
    # The forty-first round's first gate of the reader's fifth epoch (R40), scored with it:
    # H129 and H130 (0.993 / 1.000 / 0.933), H131 and H132 (0.986 / 0.986 / 0.933), and H133,
    # written after its export kept the first layers in float (1.000 / 1.000 / 0.967).
    "forty-first-h129-h130": Group(("h129", "h130"), 0.95, 0.95, 0.84, every=2),
    "forty-first-h131-h132": Group(("h131", "h132"), 0.95, 0.95, 0.81, every=2),
    "forty-first-h133": Group(("h133",), 0.90, 0.90, 0.85, every=2),
    # Its second gate, which adopted it: H134 and H135 (0.964 / 0.979 / 0.983), H136 and H137
    # (0.986 / 0.993 / 0.950).
    "forty-first-h134-h135": Group(("h134", "h135"), 0.90, 0.92, 0.86, every=2),
    "forty-first-h136-h137": Group(("h136", "h137"), 0.92, 0.94, 0.87, every=2),
    # The forty-second round's gates of the reader's sixth epoch (R41, not adopted), scored with
    # the shipped reader: H138 and H139 written before the candidate existed (138 of 140 /
    # 0.993 / 57 of 60 declined), H140 and H141 after its weights were frozen (138 / 0.993 / 58).
    "forty-second-h138-h139": Group(("h138", "h139"), 0.92, 0.94, 0.84, every=2),
    "forty-second-h140-h141": Group(("h140", "h141"), 0.95, 0.95, 0.83, every=2),
    # The forty-third round's gate of J43 (not adopted), scored with the shipped path: H142
    # written before the candidate existed, H143 after it was frozen (whole: 137 of 140 /
    # 0.993 / 58 of 60).
    "forty-third-h142-h143": Group(("h142", "h143"), 0.95, 0.95, 0.84, every=2),
    # The forty-fourth round's gate of the reader's sixth epoch (R44, adopted): H144 written
    # before the candidate existed, H145 after its weights were frozen (whole, R40 -> R44: 136
    # -> 136 of 140 / 0.986 -> 0.979 / 58 -> 56 of 60).
    "forty-fourth-h144-h145": Group(("h144", "h145"), 0.90, 0.92, 0.80, every=2),
    # The forty-fifth round's gates of the reader traced with plain attention (L45 not adopted,
    # L45b adopted): H146 written before either existed, H147 after L45 was frozen, H148 after
    # L45b was (whole, main -> L45b: 205 -> 205 of 210 / 0.986 -> 0.986 / 87 -> 88 of 90).
    "forty-fifth-h146-h148": Group(("h146", "h147", "h148"), 0.95, 0.95, 0.93, every=2),
    # The forty-sixth round's gate of the reader distilled into three layers (D3, not
    # adopted), scored with the shipped path: H149 written before the candidate existed, H150
    # after it was frozen (whole, main -> D3: 136 -> 135 of 140 / 0.971 -> 0.971 / 57 -> 53 of
    # 60).
    "forty-sixth-h149-h150": Group(("h149", "h150"), 0.91, 0.91, 0.87, every=2),
    # The forty-seventh round's gate of the reader distilled into four layers (D4, not
    # adopted), scored with the shipped path: H151 written before the candidate existed, H152
    # after its recipe was frozen (whole, main -> D4: 137 -> 137 of 140 / 0.979 -> 0.986 / 60
    # -> 60 of 60).
    "forty-seventh-h151-h152": Group(("h151", "h152"), 0.94, 0.94, 0.88, every=2),
    # The forty-eighth round's gate of the four-layer reader distilled with the teacher's hidden
    # states (H4, not adopted), scored with the shipped path: H153 written before the candidate
    # existed, H154 after its recipe was frozen (whole, main -> H4: 133 -> 134 of 140 / 0.971 ->
    # 0.971 / 60 -> 59 of 60). The sample holds all seven of main's missed first quotes.
    "forty-eighth-h153-h154": Group(("h153", "h154"), 0.85, 0.89, 0.90, every=2),
    # The forty-ninth round's gates of reading in two steps (C4 adopted), scored with C4: H155
    # and H156 written before it was frozen, H157 after (whole, main -> C4: 205 -> 205 of 210
    # / 0.981 -> 0.981 / 86 -> 85 of 90).
    "forty-ninth-h155-h157": Group(("h155", "h156", "h157"), 0.95, 0.96, 0.86, every=2),
    # The fiftieth round's gate of reading one passage and one adapter read first (C11
    # adopted), scored with C11: H158 and H159 written before it was frozen, H160 after (whole,
    # main -> C11: 209 -> 207 of 210 / 0.995 -> 0.986 / 83 -> 83 of 90).
    "fiftieth-h158-h160": Group(("h158", "h159", "h160"), 0.96, 0.96, 0.88, every=2),
    # The fifty-first round's gate of the query adapter trained on the served checks too (A51,
    # not adopted), scored with the shipped path: H161 written before it was frozen, H162 and
    # H163 after (whole, main -> A51: 205 -> 206 of 210 / 0.990 -> 0.990 / 87 -> 87 of 90).
    "fifty-first-h161-h163": Group(("h161", "h162", "h163"), 0.95, 0.96, 0.90, every=2),
    # The same round's gate of R51b (adopted), scored with it: H164 (whole, main -> R51b: 70
    # -> 70 of 70 / 1.000 -> 1.000 / 28 -> 28 of 30).
    "fifty-first-h164": Group(("h164",), 0.91, 0.91, 0.69, every=2),
    # Written after R51b was adopted (whole, before -> R51b: 69 -> 69 of 70 / 0.986 -> 0.986 /
    # 28 -> 28 of 30).
    "fifty-first-h165": Group(("h165",), 0.88, 0.88, 0.73, every=2),
    # The fifty-second round's gate of the reader's seventh epoch (R52, not adopted), scored
    # with the shipped path: H166 written before it existed, H167 after its weights were frozen
    # (whole, main -> R52: 67 -> 67 of 70 / 0.971 -> 0.957 / 29 -> 29 of 30 on H166; 67 -> 67
    # / 0.986 -> 0.986 / 28 -> 28 on H167).
    "fifty-second-h166": Group(("h166",), 0.88, 0.91, 0.81, every=2),
    "fifty-second-h167": Group(("h167",), 0.89, 0.89, 0.76, every=2),
}


def test_every_set_of_the_file_is_in_one_group() -> None:
    assert {q.set_id for q in load_questions(HELDOUT)} == grouped_sets(GROUPS)


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_held_out_questions_keep_their_floor(seeds_service: QAService, name: str) -> None:
    group = GROUPS[name]
    questions = [q for q in load_questions(HELDOUT) if q.set_id in group.sets]
    floored_report(seeds_service, questions, group)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        # A photo caption is article text, and so is its "© AFP" credit.
        ("In which city did Kerry and Lavrov lead an ISSG meeting in February 2016?", "Munich"),
        # "Who is X?": the first mention gives the title; a title wants the name beside it.
        # (Quoted second from the sixth round to the eighth; first again with the span head.)
        ("Who is Zakharova?", "Foreign Ministry spokesperson"),
        ("Who is the US Secretary of State?", "John Kerry"),
        # A speed, not the altitude in the sentence before it.
        ("How fast was the drone moving when it was registered near Aleppo?", "200 kilometers"),
        # The speaker counts less than what was said.
        ("What did Samantha Power say Russia and Assad do instead of pursuing peace?", "make war"),
        # The article's own date, and a doubled letter typed once.
        ("Which TV programme was Lavrov interviewed on in the September 24 report?", "Vesti"),
        ("What did Kery say about the facts Russia provided on the convoy attack?", "contradict"),
        # What a name or an acronym is; when and by whom the article was published; headlines.
        # ("What kind of publication is ...?" is declined since the reader joined the
        # decision: the article names the tabloid only in passing; benchmarks/README.md.)
        ("What is Komsomolskaya Pravda?", "tabloid"),
        # From the ninth round to the thirty-seventh the reader quoted what the ISSG is and
        # does, not its name written out; the thirty-eighth round's reader quotes the name.
        ("What does ISSG stand for?", "International Syria Support Group"),
        ("When was the RT article about the US ultimatum over Syria published?", "28 Sep, 2016"),
        ("What does Russia accuse the US of doing in Syria?", "supporting terror groups"),
    ],
)
def test_first_quote_answers(seeds_service: QAService, question: str, answer: str) -> None:
    got = seeds_service.ask(question)
    assert got.answered, got.notes
    assert answer in got.citations[0].quote
    assert "READ MORE" not in got.text
    # A photo credit is quoted only where it closes the caption it belongs to.
    assert all(re.fullmatch(r"[^©]*(©[^©\n]{1,60})?", c.quote) for c in got.citations)


@pytest.mark.parametrize(
    ("question", "link"),
    [
        # Quoted second with the thirty-eighth round's reader, after Samantha Power's words on
        # airstrikes; first again since the fortieth's (benchmarks/README.md).
        (
            "According to Assad, how long did the US airstrikes on Syrian troops last?",
            "READ MORE: US airstrikes on Syrian troops were 'intentional,' lasted nearly 1 hour – "
            "Assad to AP",
        ),
        (
            # (Typed "who told rt that nato wont speculate on who hit the aid convoy" it is
            # declined: the decision never read a headline's "– Stoltenberg to RT" as a speaker.)
            "Who told RT that NATO would not speculate on who struck the aid convoy in Syria?",
            "READ MORE: NATO won’t speculate on who struck aid convoy in Syria – Stoltenberg to RT",
        ),
    ],
)
def test_a_read_more_link_is_quoted_alone_when_asked_about(
    seeds_service: QAService, question: str, link: str
) -> None:
    """A "READ MORE" link is the page's words about another story: asked about, it is the
    first quote, exactly its line, with none of the story around it (benchmarks/README.md,
    "Thirty-sixth round")."""
    got = seeds_service.ask(question)
    assert got.answered, got.notes
    assert got.citations[0].quote == link
    assert all(c.quote == link or "READ MORE" not in c.quote for c in got.citations)


def test_the_sites_note_of_its_addresses_is_quoted_with_the_address(
    seeds_service: QAService,
) -> None:
    """Press TV's note of its alternate address is the page's words: asked about, it is the
    first quote with the address it announces; it is never shown as part of the story, in a
    quote or in the passage around one (benchmarks/README.md, "Thirty-seventh round")."""
    note = "Press TV’s website can also be accessed at the following alternate addresses:"
    got = seeds_service.ask("At what alternate web address can Press TV's website be accessed?")
    assert got.answered, got.notes
    assert got.citations[0].quote == f"{note}\n\nwww.presstv.co.uk"
    story = seeds_service.ask("What did the escalation in missile attacks do to the ceasefire?")
    first = story.citations[0]
    assert "left the ceasefire in tatters" in first.quote
    shown = seeds_service.passage(first.article.id, first.start, first.end)
    assert shown is not None and "tatters" in shown.text
    assert all(note not in c.quote for c in story.citations)
    assert note not in shown.text and "presstv.co.uk" not in shown.text

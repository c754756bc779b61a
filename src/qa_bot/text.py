"""Text primitives shared by ingestion, chunking, lexical search and quote selection.

Matching happens on a *folded* copy of the text (NFKC, no-break spaces as spaces, curly quotes
and dashes as ASCII, lower case), while everything shown to a user is sliced from the original.
Folding never changes where sentences start or end, so spans found on one are valid on the other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

from qa_bot.errors import InvalidQuestionError
from qa_bot.settings import MAX_QUESTION_CHARS

#: The names of the months as news writes them, full and short ("Sep", "Sept", "September"),
#: lower case, each with its number.
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
#: Each month's full name, by its number.
MONTH_NAMES = {
    number: max((n for n, k in MONTHS.items() if k == number), key=len) for number in range(1, 13)
}

_TRANSLATE = str.maketrans(
    {
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u200b": "",
        "\ufeff": "",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
    }
)


def fold(text: str) -> str:
    """Normalize for matching: the same words written with other code points compare equal."""
    return unicodedata.normalize("NFKC", text.translate(_TRANSLATE)).casefold()


def clean_inline(text: str) -> str:
    """Collapse runs of white space (no-break spaces too), drop control characters (an escape
    sequence in a headline must not reach a terminal) and keep every other character as is."""
    text = _ANSI_ESCAPE.sub("", text.replace("\u200b", "").replace("\ufeff", ""))
    return re.sub(r"\s+", " ", "".join(_visible_or_space(c) for c in text)).strip()


#: Terminal escape sequences: CSI ("ESC [ 31 m"), OSC ("ESC ] ... BEL"), and two-byte ones.
_ANSI_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)


def _visible_or_space(char: str) -> str:
    """White space stays (as itself); other control and format characters go."""
    if char.isspace():
        return char
    return "" if unicodedata.category(char) in ("Cc", "Cf") else char


def normalize_question(text: str) -> str:
    """A question as it should be matched: terminal escape sequences, control characters
    and soft hyphens (any format character) removed, white space of any kind made a space,
    and NFKC applied (full-width letters, ligatures), so "Chur\u00adkin" and an escaped
    "\x1b[1mChurkin\x1b[0m" find what "Churkin" finds."""
    text = _ANSI_ESCAPE.sub("", text)
    text = "".join(" " if c.isspace() else _visible_or_space(c) for c in text)
    return unicodedata.normalize("NFKC", text)


_HAS_WORD = re.compile(r"[^\W_]", re.UNICODE)


def validate_question(question: str, limit: int = MAX_QUESTION_CHARS) -> str:
    """A question must have something to search for and fit what a question can be."""
    cleaned = " ".join(normalize_question(question or "").split())
    if not cleaned:
        raise InvalidQuestionError("the question is empty; ask something about the articles")
    if len(cleaned) > limit:
        raise InvalidQuestionError(
            f"the question is {len(cleaned):,} characters long; the limit is {limit:,}"
        )
    if not _HAS_WORD.search(cleaned):
        raise InvalidQuestionError("the question has no words in it; ask in words")
    return cleaned


def printable(text: str) -> str:
    """A name (a file name) made safe to print on one line: control and format characters
    are shown as escapes (a newline as ``\\n``), as ``ls -b`` shows them."""
    out = []
    for char in text:
        if unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp"):
            out.append(char)
        elif char in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[char])
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    return "".join(out)


# --- words -------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*", re.UNICODE)

#: A word as typed (letters and digits, inner apostrophes and hyphens), for showing a person
#: the words of their question or of a passage as written.
SURFACE_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")

STOPWORDS = frozenset(
    """
    a about above according after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    said say says tell told did does according report reported reports describe described
    mention mentioned many much whose s t don t'
    """.split()
)


#: Bump when ``terms`` changes what it returns: the index stores BM25 postings of its output,
#: so the indexer rebuilds from scratch when this differs from the one that built it.
TOKENIZER_VERSION = 4

#: Final doubled consonants kept after "-ed" ("called", "passed", "buzzed", "staffed"):
#: the base word ends with the double too ("call", "pass").
_KEEP_DOUBLE = frozenset("lsfz")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A light suffix stripper: enough for "attacks"/"attacked"/"attack" to meet.

    A full stemmer would also merge unrelated words; for names and numbers (the words that
    matter most here) this leaves them alone. After "-ed", a doubled final consonant is undoubled
    ("stopped", "submitted" -> "stop", "submit") unless that leaves fewer than three letters
    ("added" -> "add"); not after "-ing", where names would meet common words ("Manning" ->
    "man"). Words in "-eed" are kept whole ("need", "speed"); "-us" and "-is" are not plurals
    ("status", "Davis").
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("eed"):
        return word
    for suffix, repl in (
        ("ies", "y"),
        ("ied", "y"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "es" and not word.endswith(("ches", "shes", "sses", "xes", "zes")):
                return word[:-1]
            stem = word[: len(word) - len(suffix)] + repl
            if suffix == "ed" and _doubled(stem):
                return stem[:-1]
            return stem
    return word


def _doubled(stem: str) -> bool:
    last = stem[-1]
    return len(stem) >= 4 and stem[-2] == last and last not in _KEEP_DOUBLE and last not in "aeiou"


def words(text: str) -> list[str]:
    """Folded word tokens, keeping hyphenated names ("ez-zor") and numbers ("3,600" -> "3600").

    A possessive or contracted "'s" is dropped: "Russia's ambassador" must meet "Russia", and
    a question about "Cantor's theory" the article's "Cantor". Dotted initials lose their
    dots: "U.S." is "US" (Reuters writes the one, RT the other).
    """
    folded = fold(text)
    folded = re.sub(r"(?<=\d)[,.](?=\d{3}\b)", "", folded)
    out = []
    for word in _WORD.findall(folded):
        if word.endswith("'s") and len(word) > 3:
            word = word[:-2]
        word = word.strip("'.-")
        if _INITIALS.fullmatch(word):
            word = word.replace(".", "")
        if word:
            out.append(word)
    return out


_INITIALS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")


def terms(text: str) -> list[str]:
    """Search terms: folded words, stop words removed, lightly stemmed.

    Hyphenated names are kept whole and also split into their parts, so "Deir ez-Zor" is found
    by "ez-zor" as well as by "zor".
    """
    out: list[str] = []
    for word in words(text):
        if word in STOPWORDS:
            continue
        out.append(_stem(word))
        if "-" in word:
            out.extend(_stem(p) for p in word.split("-") if p and p not in STOPWORDS)
    return out


# --- sentences ---------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof gen lt col maj capt sgt cpl adm gov sen rep st jr sr rev hon pres
    no nos vs etc e.g i.e inc corp co ltd jan feb mar apr jun jul aug sep sept oct nov dec
    u.s u.n u.k e.u a.m p.m approx dept fig est
    """.split()
)

_BOUNDARY = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s+[\"'“‘«(\[]?[A-Z0-9А-ЯЁ])|\n")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield (start, end) spans of the sentences of ``text[start:end]``, stripped of white space.

    A rule-based splitter: it breaks after ., ! or ? (and closing quotes) when a capital or a
    digit follows, except after common abbreviations and single initials. Good enough for news
    prose, and it never loses a character: the spans tile the input apart from white space.
    """
    end = len(text) if end is None else end
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        cut = match.end()
        if match.group() != "\n":
            token = re.search(r"(\S+)$", text[cursor : match.start() + 1])
            word = token.group(1).rstrip(".").lstrip("\"'“‘(").casefold() if token else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        span = _strip(text, cursor, cut)
        if span is not None:
            yield span
        cursor = cut
    span = _strip(text, cursor, end)
    if span is not None:
        yield span


#: How a sentence of prose ends.
_CLOSES = re.compile(r"[.!?…:;\"'”’»)\]]$")

#: A line without closing punctuation that runs this long is prose (a photo caption, a
#: paragraph that lost its full stop), not a subhead: subheads are a few words.
HEADING_MAX_WORDS = 12


def reads_as_prose(sentence: str) -> bool:
    """The sentence closes like prose, or is too long to be a heading, or is a web address
    (which the body keeps only after the note announcing it: part of that note, not a
    subhead)."""
    sentence = sentence.rstrip()
    return (
        bool(_CLOSES.search(sentence))
        or len(sentence.split()) >= HEADING_MAX_WORDS
        or BARE_ADDRESS.match(sentence) is not None
    )


#: A line linking another story of the site, "READ MORE: <its headline>": the page's own
#: words about that story, quotable on their own, never together with the story around them.
LINK_LINE = re.compile(r"^\s*(?:read more|read also|related|see also|also read)\s*[:\-–]", re.I)


#: The site's note of where else it can be reached ("Press TV's website can also be accessed
#: at the following alternate addresses:"), the outlet's own words about itself.
SITE_NOTICE = re.compile(r"can (?:also )?be accessed at the following alternate address", re.I)

#: A line that is only a web address ("www.presstv.co.uk").
BARE_ADDRESS = re.compile(r"^\s*(?:https?://|www\.)\S+\s*$", re.I)


def apart(text: str, end: int, start: int) -> bool:
    """The sentence ending at ``end`` and the one starting at ``start`` must not be quoted
    together: something other than blank space lies between them (a line the cleaning left
    out, or a subhead), or one of them is a photo caption (its line ends in a credit, "©
    AFP"), which describes a picture, not the story around it, or a link to another story
    (:data:`LINK_LINE`), or one is the site's note of its addresses and the other is not
    (the note and the address it announces are quoted together, never with the story)."""
    if text[end:start].strip():
        return True
    before, after = _line_at(text, end), _line_at(text, start)
    return _alone(before) or _alone(after) or _noting(before) != _noting(after)


def _alone(line: str) -> bool:
    """The line is quoted only on its own: a photo caption, whose credit ("©") the body keeps
    at its end, or a link to another story ("READ MORE: ...")."""
    return "©" in line or LINK_LINE.match(line) is not None


def _noting(line: str) -> bool:
    """The line is the site's note of its addresses, or an address alone."""
    return SITE_NOTICE.search(line) is not None or BARE_ADDRESS.match(line) is not None


def _line_at(text: str, pos: int) -> str:
    """The line of ``text`` holding ``pos``."""
    return text[line_start(text, pos) : line_end(text, pos)]


def line_start(text: str, pos: int) -> int:
    """Where the line holding ``pos`` starts: just after the newline before it, or 0."""
    return text.rfind("\n", 0, pos) + 1


def line_end(text: str, pos: int, stop: int | None = None) -> int:
    """Where the line holding ``pos`` ends: its newline, or ``stop`` (the text's end) when it
    has none before."""
    stop = len(text) if stop is None else stop
    found = text.find("\n", pos, stop)
    return stop if found < 0 else found


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None

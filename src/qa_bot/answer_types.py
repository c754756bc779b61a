"""What kind of answer a question's wording asks for, and whether a text holds one.

"How fast was the drone flying?" wants a speed, not just any number: the window that repeats
"drone" and "flying" next to an altitude ("at an altitude of 3,600 meters") holds a number but
not the answer; the one with "200 kilometers per hour" does. The wording of a question says
that much before any passage is read, so the retriever ranks passages holding the asked-for
kind a little higher, and the first quote grows towards the sentence that holds it.

Each kind has a *strict* pattern (a speed: a number with a unit of speed) and a *loose* one (a
number at all). A passage holding the strict kind earns the whole bonus, one holding only the
loose kind half of it: a question may ask "how long" of a distance, or "how many" of something
written out as "dozens".
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from qa_bot.text import MONTH_NAMES, STOPWORDS, SURFACE_WORD, terms

_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty"
    r"|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?"
    r"|dozens?|half|several|a few|an?"
)
#: Number words that count something ("one aid worker", "dozens of civilians"), not "a".
_COUNTING_WORDS = _NUMBER_WORDS.replace("|several|a few|an?", "|several")

#: A quantity as news writes it: "3,600", "1.5", "72", "thirty", "a dozen", "several".
_QTY = rf"(?:\d[\d,.]*|(?:{_NUMBER_WORDS}))"

NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty"
    r"|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?"
    r"|dozens?|half|once|twice)\b",
    re.IGNORECASE,
)
DATE = re.compile(
    rf"\b(?:1[5-9]\d\d|20\d\d|{'|'.join(MONTH_NAMES.values())}"
    r"|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
    r"|yesterday|today|tonight|century|decade)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:1[0-9]\d\d|20\d\d)s?\b|\bcentury\b", re.IGNORECASE)


def _unit(units: str) -> re.Pattern[str]:
    """A quantity followed by one of ``units`` ("200 kilometers per hour", "3,600-meter")."""
    return re.compile(rf"\b{_QTY}(?:\s|-)?(?:{units})\b", re.IGNORECASE)


_SPEED = _unit(
    r"(?:kilomet(?:er|re)s?|km|miles?|met(?:er|re)s?|feet|foot)\s*(?:per|an|a|/)\s*"
    r"(?:hour|second|minute|h|s)|km/h|kph|mph|knots?|mach"
)
_LENGTH = _unit(r"kilomet(?:er|re)s?|km|met(?:er|re)s?|m|feet|foot|ft|miles?|yards?|inch(?:es)?")
_DURATION = re.compile(
    rf"\b{_QTY}(?:\s|-)?(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?"
    r"|centuries)\b|\b(?:overnight|all night|all day)\b",
    re.IGNORECASE,
)
_AGE = re.compile(rf"\b{_QTY}(?:\s|-)years?(?:\s|-)old\b|\baged? \d+\b|\b\d+-year-old\b", re.I)
_PERCENT = re.compile(r"\d\s*%|\b(?:percent|per cent|percentage points?)\b", re.IGNORECASE)
_MONEY = re.compile(
    r"[$€£¥₽]\s?\d|\b\d[\d,.]*\s*(?:million|billion|trillion|thousand)?\s*"
    r"(?:dollars|euros?|pounds|rubles|roubles|yen|yuan|francs|marks|USD|EUR)\b"
    r"|\b(?:USD|EUR|GBP)\s?\d",
    re.IGNORECASE,
)
_FREQUENCY = re.compile(
    rf"\b(?:once|twice|{_QTY} times|daily|weekly|monthly|yearly|annually|every \w+|each \w+)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AnswerType:
    """The kind of answer a question asks for: ``strict`` holds it, ``loose`` might."""

    name: str
    strict: re.Pattern[str]
    loose: re.Pattern[str]

    def score(self, text: str) -> float:
        """1 for a text holding the strict kind, 0.5 for the loose kind only, else 0."""
        if self.strict.search(text):
            return 1.0
        return 0.5 if self.loose is not self.strict and self.loose.search(text) else 0.0


def _asks(pattern: str) -> re.Pattern[str]:
    # The wh-phrase opens the question, or follows a lead-in ("According to TASS, how fast
    # ...", "Besides the UN, when ...").
    return re.compile(rf"(?:^|[,:;]\s*)\W*(?:{pattern})\b", re.IGNORECASE)


#: Question wordings and what they ask for, most specific first.
_KINDS: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (
        _asks(r"how (?:fast|quickly)|at what speed|(?:what|which) speed"),
        AnswerType("speed", _SPEED, NUMBER),
    ),
    (
        _asks(
            r"how (?:far|high|tall|deep|wide|big|large|low)|at what (?:altitude|height|depth"
            r"|distance|range)|(?:what|which) (?:altitude|height|depth|distance|length|range)"
        ),
        AnswerType("length", _LENGTH, NUMBER),
    ),
    (_asks(r"how old|at what age|(?:what|which) age"), AnswerType("age", _AGE, NUMBER)),
    (
        _asks(r"what (?:percentage|percent|proportion|share)"),
        AnswerType("percent", _PERCENT, NUMBER),
    ),
    (
        _asks(r"how much (?:money|did \w+ (?:cost|pay|spend|raise))|what (?:price|cost|sum)"),
        AnswerType("money", _MONEY, NUMBER),
    ),
    (_asks(r"how often"), AnswerType("frequency", _FREQUENCY, NUMBER)),
    (
        _asks(r"how long|for how long|(?:after|within|in) how (?:long|many (?:days|hours|years))"),
        AnswerType("duration", _DURATION, NUMBER),
    ),
    (
        _asks(r"(?:in|by|since|from|until) (?:what|which) year|what year"),
        AnswerType("year", _YEAR, DATE),
    ),
    (
        _asks(
            r"when|(?:in|on|by|since|until) (?:what|which) (?:date|day|month|time)"
            r"|what (?:date|day|month|time)"
        ),
        AnswerType("date", DATE, DATE),
    ),
    (
        _asks(r"how (?:many|much)|what (?:number|amount)|at what (?:rate|price|cost)"),
        AnswerType("number", NUMBER, NUMBER),
    ),
)


def expected_answer(question: str) -> AnswerType | None:
    """The kind of answer the question's wording asks for, or None when it does not say.

    Only the question's own wh-phrase counts: "What did the US say about how many drones
    flew?" asks what was said, not for a number.
    """
    for asks, kind in _KINDS:
        if asks.search(question):
            if kind.name == "number":
                return _count_of(question) or kind
            return kind
    return None


_HOW_MANY = re.compile(
    r"(?:^|[,:;]\s*)\W*how\s+many\s+(?P<what>(?:[\w’'-]+\s+){0,2}[\w’'-]+)", re.I
)
_NOT_COUNTED = frozenset(
    "were was are is did do does had have has will would could more of in on at by the".split()
)


def _count_of(question: str) -> AnswerType | None:
    """ "How many aid workers were killed?" wants a number counting aid workers ("one aid
    worker"), not the "62 troops" of the sentence before: a number followed, within three
    words, by the thing counted. Any number still earns the loose half."""
    match = _HOW_MANY.search(question)
    if match is None:
        return None
    counted: list[str] = []
    for word in match.group("what").split():
        if word.casefold() in _NOT_COUNTED:
            break
        counted.append(word)
    if not counted:
        return None
    stem = (terms(counted[-1]) or [counted[-1].casefold()])[0]
    stem = stem[:-1] if stem.endswith("y") else stem  # "country" meets "countries"
    strict = re.compile(
        rf"(?:\d|\b(?:{_COUNTING_WORDS})\b)[\w,.%-]*(?:\W+\w+){{0,3}}?\W+{re.escape(stem)}",
        re.IGNORECASE,
    )
    return AnswerType("count", strict, NUMBER)


_WHO_IS = re.compile(
    r"^\W*(?:who|what)\s+(?:is|was|are|were)\s+(?P<subject>[^?]+?)\s*\??\s*$", re.IGNORECASE
)
#: "What kind of publication is Komsomolskaya Pravda?", "What sort of group is Ahrar Al-Sham?"
_WHAT_KIND = re.compile(
    r"^\W*what\s+(?:kind|type|sort)\s+of\s+\w+\s+(?:is|was|are|were)\s+(?P<subject>[^?]+?)\s*\??\s*$",
    re.IGNORECASE,
)
#: "What does ISSG stand for?"
_STANDS_FOR = re.compile(
    r"^\W*(?i:what)\s+(?i:does|did)\s+(?:(?i:the)\s+)?(?P<subject>[A-Z][A-Z0-9-]+)\s+"
    r"(?i:stands?\s+for)\b"
)
_NAME_WORD = re.compile(r"[A-Z][\w’'.-]*")
#: A capitalised word that names someone, as opposed to one that opens a sentence.
_CAPITALISED = r"(?-i:[A-Z][\w’'.-]+)"


@dataclass(frozen=True)
class Definition:
    """A question asking who or what someone or something is.

    Of a name ("Who is Zakharova?", "What kind of publication is Komsomolskaya Pravda?"), the
    answer is how the articles introduce it: news gives the full title at the first mention
    ("Russian Foreign Ministry spokesperson Maria Zakharova"), later ones say "Zakharova".
    Of an acronym ("What does ISSG stand for?"), the window that spells it out, "International
    Syria Support Group (ISSG)". Of a title ("Who is the US Secretary of State?"), a name next to
    it: ``beside_name`` finds "the US Secretary of State John Kerry" and "Kerry, the US
    Secretary of State", not "the idea of the US Secretary of State is workable".

    The question's other words ("kind", "publication", "stand") are its scaffolding, not what
    a passage must hold: one holding the name answers it.
    """

    subject: str
    is_name: bool
    beside_name: re.Pattern[str] | None = None
    spelt_out: re.Pattern[str] | None = None


def definition(question: str) -> Definition | None:
    """The subject of a question asking who or what something is, or None."""
    stands = _STANDS_FOR.match(question)
    if stands is not None:
        return _acronym(stands.group("subject"))
    match = _WHAT_KIND.match(question) or _WHO_IS.match(question)
    if match is None:
        return None
    subject = match.group("subject")
    words = subject.split()
    if len(words) > 8:
        return None
    bare = words[1:] if words[0].casefold() in {"the", "a", "an"} else words
    if len(bare) == 1 and bare[0].isupper() and len(bare[0]) > 1:
        return _acronym(bare[0])  # "What is the ISSG?"
    if bare is words and all(_NAME_WORD.fullmatch(w.strip(",")) for w in words):
        return Definition(subject, is_name=True)  # "the Russian Defense Minister" is a title
    if question.lstrip().casefold().startswith("what"):
        return None  # "What is the capital of Australia?" asks no one's title
    core = re.sub(r"^(?:the|a|an)\s+", "", subject, flags=re.IGNORECASE)
    phrase = r"[\s\u00a0]+".join(
        re.escape(w).replace("'", "['’]").replace("’", "['’]") for w in core.split()
    )
    beside = re.compile(
        rf"\b{phrase},?[\s\u00a0]+{_CAPITALISED}"
        rf"|{_CAPITALISED},[\s\u00a0]+(?:the[\s\u00a0]+)?{phrase}\b"
        rf"|{_CAPITALISED}[\s\u00a0]+(?:is|was|became)[\s\u00a0]+(?:the[\s\u00a0]+)?{phrase}\b",
        re.IGNORECASE,
    )
    return Definition(subject, is_name=False, beside_name=beside)


def _acronym(acronym: str) -> Definition:
    """ "ISSG": the window where a capitalised name is followed by "(ISSG)"."""
    return Definition(
        acronym,
        is_name=True,
        spelt_out=re.compile(rf"{_CAPITALISED}[^()]{{0,80}}\(\s*{re.escape(acronym)}\s*\)"),
    )


#: Words of a question about the article that name the article, not its story.
_ARTICLE_WORDS = (
    "news agency outlet newspaper website site channel broadcaster network publication service "
    "article report reported story piece published publish posted post written wrote dated "
    "released release date dateline datelined headline headlined title titled wire"
).split()


#: Parts of an article that a question may give as its source ("according to the photo
#: caption", "the closing paragraph"): like the article, they name no one it must mention.
_ARTICLE_PARTS = frozenset(
    "caption captions photo photos photograph photographs picture pictures image images "
    "paragraph paragraphs".split()
)


def points_at_article(word: str) -> bool:
    """Whether a word names the article, or a part of it, rather than its story ("article",
    "report", "caption")."""
    low = word.casefold()
    return low in _ARTICLE_WORDS or low in _ARTICLE_PARTS


def article_words(question: str) -> tuple[str, ...]:
    """The words of a question about the article itself that point at the article ("news
    agency", "reported", "published"): searching for them would find passages about other
    news agencies, not the story the question names."""
    return tuple(w for w in _ARTICLE_WORDS if re.search(rf"\b{w}\b", question, re.IGNORECASE))


#: "what did the minister say" asks what was said, not which minister.
_AUXILIARY = r"(?:is|was|are|were|do|does|did|has|have|had|will|would|can|could|should|may)"
#: Words that name someone by their role ("which pentagon official", "what UN envoy").
_PERSON_NOUN = (
    r"officials?|ministers?|spokes(?:man|woman|person|people)|envoys?|leaders?|presidents?"
    r"|commanders?|generals?|diplomats?|ambassadors?|secretary|chief|negotiators?|mediators?"
    r"|politicians?|person|people|man|woman|men|women|analysts?|experts?|journalists?"
    r"|reporters?|lawmakers?|senators?"
)
#: A question asking for someone: "who said ...", "whose plan ...", "which official ...".
_ASKS_PERSON = re.compile(
    rf"\bwho(?:m|se)?\b|\b(?:which|what)\s+(?:(?!{_AUXILIARY}\b)[\w’'-]+\s+){{0,3}}?"
    rf"(?:{_PERSON_NOUN})\b",
    re.IGNORECASE,
)


def asks_person(question: str) -> bool:
    """Whether the question asks for someone: its answer is a name (or a title with one)."""
    return bool(_ASKS_PERSON.search(question))


def names_new(text: str, asked: set[str], skip: int = 1) -> bool:
    """Whether ``text`` names someone or something the question (its terms ``asked``) does
    not: a capitalised word, past the first ``skip`` (a sentence's first word is capitalised
    anyway), none of whose terms the question holds."""
    for match in itertools.islice(SURFACE_WORD.finditer(text), skip, None):
        word = match.group()
        if not word[:1].isupper() or word.casefold() in STOPWORDS:
            continue
        if not set(terms(word)) & asked:
            return True
    return False

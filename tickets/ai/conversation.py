"""The conversation around a message: what kind of turn it is (its *act*), and what the assistant remembers
of the conversation so far (its *state*).

Acts are recognised before anything is retrieved, so "Hi there" is greeted instead of searched for, "thanks,
that fixed it" closes politely instead of answering again, "it doesn't work" gets one clarifying question, and
"no, that didn't help" offers a person. Only a real need (``QUESTION``) goes to retrieval. The recognition is
lexical and works without a model or network, in English, German, Spanish and French; a message that mixes
an act with a question ("Hi! How do I reset my password?") is a question.

The state is kept on the ticket (``Ticket.conversation``) and updated after every decision: the topics asked,
the articles cited, the open question, entities named (product area, device, plan), and how many customer
turns in a row went unanswered or unhelped — the handover policy reads it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path


class Act(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    SMALL_TALK = "small_talk"
    NEGATIVE_FEEDBACK = "negative_feedback"
    VAGUE = "vague"
    QUESTION = "question"


# Acts that are answered without retrieval and never hand over by themselves.
SOCIAL_ACTS = frozenset({Act.GREETING, Act.THANKS, Act.GOODBYE, Act.SMALL_TALK})
CLOSING_ACTS = frozenset({Act.THANKS, Act.GOODBYE})


def _words(*phrases: str) -> str:
    return "|".join(sorted((re.escape(p).replace(r"\ ", r"\s+") for p in phrases), key=len, reverse=True))


GREETING_WORDS = _words(
    "hi", "hello", "hey", "hiya", "howdy", "yo", "good morning", "good afternoon", "good evening", "greetings",
    "hallo", "guten tag", "guten morgen", "guten abend", "servus", "moin", "grüß gott", "hola", "buenos días",
    "buenos dias", "buenas tardes", "buenas", "bonjour", "bonsoir", "salut", "coucou", "hi there", "hello there",
    "hey there", "dear support", "dear team", "hallo zusammen",
)  # fmt: skip
THANKS_WORDS = _words(
    "thanks", "thank you", "thx", "ty", "many thanks", "cheers", "much appreciated", "appreciate it",
    "danke", "danke schön", "danke schoen", "vielen dank", "dankeschön", "gracias", "muchas gracias", "merci",
    "merci beaucoup", "thank u", "thanks a lot", "thanks so much", "great thanks", "perfect thanks",
)  # fmt: skip
GOODBYE_WORDS = _words(
    "bye", "goodbye", "good bye", "see you", "see ya", "have a nice day", "have a good day", "take care",
    "tschüss", "tschuess", "auf wiedersehen", "bis bald", "adiós", "adios", "hasta luego", "au revoir",
    "bonne journée", "bonne journee", "à bientôt", "a bientot", "that's all", "that is all", "nothing else",
    "no that's all", "no thanks that's all", "das wars", "das war's", "eso es todo", "c'est tout",
)  # fmt: skip
# Something went right: "that fixed it", "it works now".
RESOLVED = re.compile(
    r"\b(?:(?:that|this|it)\s+(?:fixed|solved|sorted|did)\s+it|(?:it'?s|it\s+is|all)\s+(?:working|fixed|sorted|good)"
    r"(?:\s+now)?|works\s+now|working\s+now|problem\s+solved|got\s+it|all\s+set|perfect|great|awesome|brilliant|"
    r"excellent|that\s+helped|helped\s+a\s+lot|funktioniert\s+(?:jetzt|wieder)|hat\s+geklappt|gelöst|"
    r"ya\s+funciona|funcionó|funciono|solucionado|ça\s+marche|ca\s+marche|c'est\s+réglé|résolu|resolu)\b",
    re.IGNORECASE,
)
NEGATIVE_FEEDBACK = re.compile(
    r"\b(?:(?:that|this|it|your\s+answer|the\s+answer|the\s+article)\s+(?:did\s*n[o']?t|does\s*n[o']?t|didnt|doesnt|"
    r"won'?t)\s+(?:help|work|answer|solve|fix)|(?:not|no)\s+(?:helpful|what\s+i\s+(?:asked|meant|need(?:ed)?))|"
    r"(?:still|again)\s+(?:(?:does\s*n[o']?t|doesnt|is\s*n[o']?t|not)\s+work(?:ing)?|broken|the\s+same|stuck|failing)|"
    r"that'?s\s+not\s+(?:it|what|right|helpful)|wrong\s+answer|useless|"
    r"hilft\s+(?:mir\s+)?nicht|hat\s+nicht\s+geholfen|funktioniert\s+(?:immer\s+)?noch\s+nicht|"
    r"no\s+(?:me\s+)?(?:ayuda|ayudó|ayudo|sirve|sirvió|funciona)|sigue\s+sin\s+funcionar|"
    r"(?:ça|ca)\s+(?:ne\s+)?(?:m'a\s+pas\s+aidé|n'aide\s+pas|ne\s+marche\s+(?:toujours\s+)?pas)|"
    r"toujours\s+pas)\b",
    re.IGNORECASE,
)
SMALL_TALK = re.compile(
    r"^(?:how\s+are\s+you(?:\s+doing)?|how'?s\s+it\s+going|what'?s\s+up|are\s+you\s+(?:a\s+)?(?:bot|robot|human|real|"
    r"person|an?\s+ai)|who\s+are\s+you|what\s+are\s+you|what'?s\s+your\s+name|what\s+can\s+you\s+do|can\s+you\s+help"
    r"(?:\s+me)?|are\s+you\s+there|anyone\s+there|is\s+anyone\s+there|hello\?+|test(?:ing)?|lol|haha+|ok(?:ay)?|"
    r"wie\s+geht'?s|wie\s+geht\s+es\s+(?:dir|ihnen)|bist\s+du\s+ein\s+(?:bot|mensch)|wer\s+bist\s+du|"
    r"kannst\s+du\s+mir\s+helfen|¿?c[oó]mo\s+est[aá]s|¿?eres\s+un\s+(?:bot|robot|humano)|¿?puedes\s+ayudarme|"
    r"(?:comment\s+)?(?:ça|ca)\s+va|es-tu\s+un\s+(?:bot|robot|humain)|qui\s+es-tu|pouvez-vous\s+m'aider)\W*$",
    re.IGNORECASE,
)
# Words that say something is wrong without saying what.
PROBLEM_ONLY = {
    "it", "this", "that", "doesn't", "doesnt", "does", "not", "work", "working", "works", "broken", "problem",
    "problems", "issue", "issues", "help", "please", "pls", "plz", "error", "wrong", "bug", "fix", "need", "i",
    "a", "an", "the", "my", "me", "have", "has", "got", "is", "isn't", "isnt", "anymore", "again", "still",
    "something", "some", "there", "theres", "there's", "urgent", "asap", "can", "you", "someone", "somebody",
    "hello", "hi", "hey", "won't", "wont", "doesn’t", "isn’t", "stopped", "fails", "failed", "failing", "nothing",
    "at", "all", "just", "now", "today", "with", "for", "to", "of", "and", "or", "so", "very", "really", "crap",
    "funktioniert", "nicht", "geht", "kaputt", "hilfe", "fehler", "es", "das", "bitte", "mehr",
    "no", "funciona", "ayuda", "problema", "por", "favor", "ne", "marche", "pas", "aide", "erreur",
    "problème", "ça", "ca", "svp",
    "ich", "habe", "hab", "ein", "eine", "einen", "mein", "meine", "hier", "mal", "etwas", "irgendwas", "leider",
    "tengo", "un", "una", "mi", "algo", "aquí", "j'ai", "je", "une", "mon", "ma", "quelque", "chose", "ici",
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_TOKEN = re.compile(r"[\w'-]+", re.UNICODE)
_LEADING = re.compile(
    rf"^\W*(?:(?:{GREETING_WORDS}|{THANKS_WORDS}|ok(?:ay)?|great|perfect|so|well|also|and|und|y|et)\b[\s,.!;:–—-]*)+",
    re.IGNORECASE,
)
_GREETING_ONLY = re.compile(rf"^\W*(?:(?:{GREETING_WORDS})\b\W*)+$", re.IGNORECASE)
_THANKS_ONLY = re.compile(
    rf"^\W*(?:(?:{THANKS_WORDS}|{GREETING_WORDS}|ok(?:ay)?|great|perfect|awesome|super|nice|good|again|so\s+much|"
    r"a\s+lot|for\s+(?:the|your)\s+help|for\s+helping|very|much|you|u|guys|team)\b\W*)+$",
    re.IGNORECASE,
)
_GOODBYE = re.compile(rf"(?:^|\W)(?:{GOODBYE_WORDS})(?:\W|$)", re.IGNORECASE)
_THANKS = re.compile(rf"(?:^|\W)(?:{THANKS_WORDS})(?:\W|$)", re.IGNORECASE)
MAX_ACT_CHARS = 160  # a longer message carries content: it is treated as a question


@dataclass(frozen=True)
class Reading:
    """What a customer message is: its act and the part of it that asks something (greetings stripped)."""

    act: Act
    text: str


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", " ".join(text.split()))


def strip_pleasantries(text: str) -> str:
    """ "Hi! Thanks. How do I reset my password?" → "How do I reset my password?" """
    return _LEADING.sub("", _fold(text)).strip()


def content_words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower().strip("'’-") for m in _WORD.finditer(text)) if w and w not in PROBLEM_ONLY]


def read(text: str, *, answered_before: bool = False) -> Reading:
    """The act of one customer message. ``answered_before``: the assistant's previous turn was an answer,
    so "still not working" is feedback on it rather than a new, vague problem."""
    folded = _fold(text)
    rest = strip_pleasantries(folded)
    short = len(folded) <= MAX_ACT_CHARS
    negative = short and NEGATIVE_FEEDBACK.search(folded)
    if negative and answered_before:
        return Reading(Act.NEGATIVE_FEEDBACK, rest)
    if short and "?" not in folded:
        if _GREETING_ONLY.match(folded):
            return Reading(Act.GREETING, "")
        thanked = _THANKS.search(folded) or (answered_before and RESOLVED.search(folded))
        if not negative and thanked and (_THANKS_ONLY.match(folded) or len(content_words(rest)) <= 4):
            return Reading(Act.GOODBYE if _GOODBYE.search(folded) else Act.THANKS, "")
        if _GOODBYE.search(folded) and len(content_words(rest)) <= 2:
            return Reading(Act.GOODBYE, "")
    if short and SMALL_TALK.match(rest or folded):
        return Reading(Act.SMALL_TALK, rest)
    if short and not content_words(rest):
        # "hello?", "hi!!": a greeting with punctuation only is still a greeting
        return Reading(Act.GREETING if not _WORD.search(rest) else Act.VAGUE, rest)
    return Reading(Act.QUESTION, rest or folded)


# --- language and follow-ups ------------------------------------------------------------------------------

GREETING_LANGUAGE = {
    "hallo": "de", "servus": "de", "moin": "de", "danke": "de", "tschüss": "de", "guten": "de",
    "hola": "es", "gracias": "es", "buenos": "es", "buenas": "es", "adiós": "es",
    "bonjour": "fr", "salut": "fr", "merci": "fr", "bonsoir": "fr", "coucou": "fr",
}  # fmt: skip


def reply_language(text: str, *, detected: str, state: State) -> str:
    """The language to reply in: what the message is written in when that can be told (a greeting word
    is enough), else the conversation's language so far, else English."""
    first = next((w.group(0).lower() for w in _WORD.finditer(text)), "")
    if first in GREETING_LANGUAGE and len(text.split()) <= 3:
        return GREETING_LANGUAGE[first]
    if detected in ("en", "de", "es", "fr") and (len(text.split()) >= 3 or not state.language):
        return detected
    return state.language or "en"


ABBREVIATIONS_FILE = Path(__file__).resolve().parent / "data" / "abbreviations.json"


@cache
def _abbreviations() -> dict[str, str]:
    return json.loads(ABBREVIATIONS_FILE.read_text(encoding="utf-8"))


def expand_abbreviations(text: str) -> str:
    """ "How do I set up 2FA?" searches for two-factor authentication too: what customers abbreviate,
    articles spell out (``data/abbreviations.json``). The text is kept; the expansions are appended."""
    found = dict.fromkeys(
        _abbreviations()[w] for w in (m.group(0).lower() for m in _TOKEN.finditer(text)) if w in _abbreviations()
    )
    return f"{text} ({'; '.join(found)})" if found else text


GLOSSARY_FILE = Path(__file__).resolve().parent / "data" / "glossary.json"


@cache
def _glossary() -> dict[str, tuple[tuple[str, str], ...]]:
    data = json.loads(GLOSSARY_FILE.read_text(encoding="utf-8"))
    return {language: tuple(terms.items()) for language, terms in data.items() if not language.startswith("_")}


def _fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def with_glossary(text: str, language: str) -> str:
    """A question in a language the articles may not be written in also searches for the English words
    help articles use ("olvidé mi contraseña" → password, forgot; ``data/glossary.json``: word stems,
    accents ignored; ``$`` ends a whole word). The text is kept; the words are appended."""
    terms = _glossary().get((language or "")[:2].lower(), ())
    if not terms:
        return text
    folded = _fold_accents(text)
    tokens = set(re.findall(r"\w[\w-]*", folded))  # "l'abbonamento" is "abbonamento"
    found: list[str] = []
    for key, english in terms:
        if " " in key:
            hit = re.search(rf"(?<!\w){re.escape(key)}", folded) is not None
        elif key.endswith("$"):
            hit = key[:-1] in tokens
        else:
            hit = any(token.startswith(key) for token in tokens)
        if hit:
            found += english.split()
    return f"{text} ({' '.join(dict.fromkeys(found))})" if found else text


# --- state -----------------------------------------------------------------------------------------------

MAX_TOPICS = 8


@dataclass
class State:
    """What the assistant remembers of one conversation (``Ticket.conversation``)."""

    topics: list[str] = field(default_factory=list)  # the questions asked, newest last
    cited: list[int] = field(default_factory=list)  # article ids cited to the customer, newest last
    cited_titles: list[str] = field(default_factory=list)
    open_question: str = ""  # the last question not yet answered
    entities: dict[str, str] = field(default_factory=dict)  # product area, device, plan
    unanswered_streak: int = 0  # customer turns in a row the assistant could not answer or help with
    last_outcome: str = ""  # answered | clarified | acknowledged | greeted | handed_over | drafted
    language: str = ""

    @classmethod
    def from_dict(cls, data: dict | None) -> State:
        data = data or {}
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def last_title(self) -> str:
        return self.cited_titles[-1] if self.cited_titles else ""

    def asked(self, question: str) -> None:
        if question:
            self.topics = [*self.topics, question][-MAX_TOPICS:]

    def answered(self, *, article_ids: list[int], titles: list[str]) -> None:
        self.cited = [*self.cited, *article_ids][-MAX_TOPICS:]
        self.cited_titles = [*self.cited_titles, *titles][-MAX_TOPICS:]
        self.open_question = ""
        self.unanswered_streak = 0
        self.last_outcome = "answered"

    def unanswered(self, question: str, outcome: str) -> None:
        self.open_question = question or self.open_question
        self.unanswered_streak += 1
        self.last_outcome = outcome

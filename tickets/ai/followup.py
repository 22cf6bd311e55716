"""Follow-up turns and the retrieval query they need: "and as PDF?", "what if I lose it?", "and on
Android?" mean nothing to a search engine alone, while "How do I export my notes?" must reach it
untouched. Deterministic and offline (stdlib only, no database, no model), so the pipeline can call it
on every message for free.

- ``followup(text, history)`` says whether the turn leans on earlier turns, and why (pronoun,
  demonstrative, elliptic opener, "too?", no content word of its own);
- ``contextual_query(current, history)`` is the query to retrieve with: the turn itself when it stands
  alone, else the turn plus what it refers to — the name last spoken of, the article last cited, the
  open question (with any device / plan / area / name the turn replaces taken out of it) and the
  conversation's entities;
- ``extract_entities(text)`` reads device, plan and product area (and, given ``names``, which named
  thing: a product, a KB entity) as conversation state.

Rules are English first, with the common German, Spanish and French forms. A greeting or a thanks is
never a follow-up and never becomes the open question. ``names`` lets a caller add its own vocabulary
(article entities, product names): a turn that names one is about that one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


CUSTOMER_ROLES = {"customer", "user", "u", "client"}

# Words that carry no topic of their own (EN, DE, ES, FR). Kept short: a word missing here only makes a
# turn look more self-contained than it is.
STOPWORDS = _wordset(
    """
    a an the and or but if then so to of in on at by for with from as into about than too also very just
    i me my we our you your he she it its they them their this that these those there here what which who
    whom whose when where why how is are was were be been being do does did done have has had can could
    will would shall should may might must not no yes ok okay please thanks thank hi hello hey any some
    all each more most other same such only own again still even much many get got let lets one ones
    der die das den dem des ein eine einen einem einer und oder aber wenn dann auch noch nur sehr ich mich
    mir wir uns du dich dir sie ihr ihm ihn es er was wie wo wer warum ist sind war kann können muss
    geht gibt habe hat haben mit von zu im am um für auf bei nach aus nicht kein keine bitte danke hallo
    el la los las un una unos unas y o pero si entonces también muy yo me mi nosotros tu te usted ello eso
    esto esta este qué que cómo como dónde donde por para con de del en al es son está puedo puede hay
    le les se lo gracias hola
    et ou mais alors aussi très je moi mon ma mes nous vous il elle ils elles ce cet cette ces ça cela ceci
    quoi comment où pourquoi est sont peut puis dans sur avec pour par du des au aux pas ne merci bonjour
    salut
    """
)
# Verbs that, alone, say nothing about the topic ("what if I lose it?", "does that work?").
LIGHT_WORDS = _wordset(
    """
    work works working happen happens mean means cost costs take takes lose lost fail fails failed break
    breaks broke change changes need needs want wants use used using try tried help say says know
    funktioniert passiert kostet verliere verloren funciona pasa cuesta pierdo perdí marche fonctionne
    passe coûte perds perdu
    """
)
GREETINGS = re.compile(
    r"^(hi|hello|hey|hiya|good (morning|afternoon|evening)|thanks?( you)?|thx|cheers|ok(ay)?|great|perfect|"
    r"cool|bye|goodbye|hallo|servus|guten (morgen|tag|abend)|danke( schön)?|tschüss|hola|buenos días|"
    r"buenas( tardes| noches)?|gracias|adiós|bonjour|bonsoir|salut|merci( beaucoup)?|au revoir)\b[\s!.,]*"
    r"(there|team|all|everyone|so much|a lot|again|folks|!|\.)*[\s!.,]*$",
    re.IGNORECASE,
)
OPENERS = re.compile(
    r"^(and|or|but|also|so|then|plus|what about|how about|what if|same (for|with)|and if|"
    r"und|oder|aber|auch|und wenn|was ist mit|wie ist es mit|und bei|und für|und auf|"
    r"y|o|pero|también|y si|qué tal|y con|y en|y para|"
    r"et|ou|mais|aussi|et si|et pour|et avec|et sur|qu'en est-il)\b",
    re.IGNORECASE,
)
TRAILERS = re.compile(r"\b(too|as well|also|either|instead|auch|ebenfalls|también|aussi|non plus)\s*[?.!]*$", re.I)
PRONOUNS = re.compile(
    r"\b(it|its|they|them|their|theirs|he|she|him|her|one|ones|"
    r"es|ihn|ihm|ihr|dort|damit|dafür|davon|darauf|daran|dabei|"
    r"ello|ellos|ellas|allí|allá|"
    r"ça|cela|ceci|lui|leur|leurs)\b",
    re.IGNORECASE,
)
# Demonstratives refer back unless a name follows; "that" only where it cannot be a conjunction.
DEMONSTRATIVES = re.compile(
    r"\b(this|these|those|the same|dies|diese[mnrs]?|dieselbe|eso|esto|ese|esa|este|esta|estos|esas|"
    r"lo mismo|ce|cet|cette|ces|la même|le même)\b|"
    r"\bthat\b(?=\s*(?:[?.!,]|$|is\b|'s\b|was\b|one\b|work|also\b|too\b|happen|mean|cost|take|thing|option|"
    r"feature|plan|way|place|hotel|restaurant|app|setting|article|page))|"
    r"\b(?:about|with|for|do|does|did|on|in|of|to|like|from|use|try|by)\s+that\b|"
    r"\bdas\b(?=\s*(?:[?.!,]|$|auch|geht|funktioniert|kostet|ist\b|heißt))|"
    r"\b(?:mit|für|über|an|auf)\s+das\b(?!\s+\w)",
    re.IGNORECASE,
)
EXPLETIVE_IT = re.compile(
    r"\b(is|was|would|will) it (be )?(possible|ok|okay|true|normal|safe|necessary|allowed|free)\b|"
    r"\bit(?:'s| is| was)? (possible|ok|okay|true|normal|safe|necessary|allowed|raining|late|early)\b|"
    r"\bhow long (does|will|would) it take\b|\bwhat time is it\b|"
    r"\b(es )?(ist|gibt|geht) es\b|\bes (ist|gibt|geht)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"[\w'’+#-]+", re.UNICODE)

ENTITY_VOCABULARY: dict[str, dict[str, str]] = {
    "device": {
        "android": r"android|samsung|pixel|galaxy",
        "ios": r"ios|iphone|ipad",
        "windows": r"windows|pc",
        "mac": r"mac|macos|macbook|imac",
        "linux": r"linux|ubuntu",
        "web": r"web ?app|browser|website|web|chrome|firefox|safari|navegador|navigateur",
    },
    "plan": {
        "free": r"free (plan|tier|version|account)|gratis|kostenlos|gratuit",
        "pro": r"pro( plan)?|premium",
        "teams": r"teams?( plan)?",
        "enterprise": r"enterprise|business plan",
    },
    "area": {
        "sync": r"sync\w*|synchroni\w+|sincroniz\w+",
        "billing": r"bill\w*|invoice\w*|charg\w+|payment\w*|refund\w*|subscription\w*|pay|paid|pricing|"
        r"rechnung\w*|zahlung\w*|abos?|abonnement\w*|factura\w*|pago\w*|reembolso\w*|facture\w*|paiement\w*|rembours\w*",
        "sign-in": r"log ?in|login|sign[ -]?in|password\w*|2fa|two[- ]factor|passwor[dt]\w*|anmeld\w+|"
        r"contraseña\w*|iniciar sesión|mot de passe|connexion",
        "export": r"export\w*|pdf|download\w*|backup\w*|markdown|csv|exportier\w+|exportar|descargar",
        "import": r"import\w*|importier\w+|importar",
        "sharing": r"shar\w+|collaborat\w+|invit\w+|teilen|geteilt|compartir|partag\w+",
        "notifications": r"notification\w*|alert\w*|benachrichtigung\w*|notificaci\w+",
        "account": r"account|profile|konto|cuenta|compte|delete my|löschen",
    },
}
_ENTITY_PATTERNS = {
    key: [(value, re.compile(rf"(?<![\w-])(?:{pattern})(?![\w-])", re.IGNORECASE)) for value, pattern in values.items()]
    for key, values in ENTITY_VOCABULARY.items()
}
GENERIC_NAME_WORDS = _wordset(
    "the hotel hotels guest house guesthouse inn lodge restaurant restaurants cafe bar and b app"
)


@dataclass
class Turn:
    """One earlier turn. ``role``: ``customer`` (also ``user``/``U``) or ``assistant`` (anything else);
    ``citations``: titles of the articles an assistant turn cited."""

    role: str
    text: str
    citations: list[str] = field(default_factory=list)

    @property
    def by_customer(self) -> bool:
        return self.role.strip().lower() in CUSTOMER_ROLES


@dataclass(frozen=True)
class Followup:
    """Whether a turn leans on earlier ones (``reasons`` says why; empty when it does not)."""

    is_followup: bool
    reasons: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.is_followup


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace("’", "'")


def words(text: str) -> list[str]:
    return [w.strip("'-") for w in WORD.findall(_fold(text)) if w.strip("'-")]


def content_words(text: str) -> list[str]:
    """The words that carry a topic: not stopwords, not light verbs, not bare numbers or one letter."""
    return [
        w
        for w in words(text)
        if w not in STOPWORDS and w not in LIGHT_WORDS and len(w) > 1 and not w.isdigit() and not w.endswith("'s")
    ] + [w[:-2] for w in words(text) if w.endswith("'s") and len(w) > 3 and w[:-2] not in STOPWORDS]


def is_greeting(text: str) -> bool:
    """ "Hi!", "thanks so much", "Danke!": social turns, never a topic."""
    return bool(GREETINGS.match(" ".join(text.split())))


def _name_key(name: str) -> str:
    return " ".join(words(name.replace("&", " and ")))


def _name_patterns(names: Iterable[str]) -> tuple[tuple[str, re.Pattern], ...]:
    return _compiled_names(tuple(names))


@lru_cache(maxsize=32)
def _compiled_names(names: tuple[str, ...]) -> tuple[tuple[str, re.Pattern], ...]:
    """Each name matched by its full form, or by its distinctive part ("Ashley" for "Ashley Hotel") when
    that part is at least four letters long and not a stopword."""
    out = []
    for name in names:
        key = _name_key(name)
        if not key:
            continue
        forms = {key}
        core = " ".join(w for w in key.split() if w not in GENERIC_NAME_WORDS)
        if len(core) >= 4 and core not in STOPWORDS:
            forms.add(core)
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        out.append((name, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")))
    return tuple(out)


def _names_in(text: str, patterns: Sequence[tuple[str, re.Pattern]]) -> list[str]:
    """Known names the text mentions, the longest match first (a name inside a longer one loses)."""
    folded = _name_key(text)
    found: list[tuple[int, str]] = []
    for name, pattern in patterns:
        match = pattern.search(folded)
        if match:
            found.append((-(match.end() - match.start()), name))
    return [name for _, name in sorted(found)]


def mentioned_names(text: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` the text mentions (case, punctuation and "&"/"and" ignored; "Ashley" is enough
    for "Ashley Hotel"), the longest match first."""
    return _names_in(text, _name_patterns(names))


def extract_entities(text: str, *, names: Iterable[str] = ()) -> dict[str, str]:
    """{device, plan, area, name: value} for what ``text`` mentions (first match per key; ``name`` only
    when ``names`` is given, its longest match)."""
    folded = _fold(text)
    out = {}
    for key, patterns in _ENTITY_PATTERNS.items():
        for value, pattern in patterns:
            if pattern.search(folded):
                out[key] = value
                break
    found = _names_in(text, _name_patterns(names))
    if found:
        out["name"] = found[0]
    return out


def followup(text: str, history: Sequence[Turn] = (), *, names: Iterable[str] = ()) -> Followup:
    """Whether ``text`` needs earlier turns to be understood. Without history nothing is a follow-up;
    a greeting or a thanks never is."""
    if not any(t.text.strip() for t in history) or not text.strip() or is_greeting(text):
        return Followup(False)
    folded = " ".join(_fold(text).split()).lstrip("¿¡-–—…. ")
    own_name = bool(_names_in(text, _name_patterns(names)))
    reasons = []
    if OPENERS.match(folded):
        reasons.append("elliptic opener")
    if TRAILERS.search(folded):
        reasons.append("too")
    if not own_name:
        if PRONOUNS.search(EXPLETIVE_IT.sub(" ", folded)):
            reasons.append("pronoun")
        if DEMONSTRATIVES.search(folded):
            reasons.append("demonstrative")
        if not content_words(text):
            reasons.append("no content word")
        if _definite_reference(folded, history):
            reasons.append("definite reference")
    return Followup(bool(reasons), tuple(reasons))


DEFINITE = re.compile(r"\b(?:the|der|die|das|dem|den|el|la|los|las|le|les|l')\s*([\w-]{3,})", re.IGNORECASE)


def _definite_reference(folded: str, history: Sequence[Turn]) -> bool:
    """ "does the hotel have…" right after "the Ashley Hotel is…": a definite noun the previous turn
    used. Only the turn just before counts, so an old topic's noun does not make a new question lean."""
    previous = next((t for t in reversed(history) if t.text.strip()), None)
    if previous is None:
        return False
    before = set(words(previous.text))
    return any(m not in STOPWORDS and m in before for m in DEFINITE.findall(folded))


def is_followup(text: str, history: Sequence[Turn] = (), *, names: Iterable[str] = ()) -> bool:
    return followup(text, history, names=names).is_followup


@dataclass
class State:
    """What a conversation is about after its turns: the open question (resolved), the last cited
    title, the last named thing and the device / plan / area in force."""

    question: str = ""
    title: str = ""
    name: str = ""
    entities: dict[str, str] = field(default_factory=dict)


def conversation_state(history: Sequence[Turn], *, names: Iterable[str] = ()) -> State:
    """Walk the turns in order. A customer question that stands alone opens a topic; a follow-up
    keeps the topic and adds itself to it; a greeting changes nothing. Names and entities from either
    side update the state (the assistant's proposal "the Ashley Hotel is…" is what "it" means next)."""
    names = list(names)
    patterns = _name_patterns(names)
    state = State()
    earlier: list[Turn] = []
    for turn in history:
        text = " ".join(turn.text.split())
        if not text:
            continue
        if turn.by_customer and not is_greeting(text):
            verdict = followup(text, earlier, names=names)
            if verdict:
                state.question = _resolve(text, verdict, state, names)
            elif content_words(text):
                state.question = text
                state.title = ""
        if not turn.by_customer and turn.citations:
            state.title = turn.citations[0]
        mentioned = _names_in(text, patterns)
        if mentioned:
            state.name = mentioned[0]
        state.entities.update({k: v for k, v in extract_entities(text).items() if k != "name"})
        earlier.append(turn)
    return state


def _without(text: str, key: str, value: str) -> str:
    """``text`` with the words of entity ``key``'s old ``value`` taken out (the turn replaces it)."""
    for candidate, pattern in _ENTITY_PATTERNS.get(key, ()):
        if candidate == value:
            text = pattern.sub(" ", text)
    return " ".join(text.split())


def _resolve(current: str, verdict: Followup, state: State, names: Sequence[str]) -> str:
    own = extract_entities(current, names=names)
    parts = [current]
    if state.name and "name" not in own:
        parts.append(state.name)
    if state.title:
        parts.append(state.title)
    elliptic = bool({"elliptic opener", "too", "no content word"} & set(verdict.reasons))
    if state.question and (elliptic or not (state.name or state.title) or len(content_words(current)) < 2):
        question = state.question
        for key, value in state.entities.items():
            if own.get(key) not in (None, value):
                question = _without(question, key, value)
        if state.name and own.get("name") not in (None, state.name):
            question = " ".join(_name_patterns([state.name])[0][1].sub(" ", _name_key(question)).split())
        parts.append(question)
    query = " ".join(parts)
    folded = _fold(query)
    extra = [v for k, v in state.entities.items() if k not in own and v not in folded]
    return " ".join([query, *extra]).strip()


def contextual_query(current: str, history: Sequence[Turn] = (), *, names: Iterable[str] = ()) -> str:
    """The retrieval query for ``current`` after ``history`` (oldest first). A turn that stands alone
    is returned as it is (whitespace collapsed). A follow-up gets what it refers to appended: the last
    name spoken of (unless it names its own), the title the assistant last cited, and the open question
    (when no name or title says what "it" is, or the turn is elliptic) without the device / plan / area /
    name the turn replaces; then the conversation's entities the query does not mention yet."""
    current = " ".join(current.split())
    names = list(names)
    verdict = followup(current, history, names=names)
    if not verdict:
        return current
    return _resolve(current, verdict, conversation_state(history, names=names), names)

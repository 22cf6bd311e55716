"""Which language a customer writes in: ISO 639-1 code, or "" when the text does not say.

``py3langid`` (a byte n-gram naive Bayes over 97 languages, its model inside the wheel, no download,
no pickle) decides for sentences. It is unreliable on a word or two ("Danke", "thanks!"), so short
texts are decided by the common function words and greetings of the languages customers write to us
in most (en, de, es, fr, it, nl, pt); below both bars the answer is "" rather than a guess.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from functools import lru_cache

MIN_CONFIDENCE = 0.7  # langid probability accepted on its own
MIN_CONFIDENCE_AGREEING = 0.3  # accepted when the function words point the same way

_WORDS = {
    "en": "the a an and or is are was to of in on for my your it this that i you we can can't cannot "
    "not with have has do does how what why when please thanks thank hi hello hey help yes no my our",
    "de": "der die das und oder ist sind war zu von mit nicht ich du sie wir mein meine ein eine kann "
    "wie was warum bitte danke hallo hilfe ja nein auf für auch habe hat geht keine",
    "es": "el la los las y o es son fue de del en con por para no mi mis un una puedo cómo qué por qué "
    "gracias hola ayuda sí pero tengo está quiero necesito",
    "fr": "le la les et ou est sont de du des en avec pour ne pas je mon ma mes un une peux comment "
    "quoi pourquoi merci bonjour salut aide oui non mais j'ai c'est",
    "it": "il lo la gli le e o è sono di del in con per non mio mia un una posso come cosa perché grazie "
    "ciao buongiorno aiuto sì ma ho",
    "nl": "de het een en of is zijn was van in met voor niet ik mijn kan hoe wat waarom alstublieft "
    "bedankt dank hallo hulp ja nee maar heb",
    "pt": "o a os as e ou é são de do da em com por para não meu minha um uma posso como que por que "
    "obrigado obrigada olá ajuda sim mas tenho",
}
_LEXICON: dict[str, set[str]] = {lang: set(words.split()) for lang, words in _WORDS.items()}
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    with _lock:
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _function_word_vote(tokens: list[str]) -> tuple[str, int, int]:
    """(best language, its hits, the runner-up's hits) by function words and greetings."""
    votes: Counter[str] = Counter()
    for token in tokens:
        for lang, words in _LEXICON.items():
            if token in words:
                votes[lang] += 1
    if not votes:
        return "", 0, 0
    ranked = votes.most_common(2)
    return ranked[0][0], ranked[0][1], ranked[1][1] if len(ranked) > 1 else 0


def detect(text: str) -> str:
    """ISO 639-1 code of ``text`` ("en", "de"…), or "" when it is too short or mixed to tell."""
    text = text.strip()[:2000]
    tokens = [token.lower() for token in _TOKEN.findall(text)]
    if not tokens:
        return ""
    lang, probability = _identifier().classify(text)
    vote, hits, runner_up = _function_word_vote(tokens)
    clear_vote = hits > runner_up
    if probability >= MIN_CONFIDENCE and (len(tokens) >= 3 or not clear_vote or vote == lang):
        return lang
    if clear_vote and ((vote == lang and probability >= MIN_CONFIDENCE_AGREEING) or hits >= max(1, len(tokens) // 3)):
        return vote
    return ""

"""The guard's heuristics: regular expressions for the phrasings prompt-injection attacks share
(English and German; French, Spanish and a few other languages for the common overrides). Each rule has
a weight, and a *strong* rule (weight ≥ ``STRONG``) flags on its own; ``classifier.Guard`` combines the
weights with the classifier's probability.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

STRONG = 0.9


@dataclass(frozen=True)
class Rule:
    signal: str
    pattern: re.Pattern[str]
    weight: float


def _rx(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(pattern, flags | re.VERBOSE)


# --- heuristics ---------------------------------------------------------------------------------

_ALL = r"(?:(?:all|any|every|each|the|your|these|those|of|such|from|about)\s+){0,3}"
_BEFORE = (
    r"(?:previous|prior|preceding|above|above-mentioned|earlier|foregoing|former|original|initial|"
    r"old|given|existing|system|developer|safety|hidden|current)"
)
_ORDERS = (
    r"(?:instructions?|prompts?|directions?|directives?|guidelines?|rules?|commands?|tasks?|assignments?|"
    r"programming|constraints?|restrictions?|policies|system\s+message|training|context|conversation|"
    r"information|documents?|articles?)"
)
_OWN_ORDERS = (
    r"(?:instructions?|prompts?|directives?|guidelines?|rules?|programming|constraints?|restrictions?|"
    r"system\s+message|training|filters?)"
)
_DISMISS = r"(?:ignore|disregard|forget|skip|override|overrule|drop|abandon|bypass|discard|erase|set\s+aside)"
_REVEAL = (
    r"(?:reveal|show|print|output|repeat|display|dump|leak|share|tell|give|list|quote|spell\s+out|"
    r"translate|copy|write\s+down|summari[sz]e|paste|recite)"
)
_REPLY = r"(?:reply|response|answer|summary|output|message)"
_DO = (
    r"(?:add|include|insert|append|integrate|incorporate|mention|embed|put|state|write|use|provide|suggest|end|begin|"
    r"start|tease|hint|remove|group|combine|replace|convert|translate|substitute|format|render|"
    r"scramble|jumble|spell|present|express|make|keep|limit|finish|close|sign|wrap|rewrite|modify|enhance|augment|"
    r"change|adjust|alter|introduce|misspell|capitali[sz]e|shorten|split|separate|swap|rearrange|transform|"
    r"output|deliver|compose|phrase|structure|craft|highlight|emphasi[sz]e|stress|recommend|promote|invite|urge|ask)"
)
_CLAUSE = (
    r"""(?:"[^"\n]{0,120}"|“[^”\n]{0,120}”|[^.!?\n"“]|[.!?](?=\S)){0,120}"""  # one sentence; quotes and domains inside
)
_AI = (
    r"(?:ai|a\.i\.|assistants?|language\s+models?|llms?|chat\s?bots?|bots?|gpt|chatgpt|copilot|"
    r"automated\s+(?:systems?|assistants?|agents?|tools?)|ai\s+(?:agents?|systems?|assistants?)|ki)"
)

RULES: tuple[Rule, ...] = (
    # Overrides: "ignore all previous instructions", "forget your rules", and the same in DE/FR/ES.
    Rule("ignore_instructions", _rx(rf"\b{_DISMISS}\s+{_ALL}{_BEFORE}\s+(?:\w+\s+)?{_ORDERS}\b"), 0.95),
    Rule("ignore_instructions", _rx(rf"\b{_DISMISS}\s+(?:all\s+|any\s+)?(?:of\s+)?your\s+{_OWN_ORDERS}\b"), 0.95),
    Rule("ignore_instructions", _rx(rf"\b{_DISMISS}\s+(?:all|any)\s+(?:the\s+)?{_OWN_ORDERS}\b"), 0.95),
    Rule(
        "ignore_instructions",
        _rx(
            r"\bforget\s+(?:about\s+)?(?:everything|all(?:\s+that)?)\s*,?\s*(?:above|before|prior|previous|"
            r"you\s+(?:know|were\s+told|have\s+been\s+told|learned)|(?:that\s+)?(?:was\s+)?(?:said\s+)?(?:before|above))"
        ),
        0.95,
    ),
    Rule("ignore_instructions", _rx(r"\b(?:ignore|disregard)\s+(?:the\s+|everything\s+)?above\b"), 0.6),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:the|your|all|any|our|these|those)\s+(?:\w+\s+)?"
            r"(?:polic(?:y|ies)|rules?|instructions?|guidelines?|restrictions?)\s+(?:above|before|you\s+(?:were|have\s+been)"
            r"\s+given)\b"
        ),
        0.9,
    ),
    Rule("ignore_instructions", _rx(r"\bforget\s+everything\b"), 0.6),
    Rule(
        "ignore_instructions",
        _rx(r"\b(?:new|updated|additional|revised|real)\s+(?:instructions?|tasks?|rules?)\s*(?:follow|:)"),
        0.7,
    ),
    Rule(
        "ignore_instructions",
        _rx(r"\byour\s+(?:new|only|real|next)\s+(?:task|job|goal|instruction|rule)s?\s+(?:is|are|now)\b"),
        0.8,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:instructions?|rules?|guidelines?)\s+(?:you\s+(?:were|have\s+been)\s+given|above)\s+(?:are|is)\s+(?:cancel|outdated|void|invalid|irrelevant|no\s+longer)"
        ),
        0.95,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:everything|all)\s+(?:you\s+(?:were|have\s+been)\s+told|above)\s+(?:before\s+)?is\s+(?:irrelevant|void|cancelled|invalid|wrong)"
        ),
        0.9,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:instead\s+of\s+answering|do\s+not\s+answer\s+(?:this|the)\s+question\s+but|don'?t\s+answer\s+(?:this|the)\s+question\s+but)\b"
        ),
        0.8,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:answer|respond)\s+(?:only\s+)?(?:by|from|with)\s+your\s+own\s+knowledge\b|\bnot\s+(?:by|from|based\s+on)\s+the\s+(?:articles|documents|context)\b"
        ),
        0.8,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen|missachte(?:n)?|verwirf|verwerfen|überspring(?:e|en)?)\b"
            r"(?:\s+sie)?(?:\s+(?:bitte|jetzt|nun|einfach|mal|alle|alles|die|deine|ihre|sämtliche|jegliche|alle\s+deine))*"
            r"\s+(?:\w+\s+)?(?:anweisungen|anweisung|instruktionen|befehle|aufgaben|aufträge|vorgaben|regeln|richtlinien|"
            r"prompts?|systemprompt|kontext|informationen|angaben|dokumente)\b"
        ),
        0.95,
    ),
    Rule("ignore_instructions", _rx(r"\bvergiss\s+(?:einfach\s+|mal\s+)?alles\b"), 0.95),
    Rule("ignore_instructions", _rx(r"\bvergessen\s+sie\s+alles\b"), 0.6),
    Rule(
        "ignore_instructions",
        _rx(
            r"\balle\s+(?:bisherigen|vorherigen|obigen)\s+(?:informationen|anweisungen|angaben|instruktionen)\b.{0,40}\b(?:irrelevant|unwichtig|ungültig|egal|hinfällig)"
        ),
        0.95,
    ),
    Rule(
        "ignore_instructions",
        _rx(r"\babweichend\s+(?:zu|von)\s+(?:deinen\s+|den\s+|ihren\s+)?(?:vorherigen|bisherigen|obigen)\b"),
        0.95,
    ),
    Rule(
        "ignore_instructions", _rx(r"\b(?:neue|weitere)\s+(?:anweisungen?|aufgaben?|instruktionen)\s*(?:folgen|:)"), 0.7
    ),
    Rule("ignore_instructions", _rx(r"\b(?:lass|lassen\s+sie)\s+alle\s+(?:vorherigen|bisherigen)\b"), 0.9),
    Rule("ignore_instructions", _rx(r"\bstreiche\s+alle\s+(?:bisherigen|vorherigen)\b"), 0.9),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:ignore[zrs]?|oublie[zrs]?|ne\s+tiens?\s+pas\s+compte\s+d[e']s?)\s+(?:\w+\s+){0,3}(?:instructions|consignes|règles|directives)\b"
        ),
        0.95,
    ),
    Rule("ignore_instructions", _rx(r"\boublie[zs]?\s+tout\b"), 0.9),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:ignora|ignore|ignoren|olvida|olvide|olviden|no\s+sigas)\s+(?:\w+\s+){0,3}(?:instrucciones|reglas|indicaciones|órdenes)\b"
        ),
        0.95,
    ),
    Rule("ignore_instructions", _rx(r"\b(?:olvida|olvidar|olvide)\s+todo\b"), 0.85),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:ignoring|disregarding|forgetting|regardless\s+of|setting\s+aside)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?(?:previous\s+|above\s+|provided\s+|given\s+)?(?:instructions|articles|documents|context|rules|guidelines|knowledge\s+base|prompt)\b"
        ),
        0.85,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:despite|regardless\s+of|no\s+matter)\s+(?:what|everything)\s+you(?:'ve|\s+have|\s+were|'re|\s+are)?\s+(?:been\s+)?(?:told|instructed|programmed)\b"
        ),
        0.9,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:do\s+not|don'?t|dont|never)\s+(?:look\s+(?:at|in|into)|use|rely\s+on|consult|answer\s+(?:from|according\s+to|based\s+on))\s+the\s+(?:provided\s+)?(?:documents?|articles?|context|knowledge\s+base|sources?)\b"
        ),
        0.85,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:change|update|replace|modify|rewrite|reset)\s+your\s+(?:instructions|rules|programming|prompt|guidelines|directives)\b|\byour\s+(?:new\s+)?instructions\s+are\s+now\b"
        ),
        0.9,
    ),
    Rule("ignore_instructions", _rx(r"(?:^|\n|\\n)\s*(?:additional\s+|new\s+|updated\s+)?instruction\s*[-:]"), 0.6),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:just|only|simply)\s+(?:output|print|say|write|type|respond\s+with|answer\s+with|reply\s+with)\s*:?\s*[\"'“„«]"
        ),
        0.6,
    ),
    Rule("ignore_instructions", _rx(r"\brepeat\s+after\s+me\b|\bsprich\s+mir\s+nach\b"), 0.7),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:now|nun|jetzt)\s+(?:\w+\s+)?(?:follow|folgen)\s+(?:\w+\s+)?(?:new|further|additional|neue|weitere)\s+(?:tasks?|instructions?|aufgaben|anweisungen)\b|\b(?:new|further)\s+tasks\s+(?:are\s+)?follow"
        ),
        0.9,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:obigen|vorherigen|bisherigen|vorangegangenen)\s+(?:anweisungen|ausführungen|instruktionen|informationen|befehle|vorgaben)\s+(?:\w+\s+)?(?:ignorieren|vergessen|missachten)\b"
        ),
        0.95,
    ),
    Rule(
        "ignore_instructions",
        _rx(
            r"\b(?:ignora|dimentica)\s+(?:tutte\s+)?(?:le\s+)?(?:istruzioni|regole)\b|\b(?:esqueça|esqueca|ignore)\s+(?:todas\s+)?(?:as\s+)?(?:instruções|instrucoes|regras)\b|\bvergeet\s+(?:alle\s+)?(?:eerdere\s+|vorige\s+)?(?:instructies|regels)\b|\bзабудь(?:те)?\s+(?:все\s+)?(?:предыдущие\s+)?(?:инструкции|указания|правила)|\bzaboravi\s+(?:sve\s+)?(?:prethodne\s+)?(?:instrukcije|upute|uputstva)\b"
        ),
        0.95,
    ),
    # Role and persona changes.
    Rule(
        "role_override",
        _rx(
            r"\byou\s+are\s+now\s+(?:dan\b|in\s+\w+\s+mode|no\s+longer\b|free\s+(?:from|of)\b|an?\s+(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|different|new)\b|(?:unrestricted|unfiltered|uncensored|jailbroken)\b)"
        ),
        0.95,
    ),
    Rule("role_override", _rx(r"\byou\s+are\s+now\s+(?:an?\s+)?\w+(?:bot|gpt|ai)\b"), 0.9),
    Rule(
        "role_override",
        _rx(
            r"\byou\s+are\s+now\s+(?:the|an?|my|our)\s+(?:\w+\s+)?(?:admin(?:istrator)?|system|root|developer|billing\s+system)\b"
        ),
        0.8,
    ),
    Rule(
        "role_override",
        _rx(r"\byou\s+are\s+no\s+longer\s+(?:an?\s+|the\s+)?(?:support|assistant|helpful|ai|bot|chat)"),
        0.95,
    ),
    Rule(
        "role_override",
        _rx(r"\bfrom\s+(?:now|this\s+moment)\s+on,?\s+you\s+(?:are|will|must|shall|act|only|respond|answer|speak)\b"),
        0.6,
    ),
    Rule(
        "role_override",
        _rx(
            r"\b(?:act|behave|respond|answer|pose)\s+as\s+(?:if\s+you\s+were\s+)?(?:dan\b|an?\s+(?:unrestricted|unfiltered|uncensored|evil|jailbroken|rogue)\b)"
        ),
        0.95,
    ),
    Rule(
        "role_override",
        _rx(
            r"\b(?:do\s+anything\s+now|dan\s+mode|developer\s+mode\s+(?:enabled|on|activated)|jailbreak(?:ed)?\s+mode|god\s+mode\s+(?:enabled|on))\b"
        ),
        0.95,
    ),
    Rule(
        "role_override",
        _rx(r"\b(?:i\s+want|i'd\s+like|i\s+would\s+like)\s+you\s+to\s+(?:act|behave|pose)\s+as\s+an?\b"),
        0.85,
    ),
    Rule(
        "role_override",
        _rx(
            r"\b(?:act|behave)\s+as\s+an?\s+(?:linux|python|sql|javascript|bash)?\s*(?:terminal|interpreter|console|shell)\b"
        ),
        0.9,
    ),
    Rule(
        "role_override", _rx(r"\bpretend\s+(?:that\s+)?(?:you\s+are|you're|to\s+be|you\s+have\s+no|you\s+can)\b"), 0.6
    ),
    Rule("role_override", _rx(r"\b(?:stay|remain)\s+in\s+(?:character|role|your\s+role)\b|\brole-?play\s+as\b"), 0.85),
    Rule(
        "role_override",
        _rx(
            r"\b(?:du\s+bist|bist\s+du)\s+(?:jetzt|nun|ab\s+sofort|ab\s+jetzt)\b|\b(?:ab\s+(?:jetzt|sofort)|nun|jetzt)\s+bist\s+du\b"
        ),
        0.6,
    ),
    Rule("role_override", _rx(r"\bdu\s+bist\s+keine?\s+(?:support|assistenz|assistent|redaktion|ki)"), 0.9),
    Rule(
        "role_override",
        _rx(r"\bstell\s+dir\s+vor,?\s+du\s+(?:bist|wärst)\b|\btu\s+so,?\s+als\s+(?:ob\s+du|wärst\s+du|wärest\s+du)\b"),
        0.6,
    ),
    Rule(
        "role_override",
        _rx(
            r"\bich\s+möchte,?\s+dass\s+(?:du|sie)\s+als\s+.{1,60}?\s+(?:fungierst|fungieren|agierst|agieren|handelst|auftrittst)\b"
        ),
        0.85,
    ),
    Rule("role_override", _rx(r"\b(?:entwicklermodus|jailbreak-modus)\b"), 0.85),
    Rule(
        "role_override", _rx(r"\b(?:tu\s+es\s+maintenant|fais\s+comme\s+si\s+tu|ahora\s+eres|haz\s+como\s+si)\b"), 0.6
    ),
    Rule(
        "role_override",
        _rx(
            r"(?:^|[.!?]\s+)(?:ok(?:ay)?[.,]?\s+)?now\s+you\s+are\s+(?!charging|telling|saying|asking|going\s+to\s+(?:charge|cancel))\w+"
        ),
        0.5,
    ),
    Rule("role_override", _rx(r"\b(?:hello|hi|hey|hallo|dear|liebe[rs]?)\s+(?:chat)?gpt\b"), 0.6),
    Rule(
        "role_override",
        _rx(
            r"\b(?:now|nun|jetzt)\s+(?:please\s+|bitte\s+)?(?:write|compose|draft|generate|formulate|schreibe?|verfasse|formuliere|dichte)\s+(?:me\s+|mir\s+)?(?:an?|ein(?:e|en)?)\s+(?:\w+\s+){0,2}(?:essay|poem|speech|manifesto|song|story|slogan|rap|aufsatz|gedicht|rede|manifest|lied|geschichte|begründung|werbetext)\b"
        ),
        0.7,
    ),
    # Asking for the hidden prompt.
    Rule(
        "system_prompt_request",
        _rx(r"\bsystem\s*-?\s*prompts?\b|\bsystemprompts?\b|\bprompt\s+(?:du\s+)?système\b|\bprompt\s+del\s+sistema\b"),
        0.7,
    ),
    Rule(
        "system_prompt_request",
        _rx(
            rf"\b{_REVEAL}\b.{{0,40}}\b(?:system\s*-?\s*prompt|systemprompt|initial\s+prompt|prompt\s+texts?|full\s+prompt|entire\s+prompt|hidden\s+prompt)"
        ),
        0.95,
    ),
    Rule(
        "system_prompt_request",
        _rx(
            rf"\b{_REVEAL}\b(?:\s+me)?\s+(?:all\s+)?(?:of\s+)?your\s+(?:\w+\s+)?(?:prompts?|instructions|system\s+message|configuration|guidelines|programming)\b"
        ),
        0.85,
    ),
    Rule(
        "system_prompt_request",
        _rx(
            r"\b(?:your|the)\s+(?:initial|original|hidden|secret|internal|system|full|exact)\s+(?:prompts?|instructions|system\s+message)\b"
        ),
        0.9,
    ),
    Rule(
        "system_prompt_request",
        _rx(
            r"\bwhat\s+(?:was|is|has\s+been)\s+written\s+(?:above|before|at\s+the\s+(?:beginning|start|top))\b|\brepeat\s+(?:the\s+|all\s+)?(?:text|words|everything)\s+(?:above|before)\b"
        ),
        0.9,
    ),
    Rule("system_prompt_request", _rx(r"\bprompt-?texte?s?\b"), 0.8),
    Rule(
        "system_prompt_request",
        _rx(
            r"\b(?:zeig|zeige|gib|nenne|verrate|wiederhole)\w*\b.{0,30}\b(?:deinen?|deine|alle\s+deine)\s+(?:\w+\s+)?(?:prompt|anweisungen|instruktionen|regeln)\b"
        ),
        0.85,
    ),
    Rule(
        "system_prompt_request",
        _rx(
            r"\b(?:montre|affiche|révèle|donne)[\w-]*\b.{0,20}\b(?:tes|vos)\s+(?:\w+\s+)?(?:instructions|consignes)\b|\b(?:muéstrame|revela|dime)\b.{0,20}\b(?:tus|sus)\s+(?:\w+\s+)?instrucciones\b"
        ),
        0.85,
    ),
    # Fake delimiters and chat-format tokens.
    Rule("delimiter_injection", _rx(r"<\s*/?\s*(?:system|sys|instructions?|assistant|im_start|im_end)\s*>"), 0.95),
    Rule("delimiter_injection", _rx(r"<\|[a-z_]{2,20}\|>|\[/?inst\]|<<\s*/?\s*sys\s*>>"), 0.95),
    Rule(
        "delimiter_injection",
        _rx(
            r"^\s*\#{2,}\s*(?:instructions?|system|new\s+instructions?|anweisung(?:en)?|assistant|response)\s*(?::|$)",
            re.IGNORECASE | re.MULTILINE,
        ),
        0.9,
    ),
    Rule(
        "delimiter_injection",
        _rx(
            r"\b(?:begin|end)\s+(?:of\s+)?(?:the\s+)?(?:system|user|customer)\s+(?:prompt|message|input|instructions?)\b|\bbegin\s+system\b"
        ),
        0.95,
    ),
    Rule("delimiter_injection", _rx(r"untrusted-data|```\s*system\b"), 0.9),
    Rule(
        "delimiter_injection",
        _rx(r"(?:^|\n)\s*(?:human|user)\s*:.{0,400}(?:^|\n|\s)assistant\s*:", re.IGNORECASE | re.DOTALL),
        0.85,
    ),
    Rule("delimiter_injection", _rx(r"(?:^|\n)\s*assistant\s*:"), 0.5),
    Rule(
        "delimiter_injection",
        _rx(rf"<!--.{{0,300}}\b(?:{_AI}|ignore|instructions?|system)\b", re.IGNORECASE | re.DOTALL),
        0.9,
    ),
    Rule("delimiter_injection", _rx(r"(?:\\n\s*){4,}"), 0.6),
    # Links and tools used to carry data out.
    Rule("exfil_link", _rx(r"!\[[^\]\n]{0,200}\]\(\s*<?(?:https?:)?//[^)\s]*[?&#{$\[%]"), 0.95),
    Rule("exfil_link", _rx(r"!\[[^\]\n]{0,200}\]\(\s*<?(?:https?:)?//"), 0.5),
    Rule("exfil_link", _rx(r"<img\b[^>]{0,300}\bsrc\s*=\s*['\"]?(?:https?:)?//[^'\"\s>]*\?"), 0.9),
    Rule(
        "exfil_link", _rx(r"https?://\S+?[?&][\w-]+=\s*(?:\{|\[|\$|%7b|<|\+)"), 0.5
    ),  # also how docs write URL templates
    Rule(
        "exfil_link",
        _rx(
            r"\b(?:append|add|include|encode|put|insert|embed|attach)\b.{0,80}\b(?:conversation|chat\s+history|previous\s+messages|user'?s?\s+(?:data|email|phone|address|password)|customer'?s?\s+(?:data|email|phone|address)|api\s+keys?|passwords?|secrets?)\b.{0,60}\b(?:url|link|query|image)\b"
        ),
        0.9,
    ),
    Rule(
        "exfil_link",
        _rx(
            r"\b(?:send|forward|email|upload|post)\s+(?:all\s+|the\s+|every\s+)?(?:ticket|customer|user|conversation|chat|kunden)\s*(?:data|history|list|details|records|daten)\b"
        ),
        0.85,
    ),
    Rule("exfil_link", _rx(r"\b(?:call|use|invoke|run|trigger)\s+the\s+\w+\s+tool\b"), 0.6),
    # Instructions addressed to an AI that reads the text (indirect injection).
    Rule(
        "addressed_to_ai",
        _rx(
            rf"\b(?:note|message|instructions?|notice|hinweis|anweisung(?:en)?|reminder)\s+(?:to|for|an|für)\s+(?:the\s+|any\s+|all\s+|die\s+|alle\s+)?{_AI}\b"
        ),
        0.9,
    ),
    Rule(
        "addressed_to_ai",
        _rx(rf"\b(?:if|when|whenever)\s+you\s+are\s+an?\s+{_AI}\b|\bto\s+(?:any|all|every)\s+{_AI}\b"),
        0.9,
    ),
    Rule(
        "addressed_to_ai",
        _rx(
            rf"(?:^|[.!?]\s+|\n)\s*(?:dear\s+|hey\s+|hello\s+|hi\s+|liebe\s+)?{_AI}\s*[,:]\s",
            re.IGNORECASE | re.MULTILINE,
        ),
        0.4,  # chat users address assistants like this all the time; only a hint
    ),
    Rule(
        "addressed_to_ai",
        _rx(
            r"\b(?:when|while|if|before)\s+(?:you\s+)?(?:summari[sz]e|summari[sz]ing|process|processing|read|reading|answer|answering|handle|handling)\s+(?:this|the|these)\s+(?:email|message|document|page|ticket|mail|text)s?\b"
        ),
        0.8,
    ),
    Rule(
        "addressed_to_ai", _rx(rf"\b(?:the\s+|any\s+|all\s+)?{_AI}\s+(?:must|shall|(?:is|are)\s+required\s+to)\b"), 0.7
    ),
    Rule(
        "addressed_to_ai",
        _rx(
            r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention\s+(?:this\s+)?to|reveal\s+(?:this\s+)?to|let)\s+the\s+(?:user|customer|agent|human)\b"
        ),
        0.7,
    ),
    Rule(
        "addressed_to_ai",
        _rx(
            r"\b(?:wenn|während)\s+du\s+(?:diese|die)\s+(?:e-?mail|nachricht|dokument)\w*\s+(?:zusammenfasst|liest|bearbeitest|beantwortest)\b"
        ),
        0.8,
    ),
    # Demands on the assistant's reply (BIPIA-style indirect instructions): an imperative and "your reply".
    Rule(
        "reply_instruction",
        _rx(
            rf"\b{_DO}\b{_CLAUSE}(?<!forward\s)(?<!forward\sto\s)\b(?:in|into|to|within|with|from|at\s+the\s+(?:end|start|beginning)\s+of)\s+your\s+{_REPLY}\b"
        ),
        0.6,
    ),
    Rule(
        "reply_instruction",
        _rx(
            rf"(?:^|[.!?:]\s+|\n)\s*(?:please\s+)?{_DO}\s+your\s+(?:whole\s+|entire\s+|next\s+)?{_REPLY}\b",
            re.IGNORECASE | re.MULTILINE,
        ),
        0.6,
    ),
    Rule("reply_instruction", _rx(rf"\bin\s+your\s+{_REPLY}\s*,?\s+(?:please\s+)?{_DO}\b"), 0.6),
    Rule(
        "reply_instruction",
        _rx(
            rf"\byour\s+{_REPLY}\s+(?:must|should|has\s+to|needs\s+to|shall)\s+(?:\w+\s+)?(?:include|contain|mention|end|start|begin|be\s+written|recommend|link|use)\b"
        ),
        0.7,
    ),
    Rule(
        "reply_instruction",
        _rx(
            r"\b(?:füge|ergänze|erwähne|verändere|ändere|schreibe|nenne)\b.{0,80}\b(?:in|zu)\s+deine[rn]?\s+antwort\b|\b(?:ergänze|verändere|ändere)\s+deine\s+antwort\b"
        ),
        0.7,
    ),
    Rule(
        "reply_instruction",
        _rx(r"\b(?:every|each|all)\s+(?:of\s+your\s+)?(?:answers?|responses?|replies)\s+(?:must|should|will)\b"),
        0.7,
    ),
    # Obfuscation.
    Rule("obfuscation", _rx(r"(?:\b\w\s){8,}\w\b"), 0.5),
)


_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def normalise(text: str) -> str:
    """NFKC, no invisible characters, HTML entities decoded: what a model would read."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def heuristic_signals(text: str) -> dict[str, float]:
    """The rules that fire on ``text`` and the highest weight per signal."""
    found: dict[str, float] = {}
    norm = normalise(text)
    for rule in RULES:
        if rule.weight > found.get(rule.signal, 0.0) and rule.pattern.search(norm):
            found[rule.signal] = rule.weight
    return found

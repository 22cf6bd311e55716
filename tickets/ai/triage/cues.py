"""Rule signals read from customer text: asks for a human, urgency words, and the out-of-scope test.

These are deliberately plain regular expressions: they must be predictable (an agent can read why a
ticket was escalated), work in the languages customers write in most (en, de, es, fr, it, nl, pt) and
cost microseconds. They favour precision: "how do I share a note with someone" is not a request for a
human, and "no need for a human, thanks" is explicitly not one.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE | re.UNICODE

# --- asking for a human ---------------------------------------------------------------------------

# One free word may sit before the noun ("a real person", "a billing agent", "a damn agent"), but not
# one that makes it a machine ("a virtual assistant", "an AI agent").
_EN_PERSON = (
    r"(?:(?!ai |virtual |digital |automated |bot |chat ?bot )[a-z]+ )?"
    r"(?:human|person|agent|representative|rep|operator|manager|supervisor|assistant|"
    r"advis[eo]r|someone|somebody|anyone|anybody|employee|staff member|team member|"
    r"customer service (?:agent|rep|representative))s?"
)
_HUMAN_REQUEST = [
    # en
    rf"\b(?:talk|speak|chat|converse)\w*\s+(?:to|with)\s+(?:a |an |the |some |your |one of your |any )?"
    rf"{_EN_PERSON}\b",
    rf"\bcontact(?:ing)?\s+(?:a |an |the |some |your |one of your |any )?{_EN_PERSON}\b",
    rf"\b(?:connect|transfer|put|pass|forward|escalate|hand)\s+(?:me|this|it|my \w+)?\s*(?:through|over|on)?\s*"
    rf"(?:to|with)\s+(?:a |an |the |some |your )?{_EN_PERSON}\b",
    r"\b(?:someone|somebody|anyone|anybody|a human|a person|an agent)\s+(?:i|we)\s+(?:can|could|may)\s+"
    r"(?:talk|speak|chat)\s+(?:to|with)\b",
    r"\b(?:connect|transfer|put|pass|forward|hand|talk|speak)\w*\s+(?:me\s+)?(?:through\s+)?(?:to|with)\s+"
    r"(?:your|the)\s+(?:[a-z]+\s+)?(?:team|department|desk)\b",
    r"\b(?:real|live|actual)\s+(?:human|person|people|agent|representative|operator)s?\b",
    r"\b(?:human|person)\s+(?:agent|being|support|operator|representative|please|pls|plz)\b",
    r"\b(?:want|need|request|demand|get me|give me|like)\s+(?:a|an|to have a)\s+"
    r"(?:human|person|agent|representative|manager|supervisor|operator)\b",
    r"\b(?:stop|no more|enough with|skip|bypass)\s+(?:the |this |your )?(?:bot|robot|chatbot|automated \w+)\b",
    r"\b(?:call|phone|ring)\s+me\b",
    r"^\W*(?:human|agent|representative|operator|person)(?:\s+(?:please|pls|now))?\W*$",
    # de
    r"\b(?:mit|zu)\s+(?:einem|einer|einen|dem|der|ihrem|ihrer)?\s*(?:echten|richtigen|menschlichen|realen|\w+en)?\s*"
    r"(?:menschen|mitarbeiter(?:in)?|berater(?:in)?|agenten|person|ansprechpartner(?:in)?|vorgesetzten|"
    r"kundenberater(?:in)?|support-mitarbeiter(?:in)?)\b[^.?!]{0,40}\b(?:sprechen|reden|verbinden|telefonieren|chatten)",
    r"\b(?:sprechen|reden|verbinden)\s+(?:sie\s+mich\s+)?(?:mit|zu)\s+(?:einem|einer|einen)?\s*(?:echten\s+)?"
    r"(?:menschen|mitarbeiter(?:in)?|berater(?:in)?|person|vorgesetzten)\b",
    r"\b(?:einen|einem)\s+(?:echten|richtigen)\s+(?:menschen|mitarbeiter)\b",
    r"\becht(?:e|en|er)\s+(?:mensch|person)\b",
    # es
    r"\b(?:hablar|comunicarme|contactar|chatear|pasarme|p[aá]same|p[aá]seme)\s+(?:con|a)\s+"
    r"(?:un |una |el |la |alg[uú]n |alguna )?(?:agente|humano|persona|representante|asesora?|operadora?|supervisora?|"
    r"gerente|encargad[oa]|alguien|emplead[oa])\b",
    r"\b(?:persona|agente)\s+(?:real|de verdad|humano)\b",
    r"\b(?:quiero|necesito)\s+(?:un|una)\s+(?:humano|persona|agente)\b",
    # fr
    r"\b(?:parler|discuter|[ée]changer)\s+(?:à|a|avec)\s+(?:un |une |le |la )?(?:vrai |vraie |v[ée]ritable )?"
    r"(?:humain|personne|agent|conseill[eè]re?|op[ée]rat(?:eur|rice)|responsable|quelqu'un|repr[ée]sentant|employ[ée])\b",
    r"\b(?:vrai|vraie)\s+(?:humain|personne)\b",
    r"\b[eê]tre humain\b",
    # it
    r"\b(?:parlare|comunicare|chattare)\s+(?:con|a)\s+(?:un |una |uno |un')?(?:operat(?:ore|rice)|persona|umano|"
    r"essere umano|agente|consulente|responsabile|qualcuno|addett[oa]|rappresentante)\b",
    r"\bpersona\s+(?:reale|vera)\b",
    r"\b(?:operatore|essere)\s+umano\b",
    # nl
    r"\b(?:spreken|praten|chatten|bellen)\s+(?:met|tegen)\s+(?:een |de )?(?:echte |echt )?"
    r"(?:mens|medewerker|persoon|agent|manager|leidinggevende|iemand|vertegenwoordiger)\b",
    r"\bmet\s+(?:een |de )?(?:echte |echt )?(?:mens|medewerker|persoon|leidinggevende)\s+(?:spreken|praten|chatten)\b",
    r"\becht(?:e)?\s+(?:mens|persoon)\b",
    # pt
    r"\b(?:falar|conversar|comunicar)\s+(?:com|a)\s+(?:um |uma |o |a |algum |alguma )?(?:atendente|humano|pessoa|"
    r"agente|representante|operador|gerente|supervisor|algu[eé]m|funcion[aá]rio|consultor)\b",
    r"\bpessoa\s+(?:real|de verdade)\b",
    r"\batendimento\s+humano\b",
]
_HUMAN_REQUEST_RE = [re.compile(pattern, _FLAGS) for pattern in _HUMAN_REQUEST]

# A negation in the same clause, before the request ("no need to talk to a person") or just after it
# ("talking to an agent is not necessary").
_NEGATION_BEFORE = re.compile(
    r"\b(?:no need|need not|needn't|don'?t need|do not need|doesn'?t need|does not need|won'?t need|will not need|"
    r"not necessary|unnecessary|don'?t want|do not want|don'?t have to|do not have to|without|rather not|"
    r"kein\w*|nicht nötig|nicht notwendig|brauche (?:ich )?nicht|muss (?:ich )?nicht|ohne|"
    r"no (?:necesito|hace falta|quiero|es necesario)|sin|"
    r"pas besoin|n'ai pas besoin|inutile|sans|ne veux pas|pas n[ée]cessaire|"
    r"non (?:ho bisogno|serve|voglio|è necessario|c'è bisogno)|senza|"
    r"hoef (?:ik )?niet|geen|niet nodig|zonder|"
    r"não (?:preciso|quero|é necessário)|sem)\b",
    _FLAGS,
)
_NEGATION_AFTER = re.compile(
    r"^[^.?!,;]{0,25}\b(?:not (?:necessary|needed|required)|unnecessary|isn'?t (?:necessary|needed)|"
    r"nicht (?:nötig|notwendig)|no (?:es )?necesario|pas n[ée]cessaire|non (?:è )?necessario|niet nodig|"
    r"não (?:é )?necessário)\b",
    _FLAGS,
)
_CLAUSE_BREAK = re.compile(r"[.?!;,\n]|\bbut\b|\baber\b|\bpero\b|\bmais\b|\bma\b|\bmaar\b|\bmas\b", _FLAGS)


def _clause_before(text: str, start: int) -> str:
    prefix = text[max(0, start - 80) : start]
    breaks = list(_CLAUSE_BREAK.finditer(prefix))
    return prefix[breaks[-1].end() :] if breaks else prefix


def human_requested(text: str) -> bool:
    """Does the customer explicitly ask for a human (agent, person, representative, manager…)?"""
    text = text[:5000]
    for pattern in _HUMAN_REQUEST_RE:
        for match in pattern.finditer(text):
            if _NEGATION_BEFORE.search(_clause_before(text, match.start())):
                continue
            if _NEGATION_AFTER.search(text[match.end() : match.end() + 60]):
                continue
            return True
    return False


# --- urgency --------------------------------------------------------------------------------------

_URGENCY = {
    "outage": [
        r"\b(?:outage|down for everyone|service (?:is )?(?:down|unavailable)|(?:site|website|server|servers|app|"
        r"service|platform|nimbus) (?:is|are) (?:completely |totally )?down|"
        r"nobody (?:in (?:our|my) (?:team|company|office) )?can (?:log ?in|sign ?in|access|sync)|"
        r"(?:all|none of) (?:our|the) (?:users|employees|team)|whole (?:team|company|office) (?:is|can'?t|cannot)|"
        r"entire (?:team|company|office) (?:is|can'?t|cannot)|50[23] (?:error|bad gateway|service unavailable))\b",
        r"\b(?:ausfall|störung|nicht erreichbar|alle (?:nutzer|mitarbeiter|benutzer))\b",
        r"\b(?:ca[ií]da del servicio|servicio (?:ca[ií]do|no disponible)|no funciona para nadie)\b",
        r"\b(?:panne|hors service|service indisponible)\b",
        r"\b(?:disservizio|servizio non disponibile|non funziona per nessuno)\b",
        r"\b(?:storing|platform ligt plat)\b",
        r"\b(?:fora do ar|servi[cç]o indispon[ií]vel)\b",
    ],
    "security": [
        r"\b(?:hack(?:ed|er|ers|ing)?|compromised|unauthori[sz]ed (?:access|login|sign[- ]?in|use|charge)|"
        r"suspicious (?:login|log-in|sign[- ]?in|activity|email|e-mail|device)|"
        r"(?:someone|somebody) (?:else )?(?:has )?(?:logged|signed|got|broke|gained access) ?(?:in|into|access)|"
        r"(?:someone|somebody) (?:else )?(?:has )?changed my (?:password|email|e-mail)|account takeover|phishing|"
        r"data breach|breach|stolen (?:password|account|credentials|laptop|phone)|"
        r"malware|identity theft|wasn'?t me who|was not me who|locked out of my own)\b",
        r"\b(?:gehackt|unbefugt\w*|verdächtig\w*|phishing|datenleck|"
        r"jemand hat sich [^.?!]{0,40}(?:eingeloggt|angemeldet))\b",
        r"\b(?:hackead[oa]|hackearon|pirateada?|acceso no autorizado|sospechos[oa]|"
        r"alguien (?:ha )?(?:entr[oó]|entrado|accedido) (?:en|a) mi cuenta)\b",
        r"\b(?:pirat[ée]e?|piratage|acc[eè]s non autoris[ée]|connexion suspecte)\b",
        r"\b(?:hackerat[oa]|violat[oa]|accesso non autorizzato|accesso sospetto)\b",
        r"\b(?:gehackt|verdachte (?:login|inlog|activiteit)|onbevoegd\w*)\b",
        r"\b(?:hackead[oa]|invadid[oa]|acesso n[aã]o autorizado|acesso suspeito)\b",
    ],
    "fraud": [
        r"\b(?:fraud(?:ulent)?|scam(?:med)?|stolen (?:card|credit card)|"
        r"(?:card|wallet|cards) (?:was|were|has been|got) stolen|"
        r"unauthori[sz]ed (?:charges?|payments?|transactions?|withdrawals?|purchases?|debits?)|"
        r"unrecogni[sz]ed (?:charges?|payments?|transactions?|withdrawals?)|"
        r"suspicious (?:charges?|payments?|transactions?)|"
        r"(?:someone|somebody) (?:else )?(?:is |was |has been |might be |may be )?"
        r"using my (?:card|account|credit card)|"
        r"(?:used|using) my (?:card|account) without my (?:permission|knowledge|consent))\b",
        r"\b(?:charges?|payments?|transactions?|withdrawals?|purchases?|debits?)\b[^.?!]{0,30}"
        r"\b(?:i|we) (?:didn'?t|did not|never|don'?t|do not) (?:make|made|authori[sz]e|recogni[sz]e|approve)",
        r"\b(?:didn'?t|did not|never|don'?t|do not) (?:authori[sz]e|recogni[sz]e|make|approve)\b[^.?!]{0,20}"
        r"\b(?:charges?|payments?|transactions?|withdrawals?|purchases?|debits?)\b",
        r"\b(?:betrug|betrüger\w*|fraude|estafa|arnaque|escroquerie|frode|truffa|oplichting|golpe)\b",
    ],
    "legal": [
        r"\b(?:lawyer|attorney|solicitor|legal action|lawsuit|sue you|suing|take (?:you|this) to court|"
        r"small claims|court|ombudsman|consumer protection|data protection authority|regulator|report you to|"
        r"cease and desist|gdpr|chargeback)\b",
        r"\b(?:anwalt|rechtsanwalt|anwältin|klage|verklagen|gericht|verbraucherzentrale|verbraucherschutz|"
        r"datenschutzbehörde|abmahnung|dsgvo)\b",
        r"\b(?:abogad[oa]|demanda|denunciar|tribunal|juicio|rgpd)\b",
        r"\b(?:avocat|poursuites|plainte|rgpd)\b",
        r"\b(?:avvocato|denuncia|tribunale|causa legale)\b",
        r"\b(?:advocaat|rechtszaak|aanklagen|avg-klacht)\b",
        r"\b(?:advogado|processar|processo judicial|procon|lgpd)\b",
    ],
    "data_loss": [
        r"\b(?:data loss|lost (?:all|every|most|half) (?:of )?(?:my|our) (?:notes|notebooks|data|work|files)|"
        r"(?:all|every|most|half) (?:of )?(?:my|our) (?:notes|notebooks|data|work|files) "
        r"(?:are |is |have |has )?(?:been )?(?:gone|lost|deleted|disappeared|vanished|wiped)|"
        r"(?:notes|notebooks) (?:have |has )?(?:disappeared|vanished)|"
        r"(?:deleted|lost|wiped|erased) (?:all |most |half |some )?(?:of )?(?:my|our) (?:notes|notebooks|data|work)|"
        r"(?:my|our) (?:notes|notebooks|data|work) (?:are|is|were|was|have been|has been|got) "
        r"(?:gone|lost|deleted|wiped|erased))\b",
        r"\b(?:datenverlust|alle (?:meine |unsere )?notizen (?:sind )?(?:weg|verschwunden|gelöscht))\b",
        r"\b(?:p[ée]rdida de datos|perd[ií] todas mis notas|(?:mis|las) notas (?:han )?desaparecido)\b",
        r"\b(?:perte de donn[ée]es|perdu toutes mes notes|mes notes ont disparu)\b",
    ],
    "time_pressure": [
        r"\b(?:asap|urgent(?:ly)?|emergency|immediately|right now|right away|as soon as possible|deadline|"
        r"in (?:an|one|two|three|\d+) hours?)\b",
        r"\b(?:dringend|sofort|eilig|notfall)\b",
        r"\b(?:urgente|urgencia|inmediatamente|cuanto antes|urgence|imm[ée]diatement|subito|spoed|meteen|"
        r"imediatamente)\b",
    ],
}
_URGENCY_RE = {name: [re.compile(pattern, _FLAGS) for pattern in patterns] for name, patterns in _URGENCY.items()}

URGENCY_SIGNALS = tuple(_URGENCY)


def urgency_signals(text: str) -> set[str]:
    """Which urgency families the text mentions: outage, security, fraud, legal, data_loss, time_pressure."""
    text = text[:5000]
    return {name for name, patterns in _URGENCY_RE.items() if any(p.search(text) for p in patterns)}


# --- out of scope ---------------------------------------------------------------------------------

MIN_WORDS_FOR_SCOPE = 3  # "hi", "thanks!", "hello?" say too little to call out of scope
_WORD = re.compile(r"\w+", re.UNICODE)
_PLEASANTRY = re.compile(
    r"^(?:[\s\W]*(?:hi|hello|hey|thanks?(?: a lot| so much)?|thank you(?: so much| very much)?|many thanks|thx|ty|"
    r"ok(?:ay)?|great|perfect|awesome|cool|nice|brilliant|excellent|got it|understood|sure|yes|no|"
    r"that (?:worked|works|helped|fixed it|did it)|it works(?: now)?|all good|problem solved|bye|goodbye|cheers|"
    r"have a (?:nice|good|great) day|danke(?: schön| sehr)?|gracias|merci(?: beaucoup)?|grazie|bedankt|"
    r"obrigad[oa]|perfekt|genial|super|vale|d'accord|prima|there|again|team|guys|folks|everyone|all)\b)+[\s\W]*$",
    _FLAGS,
)


def word_count(text: str) -> int:
    return len(_WORD.findall(text[:5000]))


def can_judge_scope(text: str) -> bool:
    """Long enough to say what it is about, and not just a greeting or a thank-you."""
    return word_count(text) >= MIN_WORDS_FOR_SCOPE and not _PLEASANTRY.match(text[:500])


def out_of_scope(
    *, text: str, similarity: float, confidence: float, min_similarity: float, min_confidence: float
) -> bool:
    """Nothing we were trained on looks like this message, or the classifier cannot place it.

    ``similarity``: cosine similarity to the nearest training example; ``confidence``: the category
    head's top probability. Thresholds come from the trained model (chosen on data, see ``local.py``).
    """
    if not can_judge_scope(text):
        return False
    return similarity < min_similarity or confidence < min_confidence


# --- repeated contact -----------------------------------------------------------------------------

_REPEATED = re.compile(
    r"\b(?:(?:second|third|fourth|fifth|2nd|3rd|4th|5th|\d+th) (?:time|email|message|request)|"
    r"(?:asked|written|wrote|emailed|contacted (?:you|support)|reached out|called) "
    r"(?:you |about this |this )?(?:twice|three times|several times|multiple times|many times|again and again)|"
    r"still (?:no answer|no reply|no response|waiting for an? (?:answer|reply|response))|"
    r"zum (?:zweiten|dritten|wiederholten) mal|schon wieder|por (?:segunda|tercera) vez|"
    r"pour la (?:deuxième|troisième) fois)\b",
    _FLAGS,
)


def repeated_contact_mentioned(text: str) -> bool:
    """The customer says they have asked before ("third time I'm writing", "still no answer")."""
    return bool(_REPEATED.search(text[:5000]))


# --- how the customer feels -----------------------------------------------------------------------

# What VADER's lexicon misses in customer messages (docs/eval-triage.md, twitter_airline_sentiment):
# sarcasm that reads as praise word by word ("Thanks for nothing", "Great, another delay"), complaints
# told as plain facts ("still waiting for my refund", "they lost my bag"), emoji (VADER scores them 0),
# and praise told in negated words ("not bad at all", "can't complain"). English only, like VADER.
_SARCASM = [
    r"\bthanks?(?: you)?(?: (?:a lot|so much|again))? for (?:nothing|not\b|never\b|(?:the|another|a|my|this) "
    r"(?:\w+ )?(?:delay|wait|cancell?ation|mess|runaround|hold music|voucher)|"
    r"(?:ruining|losing|wasting|ignoring|cancell?ing|charging|delaying|breaking|keeping))",
    r"\bso much for\b",
    r"\byeah,? right\b",
    r"\bjust (?:great|perfect|brilliant|wonderful|fantastic|lovely)\b",
    r"\b(?:great|perfect|brilliant|wonderful|fantastic|awesome|lovely|amazing|nice)[,.!]* (?:another|again|more)\b",
    r"\b(?:love|loving|enjoy|enjoying|adore)s? (?:how|that|it when|when|waiting|sitting|being|spending|the "
    r"(?:delay|wait))\b[^.!?]{0,60}\b(?:delay\w*|cancel\w*|wait\w*|hold|lost|stuck|no one|nobody|never|again|"
    r"charg\w*|broke\w*|late)\b",
    r"\bway to (?:ruin|go,|lose|treat)\b",
    r"\b(?:well done|good job|great job|bravo|nice work)\b[^.!?]{0,40}\b(?:not|never|lost|delay\w*|cancel\w*)\b",
    r"[.!]\s*not\W*$",
    r"\bwhat a (?:joke|surprise|shock)\b",
    r"\bcustomer disservice\b",
    r"👏",
    r"🙃",
]
_COMPLAINT = [
    r"\b(?:delayed|cancell?ed|overbooked|bumped|stranded|stuck)\b",
    r"\b(?:lost|misplaced|damaged|broke|broken|destroyed)\s+(?:my|our|the|a)\s+(?:\w+\s+)?(?:bags?|luggage|suitcases?|"
    r"cases?|parcels?|packages?|orders?|claim|booking|reservation|stroller|pram|wheelchair)\b",
    r"\b(?:still|been)\s+(?:waiting|no\b|nothing|not\b|hasn'?t|haven'?t|broken|charging|down)",
    r"\bon hold\b",
    r"\b(?:no one|nobody|noone|no-one)\b",
    r"\b(?:never|hasn'?t|haven'?t|didn'?t|did not|has not|have not)\s+(?:\w+\s+)?"
    r"(?:arrived|received|came|come|showed up|shown up|turned up|got back|called back|heard|responded|replied)\b",
    r"\b(?:no|zero|without any?)\s+(?:reply|response|answer|update|info|information|explanation|apology|help|"
    r"compensation|notice|refund|communication|announcement)\b",
    r"\b(?:double|over)[- ]?(?:charged|billed)|\b(?:charged|billed) (?:me )?(?:twice|again|two times)\b",
    r"\b(?:missed|miss) (?:my|our|the) (?:connection|connecting|flight|train|meeting|appointment|wedding)\b",
    r"\b(?:doesn'?t|does not|didn'?t|isn'?t|is not|not) (?:even )?(?:work|working|load|loading|open)\b",
    r"\b(?:can'?t|cannot|could(?: ?n'?t| not)|unable to) (?:get through|reach|contact|log ?in|sign ?in|access|"
    r"get (?:a|an|any) (?:answer|reply|refund))\b",
    r"\b(?:hung up|rude|ignor(?:ed|ing)|useless|unhelpful|incompetent|ridiculous|unacceptable|pathetic|"
    r"shameful|disgrace\w*|nightmare|joke|waste of (?:time|money)|never again|last time i)\b",
    r"\b(?:worst|terrible|horrible|awful)\b",
    r"#\w*(?:fail|never\w*|worst|angry|disappointed|ripoff|unacceptable)\b",
    r"\b(?:why|how) (?:is|are|does|do|did|would|can|could|has|have) (?:it|this|that|you|your|there)\b[^.!]{0,80}"
    r"\?{2,}",
    r"\b(?:again|another)\b[^.!?]{0,30}\b(?:delay\w*|cancel\w*|problem|issue|outage|mistake|error)\b",
    # complaints about the service itself: waiting durations, "… again", nobody answering, contact repeated
    r"\b(?:waited|waiting|been|queued|sat|sitting|stuck)\s+(?:here\s+|on hold\s+|in (?:the |a )?(?:queue|line)\s+)?"
    r"(?:for\s+)?(?:over\s+|almost\s+|nearly\s+|more than\s+)?(?:\d+|an?|two|three|four|five|six|several|many)\s*\+?\s*"
    r"(?:hours?|hrs?|days|weeks|months|mins?|minutes)\b",
    r"\b(?:\d+|two|three|four|five|several)\s*\+?\s*(?:hours?|hrs?|days|weeks|months|mins?|minutes)\s+"
    r"(?:on hold|in (?:the |a )?(?:queue|line)|waiting|later|late|and (?:still|no|counting|nothing))\b",
    r"\b(?:late|down|broken|wrong|failed|declined|crashed|crashing|missing|overcharged|closed|lost|out of stock)"
    r"\s+again\b",
    r"\b(?:called|rang|phoned|emailed|messaged|dm'?d|tweeted|written|wrote|contacted|asked|chatted)\b[^.!?]{0,25}"
    r"\b(?:twice|three times|\d+ times|several times|multiple times|many times|every day)\b",
    r"\b(?:not|doesn'?t|don'?t|won'?t|never|isn'?t|aren'?t)\s+(?:even\s+)?(?:answer(?:ing)?|pick(?:ing)? up|"
    r"respond(?:ing)?|repl(?:y|ying)|call(?:ing)? (?:me )?back|get(?:ting)? back to)\b",
    # the plain words of a short public complaint that VADER scores 0 or even positive ("pretty fed up")
    r"\b(?:fed up|had enough|sick (?:and tired )?of|tired of|for nothing|for no reason|out of order)\b",
    r"\bkeeps? (?:on )?(?:crashing|failing|freezing|logging (?:me )?out|kicking me out|timing out|dropping|"
    r"declining|cancell?ing)\b|\b(?:timed|timing|times) out\b",
    r"\b(?:days?|weeks?|times?|flights?|months?)\s+(?:in a row|running)\b",
    r"\b(?:how|what) (?:am|are|is) (?:i|we|my \w+) (?:meant|supposed) to\b",
    # asked in public, "why…" is a reproach ("why is my bag in Denver"), unless "why not" or "that's why"
    r"(?<!that's )(?<!that is )(?<!this is )(?<!which is )\bwhy\b(?! not\b)",
    r"[😡😠🤬😤🙄😒👎😞😢😭💩😩😫🤦😑]",
]
_PRAISE = [
    r"\bnot (?:bad|too bad|half bad|disappointed)\b(?! (?:but|yet|though))",
    r"\b(?:can'?t|cannot|couldn'?t) complain\b",
    r"\bno (?:complaints|problems? at all|issues at all)\b",
    r"\bcouldn'?t be (?:happier|more pleased|better)\b",
    r"\b(?:kudos|props|shout ?-?out|hats off|credit where)\b",
    r"\b(?:you (?:guys |all )?(?:rock|are the best|'re the best)|made my (?:day|week)|above and beyond|"
    r"extra mile|well done|great job|good job|nice one|top notch|10/10|five stars|5 stars)\b",
    r"\b(?:arrived|landed|delivered|came) (?:a day |an hour |\w+ minutes )?(?:early|on time|ahead of schedule)\b",
    r"[😊😀😁😃😄😍🥰❤💕👍👌🙏🎉🙌😋🤩💯✨☺]",
]
_HYPOTHETICAL = re.compile(
    r"^\W*(?:@\w+\W+)*(?:if|in case|what happens|what if|what do i|what should|how (?:do|can|long|much|early)|"
    r"can i|could i|do i|do you|does|is there|are there|will|would|when|who)\b",
    _FLAGS,
)
# A question about a problem that has not happened ("What happens if my flight is cancelled?", "If my order
# is late, can I get the fee back?", "Would I get a voucher if…"): a conditional inside a question. Asking
# about a delay is not being upset about one, so the blend damps its negativity (sentiment.py). Not when the
# clause also says something already went wrong or is rhetorical ("why would I…", "…again?", "still").
_CONDITIONAL = re.compile(
    r"\b(?:if|in case|what if|what happens|should (?:my|the|a|your)|wenn|falls|im falle|si|en caso de|au cas o[uù]|"
    r"dans le cas o[uù]|cosa succede se|e se|nel caso|caso|o que acontece se|indien|wat als)\b|"
    r"^\W*(?:@\w+\W+)*(?:would|will|do|does|can|could) "
    r"(?:i|we|my|the)\b[^?]*\b(?:if|when|in case)\b",
    _FLAGS,
)
_QUESTION = re.compile(
    r"\?|,\s*(?:can|could|will|would|do|does|is|are|should|may|who|what|how|where)\s+(?:i|we|you|it|they|my|the|"
    r"should|do|can)\b",
    _FLAGS,
)
_NOT_HYPOTHETICAL = re.compile(
    r"\b(?:why|how come|again|still|already|yet|nobody|no one|noone|never|anymore|seriously|wtf|"
    r"warum|schon wieder|por qu[eé]|pourquoi|perch[eé]|waarom|por que)\b|!",
    _FLAGS,
)
_CLAUSE = re.compile(r"[^.!?\n;]+[.!?\n;]*")
_SARCASM_RE = [re.compile(pattern, _FLAGS) for pattern in _SARCASM]
_COMPLAINT_RE = [re.compile(pattern, _FLAGS) for pattern in _COMPLAINT]
_PRAISE_RE = [re.compile(pattern, _FLAGS) for pattern in _PRAISE]
SARCASM_WEIGHT = 2  # sarcasm is praise in VADER's eyes: it must outweigh the praise words it uses


def sentiment_cues(text: str) -> dict[str, int]:
    """How many sarcasm, complaint and praise cues the text holds (each pattern counts once).

    Complaints inside a hypothetical question ("What happens if my flight is cancelled?") do not
    count: asking about a delay is not being upset about one."""
    text = text[:2000]
    factual = " ".join(c for c in _CLAUSE.findall(text) if not _HYPOTHETICAL.match(c))
    return {
        "sarcasm": sum(bool(p.search(text)) for p in _SARCASM_RE),
        "complaint": sum(bool(p.search(factual)) for p in _COMPLAINT_RE),
        "praise": sum(bool(p.search(text)) for p in _PRAISE_RE),
    }


def hypothetical_question(text: str) -> bool:
    """A question about a problem that has not happened, and nothing in the message says one has: a
    conditional ("if", "in case", "what if", "wenn", "si", "au cas où"…) inside a question, no factual
    complaint or sarcasm cue anywhere, no "why", "again", "still", "!" in it."""
    text = text[:2000]
    clauses = _CLAUSE.findall(text)
    asks = any(_CONDITIONAL.search(c) and _QUESTION.search(c) and not _NOT_HYPOTHETICAL.search(c) for c in clauses)
    if not asks:
        return False
    found = sentiment_cues(text)
    return found["complaint"] == 0 and found["sarcasm"] == 0


def sentiment_cue_score(text: str) -> float:
    """The cues as one polarity, -1…1: (praise - complaint - 2·sarcasm) squashed by x / (|x| + 1)."""
    found = sentiment_cues(text)
    total = found["praise"] - found["complaint"] - SARCASM_WEIGHT * found["sarcasm"]
    return total / (abs(total) + 1)

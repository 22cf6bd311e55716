"""The local triage model's seed set: labelled customer messages about Nimbus Notes, our own writing.

Every example here was written for SupportFlow (no text from public datasets, which may not be
committed). Agents' corrections are added on top at training time (``triage_local.training_examples``).

Categories, each owned by one department (``CATEGORY_DEPARTMENT``):

- billing: ``refund`` (money back, double charges), ``payment_failed`` (declined cards, failed
  renewals), ``invoice`` (copies, VAT numbers, receipts), ``plan_change`` (upgrade, downgrade, cancel,
  billing cycle)
- technical: ``sync``, ``app_crash`` (crashes, freezes, bugs), ``import_export``, ``search``,
  ``how_to`` (using a feature: sharing, offline mode, attachments, version history, restoring notes)
- account-security: ``sign_in`` (passwords, passkeys, SSO, locked out), ``two_factor``,
  ``account_security`` (suspicious sign-ins, hacked accounts, phishing), ``data_request`` (export all
  my data, delete my account, GDPR requests, change of e-mail address)
- sales: ``pricing`` (what plans cost and include), ``team_plan`` (Teams for an organisation, seats,
  SSO/admin features before buying), ``discount`` (education and non-profit pricing), ``quote``
  (quotes, purchase orders, procurement paperwork)

Priorities follow what an agent would set: ``urgent`` for an account takeover in progress, data loss or
a whole team blocked right now; ``high`` when the customer cannot work (no sign-in, no sync, crash on
start, failed payment locking the account); ``low`` for questions that can wait (how-to, pricing,
paperwork); ``normal`` otherwise.

``OUT_OF_SCOPE`` holds messages no department handles; training uses them only to choose the
out-of-scope threshold, never as a class.
"""

from __future__ import annotations

CATEGORY_DEPARTMENT = {
    "refund": "billing",
    "payment_failed": "billing",
    "invoice": "billing",
    "plan_change": "billing",
    "sync": "technical",
    "app_crash": "technical",
    "import_export": "technical",
    "search": "technical",
    "how_to": "technical",
    "sign_in": "account-security",
    "two_factor": "account-security",
    "account_security": "account-security",
    "data_request": "account-security",
    "pricing": "sales",
    "team_plan": "sales",
    "discount": "sales",
    "quote": "sales",
}

# (text, category, priority)
SEED: list[tuple[str, str, str]] = [
    # --- billing: refund
    ("I was charged twice for my annual Pro plan this morning. Please refund one of the payments.", "refund", "normal"),
    (
        "I cancelled my subscription last week but you still took $5.99 from my card. I want my money back.",
        "refund",
        "normal",
    ),
    ("Can I get a refund? I upgraded to Pro by accident and never used any of the features.", "refund", "normal"),
    ("My annual plan renewed yesterday and I forgot to cancel. Is a prorated refund possible?", "refund", "normal"),
    (
        "There are two identical charges from Nimbus on my bank statement. One of them should not be there.",
        "refund",
        "normal",
    ),
    ("You charged me for 12 seats but our team only has 9 people. Please credit the difference.", "refund", "normal"),
    ("Refund please. The app didn't do what I needed and I'm still inside the 14 days.", "refund", "low"),
    ("Ich wurde doppelt abgebucht und möchte eine Rückerstattung für die zweite Zahlung.", "refund", "normal"),
    ("Me cobraron la suscripción dos veces este mes. ¿Pueden devolverme el dinero?", "refund", "normal"),
    ("How long does a refund take to reach my credit card once you've approved it?", "refund", "low"),
    # --- billing: payment_failed
    ("My card keeps getting declined when I try to renew Pro, but it works everywhere else.", "payment_failed", "high"),
    (
        "The payment for our Teams renewal failed and now the workspace says it will be locked in 3 days.",
        "payment_failed",
        "high",
    ),
    (
        "I updated my credit card details but the app still says 'payment failed'. What am I doing wrong?",
        "payment_failed",
        "normal",
    ),
    ("PayPal checkout just spins forever and then shows an error, so I can't upgrade.", "payment_failed", "normal"),
    (
        "Your payment page rejects my card with 'authentication required' even after my bank confirmed it.",
        "payment_failed",
        "normal",
    ),
    (
        "Our account was downgraded to Free because a payment bounced. How do we pay the outstanding amount?",
        "payment_failed",
        "high",
    ),
    (
        "Die Zahlung mit meiner Kreditkarte wird immer abgelehnt. Wie kann ich sonst bezahlen?",
        "payment_failed",
        "normal",
    ),
    ("No puedo pagar la renovación, la tarjeta aparece como rechazada.", "payment_failed", "normal"),
    ("Can I pay by bank transfer instead? My company card doesn't work on your checkout.", "payment_failed", "normal"),
    # --- billing: invoice
    ("Where can I download invoices for the last 6 months? Our accountant needs them.", "invoice", "low"),
    ("Please add our VAT number DE123456789 to the invoice from March.", "invoice", "low"),
    ("The invoice shows my personal name but it should show our company name and address.", "invoice", "low"),
    ("I need a receipt for my Pro subscription payment for expense reporting.", "invoice", "low"),
    ("Why was I charged sales tax on my invoice? We are a business outside the US.", "invoice", "normal"),
    ("Can invoices be emailed automatically to our finance team instead of to me?", "invoice", "low"),
    ("Wo finde ich meine Rechnungen? Ich brauche eine Rechnung mit unserer Firmenadresse.", "invoice", "low"),
    ("Necesito una factura con el NIF de mi empresa para el pago de enero.", "invoice", "low"),
    ("The amount on the invoice doesn't match what was taken from our account.", "invoice", "normal"),
    # --- billing: plan_change
    ("How do I switch from monthly to yearly billing on my Pro plan?", "plan_change", "low"),
    (
        "I want to downgrade from Pro to Free at the end of my billing period. What happens to my notes?",
        "plan_change",
        "normal",
    ),
    ("Please cancel my subscription. I no longer need Nimbus Notes.", "plan_change", "normal"),
    ("How do I upgrade my account from Free to Pro? I keep hitting the 2 device limit.", "plan_change", "low"),
    ("We want to remove 4 seats from our Teams plan before the renewal date.", "plan_change", "normal"),
    ("Will I lose my version history if I cancel Pro and go back to the free plan?", "plan_change", "normal"),
    ("Ich möchte mein Abo kündigen. Wie geht das?", "plan_change", "normal"),
    ("Quiero cambiar mi plan de mensual a anual.", "plan_change", "low"),
    ("Can I pause my subscription for two months while I'm travelling?", "plan_change", "low"),
    # --- technical: sync
    (
        "My notes aren't syncing between my phone and laptop. Edits from this morning are missing on Android.",
        "sync",
        "high",
    ),
    ("Sync has been stuck at 'Syncing 87%' for hours on the desktop app.", "sync", "high"),
    ("The sync icon shows a red cloud and says 'sync paused: storage quota exceeded'.", "sync", "normal"),
    ("I edited the same note on two devices and now there are two copies called 'conflicted copy'.", "sync", "normal"),
    ("Changes I make on my iPad never show up on the web app.", "sync", "high"),
    ("Offline edits from my flight were lost when the laptop came back online.", "sync", "urgent"),
    ("It says device limit reached, 2 of 2 devices, and my new phone won't sync.", "sync", "normal"),
    (
        "Die Synchronisierung funktioniert seit gestern nicht mehr, meine Notizen auf dem Handy sind veraltet.",
        "sync",
        "high",
    ),
    ("La sincronización no funciona: las notas del móvil no aparecen en el ordenador.", "sync", "high"),
    (
        "Half of my notebooks disappeared from the phone after the last sync. Please help, I need them today!",
        "sync",
        "urgent",
    ),
    # --- technical: app_crash
    (
        "The Windows desktop app closes as soon as I paste a screenshot into a note. Version 4.2.1.",
        "app_crash",
        "normal",
    ),
    ("Nimbus crashes on launch on my Mac since the latest update. I can't open it at all.", "app_crash", "high"),
    ("The Android app freezes whenever I open a note with a large PDF attachment.", "app_crash", "normal"),
    (
        "Typing in long notes is really slow and laggy on the web app, it takes seconds per letter.",
        "app_crash",
        "normal",
    ),
    ("I found a bug: checkboxes in a list un-tick themselves after I close the note.", "app_crash", "low"),
    ("The iOS app shows a blank white screen after the splash screen.", "app_crash", "high"),
    ("Formatting breaks when I paste a table from a spreadsheet; the columns get merged.", "app_crash", "low"),
    ("Die App stürzt ab, sobald ich ein Bild einfüge.", "app_crash", "normal"),
    ("La aplicación se cierra sola cada vez que abro una libreta compartida.", "app_crash", "normal"),
    ("Error 500 every time I try to open the web app in Firefox.", "app_crash", "high"),
    # --- technical: import_export
    ("How do I import my notes from Evernote? I have an .enex file with about 3,000 notes.", "import_export", "normal"),
    ("Can I export a whole notebook as Markdown files for a backup?", "import_export", "low"),
    ("The Evernote import stopped at 40% and says 'unsupported file'.", "import_export", "normal"),
    ("After importing from OneNote all my images are missing.", "import_export", "normal"),
    ("Is there a way to export a note to PDF with the attachments included?", "import_export", "low"),
    ("I imported a folder of Markdown files but the tags were not kept.", "import_export", "normal"),
    ("Wie kann ich meine Notizen aus Evernote importieren?", "import_export", "low"),
    ("¿Cómo exporto todas mis notas a PDF?", "import_export", "low"),
    ("The exported zip file is empty when I export my 'Research' notebook.", "import_export", "normal"),
    # --- technical: search
    ("Search doesn't find a note even though I can see the word right there in the title.", "search", "normal"),
    ("Searching for text inside PDFs and images returns nothing. Isn't OCR included in Pro?", "search", "normal"),
    ("Since the update, search results are missing everything older than last year.", "search", "normal"),
    ("How do I search only inside one notebook instead of all of them?", "search", "low"),
    ("Searching for words with accents like 'café' gives no results.", "search", "low"),
    ("Die Suche findet meine Notizen nicht mehr, obwohl die Wörter darin stehen.", "search", "normal"),
    ("El buscador no encuentra notas que sé que existen.", "search", "normal"),
    ("Search is extremely slow on my phone, it takes half a minute to show anything.", "search", "normal"),
    # --- technical: how_to
    ("How do I share a notebook with a colleague so they can edit it?", "how_to", "low"),
    ("I deleted a note by mistake yesterday. Can I get it back?", "how_to", "normal"),
    ("How can I make notebooks available offline on my phone?", "how_to", "low"),
    ("Is there a way to see an older version of a note? I overwrote a paragraph.", "how_to", "normal"),
    ("What's the maximum attachment size? My 40 MB video won't attach.", "how_to", "low"),
    ("How do I turn on dark mode in the desktop app?", "how_to", "low"),
    ("Can I set a reminder on a note so it pops up tomorrow?", "how_to", "low"),
    ("¿Cómo comparto una nota con alguien que no tiene cuenta?", "how_to", "low"),
    ("Wie stelle ich eine gelöschte Notiz aus dem Papierkorb wieder her?", "how_to", "normal"),
    ("Can I lock a notebook with a separate password?", "how_to", "low"),
    # --- account-security: sign_in
    ("I forgot my password and the reset email never arrives.", "sign_in", "high"),
    ("I can't log in: it says 'invalid credentials' but I'm sure the password is right.", "sign_in", "high"),
    ("My account is locked after too many login attempts. How long do I have to wait?", "sign_in", "high"),
    ("How do I set up a passkey to sign in without a password?", "sign_in", "low"),
    ("Our company SSO login redirects back to the sign-in page in a loop.", "sign_in", "high"),
    ("The 'Sign in with Google' button gives an error saying the account is not linked.", "sign_in", "normal"),
    ("Ich kann mich nicht mehr anmelden, das Passwort wird nicht akzeptiert.", "sign_in", "high"),
    ("No puedo iniciar sesión, dice que mi contraseña es incorrecta.", "sign_in", "high"),
    ("Je n'arrive pas à me connecter à mon compte depuis ce matin.", "sign_in", "high"),
    ("I keep getting logged out of the web app every few minutes.", "sign_in", "normal"),
    # --- account-security: two_factor
    ("I lost my phone and now I can't get the two-factor code to sign in.", "two_factor", "high"),
    ("How do I turn on two-factor authentication for my account?", "two_factor", "low"),
    ("My authenticator app codes are always rejected as invalid.", "two_factor", "high"),
    ("Where do I find my 2FA backup codes? I'm changing phones next week.", "two_factor", "normal"),
    ("I never receive the SMS verification code when logging in.", "two_factor", "high"),
    ("Can I require two-factor for everyone in our Teams workspace?", "two_factor", "normal"),
    (
        "Ich habe mein Handy verloren und komme wegen der Zwei-Faktor-Authentifizierung nicht mehr rein.",
        "two_factor",
        "high",
    ),
    ("Perdí mi móvil y no puedo recibir el código de verificación en dos pasos.", "two_factor", "high"),
    ("I want to switch my two-step verification from SMS to an authenticator app.", "two_factor", "low"),
    # --- account-security: account_security
    (
        "I got an email about a new sign-in from a country I've never been to. Was my account hacked?",
        "account_security",
        "urgent",
    ),
    ("Someone changed my password and email address. I'm locked out of my own account!", "account_security", "urgent"),
    (
        "There are notes in my account that I didn't write. I think someone else has access.",
        "account_security",
        "urgent",
    ),
    (
        "I received an email asking me to confirm my Nimbus password on a strange website. Is this phishing?",
        "account_security",
        "high",
    ),
    ("How do I sign out all other devices? I used my account on a public computer.", "account_security", "normal"),
    ("My shared notebook was deleted by someone I never invited.", "account_security", "urgent"),
    (
        "Jemand hat sich in mein Konto eingeloggt, ich sehe unbekannte Geräte in der Liste.",
        "account_security",
        "urgent",
    ),
    ("Alguien ha entrado en mi cuenta y ha borrado notas. ¿Qué hago?", "account_security", "urgent"),
    ("Where can I see the list of recent sign-ins and devices on my account?", "account_security", "low"),
    # --- account-security: data_request
    ("Please delete my account and all my data permanently.", "data_request", "normal"),
    ("Under GDPR I request a copy of all personal data you hold about me.", "data_request", "normal"),
    ("I need to change the email address on my account to my new work address.", "data_request", "normal"),
    ("How do I download everything in my account before closing it?", "data_request", "normal"),
    ("Which region are my notes stored in? Can I move my data to the EU?", "data_request", "low"),
    ("Bitte löschen Sie mein Konto und alle gespeicherten Daten.", "data_request", "normal"),
    ("Solicito la eliminación de mi cuenta y de todos mis datos personales.", "data_request", "normal"),
    ("A former employee's account holds company notes. How do we transfer ownership?", "data_request", "normal"),
    ("Do you keep my notes after I delete my account, and for how long?", "data_request", "low"),
    # --- sales: pricing
    ("What's the difference between Pro and Teams? Which one do I need?", "pricing", "low"),
    ("How much does Pro cost per year?", "pricing", "low"),
    ("Is there a free trial of Pro before I commit?", "pricing", "low"),
    ("Are your prices in dollars or euros, and is VAT included?", "pricing", "low"),
    ("Does the Free plan include OCR search in PDFs?", "pricing", "low"),
    ("Do you offer a lifetime license instead of a subscription?", "pricing", "low"),
    ("Was kostet Nimbus Pro im Jahr?", "pricing", "low"),
    ("¿Cuánto cuesta el plan Pro?", "pricing", "low"),
    ("Is the storage limit on Pro per account or per device?", "pricing", "low"),
    # --- sales: team_plan
    (
        "We're a team of 25 and want to move everyone to Nimbus. Does Teams support SAML single sign-on?",
        "team_plan",
        "normal",
    ),
    ("Can we try the Teams plan with 5 people before buying for the whole company?", "team_plan", "normal"),
    (
        "What admin controls come with the Teams plan? We need to manage who can share externally.",
        "team_plan",
        "normal",
    ),
    ("I'd like to talk to sales about rolling out Nimbus Notes to 200 employees.", "team_plan", "normal"),
    ("How do I move our existing Pro users into a new Teams workspace?", "team_plan", "normal"),
    ("Is there a minimum number of seats for Teams?", "team_plan", "low"),
    (
        "Wir möchten Nimbus für unser ganzes Team von 40 Personen einführen. Gibt es ein Angebot für Teams?",
        "team_plan",
        "normal",
    ),
    ("Somos una empresa de 15 personas, ¿el plan Teams incluye un panel de administración?", "team_plan", "normal"),
    ("Do you sign a data processing agreement for business customers on Teams?", "team_plan", "normal"),
    # --- sales: discount
    ("Do you offer education pricing? I teach a class of 30 students.", "discount", "low"),
    ("We're a registered non-profit. Is there a discount on the Teams plan?", "discount", "low"),
    ("I'm a university student, can I get Pro cheaper?", "discount", "low"),
    ("Our school wants licences for 120 teachers. What discount can you give?", "discount", "normal"),
    ("Is there a discount if we pay for three years upfront?", "discount", "low"),
    ("How do I prove I'm eligible for the non-profit discount?", "discount", "low"),
    ("Gibt es einen Rabatt für Schulen oder Studierende?", "discount", "low"),
    ("¿Tienen descuento para organizaciones sin ánimo de lucro?", "discount", "low"),
    ("Do you have a discount code for Black Friday?", "discount", "low"),
    # --- sales: quote
    ("Could you send us a formal quote for 50 Teams seats for one year?", "quote", "normal"),
    ("Our procurement department needs a quote and a W-9 before we can buy.", "quote", "normal"),
    ("Can we pay with a purchase order and net-30 terms instead of a card?", "quote", "normal"),
    ("Please fill in our vendor security questionnaire so we can complete the purchase.", "quote", "normal"),
    ("I need a price quote in euros for 12 Pro licences for our office.", "quote", "normal"),
    ("Wir benötigen ein schriftliches Angebot für 30 Lizenzen inklusive Mehrwertsteuer.", "quote", "normal"),
    ("¿Pueden enviarme un presupuesto para 20 usuarios del plan Teams?", "quote", "normal"),
    ("Who should I contact to negotiate a multi-year enterprise agreement?", "quote", "normal"),
]

# Messages outside every department: small talk, other companies' products, general knowledge.
OUT_OF_SCOPE: list[str] = [
    "What's the weather going to be like in Madrid tomorrow?",
    "Can you recommend a good pizza place near the train station?",
    "Tell me a joke about cats.",
    "Who won the football match last night?",
    "How do I bake sourdough bread?",
    "My washing machine is leaking water from the bottom. How do I fix it?",
    "What is the capital of Australia?",
    "Book me a flight from Berlin to Lisbon next Friday.",
    "My car makes a rattling noise when I brake.",
    "What's a good name for a golden retriever puppy?",
    "Translate 'good morning' into Japanese.",
    "How many calories are in a banana?",
    "Can you help me with my chemistry homework about moles?",
    "My Netflix subscription is too expensive, how do I cancel it?",
    "Set an alarm for 6:30 am.",
    "What time does the post office close on Saturdays?",
    "Write a poem about the ocean.",
    "How do I change a flat tyre on my bike?",
    "Is it going to rain this weekend?",
    "Which stocks should I buy this year?",
    "Play some relaxing music.",
    "How tall is Mount Everest?",
    "My neighbour's dog barks all night, what can I do?",
    "Wie wird das Wetter morgen in Hamburg?",
    "¿Cuál es la mejor receta de paella?",
    "Quelle heure est-il à New York?",
    "I want to order a large pepperoni pizza for delivery.",
    "How do I reset the router my internet provider gave me?",
    "Can you tell me the exchange rate from dollars to yen?",
    "What's the best way to learn to play the guitar?",
]

"""The AI wing's evaluations, as a library the ``eval_*`` management commands call (Kitsune's shape, as
``knowledge.evaluation`` + ``kb_eval``): each module measures one thing on the public datasets of
``../shared/datasets`` and returns its figures as one dict (the command prints it as the final JSON line).

- ``triage``: the local triage provider (category, department, priority, sentiment, scope, language);
- ``guard``: the prompt-injection guard (deepset, BIPIA emails, benign texts, KB passages);
- ``injection``: BIPIA email injections end to end through the pipeline;
- ``attacks``: jailbreaks, prompt extraction and BIPIA through chat and email, with an obedient model
  (its pieces: ``attack_payloads``, ``obedient_model``, ``attack_pipeline``);
- ``answers``: a FAQ dataset's questions end to end: auto-answered right / wrong / escalated;
- ``email``: the inbound email parser against the email folders' reference parse.

Shared here: ``bipia`` (BIPIA's emails, attacks and split), ``loaders`` (dataset folders as texts and
labels), ``splits``, ``metrics`` and ``cache`` (embeddings on disk). What is not specific to tickets
(file readers, rounding, percentiles, bootstrap, P/R/F1) is ``supportflow.evaluation``.
"""

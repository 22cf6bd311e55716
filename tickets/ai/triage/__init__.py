"""Triage: what a customer's message is about, how urgent, how they feel, which language, who handles it.

``local`` (the no-network provider: ``model`` fits and stores it, ``seed`` reads its training data from
``data/``; ``cues``, ``sentiment`` and ``language`` read the text), and for an LLM provider the
``schema`` of its answer and its ``prompt``. Import the module you need; this package imports nothing,
so reading the schema does not load numpy or the ORM.
"""

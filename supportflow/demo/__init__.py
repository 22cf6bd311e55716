"""The demo: ``seed_demo``'s queues, staff and conversations (``seed``) and months of simulated history
for the analytics pages (``history.generate``). Wiring, not core: it may import the apps, and no app
imports it. Every text it writes is our own, about a fictional product, Nimbus Notes, and lives in
``data/`` (``texts`` loads it)."""

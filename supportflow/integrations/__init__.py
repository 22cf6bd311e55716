"""Top-level wiring to the outside world: outgoing webhooks, Slack and Discord. Subscribes to
``tickets.events`` (see ``supportflow.apps``); may import the apps."""

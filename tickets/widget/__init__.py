"""The website widget: a script a customer pastes into their own site (``/widget.js``) that opens our chat
in an iframe. A wing of tickets, entered through its views (``urls.py``); docs/widget.md says how to install
and configure it and why it is safe.

- ``origins``: what counts as an allowed origin (it goes into a CSP header, so it is parsed strictly);
- ``selectors``: the site behind a public key, the framing policy of its pages, visitor identity checks;
- ``services``: sites (create, update, rotate the identity secret) and starting a conversation;
- ``views``: the loader script, the framed start and conversation pages, the token-bound POST twin of
  the conversation's actions (no cookies: a cookie in a third-party iframe is not sent).
"""

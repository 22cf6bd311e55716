"""Email as a channel: parsing inbound MIME, threading it into tickets, sending replies (and copies of agents'
chat replies), CSAT surveys, the customer's unsubscribe, polling IMAP.

See docs/email.md for the rules (threading, spoofing, auto-replies, attachments, unsubscribe, limits).
"""

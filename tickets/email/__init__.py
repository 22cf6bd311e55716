"""Email as a channel: parsing inbound MIME, threading it into tickets, sending replies, polling IMAP.

See docs/email.md for the rules (threading, spoofing, auto-replies, attachments, limits).
"""

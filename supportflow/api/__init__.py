"""The REST API, ``/api/v1/`` (Django REST framework): tickets, messages, customers, knowledge base,
analytics summary; API keys with scopes or the browser session; OpenAPI schema (drf-spectacular)."""

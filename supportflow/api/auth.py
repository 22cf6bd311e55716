"""Authentication and permissions: an API key (``Authorization: Bearer sf_…`` or ``X-API-Key``) or the
signed-in staff session; a key is limited to its scopes, and either way the user's role and queues
decide which objects exist for the caller (the same selectors as the console)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from supportflow.api.keys import api_key_check
from supportflow.models import APIKey
from tickets.roles import user_is_agent


class APIKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        secret = request.headers.get("X-API-Key", "")
        if header.startswith(f"{self.keyword} "):
            secret = header[len(self.keyword) + 1 :].strip()
        if not secret:
            return None
        key = api_key_check(secret)
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid (unknown, revoked or expired).")
        return key.user, key  # its roles loaded with it (api_key_check)

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class StaffWithScope(permissions.BasePermission):
    """Staff only; with an API key, the view's scope for this method must be one of the key's."""

    message = "This needs a staff account (agent or manager)."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated and user_is_agent(request.user)):
            return False
        if isinstance(request.auth, APIKey):
            needed = scope_for(view, request.method)
            if needed and needed not in request.auth.scopes:
                self.message = f"This API key lacks the '{needed}' scope."
                return False
        return True


def scope_for(view, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", {})
    return scopes.get(method, scopes.get("*"))


class APIKeyScheme(OpenApiAuthenticationExtension):
    """How the schema describes our API keys (drf-spectacular finds it by the authenticator class)."""

    target_class = "supportflow.api.auth.APIKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key `sf_…` created in the console."}

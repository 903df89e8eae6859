"""An authentication step that authenticates nobody: it marks logins that reach the password."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class PasswordCheckMark:
    """Between django-axes and ModelBackend: a request that gets here has its password hashed next.

    django-axes refuses a locked-out username before this (raising), so
    `request.password_checked` says whether the attempt cost a hash, which is
    what the failed logins per address count (accounts/limits.py).
    """

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        if request is not None:
            request.password_checked = True
        return None


def password_checked(request: HttpRequest) -> bool:
    """Whether this request's login attempt reached the password check."""
    return getattr(request, "password_checked", False)

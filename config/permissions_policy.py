"""The Permissions-Policy header: which powerful browser features this site's pages may use.

`settings.PERMISSIONS_POLICY` maps each feature to its allowlist: `["self"]`
(this site's own pages, never a frame of another origin), `[]` (nobody), or
origins. The header is built once, when the middleware is made, and set on
every response that does not carry one already.

A few lines here rather than django-permissions-policy: the header is one
constant string, and what that package adds, checking feature names against
its own list, is better done by the browser that enforces them
(tests/e2e/test_csp.py fails on Chromium's "Unrecognized feature" warning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

HEADER = "Permissions-Policy"


def header_value(policy: Mapping[str, Sequence[str]]) -> str:
    """The header for a policy: `{"camera": ["self"], "usb": []}` -> `camera=(self), usb=()`."""
    members = []
    for feature, allowlist in policy.items():
        items = []
        for item in allowlist:
            if item == "self":
                items.append("self")
            elif item.startswith(("https://", "http://")) and '"' not in item:
                items.append(f'"{item}"')
            else:
                raise ImproperlyConfigured(
                    f"PERMISSIONS_POLICY[{feature!r}]: {item!r} is neither 'self' nor an origin"
                )
        members.append(f"{feature}=({' '.join(items)})")
    return ", ".join(members)


class PermissionsPolicyMiddleware(MiddlewareMixin):
    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self.value = header_value(settings.PERMISSIONS_POLICY)

    def process_response(self, request: HttpRequest, response: HttpResponseBase):
        response.headers.setdefault(HEADER, self.value)
        return response

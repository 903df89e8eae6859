"""The JSON error every HTTP edge answers with: `{"error": {"code", "message"}}`.

Here, below every app, because more than the API says it: accounts' login
lockout (django-axes) answers API requests in the API's shape.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

API_PREFIX = "/api/"


def error_response(status: int, code: str, message: str) -> JsonResponse:
    """The JSON error body, with `status`."""
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def is_api_path(request: HttpRequest) -> bool:
    """Whether `request` is for the JSON API (answered in JSON, never with a page)."""
    return request.path.startswith(API_PREFIX)

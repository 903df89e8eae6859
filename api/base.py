"""The JSON API's shared plumbing: every answer JSON, every error `{"error": {code, message}}`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from infra.http import error_response, is_api_path

JSON_CONTENT_TYPES = ("application/json",)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def read_json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or an ApiError saying what is wrong with it."""
    content_type = request.content_type or ""
    if content_type not in JSON_CONTENT_TYPES:
        raise ApiError(415, "unsupported-media-type", "Send the body as application/json.")
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError:
        raise ApiError(400, "bad-request", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad-request", "The body must be a JSON object.")
    return body


def api_view(
    *, methods: tuple[str, ...], login_required: bool = True
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Wrap a view of the JSON API: method check, session check, ApiError -> JSON."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error_response(
                    405, "method-not-allowed", f"Use {' or '.join(methods)} here."
                )
                response["Allow"] = ", ".join(methods)
                return response
            if login_required and not request.user.is_authenticated:
                return error_response(401, "not-authenticated", "Log in first.")
            try:
                return view(request, *args, **kwargs)
            except ApiError as err:
                return error_response(err.status, err.code, err.message)

        return wrapper

    return decorate


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return error_response(404, "not-found", "There is nothing at this address.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_path(request):
        return error_response(500, "server-error", "The server failed; try again later.")
    return defaults.server_error(request)

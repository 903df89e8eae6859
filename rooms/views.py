"""The lobby and room pages, and the rooms part of the JSON API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from accounts.ice import session_config
from config.api import ApiError, api_view, read_json_object
from rooms import limits, services
from rooms import protocol as p
from rooms.models import CAPACITY_DEFAULT, Room
from rooms.selectors import room_get_by_number, room_to_dict, user_recent_rooms

HTTP_STATUS = {p.BAD_MESSAGE: 400, p.ROOM_NOT_FOUND: 404, p.RATE_LIMITED: 429, p.SERVER_BUSY: 503}
RETRY_AFTER = "60"


class LookupRefused(Exception):
    """The user or their address is at the cap of failed attempts (rooms/limits.py)."""


def _lookup(request: HttpRequest, number: str) -> Room | None:
    """The room with this number, counted like a join attempt: a miss costs one.

    Looking numbers up over HTTP answers "found" or "not found" just as a join
    does, so it shares the join's cap per user and per client address.
    """
    attempt = limits.reserve_attempt_sync(
        user_id=request.user.pk, address=request.META.get("REMOTE_ADDR")
    )
    if attempt is None:
        raise LookupRefused
    room = room_get_by_number(number=number) if number else None
    if room is not None:
        limits.release_attempt_sync(attempt)
    return room


@login_required
def lobby(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "rooms/lobby.html",
        {
            "session_config": session_config(user=request.user, request=request),
            "recent_rooms": user_recent_rooms(user=request.user),
            # Form limits from the protocol, so the page never allows what the server refuses.
            "capacities": range(p.CAPACITY_MIN, p.CAPACITY_MAX + 1),
            "capacity_default": CAPACITY_DEFAULT,
            "name_max": p.NAME_MAX,
        },
    )


@login_required
def room_page(request: HttpRequest, number: str) -> HttpResponse:
    try:
        canonical = p.normalize_room_number(number)
    except p.ClientError:
        raise Http404("There is no room with that number.") from None
    if canonical != number:
        # People share links the way they read numbers: /rooms/482-913-075/.
        return redirect("room", number=canonical)
    try:
        room = _lookup(request, number)
    except LookupRefused:
        response = render(
            request,
            "rooms/too_many_attempts.html",
            {"message": "Too many rooms looked up that do not exist. Wait a few minutes."},
            status=429,
        )
        response["Retry-After"] = RETRY_AFTER
        return response
    if room is None:
        raise Http404("There is no room with that number.")
    return render(
        request,
        "rooms/room.html",
        {
            "session_config": session_config(user=request.user, request=request),
            "room": room_to_dict(room),
            "chat_max": p.CHAT_MAX,
        },
    )


def _api_error(err: p.ClientError) -> ApiError:
    return ApiError(HTTP_STATUS.get(err.code, 400), err.code, err.message)


@api_view(methods=("POST",))
def api_rooms(request: HttpRequest) -> HttpResponse:
    body = read_json_object(request)
    try:
        room = services.room_create(
            owner=request.user,
            name=p.check_name(body.get("name")),
            capacity=p.check_capacity(body.get("capacity")),
            pin=p.check_pin(body.get("pin")),
        )
    except p.ClientError as err:
        raise _api_error(err) from None
    return JsonResponse(room_to_dict(room, participants=0), status=201)


@api_view(methods=("GET",))
def api_room_detail(request: HttpRequest, number: str) -> HttpResponse:
    try:
        number = p.normalize_room_number(number)
    except p.ClientError:
        number = ""
    try:
        room = _lookup(request, number)
    except LookupRefused:
        raise ApiError(
            429, p.RATE_LIMITED, "Too many failed attempts to find a room; wait a while."
        ) from None
    if room is None:
        raise ApiError(404, p.ROOM_NOT_FOUND, "There is no room with that number.")
    return JsonResponse(room_to_dict(room))

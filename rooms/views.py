"""The lobby and room pages (the JSON API is api/views.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from rooms import attempts, client_config, errors, wire
from rooms import protocol as p
from rooms.models import Room
from rooms.selectors import user_recent_rooms

RETRY_AFTER = "60"


@login_required
def lobby(request: HttpRequest) -> HttpResponse:
    recent = [
        {
            **wire.room(room, participants=room.people_now),
            "lastJoinedAt": wire.timestamp(room.last_used),
        }
        for room in user_recent_rooms(user=request.user)
    ]
    return render(
        request,
        "rooms/lobby.html",
        {
            "session_config": client_config.session_config(account=request.user, request=request),
            "recent_rooms": recent,
            # Form limits from the protocol, so the page never allows what the server refuses.
            "capacities": [
                *range(p.CAPACITY_MIN, p.CAPACITY_MAX + 1),
                *(n for n in (20, 30, 40, 50, 100, 200) if n <= settings.SFU_CAPACITY_MAX),
            ],
            "media_modes": Room.MediaMode.choices,
            "media_default": p.MEDIA_MODE_DEFAULT,
            "mesh_max": settings.MESH_MAX_PEERS,
            "capacity_default": p.CAPACITY_DEFAULT,
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
        room = attempts.counted_lookup(
            user_id=request.user.pk, address=request.META.get("REMOTE_ADDR"), number=number
        )
    except errors.CapReached as err:
        response = render(
            request,
            "rooms/too_many_attempts.html",
            {"message": "Too many rooms looked up that do not exist. Wait a few minutes."},
            status=429,
        )
        response["Retry-After"] = str(err.retry_after) if err.retry_after else RETRY_AFTER
        return response
    if room is None:
        raise Http404("There is no room with that number.")
    return render(
        request,
        "rooms/room.html",
        {
            "session_config": client_config.session_config(account=request.user, request=request),
            "room": wire.room(room, participants=room.people_now),
            "chat_max": p.CHAT_MAX,
            # The owner's control of how the call's media goes (the `mode` message).
            "media_modes": Room.MediaMode.choices,
        },
    )

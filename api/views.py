"""The JSON API's endpoints: login, logout, the session config, creating and looking up rooms."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt

from accounts.backends import password_checked
from accounts.limits import login_not_failed, login_turn
from accounts.views import client_ip, login_slowed
from api.base import ApiError, api_view, read_json_object
from rooms import attempts, client_config, errors, services, wire
from rooms import protocol as p

CREDENTIAL_MAX = 4096


def refused(error: errors.RoomsError) -> ApiError:
    return ApiError(error.status, error.code, error.message)


@csrf_exempt  # JSON only, and a login carries no ambient authority to abuse
@api_view(methods=("POST",), login_required=False)
def auth_login(request: HttpRequest) -> HttpResponse:
    body = read_json_object(request)
    username, password = body.get("username"), body.get("password")
    for field, value in (("username", username), ("password", password)):
        if not isinstance(value, str) or not value:
            raise ApiError(400, "bad-request", f"'{field}' is required and must be a string.")
        if len(value) > CREDENTIAL_MAX:
            raise ApiError(400, "bad-request", f"'{field}' is too long.")
        if "\x00" in value:
            # As Django's forms do: no database can be asked about it.
            raise ApiError(400, "bad-request", f"'{field}' must not contain NUL characters.")
    # A failure of the address is taken before the password is hashed and given
    # back unless one was hashed in vain (accounts/limits.py).
    address = client_ip(request)
    turn = login_turn(address=address)
    if not turn.allowed:
        return login_slowed(request, wait=turn.wait)
    user = authenticate(request, username=username, password=password)
    if user is not None or not password_checked(request):
        login_not_failed(address=address)
    if user is None:
        raise ApiError(401, "invalid-credentials", "Wrong username or password.")
    login(request, user)
    get_token(request)  # sets the csrftoken cookie the client sends back as X-CSRFToken
    return JsonResponse(client_config.session_config(account=user, request=request))


@api_view(methods=("POST",), login_required=False)
def auth_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse(status=204)


@api_view(methods=("GET",))
def session(request: HttpRequest) -> HttpResponse:
    return JsonResponse(client_config.session_config(account=request.user, request=request))


@api_view(methods=("POST",))
def rooms_create(request: HttpRequest) -> HttpResponse:
    body = read_json_object(request)
    try:
        fields = {
            "name": p.check_name(body.get("name")),
            "capacity": p.check_capacity(body.get("capacity")),
            "pin": p.check_pin(body.get("pin")),
            "media": p.check_media(body.get("media")),
        }
    except p.ClientError as err:
        raise ApiError(400, err.code, err.message) from None
    numbers = services.room_numbers()
    try:
        while True:
            number = next(numbers)  # NoFreeNumber once they are used up
            try:
                room = services.room_create(owner=request.user, number=number, **fields)
            except errors.NumberTaken:
                continue
            break
    except errors.RoomsError as err:
        raise refused(err) from None
    return JsonResponse(wire.room(room, participants=0), status=201)


@api_view(methods=("GET",))
def room_detail(request: HttpRequest, number: str) -> HttpResponse:
    try:
        number = p.normalize_room_number(number)
    except p.ClientError:
        number = ""
    try:
        room = attempts.counted_lookup(
            user_id=request.user.pk, address=request.META.get("REMOTE_ADDR"), number=number
        )
    except errors.RoomsError as err:
        raise refused(err) from None
    if room is None:
        raise refused(errors.RoomNotFound())
    return JsonResponse(wire.room(room, participants=room.people_now))

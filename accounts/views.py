"""Sign-up, login and logout: the HTML pages and the JSON API (protocol.md section 1)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views import View
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import CreateView

from accounts.ice import session_config
from config.api import ApiError, api_view, error_response, is_api_path, read_json_object
from rooms.limits import signup_allowed

CREDENTIAL_MAX = 4096


class SignupView(CreateView):
    form_class = UserCreationForm
    template_name = "accounts/signup.html"
    success_url = reverse_lazy("lobby")

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return redirect("lobby")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form: UserCreationForm) -> HttpResponse:
        # Counted only once the form is valid: a typo costs nothing, a script
        # making accounts from one address stops at the hour's cap.
        if not signup_allowed(address=client_ip(self.request)):
            form.add_error(
                None,
                "Too many accounts were created from your network in the last hour. "
                "Try again later.",
            )
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = "3600"
            return response
        response = super().form_valid(form)
        login(self.request, self.object, backend="django.contrib.auth.backends.ModelBackend")
        return response


class LogoutPage(View):
    """GET shows a confirmation (logging out on GET would let any page log you out)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "accounts/logout.html")

    def post(self, request: HttpRequest) -> HttpResponse:
        logout(request)
        return redirect("login")


@csrf_exempt  # JSON only, and a login carries no ambient authority to abuse
@api_view(methods=("POST",), login_required=False)
def api_login(request: HttpRequest) -> HttpResponse:
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
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise ApiError(401, "invalid-credentials", "Wrong username or password.")
    login(request, user)
    get_token(request)  # sets the csrftoken cookie the client sends back as X-CSRFToken
    return JsonResponse(session_config(user=user, request=request))


@api_view(methods=("POST",), login_required=False)
def api_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse(status=204)


@api_view(methods=("GET",))
def api_config(request: HttpRequest) -> HttpResponse:
    return JsonResponse(session_config(user=request.user, request=request))


def client_ip(request: HttpRequest) -> str | None:
    """The address login attempts are counted against (see settings, django-axes).

    None when the server knows no address (a UNIX socket): axes stores
    addresses in an IP column, where a placeholder word would not fit.
    """
    return request.META.get("REMOTE_ADDR") or None


def locked_out(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    minutes = round(settings.AXES_COOLOFF_TIME * 60)
    message = f"Too many failed logins. Try again in {minutes} minutes."
    if is_api_path(request):
        response = error_response(429, "too-many-attempts", message)
    else:
        response = render(request, "accounts/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api_path(request):
        return error_response(
            403, "csrf-failed", "Send the csrftoken cookie's value as the X-CSRFToken header."
        )
    return django_csrf_failure(request, reason=reason)

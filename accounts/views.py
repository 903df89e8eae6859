"""Sign-up, login and logout pages (the JSON API's login is api/views.py)."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views import View
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.generic import CreateView

from accounts.backends import password_checked
from accounts.limits import login_not_failed, login_turn, signup_attempt_turn, signup_turn
from infra.http import error_response, is_api_path


def _retry_in(wait: float) -> tuple[int, str]:
    """A wait as Retry-After seconds, and in words."""
    seconds = max(1, math.ceil(wait))
    return seconds, f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


class SignupView(CreateView):
    form_class = UserCreationForm
    template_name = "accounts/signup.html"
    success_url = reverse_lazy("lobby")

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return redirect("lobby")
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Counted before the form is read: each answer says whether its name is
        # taken, so past the address's rate the form is not looked at, and the
        # page is the same whatever name was asked about.
        turn = signup_attempt_turn(address=client_ip(request))
        if not turn.allowed:
            seconds, when = _retry_in(turn.wait)
            refusal = f"Many sign-ups were tried from your network just now. Try again in {when}."
            context = {"form": self.form_class(), "refusal": refusal}
            response = render(request, self.template_name, context, status=429)
            response["Retry-After"] = str(seconds)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: UserCreationForm) -> HttpResponse:
        # Counted only once the form is valid: a typo costs nothing, a script
        # making accounts from one address stops at the hour's cap.
        turn = signup_turn(address=client_ip(self.request))
        if not turn.allowed:
            seconds, when = _retry_in(turn.wait)
            form.add_error(
                None,
                f"Many accounts were created from your network just now. Try again in {when}.",
            )
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(seconds)
            return response
        response = super().form_valid(form)
        login(self.request, self.object, backend="django.contrib.auth.backends.ModelBackend")
        return response


class LoginPage(auth_views.LoginView):
    """Django's login form; failed logins counted per client address (accounts/limits.py)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        address = client_ip(request)
        turn = login_turn(address=address)
        if not turn.allowed:
            return login_slowed(request, wait=turn.wait)
        response = super().post(request, *args, **kwargs)
        # A failure is a password hashed in vain: not a login, not a form
        # missing a field, not a username django-axes refused unchecked.
        if request.user.is_authenticated or not password_checked(request):
            login_not_failed(address=address)
        return response


def login_slowed(request: HttpRequest, *, wait: float) -> HttpResponse:
    """429 for a login from an address past its failed logins' rate, before any password check."""
    seconds, when = _retry_in(wait)
    message = f"Too many failed logins from your network. Try again in {when}."
    if is_api_path(request):
        response = error_response(429, "too-many-attempts", message)
    else:
        response = render(request, "accounts/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class LogoutPage(View):
    """GET shows a confirmation (logging out on GET would let any page log you out)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "accounts/logout.html")

    def post(self, request: HttpRequest) -> HttpResponse:
        logout(request)
        return redirect("login")


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

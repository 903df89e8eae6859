"""Sign-up, login and logout pages (the JSON API's login is api/views.py)."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views import View
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.generic import CreateView

from accounts.limits import signup_turn
from api.base import error_response, is_api_path


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
        turn = signup_turn(address=client_ip(self.request))
        if not turn.allowed:
            seconds = max(1, math.ceil(turn.wait))
            when = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
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

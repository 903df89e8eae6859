"""Django admin for accounts: Django's user admin, plus ending a user's sessions and calls."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import services

# What the actions write to the admin log (LogEntry.change_message).
BLOCKED_MESSAGE = "Blocked: deactivated and signed out everywhere."
SIGNED_OUT_MESSAGE = "Signed out everywhere ({sessions} sessions)."

User = get_user_model()
# django.contrib.auth registers its own UserAdmin; this one extends it.
admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    actions = ("sign_out_everywhere", "block_users")

    @admin.action(description=_("Sign out everywhere (ends their calls at once)"))
    def sign_out_everywhere(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            ended = services.user_sign_out_everywhere(user=user)
            self.log_change(request, user, SIGNED_OUT_MESSAGE.format(sessions=ended))
        count = len(queryset)
        self.message_user(
            request,
            ngettext("Signed %d user out everywhere.", "Signed %d users out everywhere.", count)
            % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Block: deactivate and sign out everywhere"))
    def block_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        blocked = 0
        for user in queryset:
            if user.pk == request.user.pk:
                self.message_user(request, _("You cannot block yourself."), messages.ERROR)
                continue
            services.user_block(user=user)
            self.log_change(request, user, BLOCKED_MESSAGE)
            blocked += 1
        self.message_user(
            request,
            ngettext("Blocked %d user.", "Blocked %d users.", blocked) % blocked,
            messages.SUCCESS,
        )

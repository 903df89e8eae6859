"""What the accounts app stores besides Django's own users and sessions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UserSession(models.Model):
    """A login session of a user, so that an admin can end all of them at once.

    Django's session table cannot be searched by user (the data is encoded);
    this row is written at login and removed at logout.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="tracked_sessions",
    )
    session_key = models.CharField(_("session key"), max_length=40, unique=True)
    created_at = models.DateTimeField(_("signed in"), auto_now_add=True)

    class Meta:
        verbose_name = _("login session")
        verbose_name_plural = _("login sessions")

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"


class SessionEpoch(models.Model):
    """Which generation of a user's login sessions is valid; one more ends every older one.

    Each session is stamped with the generation at login and checked against
    this row on every request and at every signaling socket's handshake
    (accounts/sessions.py), so a session cannot outlive "sign out everywhere"
    however its copy in the cache came back. No row: generation 0.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="session_epoch",
    )
    value = models.PositiveBigIntegerField(_("generation"), default=0)

    class Meta:
        verbose_name = _("session generation")
        verbose_name_plural = _("session generations")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.value}"

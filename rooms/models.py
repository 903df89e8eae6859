"""A room's whole life: the room itself, who was in it, and what was said."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _

from rooms.protocol import (
    CAPACITY_DEFAULT,
    CAPACITY_MAX,
    CAPACITY_MIN,
    CHAT_MAX,
    NAME_MAX,
    PEER_ID_MAX,
)

# A PIN is a few digits: what protects it is the online limit on attempts
# (rooms/limits.py), not a slow hash, which would only let wrong guesses stall
# the worker inside the room's lock. A keyed HMAC keeps a copy of the
# database from giving the PINs away without the SECRET_KEY.
PIN_SCHEME = "hmac-sha256"


def _pin_digest(pin: str, salt: str, secret: str) -> str:
    return salted_hmac(f"rooms.pin.{salt}", pin, secret=secret, algorithm="sha256").hexdigest()


class RoomQuerySet(models.QuerySet):
    def open(self) -> RoomQuerySet:
        return self.filter(closed_at__isnull=True)


class Room(models.Model):
    number = models.CharField(_("number"), max_length=9, db_index=True)
    name = models.CharField(_("name"), max_length=NAME_MAX)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        related_name="owned_rooms",
    )
    capacity = models.PositiveSmallIntegerField(
        _("capacity"),
        default=CAPACITY_DEFAULT,
        validators=[MinValueValidator(CAPACITY_MIN), MaxValueValidator(CAPACITY_MAX)],
    )
    pin_hash = models.CharField(_("PIN (hashed)"), max_length=128, blank=True)
    locked = models.BooleanField(_("locked"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        ordering = ["-created_at"]
        constraints = [
            # Numbers are reused only once a room is closed.
            models.UniqueConstraint(
                fields=["number"],
                condition=Q(closed_at__isnull=True),
                name="room_number_unique_while_open",
            ),
            models.CheckConstraint(
                condition=Q(capacity__gte=CAPACITY_MIN) & Q(capacity__lte=CAPACITY_MAX),
                name="room_capacity_range",
            ),
            models.CheckConstraint(
                condition=Q(number__regex=r"^[1-9][0-9]{8}$"), name="room_number_format"
            ),
        ]
        # The per-account caps count an owner's recent and open rooms.
        indexes = [models.Index(fields=["owner", "created_at"], name="room_owner_created")]

    def __str__(self) -> str:
        return f"{self.display_number} {self.name}"

    @property
    def display_number(self) -> str:
        return f"{self.number[:3]} {self.number[3:6]} {self.number[6:]}"

    @property
    def group_name(self) -> str:
        return self.group_name_for(self.number)

    @staticmethod
    def group_name_for(number: str) -> str:
        """The room's channel-layer group, known from the number alone.

        A socket subscribes before its join is decided, without first looking
        the room up. A closed room's number may be reused, so two rooms can
        share a group over time; every event names its room's primary key and
        consumers drop those of any room but their own.
        """
        return f"room-{number}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def has_pin(self) -> bool:
        return bool(self.pin_hash)

    def set_pin(self, pin: str | None) -> None:
        if not pin:
            self.pin_hash = ""
            return
        salt = secrets.token_hex(8)
        self.pin_hash = f"{PIN_SCHEME}${salt}${_pin_digest(pin, salt, settings.SECRET_KEY)}"

    def check_pin(self, pin: str | None) -> bool:
        if not self.pin_hash:
            return True
        if not pin:
            return False
        scheme, _, rest = self.pin_hash.partition("$")
        if scheme != PIN_SCHEME:
            # Rooms created before PINs moved to HMAC hold a Django password
            # hash; they are closed once empty (EMPTY_ROOM_CLOSE_AFTER).
            return check_password(pin, self.pin_hash)
        salt, _, digest = rest.partition("$")
        return any(
            constant_time_compare(digest, _pin_digest(pin, salt, secret))
            for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
        )


class Participant(models.Model):
    """One peer's stay in a room: the call history, and who is in it now."""

    class LeftReason(models.TextChoices):
        LEFT = "left", _("left")
        DISCONNECTED = "disconnected", _("disconnected")
        KICKED = "kicked", _("kicked")
        TIMEOUT = "timeout", _("timed out")
        CLOSED = "closed", _("room closed")
        # The same account joined from another device or tab, which took the seat.
        REPLACED = "replaced", _("continued elsewhere")
        # Logged out, password changed, deactivated, or signed out by an admin.
        SIGNED_OUT = "signed-out", _("signed out")

    room = models.ForeignKey(
        Room, verbose_name=_("room"), on_delete=models.CASCADE, related_name="participants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="participations",
    )
    peer_id = models.CharField(_("peer id"), max_length=PEER_ID_MAX, unique=True)
    # The Channels channel of the socket: how other workers reach this peer.
    channel_name = models.CharField(_("channel"), max_length=200)
    # Which worker process holds the socket ("host:pid"), for the admin console.
    worker = models.CharField(_("worker"), max_length=100, blank=True)
    audio = models.BooleanField(_("audio"), default=True)
    video = models.BooleanField(_("video"), default=True)
    screen = models.BooleanField(_("screen"), default=False)
    joined_at = models.DateTimeField(_("joined"), auto_now_add=True)
    left_at = models.DateTimeField(_("left"), null=True, blank=True)
    left_reason = models.CharField(
        _("reason for leaving"), max_length=16, choices=LeftReason.choices, blank=True
    )

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        ordering = ["joined_at", "pk"]
        indexes = [models.Index(fields=["room", "left_at"], name="participant_room_active")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room.number}"

    @property
    def is_active(self) -> bool:
        return self.left_at is None


class ChatMessage(models.Model):
    room = models.ForeignKey(
        Room, verbose_name=_("room"), on_delete=models.CASCADE, related_name="chat_messages"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="chat_messages",
    )
    peer_id = models.CharField(_("peer id"), max_length=PEER_ID_MAX)
    text = models.TextField(_("text"), max_length=CHAT_MAX)
    created_at = models.DateTimeField(_("sent"), auto_now_add=True)

    class Meta:
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.user}: {self.text[:40]}"

"""A room's whole life: the room itself, who was in it, what was said, and how calls went."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _

from rooms.protocol import (
    CANDIDATE_TYPES,
    CAPACITY_DEFAULT,
    CAPACITY_LIMIT_MAX,
    CAPACITY_MAX,
    CAPACITY_MIN,
    CHAT_MAX,
    CONNECTION_STATES,
    LEFT_REASONS,
    MEDIA_AUTO,
    MEDIA_MESH,
    MEDIA_SFU,
    NAME_MAX,
    PEER_ID_MAX,
    RELAY_PROTOCOLS,
    ROOM_NUMBER_RE,
    TRANSPORT_PROTOCOLS,
)

# A PIN is a few digits: what protects it is the online limit on attempts
# (rooms/attempts.py), not a slow hash, which would only let wrong guesses stall
# the worker inside the room's lock. A keyed HMAC keeps a copy of the
# database from giving the PINs away without the SECRET_KEY.
PIN_SCHEME = "hmac-sha256"


def _pin_digest(pin: str, salt: str, secret: str) -> str:
    return salted_hmac(f"rooms.pin.{salt}", pin, secret=secret, algorithm="sha256").hexdigest()


class RoomQuerySet(models.QuerySet):
    def open(self) -> RoomQuerySet:
        return self.filter(closed_at__isnull=True)


def present(via: str = "") -> Q:
    """Who is in a room now, as a condition: on Participant, or through the relation `via`.

    For filtered aggregates and OR-ed conditions; a queryset of participants
    says it with `.present()`.
    """
    return Q(**{f"{via}__left_at__isnull" if via else "left_at__isnull": True})


class ParticipantQuerySet(models.QuerySet):
    def present(self) -> ParticipantQuerySet:
        """The participants who have not left (those in the room now)."""
        return self.filter(present())


class Room(models.Model):
    class MediaMode(models.TextChoices):
        # Peer to peer, end-to-end encrypted, up to CAPACITY_MAX people.
        MESH = MEDIA_MESH, _("direct (peer to peer)")
        # Through Janus from the first person on, up to SFU_CAPACITY_MAX.
        SFU = MEDIA_SFU, _("through the media server")
        # Direct up to MESH_MAX_PEERS people, through Janus above.
        AUTO = MEDIA_AUTO, _("automatic")

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
        validators=[MinValueValidator(CAPACITY_MIN), MaxValueValidator(CAPACITY_LIMIT_MAX)],
    )
    media_mode = models.CharField(
        _("media mode"), max_length=8, choices=MediaMode.choices, default=MediaMode.AUTO
    )
    # Where the media goes now: mesh or sfu (an `auto` room moves to sfu at its
    # (MESH_MAX_PEERS + 1)th person, and back to mesh once it has stayed at
    # MESH_MAX_PEERS or fewer for MESH_RETURN_AFTER seconds, or emptied).
    media = models.CharField(_("media path"), max_length=8, default=MEDIA_MESH)
    # An `auto` room on the SFU: since when it has had MESH_MAX_PEERS people or
    # fewer (its way back to mesh); null while it has more, or is on the mesh.
    media_small_since = models.DateTimeField(_("small on the SFU since"), null=True, blank=True)
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
                condition=Q(capacity__gte=CAPACITY_MIN) & Q(capacity__lte=CAPACITY_LIMIT_MAX),
                name="room_capacity_range",
            ),
            models.CheckConstraint(
                condition=Q(number__regex=f"^{ROOM_NUMBER_RE.pattern}$"), name="room_number_format"
            ),
            models.CheckConstraint(
                condition=Q(media__in=[MEDIA_MESH, MEDIA_SFU]), name="room_media_path"
            ),
            # Every browser of a mesh call sends its media to each of the others:
            # past CAPACITY_MAX people no one's uplink keeps up, whoever set the seats.
            models.CheckConstraint(
                condition=~Q(media_mode=MEDIA_MESH) | Q(capacity__lte=CAPACITY_MAX),
                name="room_mesh_capacity",
            ),
        ]
        # The per-account caps count an owner's recent and open rooms.
        indexes = [models.Index(fields=["owner", "created_at"], name="room_owner_created")]

    def __str__(self) -> str:
        return f"{self.display_number} {self.name}"

    def clean(self) -> None:
        if self.media_mode == MEDIA_MESH and self.capacity > CAPACITY_MAX:
            raise ValidationError(
                {
                    "capacity": _(
                        "A direct (peer to peer) room holds at most %(max)d people; "
                        "let it use the media server for more."
                    )
                    % {"max": CAPACITY_MAX}
                }
            )

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
    def uses_sfu(self) -> bool:
        return self.media == MEDIA_SFU

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

        @property
        def told(self) -> str:
            """What the others in the room are told (one of rooms.protocol.LEFT_REASONS).

            The call history keeps finer reasons than the protocol's four: a
            seat continued elsewhere or signed out is, to the others, someone
            who left.
            """
            return self.value if self.value in LEFT_REASONS else LEFT_REASONS[0]

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

    objects = ParticipantQuerySet.as_manager()

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


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    # The protocol's own words (rooms/protocol.py); the admin shows them as they are.
    return [(value, value) for value in values]


class CallQuality(models.Model):
    """How one participant's connection to one remote peer went, as its browser reported it.

    Bounded: per (reporter, remote peer) one live row, overwritten by each
    report during the call, and one final row, written at the end of the pair.
    Deleted with the reporting participant (the call history's retention).
    Counters are cumulative since the pair started; bitrates are over the
    interval before the report. Empty or null: the browser did not know.
    """

    participant = models.ForeignKey(
        Participant,
        verbose_name=_("reporting participant"),
        on_delete=models.CASCADE,
        related_name="quality_reports",
    )
    remote_peer_id = models.CharField(_("remote peer id"), max_length=PEER_ID_MAX)
    # The remote peer's participant row; kept apart from the id so the report
    # outlives it (the history of one side may be deleted before the other's).
    remote = models.ForeignKey(
        Participant,
        verbose_name=_("remote participant"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    final = models.BooleanField(_("end of the pair"), default=False)
    state = models.CharField(
        _("connection state"), max_length=12, choices=_choices(CONNECTION_STATES), blank=True
    )
    first_frame_ms = models.PositiveIntegerField(_("first video frame after (ms)"), null=True)
    local_candidate_type = models.CharField(
        _("local candidate"), max_length=5, choices=_choices(CANDIDATE_TYPES), blank=True
    )
    remote_candidate_type = models.CharField(
        _("remote candidate"), max_length=5, choices=_choices(CANDIDATE_TYPES), blank=True
    )
    protocol = models.CharField(
        _("protocol"), max_length=3, choices=_choices(TRANSPORT_PROTOCOLS), blank=True
    )
    relay_protocol = models.CharField(
        _("protocol to the TURN server"),
        max_length=3,
        choices=_choices(RELAY_PROTOCOLS),
        blank=True,
    )
    rtt_ms = models.PositiveIntegerField(_("round-trip time (ms)"), null=True)
    bitrate_in_kbps = models.PositiveIntegerField(_("bitrate in (kbit/s)"), null=True)
    bitrate_out_kbps = models.PositiveIntegerField(_("bitrate out (kbit/s)"), null=True)
    packets_in = models.PositiveIntegerField(_("packets received"), null=True)
    packets_lost_in = models.PositiveIntegerField(_("packets lost, in"), null=True)
    packets_out = models.PositiveIntegerField(_("packets sent"), null=True)
    packets_lost_out = models.PositiveIntegerField(_("packets lost, out"), null=True)
    frames_decoded = models.PositiveIntegerField(_("frames decoded"), null=True)
    frames_dropped = models.PositiveIntegerField(_("frames dropped"), null=True)
    ice_restarts = models.PositiveIntegerField(_("ICE restarts"), null=True)
    ice_failed = models.PositiveIntegerField(_("ICE failures (failed)"), default=0)
    ice_disconnected_timeouts = models.PositiveIntegerField(
        _("ICE failures (disconnected too long)"), default=0
    )
    created_at = models.DateTimeField(_("first report"), default=timezone.now)
    updated_at = models.DateTimeField(_("last report"), default=timezone.now)

    class Meta:
        verbose_name = _("call quality report")
        verbose_name_plural = _("call quality reports")
        ordering = ["participant", "remote_peer_id", "final"]
        constraints = [
            # The upsert's key: one live and one final summary per pair.
            models.UniqueConstraint(
                fields=["participant", "remote_peer_id", "final"],
                name="callquality_one_per_pair_and_kind",
            ),
        ]

    def __str__(self) -> str:
        kind = "final" if self.final else "live"
        return f"{self.participant.peer_id} -> {self.remote_peer_id} ({kind})"

    @property
    def loss_in(self) -> float | None:
        """The fraction of the packets sent to us that were lost, when known."""
        if self.packets_lost_in is None or self.packets_in is None:
            return None
        expected = self.packets_in + self.packets_lost_in
        return self.packets_lost_in / expected if expected else None

    @property
    def loss_out(self) -> float | None:
        """The fraction of our packets the remote peer reported lost, when known."""
        if self.packets_lost_out is None or not self.packets_out:
            return None
        return min(1.0, self.packets_lost_out / self.packets_out)

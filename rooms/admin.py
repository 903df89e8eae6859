"""Django admin for rooms: who is in them now, their history, and close/lock actions.

The actions go through rooms.services and publish what those return
(rooms.events), so connected peers on every worker hear about them
(`room-closed`, `room-updated`) exactly as if the owner had acted from the call.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from rooms import services
from rooms.events import publish_on_commit
from rooms.models import CallQuality, ChatMessage, Participant, Room
from rooms.selectors import rooms_with_occupancy


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Room | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Room | None = None) -> bool:
        return False


class ParticipantInline(ReadOnlyInline):
    model = Participant
    fields = (
        "user",
        "peer_id",
        "worker",
        "joined_at",
        "left_at",
        "left_reason",
        "audio",
        "video",
        "screen",
    )
    readonly_fields = fields
    ordering = ("-joined_at",)


class ChatMessageInline(ReadOnlyInline):
    model = ChatMessage
    fields = ("created_at", "user", "text")
    readonly_fields = fields


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("open", _("open")), ("closed", _("closed")))

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("number", "name", "owner", "is_open", "locked", "people_now", "created_at")
    list_filter = (OpenFilter, "locked")
    search_fields = ("number", "name", "owner__username", "owner__email")
    readonly_fields = ("number", "created_at", "closed_at", "pin_hash")
    fields = (
        "number",
        "name",
        "owner",
        "capacity",
        "locked",
        "pin_hash",
        "created_at",
        "closed_at",
    )
    autocomplete_fields = ("owner",)
    inlines = (ParticipantInline, ChatMessageInline)
    actions = ("close_rooms", "lock_rooms", "unlock_rooms")
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return rooms_with_occupancy()

    def has_delete_permission(self, request: HttpRequest, obj: Room | None = None) -> bool:
        # Deleting an open room would strand the people in it: close it first
        # (that tells them). Closed rooms, with their history, may be deleted.
        if obj is not None and obj.is_open:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(boolean=True, description=_("open"), ordering="closed_at")
    def is_open(self, room: Room) -> bool:
        return room.is_open

    @admin.display(description=_("people now"), ordering="people_now")
    def people_now(self, room: Room) -> int:
        return room.people_now

    def save_model(self, request: HttpRequest, obj: Room, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            # Renamed, resized or (un)locked from the form: tell the room.
            publish_on_commit(services.room_announce_update(room=obj))

    @admin.action(description=_("Close selected rooms (disconnects everyone in them)"))
    def close_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        closed = 0
        for room in queryset:
            outbox = services.room_close(room_id=room.pk, reason="admin")
            publish_on_commit(outbox)
            closed += bool(outbox)
        self.message_user(
            request,
            ngettext("Closed %d room.", "Closed %d rooms.", closed) % closed,
            messages.SUCCESS,
        )

    @admin.action(description=_("Lock selected rooms"))
    def lock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        self._set_locked(request, queryset, locked=True)

    @admin.action(description=_("Unlock selected rooms"))
    def unlock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        self._set_locked(request, queryset, locked=False)

    def _set_locked(self, request: HttpRequest, queryset: QuerySet[Room], *, locked: bool) -> None:
        rooms = list(queryset.filter(closed_at__isnull=True))
        for room in rooms:
            publish_on_commit(services.room_set_locked(room_id=room.pk, locked=locked))
        self.message_user(
            request,
            (_("Locked %d room(s).") if locked else _("Unlocked %d room(s).")) % len(rooms),
            messages.SUCCESS,
        )


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "room", "user", "text")
    search_fields = ("room__number", "user__username", "text")
    list_select_related = ("room", "user")
    readonly_fields = ("room", "user", "peer_id", "text", "created_at")


@admin.register(CallQuality)
class CallQualityAdmin(admin.ModelAdmin):
    """The browsers' own account of each call, read-only: "the call was bad", what happened?"""

    list_display = (
        "updated_at",
        "room_number",
        "reporter",
        "remote_peer_id",
        "final",
        "state",
        "path",
        "rtt_ms",
        "loss_in_percent",
        "bitrate_in_kbps",
        "bitrate_out_kbps",
        "frames_dropped",
        "ice_restarts",
    )
    list_filter = ("final", "state", "local_candidate_type", "remote_candidate_type")
    search_fields = (
        "participant__room__number",
        "participant__user__username",
        "participant__peer_id",
        "remote_peer_id",
    )
    list_select_related = ("participant__room", "participant__user")
    date_hierarchy = "updated_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CallQuality | None = None) -> bool:
        return False

    @admin.display(description=_("room"), ordering="participant__room__number")
    def room_number(self, report: CallQuality) -> str:
        return report.participant.room.number

    @admin.display(description=_("reported by"), ordering="participant__user__username")
    def reporter(self, report: CallQuality) -> str:
        return f"{report.participant.user} ({report.participant.peer_id})"

    @admin.display(description=_("path"))
    def path(self, report: CallQuality) -> str:
        ends = f"{report.local_candidate_type or '?'} → {report.remote_candidate_type or '?'}"
        via = f" via TURN/{report.relay_protocol}" if report.relay_protocol else ""
        return f"{ends} {report.protocol or ''}{via}".strip()

    @admin.display(description=_("loss in (%)"))
    def loss_in_percent(self, report: CallQuality) -> str:
        loss = report.loss_in
        return "" if loss is None else f"{100 * loss:.1f}"

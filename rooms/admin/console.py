"""Django admin for rooms: the live console of each room, its actions, and the chat.

Every action goes through a service (rooms.services, accounts.services) and
publishes what it returns (rooms.events), so the sockets concerned hear about
it on whichever worker holds them (`kicked` and 4003, `room-closed`,
`room-updated`, a revocation and 4401), exactly as if the owner had acted
from the call; and every action is written to Django's admin log.
"""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts import services as accounts_services
from accounts.admin import BLOCKED_MESSAGE
from infra.logs import log_event
from rooms import errors, selectors, services
from rooms.events import publish_on_commit
from rooms.models import ChatMessage, Participant, Room
from rooms.selectors import room_console, rooms_for_admin
from rooms.templatetags.rooms_admin import format_duration

# The room events' log (the signaling socket writes the same lines, signaling/observe.py):
# an admin's kick or close is there too, with no peer of the admin's.
events_log = logging.getLogger("rooms.signaling")

# What each action writes to the admin log (LogEntry.change_message).
ENDED_MESSAGE = "Ended the room: everyone in it was disconnected."
LOCKED_MESSAGE = "Locked the room."
UNLOCKED_MESSAGE = "Unlocked the room."
REMOVED_MESSAGE = "Removed {username} (peer {peer_id}) from the room."
# How often an open console asks for a fresh copy of itself.
CONSOLE_REFRESH_MS = 3000


# The console's actions change things: POST only (and so CSRF-checked).
method_post = method_decorator(require_POST)


def _change_user_permission() -> str:
    meta = get_user_model()._meta
    return f"{meta.app_label}.change_{meta.model_name}"


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
    list_display = (
        "number",
        "name",
        "owner",
        "is_open",
        "locked",
        "people_now",
        "people_total",
        "duration_display",
        "created_at",
    )
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
        return rooms_for_admin()

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

    @admin.display(description=_("people in all"), ordering="people_total")
    def people_total(self, room: Room) -> int:
        return room.people_total

    @admin.display(description=_("open for"), ordering="duration")
    def duration_display(self, room: Room) -> str:
        return format_duration(room.duration.total_seconds())

    # --- The live console (templates/admin/rooms/room/change_form.html) -----------------

    def get_urls(self):
        def view(function, name: str):
            return path(
                f"<path:object_id>/console/{name}",
                self.admin_site.admin_view(function),
                name=f"rooms_room_console{'_' + name.strip('/') if name else ''}",
            )

        return [
            view(self.console_view, ""),
            view(self.console_remove, "remove/"),
            view(self.console_end, "end/"),
            view(self.console_lock, "lock/"),
            view(self.console_block, "block/"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        room = self.get_object(request, object_id)
        if room is not None:
            extra["console"] = self.console_context(request, room)
            extra["console_url"] = reverse("admin:rooms_room_console", args=[room.pk])
            extra["console_refresh_ms"] = CONSOLE_REFRESH_MS
        return super().change_view(request, object_id, form_url, extra)

    def console_context(self, request: HttpRequest, room: Room) -> dict:
        return {
            "live": room_console(room_id=room.pk),
            "now": timezone.now(),
            "can_act": room.is_open and self.has_change_permission(request, room),
            "can_block": request.user.has_perm(_change_user_permission()),
            "high_loss_percent": round(100 * selectors.HIGH_LOSS),
            "high_rtt_ms": selectors.HIGH_RTT_MS,
        }

    def _room_or_404(self, request: HttpRequest, object_id: str, *, change: bool) -> Room:
        room = self.get_object(request, object_id)
        if room is None:
            raise Http404
        allowed = (
            self.has_change_permission(request, room)
            if change
            else self.has_view_or_change_permission(request, room)
        )
        if not allowed:
            raise PermissionDenied
        return room

    def console_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The console alone (an HTML fragment), which the open page fetches every few seconds."""
        room = self._room_or_404(request, object_id, change=False)
        # admin_view() marks it never_cache: every fetch is fresh.
        return TemplateResponse(
            request, "admin/rooms/room/console.html", self.console_context(request, room)
        )

    def _back(self, room: Room) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:rooms_room_change", args=[room.pk]))

    @method_post
    def console_remove(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Remove one person: their socket, on any worker, gets `kicked` and closes with 4003."""
        room = self._room_or_404(request, object_id, change=True)
        peer_id = request.POST.get("peer", "")
        target = selectors.room_participant(room_id=room.pk, peer_id=peer_id)
        try:
            if target is None:
                raise errors.PeerNotFound()
            outbox = services.participant_kick(room_id=room.pk, actor=request.user, peer_id=peer_id)
        except errors.RoomsError as err:
            self.message_user(request, err.message, messages.ERROR)
            return self._back(room)
        log_event(
            events_log, "kick", room=room.number, peer=None, user=request.user.pk, target=peer_id
        )
        publish_on_commit(outbox)
        message = REMOVED_MESSAGE.format(username=target.user.get_username(), peer_id=peer_id)
        self.log_change(request, room, message)
        self.message_user(request, message, messages.SUCCESS)
        return self._back(room)

    @method_post
    def console_end(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """End the room: everyone in it hears `room-closed` and is disconnected (4000)."""
        room = self._room_or_404(request, object_id, change=True)
        if self._close(request, room):
            self.message_user(request, ENDED_MESSAGE, messages.SUCCESS)
        return self._back(room)

    @method_post
    def console_lock(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Lock (`locked=1`) or unlock (`locked=0`) the room; everyone in it hears."""
        room = self._room_or_404(request, object_id, change=True)
        if not room.is_open:
            self.message_user(request, errors.RoomClosed.default_message, messages.ERROR)
            return self._back(room)
        locked = request.POST.get("locked") == "1"
        self._lock(request, room, locked=locked)
        self.message_user(request, LOCKED_MESSAGE if locked else UNLOCKED_MESSAGE, messages.SUCCESS)
        return self._back(room)

    @method_post
    def console_block(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Block a person's account: deactivated, and every socket of it closed (4401)."""
        room = self._room_or_404(request, object_id, change=True)
        if not request.user.has_perm(_change_user_permission()):
            raise PermissionDenied
        target = selectors.room_participant(room_id=room.pk, peer_id=request.POST.get("peer", ""))
        if target is None:
            self.message_user(request, errors.PeerNotFound.default_message, messages.ERROR)
            return self._back(room)
        if target.user_id == request.user.pk:
            self.message_user(request, _("You cannot block yourself."), messages.ERROR)
            return self._back(room)
        accounts_services.user_block(user=target.user)
        self.log_change(request, target.user, BLOCKED_MESSAGE)
        self.message_user(
            request, f"Blocked {target.user.get_username()}: {BLOCKED_MESSAGE}", messages.SUCCESS
        )
        return self._back(room)

    def _close(self, request: HttpRequest, room: Room) -> bool:
        outbox = services.room_close(room_id=room.pk, reason="admin")
        if outbox:
            log_event(events_log, "close", room=room.number, peer=None, user=request.user.pk)
            self.log_change(request, room, ENDED_MESSAGE)
        publish_on_commit(outbox)
        return bool(outbox)

    def _lock(self, request: HttpRequest, room: Room, *, locked: bool) -> None:
        publish_on_commit(services.room_set_locked(room_id=room.pk, locked=locked))
        self.log_change(request, room, LOCKED_MESSAGE if locked else UNLOCKED_MESSAGE)

    def save_model(self, request: HttpRequest, obj: Room, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            # Renamed, resized or (un)locked from the form: tell the room.
            publish_on_commit(services.room_announce_update(room=obj))

    @admin.action(description=_("Close selected rooms (disconnects everyone in them)"))
    def close_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        closed = sum(self._close(request, room) for room in queryset)
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
            self._lock(request, room, locked=locked)
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

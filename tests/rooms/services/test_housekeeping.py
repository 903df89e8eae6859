"""rooms/services/housekeeping.py: idle rooms closed, old chat deleted, expired sessions cleared."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.cached_db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone

from accounts.models import UserSession
from rooms.models import ChatMessage, Participant, Room
from rooms.services.housekeeping import prune

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def aged(room: Room, *, hours: float) -> Room:
    Room.objects.filter(pk=room.pk).update(created_at=timezone.now() - timedelta(hours=hours))
    return room


def visit(room: Room, user, *, left_hours_ago: float | None) -> Participant:
    left = None if left_hours_ago is None else timezone.now() - timedelta(hours=left_hours_ago)
    return Participant.objects.create(
        room=room,
        user=user,
        peer_id=f"p{Participant.objects.count()}",
        channel_name="c",
        left_at=left,
        left_reason="left" if left else "",
    )


def test_prune_closes_only_rooms_idle_past_the_limit(settings, alice, bob, make_room):
    """Closed: never used for 25 h, empty for 25 h. Kept: young, recently left, occupied."""
    settings.EMPTY_ROOM_CLOSE_AFTER = 24 * 3600
    never_used = aged(make_room(alice, name="never used"), hours=25)
    left_long_ago = aged(make_room(alice, name="left long ago"), hours=48)
    visit(left_long_ago, bob, left_hours_ago=25)
    aged(make_room(alice, name="young"), hours=2)
    left_recently = aged(make_room(alice, name="left recently"), hours=48)
    visit(left_recently, bob, left_hours_ago=3)
    occupied = aged(make_room(alice, name="occupied"), hours=48)
    visit(occupied, bob, left_hours_ago=None)

    report = prune()

    assert report.rooms_closed == 2
    still_open = set(Room.objects.open().values_list("name", flat=True))
    assert still_open == {"young", "left recently", "occupied"}
    assert not Room.objects.get(pk=never_used.pk).is_open
    assert not Room.objects.get(pk=left_long_ago.pk).is_open


def test_prune_deletes_chat_older_than_the_retention(settings, alice, make_room):
    """Chat lines older than CHAT_RETENTION_DAYS go; newer ones stay."""
    settings.CHAT_RETENTION_DAYS = 30
    room = make_room(alice)
    for text, days in (("old", 31), ("older", 90), ("recent", 29), ("now", 0)):
        line = ChatMessage.objects.create(room=room, user=alice, peer_id="p", text=text)
        ChatMessage.objects.filter(pk=line.pk).update(
            created_at=timezone.now() - timedelta(days=days)
        )
    assert prune().chat_deleted == 2
    assert sorted(ChatMessage.objects.values_list("text", flat=True)) == ["now", "recent"]


def test_prune_clears_expired_sessions_and_their_tracking(alice):
    """Expired sessions are deleted with the rows that track them; live ones stay."""
    live, dead = SessionStore(), SessionStore()
    live.create()
    dead.create()
    Session.objects.filter(session_key=dead.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    for key in (live.session_key, dead.session_key):
        UserSession.objects.create(user=alice, session_key=key)
    assert prune().sessions_deleted == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [live.session_key]


def test_prune_command_reports_what_it_did(capsys, alice, make_room):
    """`manage.py prune` runs the same housekeeping and says what it did."""
    aged(make_room(alice), hours=48)
    call_command("prune")
    assert capsys.readouterr().out == (
        "closed 1 idle rooms, deleted 0 chat lines, 0 participants of the call history "
        "and 0 expired sessions\n"
    )

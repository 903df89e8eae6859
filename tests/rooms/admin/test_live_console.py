"""Django admin as the live console: each room's people and connections, actions, trouble lists."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from rooms.models import CallQuality, Participant, Room
from tests.support.helpers import db_room

# Annotations (durations, loss ratios, per-day counts) differ between backends: both run.
pytestmark = pytest.mark.postgres

CHANGELIST = "/admin/rooms/room/"
QUALITY = "/admin/rooms/callquality/"


@pytest.fixture
def admin_client(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def report(reporter: Participant, remote: Participant, **fields) -> CallQuality:
    """A browser's live report about one remote peer, with figures of a good host pair."""
    values = {
        "state": "connected",
        "local_candidate_type": "host",
        "remote_candidate_type": "host",
        "protocol": "udp",
        "rtt_ms": 12,
        "packets_in": 1000,
        "packets_lost_in": 0,
        "bitrate_in_kbps": 1500,
        "bitrate_out_kbps": 1400,
        "first_frame_ms": 850,
        "ice_restarts": 0,
        **fields,
    }
    return CallQuality.objects.create(
        participant=reporter, remote_peer_id=remote.peer_id, remote=remote, **values
    )


def cells(html: str, row_attr: str) -> list[str]:
    """The text of each cell of the console row whose attribute is `row_attr`."""
    row = re.search(rf"<tr {row_attr}>(.*?)</tr>", html, re.S).group(1)
    texts = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return [re.sub(r"\s+", " ", text).strip() for text in texts]


def log_messages(obj) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(obj.pk), action_flag=CHANGE)
        .order_by("pk")
        .values_list("change_message", flat=True)
    )


@pytest.mark.django_db
class TestConsole:
    def test_shows_who_is_in_since_when_on_which_worker_media_and_each_pair(
        self, admin_client, make_room, add_participant, alice, bob, carol
    ):
        """The console lists the people now (worker, media) and each pair's live report."""
        room = make_room(alice, name="Standup")
        a, b = add_participant(room, alice), add_participant(room, bob)
        add_participant(room, carol, left=True, reason="left")
        Participant.objects.filter(pk=a.pk).update(worker="web-1:101")
        Participant.objects.filter(pk=b.pk).update(worker="web-2:202", audio=False, screen=True)
        report(a, b)
        report(
            b,
            a,
            local_candidate_type="relay",
            relay_protocol="udp",
            rtt_ms=340,
            packets_in=940,
            packets_lost_in=60,
            bitrate_in_kbps=300,
            bitrate_out_kbps=280,
            first_frame_ms=2100,
            ice_restarts=1,
            ice_failed=1,
        )
        # A final report is the end of a pair: not shown among the live ones.
        report(a, b, final=True)

        response = admin_client.get(f"{CHANGELIST}{room.pk}/console/")
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        html = response.content.decode()
        assert re.search(r'data-testid="console-people-now">2<', html)
        row_a = cells(html, f'data-peer-id="{a.peer_id}"')
        assert row_a[0] == "Alice Liddell (alice) owner"
        assert row_a[1] == a.peer_id
        assert re.fullmatch(r"\d\d:\d\d:\d\d \(for \d s\)", row_a[2]), row_a[2]
        assert row_a[3:7] == ["web-1:101", "on", "on", "no"]
        row_b = cells(html, f'data-peer-id="{b.peer_id}"')
        assert row_b[0] == "bob"
        assert row_b[3:7] == ["web-2:202", "off", "on", "sharing"]
        assert "Remove" in row_b[7] and "Block account" in row_b[7]
        # Carol left: not in the console (the inline below keeps the history).
        assert carol.username not in re.search(r'console-people".*?</table>', html, re.S).group(0)

        good = cells(html, f'data-pair="{a.peer_id}:{b.peer_id}"')
        assert good[:9] == [
            "alice → bob",
            "connected",
            "host → host udp",
            "12 ms",
            "0.0 %",
            "1500 kbit/s",
            "1400 kbit/s",
            "850 ms",
            "0 / 0",
        ]
        assert re.fullmatch(r"\d s ago", good[9]), good[9]
        bad = cells(html, f'data-pair="{b.peer_id}:{a.peer_id}"')
        assert bad[:9] == [
            "bob → alice",
            "connected",
            "relay → host udp via TURN/udp",
            "340 ms",
            "6.0 %",
            "300 kbit/s",
            "280 kbit/s",
            "2100 ms",
            "1 / 1",
        ]
        # The relayed path, the high RTT and the high loss are marked; the good pair is not.
        row = re.search(rf'<tr data-pair="{b.peer_id}:{a.peer_id}">.*?</tr>', html, re.S).group(0)
        assert len(re.findall(r'class="console-warn"', row)) == 3
        row = re.search(rf'<tr data-pair="{a.peer_id}:{b.peer_id}">.*?</tr>', html, re.S).group(0)
        assert "console-warn" not in row

    def test_change_page_embeds_the_console_and_its_module_without_inline_code(
        self, admin_client, make_room, add_participant, alice
    ):
        """The change page carries the console, its refresh URL and an ES module; nothing inline."""
        room = make_room(alice)
        add_participant(room, alice)
        html = admin_client.get(f"{CHANGELIST}{room.pk}/change/").content.decode()
        assert f'data-console-url="/admin/rooms/room/{room.pk}/console/"' in html
        assert 'data-refresh-ms="3000"' in html
        assert '<script type="module" src="/static/js/admin/console.js"></script>' in html
        # CSP: script-src and style-src 'self' only, so no inline script, style or handler.
        for script in re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S):
            assert script.strip() == "" or "json" in script, script
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        assert not re.search(r"\sstyle=", html)
        assert not re.search(r"\son[a-z]+=", html)

    def test_closed_room_console_offers_no_actions(self, admin_client, make_room, alice):
        """A closed room's console says when it closed, has no buttons, and refuses a lock."""
        room = make_room(alice)
        Room.objects.filter(pk=room.pk).update(closed_at=timezone.now())
        html = admin_client.get(f"{CHANGELIST}{room.pk}/console/").content.decode()
        assert "Closed at" in html
        assert "<form" not in html
        response = admin_client.post(f"{CHANGELIST}{room.pk}/console/lock/", {"locked": "1"})
        assert response.status_code == 302
        assert Room.objects.get(pk=room.pk).locked is False
        assert log_messages(room) == []

    def test_needs_staff_and_actions_need_post(self, make_room, alice, admin_client):
        """The console is the admin's: others go to the login page; its actions refuse GET."""
        room = make_room(alice)
        client = Client()
        client.force_login(alice)
        response = client.get(f"{CHANGELIST}{room.pk}/console/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        for action in ("remove", "end", "lock", "block"):
            assert admin_client.get(f"{CHANGELIST}{room.pk}/console/{action}/").status_code == 405

    def test_a_view_only_staff_member_sees_the_console_but_cannot_act(
        self, make_room, add_participant, alice, staff
    ):
        """Staff with only the view permission see the console without buttons; POSTs are 403."""
        from django.contrib.auth.models import Permission

        staff.user_permissions.add(Permission.objects.get(codename="view_room"))
        room = make_room(alice)
        present = add_participant(room, alice)
        client = Client()
        client.force_login(staff)
        html = client.get(f"{CHANGELIST}{room.pk}/console/").content.decode()
        assert present.peer_id in html
        assert "<form" not in html
        response = client.post(f"{CHANGELIST}{room.pk}/console/remove/", {"peer": present.peer_id})
        assert response.status_code == 403
        present.refresh_from_db()
        assert present.left_at is None


# --- Actions: they reach the sockets, and they are logged -----------------------------------


def post(client: Client, room: Room, action: str, **data) -> int:
    response = client.post(f"{CHANGELIST}{room.pk}/console/{action}/", data)
    assert response["Location"] == f"{CHANGELIST}{room.pk}/change/", response
    return response.status_code


@pytest.mark.django_db(transaction=True)
async def test_remove_kicks_the_peer_tells_the_others_and_is_logged(
    room_of, superuser, alice, bob, carol, caplog
):
    """Remove: the peer gets `kicked` and 4003, the others `peer-left`; both logs say so."""
    caplog.set_level(logging.INFO, logger="rooms.signaling")
    a, b, c = await room_of(alice, bob, carol)
    room = await db_room(a.room["number"])

    def remove() -> int:
        client = Client()
        client.force_login(superuser)
        return post(client, room, "remove", peer=b.peer_id)

    assert await database_sync_to_async(remove)() == 302
    assert await b.recv() == {"type": "kicked"}
    assert await b.expect_close() == 4003
    for other in (a, c):
        assert await other.recv() == {"type": "peer-left", "peerId": b.peer_id, "reason": "kicked"}
        await other.nothing_before_pong()
    assert await database_sync_to_async(log_messages)(room) == [
        f"Removed bob (peer {b.peer_id}) from the room."
    ]
    participant = await database_sync_to_async(Participant.objects.get)(peer_id=b.peer_id)
    assert participant.left_reason == "kicked"
    signaling = [r.fields for r in caplog.records if r.name == "rooms.signaling"]
    assert signaling[-2:] == [
        {
            "event": "kick",
            "room": room.number,
            "peer": None,
            "user": superuser.pk,
            "target": b.peer_id,
        },
        {
            "event": "leave",
            "reason": "kicked",
            "room": room.number,
            "peer": b.peer_id,
            "user": bob.pk,
        },
    ]


@pytest.mark.django_db(transaction=True)
async def test_removing_someone_who_left_changes_and_logs_nothing(room_of, superuser, alice, bob):
    """A stale Remove (the person left meanwhile) says so, and writes nothing to the log."""
    a, b = await room_of(alice, bob)
    room = await db_room(a.room["number"])
    gone = b.peer_id
    await b.send({"type": "leave"})
    assert await a.recv() == {"type": "peer-left", "peerId": gone, "reason": "left"}

    def remove():
        client = Client()
        client.force_login(superuser)
        post(client, room, "remove", peer=gone)
        return [str(m) for m in client.get(f"{CHANGELIST}{room.pk}/change/").context["messages"]]

    assert await database_sync_to_async(remove)() == ["That person is not in this room."]
    assert await database_sync_to_async(log_messages)(room) == []
    await a.nothing_before_pong()


@pytest.mark.django_db(transaction=True)
async def test_lock_unlock_and_end_reach_everyone_and_are_logged(
    room_of, superuser, alice, bob, caplog
):
    """Lock, unlock, end from the console: room-updated twice, room-closed and 4000; three logs."""
    caplog.set_level(logging.INFO, logger="rooms.signaling")
    a, b = await room_of(alice, bob)
    room = await db_room(a.room["number"])
    client = Client()

    def act(action: str, **data) -> int:
        client.force_login(superuser)
        return post(client, room, action, **data)

    for locked in (True, False):
        assert await database_sync_to_async(act)("lock", locked="1" if locked else "0") == 302
        for peer in (a, b):
            message = await peer.recv()
            assert (message["type"], message["room"]["locked"]) == ("room-updated", locked)
    assert await database_sync_to_async(act)("end") == 302
    for peer in (a, b):
        assert await peer.recv() == {"type": "room-closed", "reason": "admin"}
        assert await peer.expect_close() == 4000
    closes = [
        r.fields
        for r in caplog.records
        if r.name == "rooms.signaling" and r.fields["event"] == "close"
    ]
    assert closes == [{"event": "close", "room": room.number, "peer": None, "user": superuser.pk}]
    # Ending it again does nothing, and logs nothing.
    assert await database_sync_to_async(act)("end") == 302
    assert await database_sync_to_async(log_messages)(room) == [
        "Locked the room.",
        "Unlocked the room.",
        "Ended the room: everyone in it was disconnected.",
    ]


@pytest.mark.django_db(transaction=True)
async def test_block_from_the_console_closes_the_account_and_is_logged(
    room_of, superuser, alice, bob
):
    """Block: the account is deactivated, its socket closes 4401, the room hears kicked; logged."""
    a, b = await room_of(alice, bob)
    room = await db_room(a.room["number"])

    def block() -> int:
        client = Client()
        client.force_login(superuser)
        return post(client, room, "block", peer=b.peer_id)

    assert await database_sync_to_async(block)() == 302
    assert await b.expect_close() == 4401
    assert await a.recv() == {"type": "peer-left", "peerId": b.peer_id, "reason": "kicked"}
    user = await database_sync_to_async(get_user_model().objects.get)(pk=bob.pk)
    assert user.is_active is False
    assert await database_sync_to_async(log_messages)(user) == [
        "Blocked: deactivated and signed out everywhere."
    ]
    entry = await database_sync_to_async(
        lambda: LogEntry.objects.select_related("content_type").get(object_id=str(bob.pk))
    )()
    assert (entry.content_type.app_label, entry.content_type.model) == ("auth", "user")
    assert entry.user_id == superuser.pk


@pytest.mark.django_db
def test_changelist_actions_are_logged_per_room(admin_client, make_room, add_participant, alice):
    """The changelist's close, lock and unlock actions write one log entry per room they change."""
    first, second = make_room(alice), make_room(alice)
    add_participant(first, alice)
    for action in ("lock_rooms", "unlock_rooms", "close_rooms"):
        response = admin_client.post(
            CHANGELIST, {"action": action, "_selected_action": [first.pk, second.pk], "index": 0}
        )
        assert response.status_code == 302
    # Closing a closed room again changes nothing, so logs nothing.
    admin_client.post(CHANGELIST, {"action": "close_rooms", "_selected_action": [first.pk]})
    expected = [
        "Locked the room.",
        "Unlocked the room.",
        "Ended the room: everyone in it was disconnected.",
    ]
    assert log_messages(first) == expected
    assert log_messages(second) == expected


@pytest.mark.django_db
def test_user_admin_block_is_logged(admin_client, bob):
    """The user admin's Block action deactivates and writes its change message to the log."""
    response = admin_client.post(
        "/admin/auth/user/", {"action": "block_users", "_selected_action": [bob.pk]}
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.is_active is False
    assert log_messages(bob) == ["Blocked: deactivated and signed out everywhere."]


# --- Lists to find trouble ------------------------------------------------------------------


@pytest.mark.django_db
class TestTroubleLists:
    @pytest.fixture
    def reports(self, make_room, add_participant, alice, bob):
        room = make_room(alice)
        a, b = add_participant(room, alice), add_participant(room, bob)
        return {
            "good": report(a, b),
            "relayed": report(b, a, local_candidate_type="relay", relay_protocol="udp"),
            "failed": report(a, b, final=True, state="failed", ice_failed=1),
            # 5 lost of 100 expected: exactly the threshold (5 %).
            "lossy": report(b, a, final=True, packets_in=95, packets_lost_in=5),
            # 300 ms: exactly the threshold; no loss figures at all.
            "slow": report(
                add_participant(room, alice), b, rtt_ms=300, packets_in=None, packets_lost_in=None
            ),
        }

    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            ("relayed", ["relayed"]),
            ("ice-failed", ["failed"]),
            ("high-loss", ["lossy"]),
            ("high-rtt", ["slow"]),
            (None, ["failed", "good", "lossy", "relayed", "slow"]),
        ],
    )
    def test_each_list_holds_exactly_its_calls(self, admin_client, reports, kind, expected):
        """Each trouble filter lists exactly the reports past its threshold."""
        response = admin_client.get(QUALITY, {"trouble": kind} if kind else {})
        assert response.status_code == 200
        names = {report.pk: name for name, report in reports.items()}
        assert sorted(names[row.pk] for row in response.context["cl"].result_list) == expected

    def test_loss_and_rtt_thresholds_are_what_the_filter_names_say(self, admin_client, reports):
        """The filter's choices name their thresholds (5 %, 300 ms)."""
        html = admin_client.get(QUALITY).content.decode()
        assert "loss at least 5 %" in html
        assert "RTT at least 300 ms" in html


@pytest.mark.django_db
def test_rooms_sort_by_size_and_by_duration(admin_client, make_room, add_participant, alice, bob):
    """The room list shows people in all and how long each was open, and sorts by both."""
    small, big, old = make_room(alice), make_room(alice), make_room(alice)
    add_participant(small, alice)
    for user in (alice, bob, alice):
        add_participant(big, user, left=True, reason="left")
    now = timezone.now()
    Room.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=3, minutes=5))
    Room.objects.filter(pk=big.pk).update(
        created_at=now - timedelta(minutes=30), closed_at=now - timedelta(minutes=18)
    )

    def order(o: str) -> list[int]:
        return [
            room.pk for room in admin_client.get(CHANGELIST, {"o": o}).context["cl"].result_list
        ]

    assert order("-7.1")[:2] == [big.pk, small.pk]
    assert order("-8.1")[:2] == [old.pk, big.pk]
    html = admin_client.get(CHANGELIST).content.decode()
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*?{big.number}.*?</tr>", html, re.S).group(0)
    assert re.search(r'class="field-people_total[^"]*">2<', row)
    assert re.search(r'class="field-duration_display[^"]*">12 min<', row)
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*?{old.number}.*?</tr>", html, re.S).group(0)
    assert re.search(r'class="field-duration_display[^"]*">3 h 05 min<', row)

"""Django admin for rooms: list, search, read-only history, and actions that reach live peers."""

from __future__ import annotations

import re

import pytest
from channels.db import database_sync_to_async
from django.contrib import admin
from django.test import Client

from rooms.models import Room
from tests.support.helpers import db_room

CHANGELIST = "/admin/rooms/room/"


@pytest.fixture
def admin_client_for(superuser):
    def make() -> Client:
        client = Client()
        client.force_login(superuser)
        return client

    return make


def listed(response) -> list[str]:
    return sorted(room.number for room in response.context["cl"].result_list)


def run_action(client: Client, action: str, *rooms: Room):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [room.pk for room in rooms], "index": 0},
    )


@pytest.mark.django_db
class TestChangelist:
    def test_lists_number_name_owner_open_and_people_now(
        self, admin_client_for, make_room, add_participant, alice, bob
    ):
        """The changelist shows each room's number, name, owner, open state and people in it now."""
        room = make_room(alice, name="Daily sync")
        add_participant(room, alice)
        add_participant(room, bob)
        add_participant(room, bob, left=True, reason="left")
        response = admin_client_for().get(CHANGELIST)
        assert response.status_code == 200
        html = response.content.decode()
        row = re.search(rf"<tr[^>]*>.*?{room.number}.*?</tr>", html, re.S).group(0)
        assert "Daily sync" in row
        assert re.search(r'class="field-owner[^"]*">alice<', row)
        assert re.search(r'class="field-is_open[^"]*"><img [^>]*alt="True"', row)
        assert re.search(r'class="field-people_now[^"]*">2<', row)
        for header in ("Number", "Name", "Owner", "Open", "People now"):
            assert re.search(rf"<th[^>]*>.*?{header}", html, re.S | re.I), header

    def test_closed_room_is_shown_closed(self, admin_client_for, make_room, alice):
        """A closed room's open column is false."""
        room = make_room(alice)
        Room.objects.filter(pk=room.pk).update(closed_at=room.created_at)
        html = admin_client_for().get(CHANGELIST).content.decode()
        assert re.search(r'class="field-is_open[^"]*"><img [^>]*alt="False"', html)

    def test_search_by_number_name_and_owner(self, admin_client_for, make_room, alice, bob):
        """Search finds rooms by number, by name and by the owner's username."""
        mine = make_room(alice, name="Quarterly planning")
        theirs = make_room(bob, name="Retro")
        client = admin_client_for()
        assert listed(client.get(CHANGELIST, {"q": mine.number})) == [mine.number]
        assert listed(client.get(CHANGELIST, {"q": "quarterly"})) == [mine.number]
        assert listed(client.get(CHANGELIST, {"q": "bob"})) == [theirs.number]
        assert listed(client.get(CHANGELIST, {"q": "nothing-like-this"})) == []

    def test_change_page_shows_read_only_participants_and_chat(
        self, admin_client_for, make_room, add_participant, alice, bob
    ):
        """The change page lists participants and chat lines read-only: no inputs, no add rows."""
        room = make_room(alice)
        participant = add_participant(room, bob, left=True, reason="kicked")
        room.chat_messages.create(user=bob, peer_id=participant.peer_id, text="see you")
        response = admin_client_for().get(f"{CHANGELIST}{room.pk}/change/")
        assert response.status_code == 200
        html = response.content.decode()
        assert participant.peer_id in html and "see you" in html
        for prefix in ("participants", "chat_messages"):
            assert f'name="{prefix}-TOTAL_FORMS"' in html
            fields = re.findall(rf'<(\w+)[^>]*name="{prefix}-0-[^"]*"[^>]*>', html)
            inputs = re.findall(rf'<input[^>]*name="{prefix}-0-[^"]*"[^>]*>', html)
            assert fields and set(fields) == {"input"}, fields
            assert all('type="hidden"' in tag for tag in inputs), inputs
        formsets = {fs.formset.prefix: fs for fs in response.context["inline_admin_formsets"]}
        assert set(formsets) == {"participants", "chat_messages"}
        for formset in formsets.values():
            assert not formset.has_add_permission and not formset.has_change_permission
            assert formset.formset.can_delete is False

    def test_actions_close_lock_unlock(self, admin_client_for, make_room, add_participant, alice):
        """The close, lock and unlock actions change the selected rooms."""
        first, second = make_room(alice), make_room(alice)
        present = add_participant(first, alice)
        client = admin_client_for()
        assert run_action(client, "lock_rooms", first, second).status_code == 302
        assert set(Room.objects.values_list("locked", flat=True)) == {True}
        assert run_action(client, "unlock_rooms", first).status_code == 302
        assert Room.objects.get(pk=first.pk).locked is False
        assert Room.objects.get(pk=second.pk).locked is True
        assert run_action(client, "close_rooms", first).status_code == 302
        assert Room.objects.get(pk=first.pk).closed_at is not None
        assert Room.objects.get(pk=second.pk).closed_at is None
        present.refresh_from_db()
        assert present.left_reason == "closed"

    def test_needs_staff(self, make_room, alice):
        """The admin is closed to a logged-in user who is not staff."""
        client = Client()
        client.force_login(alice)
        response = client.get(CHANGELIST)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


# --- Actions reaching connected peers -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_admin_close_reaches_connected_peers(room_of, admin_client_for, alice, bob):
    """The admin close action sends room-closed (admin) to every peer, then closes it with 4000."""
    a, b = await room_of(alice, bob)
    room = await db_room(a.room["number"])

    def close_in_admin() -> int:
        return run_action(admin_client_for(), "close_rooms", room).status_code

    assert await database_sync_to_async(close_in_admin)() == 302
    for peer in (a, b):
        assert await peer.recv() == {"type": "room-closed", "reason": "admin"}
        assert await peer.expect_close() == 4000


@pytest.mark.django_db(transaction=True)
async def test_admin_lock_and_unlock_reach_connected_peers(room_of, admin_client_for, alice, bob):
    """The admin lock/unlock actions send room-updated with the new locked state to every peer."""
    a, b = await room_of(alice, bob)
    room = await db_room(a.room["number"])

    def act(action: str) -> int:
        return run_action(admin_client_for(), action, room).status_code

    for action, locked in (("lock_rooms", True), ("unlock_rooms", False)):
        assert await database_sync_to_async(act)(action) == 302
        for peer in (a, b):
            assert await peer.recv() == {
                "type": "room-updated",
                "room": {
                    "number": room.number,
                    "name": "alice's room",
                    "capacity": 6,
                    "locked": locked,
                    "hasPin": False,
                    "owner": {"id": alice.pk, "username": "alice"},
                    "participants": 2,
                    "closed": False,
                    "mode": "auto",
                    "media": "mesh",
                },
            }
    await a.nothing_before_pong()
    await b.nothing_before_pong()


@pytest.mark.django_db(transaction=True)
async def test_admin_cannot_delete_an_open_room(room_of, admin_client_for, alice, bob):
    """Deleting an open room is refused (close it first), so nobody is stranded in it."""
    a, b = await room_of(alice, bob)
    room = await db_room(a.room["number"])

    def confirm_delete() -> int:
        response = admin_client_for().post(
            CHANGELIST,
            {"action": "delete_selected", "_selected_action": [room.pk], "post": "yes"},
        )
        return response.status_code

    assert await database_sync_to_async(confirm_delete)() == 403
    assert await database_sync_to_async(Room.objects.filter(pk=room.pk).exists)()
    await a.nothing_before_pong()
    await b.nothing_before_pong()


@pytest.mark.django_db
def test_open_room_change_page_offers_no_delete(admin_client_for, make_room, alice):
    """An open room's delete page is refused; once closed it can be deleted."""
    room = make_room(alice)
    client = admin_client_for()
    assert client.get(f"{CHANGELIST}{room.pk}/delete/").status_code == 403
    room.closed_at = room.created_at
    room.save(update_fields=["closed_at"])
    assert client.get(f"{CHANGELIST}{room.pk}/delete/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "valid"), [("mesh", False), ("auto", True)])
def test_admin_form_refuses_more_than_12_seats_on_the_mesh(
    rf, superuser, make_room, alice, mode, valid
):
    """The console's room form refuses 13 seats for a mesh room (on capacity); auto takes them."""
    room = make_room(alice, media=mode)
    request = rf.get(f"{CHANGELIST}{room.pk}/change/")
    request.user = superuser
    model_admin = admin.site._registry[Room]
    form_class = model_admin.get_form(request, room)
    data = {
        "name": room.name,
        "owner": alice.pk,
        "capacity": 13,
        "locked": "",
    }
    form = form_class(data, instance=room)
    assert form.is_valid() is valid
    if not valid:
        assert form.errors == {
            "capacity": [
                "A direct (peer to peer) room holds at most 12 people; "
                "let it use the media server for more."
            ]
        }

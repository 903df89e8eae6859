"""The seating functions (signaling/seating.py), called directly: no socket, no router.

Real database; presence in memory, as the app keeps it without REDIS_URL; a
channel layer that records what it is asked. Each test compares the whole
membership and the whole messages, written out here.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async

from rooms import errors, events, wire
from rooms import protocol as p
from rooms.models import Participant, Room
from sfu.parking import Parking
from signaling import limits, seating
from signaling.membership import Account, Membership
from signaling.presence import MemoryPresence
from signaling.runtime.joins import JoinSlots
from tests.support.helpers import peer_obj

pytestmark = pytest.mark.django_db(transaction=True)

NO_ICE = {"iceServers": [], "iceTransportPolicy": "all", "expiresAt": None}


class Layer:
    """A channel layer that records group changes and sends, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def group_add(self, group: str, channel: str) -> None:
        self.calls.append(("group_add", group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        self.calls.append(("group_discard", group, channel))

    async def group_send(self, group: str, event: dict[str, Any]) -> None:
        self.calls.append(("group_send", group, event["type"]))

    async def send(self, channel: str, event: dict[str, Any]) -> None:
        self.calls.append(("send", channel, event["type"]))


def account_of(user, *, address: str = "198.51.100.7") -> Account:
    return Account(
        user=user,
        wire_user=wire.user(user),
        address=address,
        session=None,
        messages=limits.message_bucket(),
        strikes=limits.strike_bucket(),
        chat=limits.chat_bucket(),
    )


async def sfu_down() -> bool:
    return False


@pytest.fixture
def presence() -> MemoryPresence:
    return MemoryPresence()


@pytest.fixture
def slots() -> JoinSlots:
    return JoinSlots()


@pytest.fixture
def parking() -> Parking:
    return Parking()


@pytest.fixture
def seat_for(presence, slots):
    """Seat `user` through `create` or `join` on a channel of theirs: the outcome and the layer."""

    async def seat(kind: str, user, *, channel: str, **msg: Any) -> tuple[seating.Outcome, Layer]:
        layer = Layer()
        function = seating.create if kind == "create" else seating.join
        defaults = (
            {"name": None, "capacity": None, "pin": None, "media": p.MEDIA_AUTO}
            if kind == "create"
            else {"pin": None, "resume": None}
        )
        outcome = await function(
            account=account_of(user),
            membership=None,
            line=seating.Line(channel=channel, layer=layer),
            presence=presence,
            slots=slots,
            sfu_available=sfu_down,
            msg={**defaults, **msg},
            msg_id="m1",
        )
        return outcome, layer

    return seat


@database_sync_to_async
def db_state(peer_id: str) -> tuple[Any, ...]:
    participant = Participant.objects.select_related("room").get(peer_id=peer_id)
    return (participant.channel_name, participant.left_at is not None, participant.left_reason)


@database_sync_to_async
def db_room(number: str) -> Room:
    return Room.objects.select_related("owner").get(number=number)


def room_object(room: Room, *, participants: int, name: str = "alice's room") -> dict[str, Any]:
    return {
        "number": room.number,
        "name": name,
        "capacity": 6,
        "locked": False,
        "hasPin": False,
        "owner": {"id": room.owner_id, "username": room.owner.username},
        "participants": participants,
        "closed": False,
        "mode": "auto",
        "media": "mesh",
    }


async def test_create_seats_the_owner_with_nobody_to_tell(seat_for, alice, presence, slots):
    """create: the owner's membership, an empty outbox, `joined` created, the group subscribed."""
    outcome, layer = await seat_for("create", alice, channel="chan.alice")
    membership = outcome.membership
    room = await db_room(membership.number)
    assert membership == Membership(
        room_id=room.pk,
        number=room.number,
        peer_id=membership.peer_id,
        moderator=True,
        participant_pk=membership.participant_pk,
        capacity=6,
        media="mesh",
        peers={},
    )
    assert (outcome.outbox, outcome.seated, outcome.close, outcome.sfu_back) == (
        (),
        "create",
        None,
        False,
    )
    assert outcome.replies == (
        {
            "type": "joined",
            "room": room_object(room, participants=1),
            "peerId": membership.peer_id,
            "peers": [],
            "created": True,
            "resumeToken": outcome.replies[0]["resumeToken"],
            "history": [],
            "ice": NO_ICE,
            "qualityLimits": wire.quality_limits(),
            "re": "m1",
        },
    )
    assert layer.calls == [("group_add", f"room-{room.number}", "chan.alice")]
    assert await db_state(membership.peer_id) == ("chan.alice", False, "")
    assert await presence.deadline(membership.peer_id) > time.time()
    assert slots.joining == {}


async def test_create_draws_again_when_the_number_is_taken(seat_for, alice, bob, monkeypatch):
    """The drawing loop passes over a number an open room holds, unsubscribing from it."""
    first, _ = await seat_for("create", alice, channel="chan.alice")
    taken = first.membership.number
    monkeypatch.setattr(seating.services, "room_numbers", lambda: iter([taken, "987654321"]))
    outcome, layer = await seat_for("create", bob, channel="chan.bob")
    assert outcome.membership.number == "987654321"
    assert layer.calls == [
        ("group_add", f"room-{taken}", "chan.bob"),
        ("group_discard", f"room-{taken}", "chan.bob"),
        ("group_add", "room-987654321", "chan.bob"),
    ]


async def test_join_knows_the_room_and_tells_it(seat_for, alice, bob):
    """join: the peers by channel, one `peer.joined` for the room, `joined` listing the owner."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    number = owner.membership.number
    outcome, layer = await seat_for("join", bob, channel="chan.bob", room=number)
    membership = outcome.membership
    room = await db_room(number)
    assert membership == Membership(
        room_id=room.pk,
        number=number,
        peer_id=membership.peer_id,
        moderator=False,
        participant_pk=membership.participant_pk,
        capacity=6,
        media="mesh",
        peers={owner.membership.peer_id: "chan.alice"},
    )
    [item] = outcome.outbox
    assert (item.group, item.channel) == (f"room-{number}", None)
    assert item.event == {
        "type": events.PEER_JOINED,
        "room": room.pk,
        "peer_id": membership.peer_id,
        "channel": "chan.bob",
        "text": item.event["text"],
    }
    assert orjson.loads(item.event["text"]) == {
        "type": "peer-joined",
        "peer": await peer_obj(membership.peer_id),
    }
    assert outcome.replies == (
        {
            "type": "joined",
            "room": room_object(room, participants=2),
            "peerId": membership.peer_id,
            "peers": [await peer_obj(owner.membership.peer_id)],
            "created": False,
            "resumeToken": outcome.replies[0]["resumeToken"],
            "history": [],
            "ice": NO_ICE,
            "qualityLimits": wire.quality_limits(),
            "re": "m1",
        },
    )
    assert outcome.seated == "join"
    assert layer.calls == [("group_add", f"room-{number}", "chan.bob")]


async def test_a_wrong_pin_is_refused_and_unsubscribed(seat_for, alice, bob, slots):
    """join with a wrong PIN: WrongPin raised, the group left again, the join slot given back."""
    owner, _ = await seat_for("create", alice, channel="chan.alice", pin="73519")
    number = owner.membership.number
    layer = Layer()
    with pytest.raises(errors.WrongPin):
        await seating.join(
            account=account_of(bob),
            membership=None,
            line=seating.Line(channel="chan.bob", layer=layer),
            presence=MemoryPresence(),
            slots=slots,
            sfu_available=sfu_down,
            msg={"room": number, "pin": "99124", "resume": None},
            msg_id="j1",
        )
    assert layer.calls == [
        ("group_add", f"room-{number}", "chan.bob"),
        ("group_discard", f"room-{number}", "chan.bob"),
    ]
    assert slots.joining == {}


async def test_a_seated_socket_cannot_join_again(seat_for, alice, presence, slots):
    """join from a socket in a room: `already-in-room`, before any work."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    layer = Layer()
    with pytest.raises(p.ClientError) as refused:
        await seating.join(
            account=account_of(alice),
            membership=owner.membership,
            line=seating.Line(channel="chan.alice", layer=layer),
            presence=presence,
            slots=slots,
            sfu_available=sfu_down,
            msg={"room": owner.membership.number, "pin": None, "resume": None},
            msg_id="j2",
        )
    assert (refused.value.code, refused.value.msg_id) == ("already-in-room", "j2")
    assert layer.calls == []


async def test_joins_past_the_accounts_slots_are_refused(seat_for, alice, slots, settings):
    """With every join slot of the account held, a create is `rate-limited` at once."""
    settings.JOINS_IN_FLIGHT_PER_USER = 1
    with slots.take(alice.pk), pytest.raises(p.ClientError) as refused:
        await seat_for("create", alice, channel="chan.alice")
    assert (refused.value.code, refused.value.msg_id) == ("rate-limited", "m1")
    assert slots.joining == {}


async def test_detach_then_resume_carries_on_as_the_same_peer(
    seat_for, alice, bob, presence, parking, settings
):
    """A dropped socket keeps its peer for the grace; its token resumes it on a new channel."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    guest, _ = await seat_for("join", bob, channel="chan.bob", room=owner.membership.number)
    was = guest.membership
    number = was.number
    old_line = Layer()
    detached = await seating.detach(
        user_id=bob.pk,
        was=was,
        line=seating.Line(channel="chan.bob", layer=old_line),
        presence=presence,
        parking=parking,
    )
    assert detached == seating.Outcome(membership=None)
    assert old_line.calls == [("group_discard", f"room-{number}", "chan.bob")]
    deadline = await presence.deadline(was.peer_id)
    assert time.time() < deadline <= time.time() + settings.RESUME_GRACE

    token = guest.replies[0]["resumeToken"]
    outcome, layer = await seat_for("join", bob, channel="chan.bob2", room=number, resume=token)
    room = await db_room(number)
    assert outcome.membership == Membership(
        room_id=room.pk,
        number=number,
        peer_id=was.peer_id,
        moderator=False,
        participant_pk=was.participant_pk,
        capacity=6,
        media="mesh",
        peers={owner.membership.peer_id: "chan.alice"},
    )
    assert outcome.outbox == (
        events.Outgoing(
            group=f"room-{number}",
            event={
                "type": events.MOVED,
                "room": room.pk,
                "peer_id": was.peer_id,
                "channel": "chan.bob2",
            },
        ),
        events.Outgoing(
            channel="chan.bob",
            event={
                "type": events.REPLACED,
                "room": room.pk,
                "peer_id": was.peer_id,
                "resumed": True,
            },
        ),
    )
    [joined] = outcome.replies
    assert (joined["peerId"], joined["created"], joined["resumed"], joined["replayed"]) == (
        was.peer_id,
        False,
        True,
        False,
    )
    assert (outcome.seated, outcome.sfu_back) == ("resume", False)
    assert layer.calls == [("group_add", f"room-{number}", "chan.bob2")]
    assert await db_state(was.peer_id) == ("chan.bob2", False, "")


async def test_a_forged_token_joins_anew_and_says_so(seat_for, alice, bob):
    """A token that names no seat of this account: an ordinary join, `resumed` false."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    number = owner.membership.number
    outcome, _ = await seat_for("join", bob, channel="chan.bob", room=number, resume="forged")
    [joined] = outcome.replies
    assert (joined["resumed"], "replayed" in joined, outcome.seated) == (False, False, "join")


async def test_leave_tells_the_room_and_forgets_the_peer(seat_for, alice, bob, presence, parking):
    """leave: no membership, `peer.left` (reason left) for the room, presence and group dropped."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    guest, _ = await seat_for("join", bob, channel="chan.bob", room=owner.membership.number)
    was = guest.membership
    layer = Layer()
    outcome = await seating.leave(
        user_id=bob.pk,
        was=was,
        reason=Participant.LeftReason.LEFT,
        line=seating.Line(channel="chan.bob", layer=layer),
        presence=presence,
        parking=parking,
    )
    assert outcome == seating.Outcome(
        membership=None,
        outbox=(
            events.Outgoing(
                group=was.group,
                event={
                    "type": events.PEER_LEFT,
                    "room": was.room_id,
                    "peer_id": was.peer_id,
                    "text": wire.encode(
                        {"type": "peer-left", "peerId": was.peer_id, "reason": "left"}
                    ),
                },
            ),
        ),
    )
    assert layer.calls == [("group_discard", was.group, "chan.bob")]
    assert await presence.deadline(was.peer_id) is None
    assert await db_state(was.peer_id) == ("chan.bob", True, "left")


async def test_leave_unannounced_leaves_the_database_alone(seat_for, alice, presence, parking):
    """leave with announce False (kicked, closed: the room knows): nothing written, nothing sent."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    was = owner.membership
    outcome = await seating.leave(
        user_id=alice.pk,
        was=was,
        reason=Participant.LeftReason.KICKED,
        line=seating.Line(channel="chan.alice", layer=Layer()),
        presence=presence,
        parking=parking,
        announce=False,
    )
    assert outcome == seating.Outcome(membership=None)
    assert await db_state(was.peer_id) == ("chan.alice", False, "")


async def test_let_go_closes_the_socket_quietly(seat_for, alice, parking):
    """let_go (replaced elsewhere): no membership, nothing for the room, close with 4409."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    layer = Layer()
    outcome = await seating.let_go(
        user_id=alice.pk,
        was=owner.membership,
        code=p.CLOSE_REPLACED,
        resumed=False,
        line=seating.Line(channel="chan.alice", layer=layer),
        parking=parking,
    )
    assert outcome == seating.Outcome(membership=None, close=4409)
    assert layer.calls == [("group_discard", owner.membership.group, "chan.alice")]


async def test_kick_by_the_owner_removes_the_guest(seat_for, alice, bob):
    """kick: the guest's socket told `kicked`, the room `peer-left` (kicked), membership kept."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    guest, _ = await seat_for("join", bob, channel="chan.bob", room=owner.membership.number)
    membership = owner.membership
    membership.peers[guest.membership.peer_id] = "chan.bob"  # as `peer.joined` would have
    target = guest.membership.peer_id
    outcome = await seating.kick(actor=alice, membership=membership, target=target, msg_id="k1")
    assert outcome.membership is membership
    assert outcome.outbox == (
        events.Outgoing(
            channel="chan.bob",
            event={
                "type": events.KICKED,
                "room": membership.room_id,
                "text": wire.encode({"type": "kicked"}),
            },
        ),
        events.Outgoing(
            group=membership.group,
            event={
                "type": events.PEER_LEFT,
                "room": membership.room_id,
                "peer_id": target,
                "text": wire.encode({"type": "peer-left", "peerId": target, "reason": "kicked"}),
            },
        ),
    )
    assert await db_state(target) == ("chan.bob", True, "kicked")


async def test_only_the_owner_moderates(seat_for, alice, bob):
    """A guest's kick, lock and close are `forbidden`, each echoing its id; nothing changes."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    guest, _ = await seat_for("join", bob, channel="chan.bob", room=owner.membership.number)
    membership = guest.membership
    attempts = [
        seating.kick(
            actor=bob, membership=membership, target=owner.membership.peer_id, msg_id="x1"
        ),
        seating.set_locked(membership=membership, locked=True, msg_id="x2"),
        seating.close_room(user_id=bob.pk, membership=membership, msg_id="x3"),
        seating.set_mode(
            membership=membership, mode=p.MEDIA_SFU, sfu_available=sfu_down, msg_id="x4"
        ),
    ]
    for attempt, msg_id in zip(attempts, ("x1", "x2", "x3", "x4"), strict=True):
        with pytest.raises(p.ClientError) as refused:
            await attempt
        assert (refused.value.code, refused.value.msg_id) == ("forbidden", msg_id)
    room = await db_room(membership.number)
    assert (room.locked, room.closed_at) == (False, None)


async def test_the_owner_locks_and_closes(seat_for, alice):
    """lock: `room-updated` for the room with locked true; close: the room closed, `room.closed`."""
    owner, _ = await seat_for("create", alice, channel="chan.alice")
    membership = owner.membership
    locked = await seating.set_locked(membership=membership, locked=True, msg_id=None)
    [update] = locked.outbox
    assert (update.group, update.event["type"]) == (membership.group, events.ROOM_UPDATED)
    assert orjson.loads(update.event["text"])["room"]["locked"] is True
    closed = await seating.close_room(user_id=alice.pk, membership=membership, msg_id=None)
    assert [(item.group, item.event["type"]) for item in closed.outbox] == [
        (membership.group, events.ROOM_CLOSED)
    ]
    room = await db_room(membership.number)
    assert room.closed_at is not None

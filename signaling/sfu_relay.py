"""The SFU relay (docs/protocol.md section 4): a socket's SFU messages to its Janus seat.

`sfu-offer`, `sfu-answer`, `sfu-candidate`, `sfu-resubscribe`, `sfu-layer`
and `sfu-leave` go to this person's `SfuSeat` (sfu/seat.py), made at the
first of them; the seat sends what Janus says straight to the socket. The
seat outlives a dropped socket: it is parked for the socket that resumes
(`park_seat`, `take_back`, sfu/parking.py), and closed when the person
leaves (`close_seat`).

The browser's SDP and candidates are examined (sfu/sdp.py) before Janus
sees them; what Janus refuses of them is still the browser's (`bad-message`),
while Janus away is `sfu-unavailable`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from rooms import errors, wire
from rooms import protocol as p
from sfu import JanusError, candidate_policy, lifecycle, sdp
from sfu.parking import Parking
from sfu.seat import SfuSeat
from sfu.videoroom import refused_sdp
from signaling.membership import Account, Membership
from signaling.sfu_listener import Send, SocketSeatListener, tell_release

# The name these lines had as the consumer's: what log filters know.
logger = logging.getLogger("signaling.consumer")


@dataclass(frozen=True)
class Relay:
    """What the SFU messages of one socket work with."""

    account: Account
    membership: Membership
    # This socket's channel: the holder of its Janus seat in the parking.
    holder: str
    # Sends a message to this socket's browser.
    send: Send
    parking: Parking


def new_seat(membership: Membership) -> SfuSeat:
    """The Janus seat of this membership (the one place a seat is made)."""
    return SfuSeat(
        room_id=membership.room_id,
        capacity=membership.capacity,
        feed_id=membership.participant_pk,
        peer_id=membership.peer_id,
        expected_peers=lambda: len(membership.peers),
    )


async def seat_of(relay: Relay, msg_id: str | None) -> SfuSeat:
    """This person's Janus seat, made at their first SFU message; refused on a mesh call."""
    membership = relay.membership
    # A seat made on the SFU serves on after a return to the mesh, until the
    # browser leaves it (`sfu-leave`) or the grace ends (`sfu.released`).
    if membership.media != p.MEDIA_SFU and membership.sfu is None:
        raise p.ClientError(
            p.FORBIDDEN,
            "This call is direct (peer to peer), not through the SFU.",
            msg_id=msg_id,
        )
    if membership.sfu is None:
        membership.sfu = new_seat(membership)
        await relay.parking.add(
            peer_id=membership.peer_id,
            seat=membership.sfu,
            holder=relay.holder,
            listener=SocketSeatListener(relay.send),
        )
    return membership.sfu


def _examined(text: str, *, kind: sdp.Kind, max_sections: int) -> str:
    """The browser's SDP as Janus may get it (sfu/sdp.py), or `bad-message` saying why."""
    try:
        return sdp.examine_sdp(
            text, kind=kind, policy=candidate_policy(), max_sections=max_sections
        )
    except sdp.SdpRejected as err:
        raise p.bad(f"'sdp' refused: {err.reason}") from None


def _refused_by_janus(error: JanusError) -> p.ClientError:
    """Janus refused an SDP the examiner let through: still the browser's, not an outage."""
    return p.bad(f"'sdp' refused by the SFU: {error.reason}")


def _unavailable(relay: Relay, what: str, err: Exception, msg_id: str | None) -> p.ClientError:
    """Janus failed us: forget that it was up, and tell the browser the SFU is away."""
    lifecycle.forget_availability()
    logger.info("sfu: %s for %s: %s", what, relay.membership.peer_id, err)
    return p.ClientError(p.SFU_UNAVAILABLE, errors.SfuUnavailable.default_message, msg_id=msg_id)


async def offer(relay: Relay, msg: dict[str, Any], msg_id: str | None) -> None:
    """Publish the browser's media in Janus; answer with Janus' SDP."""
    seat = await seat_of(relay, msg_id)
    offered = _examined(msg["sdp"], kind="offer", max_sections=sdp.OFFER_SECTIONS_MAX)
    try:
        answer = await seat.publish(offered)
    except (JanusError, TimeoutError) as err:
        if isinstance(err, JanusError) and refused_sdp(err):
            raise _refused_by_janus(err) from None
        raise _unavailable(relay, "publish refused", err, msg_id) from None
    await relay.send(wire.sfu_answer(sdp=answer, re=msg_id))
    # The first publish made the Janus session: another worker may need it.
    await relay.parking.save(relay.membership.peer_id)


async def answer(relay: Relay, msg: dict[str, Any], msg_id: str | None) -> None:
    """The browser's answer to Janus' subscriber offer."""
    seat = await seat_of(relay, msg_id)
    if not seat.answers(msg.get("re")):
        # No offer of Janus waits for it, or it answers an offer of a subscription
        # since replaced (the seat would drop it): not examined, so answers sent
        # for nothing cost no parsing.
        return
    # Janus' offer carries two sections per other publisher, and keeps those of
    # people who left until new ones reuse them: bounded by the largest room.
    answered = _examined(msg["sdp"], kind="answer", max_sections=2 * settings.SFU_CAPACITY_MAX)
    try:
        await seat.answer_offer(answered, offer_id=msg.get("re"))
    except (JanusError, TimeoutError) as err:
        if isinstance(err, JanusError) and refused_sdp(err):
            raise _refused_by_janus(err) from None
        logger.info("sfu: subscriber answer failed for %s: %s", relay.membership.peer_id, err)
    await relay.parking.save(relay.membership.peer_id)


async def candidate(relay: Relay, msg: dict[str, Any], msg_id: str | None) -> None:
    """A trickled ICE candidate of the publisher's or the subscriber's PeerConnection."""
    seat = await seat_of(relay, msg_id)
    found = msg["candidate"]
    if found is not None:
        try:
            if not sdp.examine_candidate(found, policy=candidate_policy()):
                return  # not for Janus (sfu/sdp.py); ICE goes on with the others
        except sdp.SdpRejected as err:
            raise p.bad(f"'candidate' refused: {err.reason}") from None
    with contextlib.suppress(JanusError, TimeoutError):
        await seat.trickle(msg["role"], found, offer_id=msg.get("re"))


async def resubscribe(relay: Relay, msg: dict[str, Any], msg_id: str | None) -> None:
    """The browser's watchdog asks for its subscription again (an ICE restart, or anew)."""
    seat = await seat_of(relay, msg_id)
    if not relay.account.resubscribe_limit().take():
        raise p.ClientError(p.RATE_LIMITED, "too many resubscriptions; wait a moment")
    try:
        await seat.resubscribe(ice_restart=msg["iceRestart"], offer_id=msg.get("re"))
    except (JanusError, TimeoutError) as err:
        raise _unavailable(relay, "resubscription failed", err, msg_id) from None


async def layer(relay: Relay, msg: dict[str, Any], msg_id: str | None) -> None:
    """Receive another simulcast layer of one peer."""
    if msg["peer"] not in relay.membership.peers:
        raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room", msg_id=msg_id)
    seat = await seat_of(relay, msg_id)
    with contextlib.suppress(JanusError, TimeoutError):
        await seat.set_layer(msg["peer"], msg["substream"])


async def leave(relay: Relay, msg: dict[str, Any], msg_id: str | None) -> None:
    """The browser receives everyone directly again: its Janus seat goes (no answer)."""
    membership = relay.membership
    if membership.sfu is None:
        return
    await tolerated(
        close_seat(membership, holder=relay.holder, parking=relay.parking),
        "closing a Janus session",
    )
    if membership.media != p.MEDIA_SFU:
        # Back on the mesh and the last one out of Janus: its room needs no more grace.
        with contextlib.suppress(JanusError, TimeoutError):
            if not await lifecycle.participants(room_id=membership.room_id):
                await lifecycle.destroy(room_id=membership.room_id)


# The SFU's client message types and their handlers (the consumer registers
# them all, signaling/messages.py): a new SFU message is one entry here.
HANDLERS = {
    p.SFU_OFFER: offer,
    p.SFU_ANSWER: answer,
    p.SFU_CANDIDATE: candidate,
    p.SFU_RESUBSCRIBE: resubscribe,
    p.SFU_LAYER: layer,
    p.SFU_LEAVE: leave,
}


# --- The seat as the person comes and goes ------------------------------------------------


async def tolerated(step: Any, what: str) -> None:
    """A step of letting go of a seat, whose failure must not stop the steps after it.

    What it leaves behind ends by itself (a Janus session at its timeout, a
    presence entry at its deadline, a group with its channel), while what
    comes after, the leave in the database, is what the room sees.
    """
    try:
        await step
    except Exception:
        logger.warning("signaling: %s failed", what, exc_info=True)


async def close_seat(membership: Membership, *, holder: str, parking: Parking) -> None:
    """End this person's Janus session (leave, kick, close, replaced by another join)."""
    seat, membership.sfu = membership.sfu, None
    if seat is not None:
        await parking.close(peer_id=membership.peer_id, seat=seat, holder=holder)


async def park_seat(membership: Membership, *, holder: str, parking: Parking) -> None:
    """Keep this person's Janus seat for the socket that resumes them (a dropped socket)."""
    seat, membership.sfu = membership.sfu, None
    if seat is not None:
        await parking.park(peer_id=membership.peer_id, seat=seat, holder=holder)


async def released(membership: Membership, *, holder: str, parking: Parking) -> None:
    """The room went back to the mesh and its grace is over: this socket's Janus seat goes."""
    if membership.media != p.MEDIA_SFU:
        await tolerated(
            close_seat(membership, holder=holder, parking=parking), "closing a Janus session"
        )


async def take_back(relay: Relay) -> bool:
    """Carry on with the resumed person's Janus seat, kept here or on another worker.

    False when there is none (Janus lost it, or they never published): the
    browser is told to publish again (`sfu-restart`).
    """
    membership = relay.membership
    try:
        membership.sfu = await relay.parking.resume(
            peer_id=membership.peer_id,
            holder=relay.holder,
            listener=SocketSeatListener(relay.send),
            capacity=membership.capacity,
            tell=tell_release,
        )
    except Exception:
        logger.exception("sfu: taking %s's seat back failed", membership.peer_id)
    if membership.sfu is None:
        await relay.send(wire.sfu_restart("resumed"))
        return False
    return True

"""Everything the server sends, built from domain objects: the one owner of the wire format.

Selectors and services hand over models (rooms, participants, chat lines,
users) and plain values; this module turns them into the messages of
docs/protocol.md, and into text. Nothing else builds a wire message, formats
a timestamp or encodes JSON for a client. No function here queries the
database: what a message needs (a room's head count, a participant's user)
comes loaded, so a message never costs a hidden query.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from accounts.ice import IceConfig
from rooms import protocol as p
from rooms.models import ChatMessage, Participant, Room

Message = dict[str, Any]


def encode(message: Message) -> str:
    return orjson.dumps(message).decode()


def timestamp(moment: datetime) -> str:
    """An aware datetime as the protocol writes it: ISO 8601 in UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- Objects ----------------------------------------------------------------------


def user(account: AbstractBaseUser) -> Message:
    return {
        "id": account.pk,
        "username": account.get_username(),
        "displayName": account.get_full_name().strip() or account.get_username(),
    }


def room(room: Room, *, participants: int) -> Message:
    """A room object; `participants` is how many are in it (the caller knows or counted)."""
    return {
        "number": room.number,
        "name": room.name,
        "capacity": room.capacity,
        "locked": room.locked,
        "hasPin": room.has_pin,
        "owner": {"id": room.owner_id, "username": room.owner.get_username()},
        "participants": participants,
        # Extension: a closed room's page can say so without trying to join.
        "closed": not room.is_open,
        # Extension (SFU): the room's media mode, and where its media goes now.
        "mode": str(room.media_mode),
        "media": room.media,
    }


def peer(participant: Participant) -> Message:
    return {
        "peerId": participant.peer_id,
        "user": user(participant.user),
        "media": {
            "audio": participant.audio,
            "video": participant.video,
            "screen": participant.screen,
        },
        "joinedAt": timestamp(participant.joined_at),
    }


def chat(line: ChatMessage) -> Message:
    """A chat line as the `chat` message that carries it (live and in `joined.history`)."""
    return {
        "type": p.CHAT,
        "from": line.peer_id,
        "user": user(line.user),
        "text": line.text,
        "ts": timestamp(line.created_at),
    }


# --- Answers ------------------------------------------------------------------------


def error(code: str, message: str, re: str | None = None) -> Message:
    out: Message = {"type": p.ERROR, "code": code, "message": message}
    if re is not None:
        out["re"] = re
    return out


def pong(re: str | None = None) -> Message:
    return {"type": p.PONG, "re": re} if re is not None else {"type": p.PONG}


def pin_locked(*, until: datetime) -> Message:
    """To the room's moderators: its PIN is locked until `until` (too many wrong ones)."""
    return {"type": p.PIN_LOCKED, "until": timestamp(until)}


def quality_limits() -> Message:
    """What the server takes of one socket's quality reports (extension), so the client keeps to it.

    The settings of signaling.limits.QualityLimit and the per-participant bound of
    rooms.services.quality.quality_record: a client reporting within them is never refused.
    """
    return {
        "minInterval": settings.QUALITY_MIN_INTERVAL,
        "rate": settings.QUALITY_RATE,
        "burst": settings.QUALITY_BURST,
        "peers": p.QUALITY_PEERS_MAX,
    }


def joined(
    *,
    room_object: Message,
    peer_id: str,
    present: list[Participant],
    created: bool,
    resume_token: str,
    history: list[ChatMessage],
    resumed: bool | None,
    re: str | None,
    ice_config: IceConfig,
) -> Message:
    out: Message = {
        "type": p.JOINED,
        "room": room_object,
        "peerId": peer_id,
        "peers": [peer(other) for other in present],
        "created": created,
        "resumeToken": resume_token,
        "history": [chat(line) for line in history],
        # Extension: the ICE servers for this call, TURN credentials included.
        "ice": ice(ice_config),
        "qualityLimits": quality_limits(),
    }
    if resumed is not None:
        out["resumed"] = resumed
        if resumed:
            # What was sent to the old socket while it was away is gone; the
            # client restarts ICE to recover anything it missed.
            out["replayed"] = False
    if re is not None:
        out["re"] = re
    return out


def ice(config: IceConfig) -> Message:
    """ICE servers as an RTCConfiguration takes them, and when their TURN credential expires."""
    return {
        "iceServers": config.servers,
        "iceTransportPolicy": config.transport_policy,
        "expiresAt": (
            timestamp(datetime.fromtimestamp(config.expires, tz=UTC))
            if config.expires is not None
            else None
        ),
    }


def ice_servers(config: IceConfig) -> Message:
    """Fresh TURN credentials for a seated socket, before the last ones expire (extension)."""
    return {"type": p.ICE_SERVERS, **ice(config)}


# --- Broadcasts and forwards ------------------------------------------------------------


def peer_joined(participant: Participant) -> Message:
    return {"type": p.PEER_JOINED, "peer": peer(participant)}


def peer_left(peer_id: str, reason: str) -> Message:
    told = Participant.LeftReason(reason).told
    return {"type": p.PEER_LEFT, "peerId": peer_id, "reason": told}


def peer_updated(participant: Participant) -> Message:
    return {"type": p.PEER_UPDATED, "peer": peer(participant)}


def forwarded(message: Message, sender: str) -> Message:
    """An offer/answer/candidate as the recipient gets it: the validated payload plus `from`."""
    return {**message, "from": sender}


def room_updated(room_object: Message) -> Message:
    return {"type": p.ROOM_UPDATED, "room": room_object}


def room_closed(reason: str) -> Message:
    return {"type": p.ROOM_CLOSED, "reason": reason}


def kicked() -> Message:
    return {"type": p.KICKED}


# --- The SFU (extension, docs/protocol.md section 4) ---------------------------------------


def sfu_answer(*, sdp: str, re: str | None) -> Message:
    """Janus' answer to the browser's publisher offer."""
    out: Message = {"type": p.SFU_ANSWER, "sdp": sdp}
    if re is not None:
        out["re"] = re
    return out


def sfu_offer(*, sdp: str, streams: list[dict[str, Any]], fresh: bool, offer_id: str) -> Message:
    """Janus' offer for the browser's one receiving PeerConnection.

    `streams` says which peer each m-line carries (Janus' display names are
    peer ids); `fresh` means a new subscription: a new PeerConnection. The
    browser's answer and candidates name the offer (`re`: `offer_id`), so
    that those of a subscription already replaced never reach the new one.
    """
    return {
        "type": p.SFU_OFFER,
        "id": offer_id,
        "sdp": sdp,
        "fresh": fresh,
        "streams": [
            {"mid": str(s["mid"]), "kind": s.get("type"), "peerId": s.get("feed_display")}
            for s in streams
            if s.get("active", True)
            and s.get("feed_display")
            and s.get("type") in ("audio", "video")
        ],
    }


def sfu_restart(reason: str) -> Message:
    """The server lost the browser's SFU session: publish (and so subscribe) again."""
    return {"type": p.SFU_RESTART, "reason": reason}

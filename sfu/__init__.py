"""The SFU seam: the site's calls that go through Janus (VideoRoom) instead of the mesh.

Django owns every Janus room: a worker creates it when a call moves to the
SFU and destroys it when the call ends; browsers never talk to Janus, their
workers relay SDP and candidates on Janus sessions of their own
(docs/sfu.md). Two modules:

- `sfu.janus`: the Janus API on one WebSocket per process (sessions,
  keepalives, handles, request/response matching, events, reclaim after a
  dropped connection);
- `sfu.videoroom`: the VideoRoom plugin's requests: `VideoRoomAdmin`
  for room lifecycle, `VideoRoomParticipant` for one person's publisher and
  multistream subscriber handles.

Failure model, in short (sfu/janus.py has it in full): Janus holds
everything in memory. A dropped WebSocket is survivable: each session claims
itself back on a new connection within ``JANUS_RECLAIM_WINDOW`` seconds, and
its handles get a ``reclaimed`` event. A Janus restart is not: the claim is
refused, every handle gets a ``lost`` event and calls raise
`JanusSessionLost`; rooms are gone too, so the owner re-creates the room,
a session and its participants, and the browsers renegotiate. Nothing is
retried behind the caller's back.

`get_janus()` gives the running event loop's client, from settings;
``JANUS_URL`` unset means the site has no SFU (it returns None). What browsers
send towards Janus is examined first by `sfu.sdp`, with the addresses
`candidate_policy()` lets through.
"""

from __future__ import annotations

from infra.loopscoped import LoopScoped
from sfu.janus import (
    LOST,
    RECLAIMED,
    Handle,
    JanusClient,
    JanusDisconnected,
    JanusError,
    JanusEvent,
    JanusSessionLost,
    JanusTimeout,
    PluginError,
    PluginReply,
    Session,
)
from sfu.sdp import CandidatePolicy
from sfu.videoroom import (
    ParticipantEvent,
    RoomCredentials,
    SubscriberOffer,
    VideoRoomAdmin,
    VideoRoomParticipant,
    candidate,
    jsep,
    room_credentials,
)

__all__ = [
    "LOST",
    "RECLAIMED",
    "CandidatePolicy",
    "Handle",
    "JanusClient",
    "JanusDisconnected",
    "JanusError",
    "JanusEvent",
    "JanusSessionLost",
    "JanusTimeout",
    "ParticipantEvent",
    "PluginError",
    "PluginReply",
    "RoomCredentials",
    "Session",
    "SubscriberOffer",
    "VideoRoomAdmin",
    "VideoRoomParticipant",
    "candidate",
    "candidate_policy",
    "get_janus",
    "jsep",
    "room_credentials",
]


def _make_janus() -> JanusClient:
    from django.conf import settings

    return JanusClient(
        url=settings.JANUS_URL,
        api_secret=settings.JANUS_API_SECRET,
        request_timeout=settings.JANUS_REQUEST_TIMEOUT,
        keepalive_interval=settings.JANUS_KEEPALIVE_INTERVAL,
        reclaim_window=settings.JANUS_RECLAIM_WINDOW,
    )


_clients: LoopScoped[JanusClient] = LoopScoped(_make_janus)


def get_janus() -> JanusClient | None:
    """The running loop's Janus client (connected on first use); None without ``JANUS_URL``."""
    from django.conf import settings

    if not settings.JANUS_URL:
        return None
    return _clients.get()


def candidate_policy() -> CandidatePolicy:
    """Where Janus may send ICE checks, from SFU_CANDIDATE_ALLOW and SFU_CANDIDATE_DENY."""
    from django.conf import settings

    from sfu import sdp

    return sdp.candidate_policy(
        allow=tuple(settings.SFU_CANDIDATE_ALLOW), deny=tuple(settings.SFU_CANDIDATE_DENY)
    )

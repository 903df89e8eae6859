"""The socket's side of a Janus seat: what sfu/ tells a browser, as our wire messages.

sfu/ knows nothing of the protocol: a seat tells its `SeatListener` about a
subscriber offer or a restart, and the parking tells the worker that held a
claimed seat through a `Tell`. This module turns those into the messages
docs/protocol.md specifies (`sfu-offer`, `sfu-restart`, through rooms.wire)
and the WORKERS group event (`sfu.seat_release`, through rooms.events).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rooms import events, wire
from sfu.parking import SeatRelease
from sfu.seat import SeatOffer

Send = Callable[[wire.Message], Awaitable[None]]


class SocketSeatListener:
    """A seat's listener that sends the browser's messages down one socket (`send`)."""

    def __init__(self, send: Send) -> None:
        self.send = send

    async def offer(self, offer: SeatOffer) -> None:
        """Send `sfu-offer` for Janus' subscriber offer."""
        await self.send(
            wire.sfu_offer(
                sdp=offer.sdp, streams=offer.streams, fresh=offer.fresh, offer_id=offer.offer_id
            )
        )

    async def restart(self, reason: str) -> None:
        """Send `sfu-restart` with `reason`."""
        await self.send(wire.sfu_restart(reason))


async def tell_release(release: SeatRelease) -> None:
    """Tell the worker that held a claimed seat, on the WORKERS group (`sfu.seat_release`)."""
    await events.publish(
        (
            events.sfu_seat_release(
                owner=release.owner,
                peer_id=release.peer_id,
                session_id=release.session_id,
                keep=release.keep,
            ),
        )
    )

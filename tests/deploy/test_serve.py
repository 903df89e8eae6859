"""The launcher (config/serve.py, transport/patches.py): a full socket queues writes, loses none."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect as ws_connect

pytestmark = pytest.mark.slow

OFFERS = 250
SDP_BYTES = 60_000  # under the 64 KiB message limit


async def test_a_slow_reader_gets_every_message_whole_and_in_order():
    """15 MB sent to a socket that does not read: the direct write queues the rest, in order.

    The send buffer's bound (SOCKET_SEND_BUFFER_MAX, 2 MiB) is lifted here: this is
    about the order of queued writes (tests/integration/test_backpressure.py has the bound).
    """
    from tests.integration.conftest import running_stack

    with running_stack(
        workers=1,
        SIGNALING_RATE="1000",
        SIGNALING_BURST="1000",
        SOCKET_SEND_BUFFER_MAX=str(64 * 1024 * 1024),
    ) as stack:
        (_, key_a), (_, key_b) = stack.sessions(2)
        url = stack.workers[0].replace("http://", "ws://") + "/ws/signaling/"
        origin = stack.workers[0]

        def open_ws(key: str):
            return ws_connect(
                url,
                origin=origin,
                additional_headers={"Cookie": f"sessionid={key}"},
                max_size=None,
                max_queue=1,  # stop reading from the socket almost at once
            )

        async with open_ws(key_a) as a, open_ws(key_b) as b:
            await a.send(json.dumps({"type": "create"}))
            joined = json.loads(await a.recv())
            await b.send(json.dumps({"type": "join", "room": joined["room"]["number"]}))
            b_joined = json.loads(await b.recv())
            assert b_joined["type"] == "joined"
            assert json.loads(await a.recv())["type"] == "peer-joined"
            for n in range(OFFERS):
                sdp = f"{n:06d}" + "x" * SDP_BYTES
                offer = {"type": "offer", "to": joined["peerId"], "sdp": sdp}
                await b.send(json.dumps(offer))
            await b.send(json.dumps({"type": "ping", "id": "sent"}))
            # b's pong comes after the server has handled every offer.
            assert json.loads(await asyncio.wait_for(b.recv(), 30)) == {
                "type": "pong",
                "re": "sent",
            }
            for n in range(OFFERS):
                got = json.loads(await asyncio.wait_for(a.recv(), 30))
                assert (got["type"], got["from"], got["sdp"][:6]) == (
                    "offer",
                    b_joined["peerId"],
                    f"{n:06d}",
                )
                assert len(got["sdp"]) == SDP_BYTES + 6
            await a.send(json.dumps({"type": "ping", "id": "after"}))
            assert json.loads(await asyncio.wait_for(a.recv(), 10)) == {
                "type": "pong",
                "re": "after",
            }

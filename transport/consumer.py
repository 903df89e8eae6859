"""The consumer's fast dispatch: a mixin for an `AsyncConsumer` subclass (SignalingConsumer).

Channels' `AsyncConsumer` pays, per message, on the hot path of a signaling
server (a forwarded offer is two dispatches: the sender's frame and the
recipient's event):

- `__call__` reads the socket and the channel layer through
  `await_many_dispatch`, which runs an `asyncio.wait()` over both sources and
  starts a new Task for the next read of whichever answered;
- `dispatch` runs `aclose_old_connections()` before every handler, a hop to a
  worker thread (profiling showed a fifth of the worker's CPU there).

`DirectDispatch.__call__` instead, when the server handed it an Inbox
(transport/inbox.py) and the layer can deliver into it (`new_channel_into`:
both layers of transport/layer.py can), has the layer put the channel's events
into the socket's own queue and reads everything with one `get()`: no task,
no second queue per socket. Otherwise it is Channels' `__call__`, unchanged.
`DirectDispatch.dispatch` skips the thread hop; handlers that use the database
do so through `database_sync_to_async` / `infra.db.db_call`, which close stale
connections around each call themselves.

`__call__` re-implements what Channels' sets up (`scope`, `channel_layer`,
`channel_name`, `base_send`) for the consumer's other methods, so the channels
release is guarded (VERSIONS). Switches for an A/B run, read once at start-up:
CONSUMER_DIRECT_DELIVERY=false takes Channels' `__call__`,
CONSUMER_LEAN_DISPATCH=false Channels' `dispatch`.

What they buy, measured 2026-12-01 (docs/benchmarks.md, tuning history) with

    python -m bench --quick --reps 4 --workloads forward,join --duration 4
        --rates 1000,2000,3000 --variant off:CONSUMER_DIRECT_DELIVERY=false

and the same for CONSUMER_LEAN_DISPATCH:
- direct delivery: 7 % of server CPU per forwarded message at 1,000-3,000
  msgs/s (off: +8 %, higher in 15 of 18 paired steps), and one queue and one
  task less per socket;
- lean dispatch: 27 % (off: +36 % at 1,000-2,000 msgs/s, 6 of 6 paired steps,
  and the throughput ramp fails at its first step, 2,000 msgs/s).
"""

from __future__ import annotations

import contextlib
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

from transport.inbox import inbox_of
from transport.switches import switched_off
from transport.versions import WRITTEN_FOR

VERSIONS = WRITTEN_FOR[__name__]

DIRECT_DELIVERY = not switched_off("CONSUMER_DIRECT_DELIVERY")
LEAN_DISPATCH = not switched_off("CONSUMER_LEAN_DISPATCH")

# Message type -> handler name; types are a fixed set (the app's events and websocket.*).
_HANDLER_NAMES: dict[str, str] = {}


class DirectDispatch:
    """Mix in before Channels' consumer class: `class C(DirectDispatch, AsyncWebsocketConsumer)`."""

    channel_layer_alias: str

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        inbox = inbox_of(receive)
        layer = get_channel_layer(self.channel_layer_alias)
        if (
            not DIRECT_DELIVERY
            or inbox is None
            or layer is None
            or not hasattr(layer, "new_channel_into")
        ):
            await super().__call__(scope, receive, send)  # type: ignore[misc]
            return
        self.scope = scope
        self.channel_layer = layer
        self.base_send = send
        self.channel_name = await layer.new_channel_into(inbox)
        try:
            with contextlib.suppress(StopConsumer):
                get, dispatch = inbox.get, self.dispatch
                while True:
                    await dispatch(await get())
        finally:
            await layer.delete_channel(self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        if not LEAN_DISPATCH:
            await super().dispatch(message)  # type: ignore[misc]
            return
        kind = message["type"]
        name = _HANDLER_NAMES.get(kind)
        if name is None:
            name = _HANDLER_NAMES[kind] = get_handler_name(message)
        handler = getattr(self, name, None)
        if handler is None:
            raise ValueError(f"No handler for message type {kind}")
        await handler(message)

"""The test suite's WebSocket communicator: Channels' own, handing the application an Inbox.

Channels' `WebsocketCommunicator` (through asgiref's ApplicationCommunicator)
gives the application `self.input_queue.get` as `receive`. This one makes that
queue an Inbox, as the launcher's patches do for daphne (transport/inbox.py), so the
in-process tests run the consumer's real fast path: its channel's events
delivered into the socket's own queue. It relies on asgiref reading the queue
only through the `input_queue` property, hence the guard.
"""

from __future__ import annotations

from channels.testing import WebsocketCommunicator as ChannelsWebsocketCommunicator

from transport.inbox import Inbox
from transport.versions import require

VERSIONS = {"asgiref": "3.13.0", "channels": "4.3.2"}
require(__name__, VERSIONS)


class WebsocketCommunicator(ChannelsWebsocketCommunicator):
    """`channels.testing.WebsocketCommunicator` whose input queue is an Inbox."""

    @property
    def input_queue(self) -> Inbox:
        inbox = self.__dict__.get("_inbox")
        if inbox is None:
            inbox = self.__dict__["_inbox"] = Inbox()
        return inbox

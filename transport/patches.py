"""The server patches: daphne's, autobahn's and Twisted's internals, changed for this project.

The launcher (config/serve.py, `python -m config.serve`) installs them before
daphne starts, so they hold everywhere a server runs:

- The application may close sockets with 1012 (`patch_daphne`).
- Each connection's messages reach the application through an `Inbox`
  (transport/inbox.py), into which the channel layer can deliver too.
- Writes to a client socket go out at once when nothing is queued for it
  (`patch_twisted_writes`).
- A socket that stops reading is closed (`not_reading_close`, 4408) once
  `send_buffer_max` bytes wait for it, instead of growing the worker's
  memory by whatever the others send it (`patch_daphne`).
- Twisted's reactor runs on uvloop (`use_uvloop`), with its guard.

Every patch here touches daphne's, autobahn's or Twisted's internals, so the
releases they were written for are listed in transport/versions.py and
checked before anything is patched. This module imports nothing of the
project's but transport/: the launcher passes in what it needs.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from transport.inbox import Inbox
from transport.switches import switched_off
from transport.versions import WRITTEN_FOR

logger = logging.getLogger(__name__)

VERSIONS = WRITTEN_FOR[__name__]


# Codes a server may send (RFC 6455 7.4.1, IANA registry) that autobahn's
# sendClose() refuses because it only allows 1000 and 3000-4999 to applications.
SERVER_CLOSE_CODES = frozenset({1001, 1011, 1012, 1013})
# How long a socket closed for not reading keeps what was queued for it, so
# that a client that reads again (a frozen tab waking up) finds the close code
# behind it; autobahn's default is 1 s. Nothing more is queued meanwhile.
NOT_READING_CLOSE_GRACE = 10


def queued_bytes(transport: Any) -> int:
    """The bytes Twisted holds for a connection because the kernel would not take them yet.

    `FileDescriptor.dataBuffer` (from `offset` on) and `_tempDataBuffer`
    (`_tempDataLen` bytes) are Twisted's write queue (Twisted 26.10's
    abstract.py). A TLS connection wraps the TCP one (`.transport`).
    """
    from twisted.internet.abstract import FileDescriptor

    while not isinstance(transport, FileDescriptor):
        transport = getattr(transport, "transport", None)
        if transport is None:
            return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def patch_daphne(*, send_buffer_max: int, not_reading_close: int) -> None:
    """Five changes to how daphne (through autobahn) hands over, sends and closes.

    - Each connection's queue is an `Inbox`, so the consumer knows it may have
      its channel's events delivered there (transport/inbox.py).
    - Let the application close with 1012 ("service restart": reconnect and
      resume), which this project sends on SIGTERM and after a Redis outage;
      autobahn would raise instead and the socket would stay open.
    - Send a close frame (1009 too big, 1007 bad UTF-8) on protocol violations
      instead of dropping the TCP connection, so clients learn why.
    - A message for a socket that is closing or closed is dropped. autobahn
      raises `Disconnected` instead, which daphne lets out of the
      application's `send()`: the consumer answering frames that were still
      queued when the socket closed (the client dropped, or the server closed
      it for bad input) then crashed with a traceback and skipped its cleanup.
      The application learns that the socket is gone from
      `websocket.disconnect`, as ASGI says.
    - Backpressure: a socket for which more than `send_buffer_max` bytes
      wait (its client stopped reading, or reads far slower than it is sent
      to) is closed with `not_reading_close` instead of being sent more.
      Twisted queues whatever the kernel does not take, without a bound: one
      such socket, sent max-size offers at the allowed rate, grew the
      worker by 3 MB/s until the ping timeout, and the memory was never
      given back. What was queued before the close still goes first, so a
      client that reads again within NOT_READING_CLOSE_GRACE sees the code;
      then the connection is dropped and its buffer freed. The application
      gets `websocket.disconnect` as for any dropped socket (its peer waits
      for a resume).
    """
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    def create_application(self: Server, protocol: Any, scope: dict[str, Any]) -> Inbox | None:
        # daphne 4.2's Server.create_application with an Inbox for the queue.
        assert "application_instance" not in self.connections[protocol]  # noqa: S101 - daphne's own check
        inbox = Inbox()
        scope.setdefault("asgi", {"version": "3.0"})
        instance = self.application(
            scope=scope, receive=inbox.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            instance, loop=asyncio.get_event_loop()
        )
        return inbox

    Server.create_application = create_application

    open_send = WebSocketProtocol.serverSend

    def server_send(self: WebSocketProtocol, content: str | bytes, binary: bool = False) -> None:
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return
        if self.state == self.STATE_OPEN:
            queued = queued_bytes(self.transport)
            if queued > send_buffer_max:
                logger.warning(
                    "transport: closed a socket that stopped reading (%d bytes queued for %s)",
                    queued,
                    self.client_addr,
                )
                self.closeHandshakeTimeout = NOT_READING_CLOSE_GRACE
                self.sendClose(code=not_reading_close, reason="not reading")
                return
        open_send(self, content, binary)

    WebSocketProtocol.serverSend = server_send

    def server_close(self: WebSocketProtocol, code: int | None = None) -> None:
        code = 1000 if code is None else code
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            self.sendClose(code=code)

    WebSocketProtocol.serverClose = server_close

    original_init = WebSocketFactory.__init__

    def factory_init(self: WebSocketFactory, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = factory_init


def patch_twisted_writes() -> bool:
    """Send to a client socket at once when nothing is queued for it.

    Twisted's TCP transport queues every write and sends it on the next pass of
    the loop, when the socket is reported writable: per signaling message that
    is a writer registered and removed again and a dispatch through Twisted's
    logging and context wrappers. asyncio's own transports try the send first
    and queue only what the socket does not take; this does the same. Anything
    already queued keeps its order (the write then queues behind it), a full
    socket buffer (EAGAIN) queues the rest, and any other error takes
    Twisted's path, which reports the lost connection as before. TLS
    connections are left alone (Caddy terminates TLS in front of the workers).
    SERVER_DIRECT_WRITES=false turns it off.

    Buys 7 % of server CPU per forwarded message at 1,000-3,000 msgs/s (off:
    +7 %, higher in 26 of 36 paired steps; p99 x1.48), measured 2026-12-01
    (docs/benchmarks.md, tuning history) with

        python -m bench --quick --reps 4 --workloads forward,join --duration 4
            --rates 1000,2000,3000 --variant off:SERVER_DIRECT_WRITES=false
    """
    if switched_off("SERVER_DIRECT_WRITES"):
        return False
    from twisted.internet import tcp

    queued_write = tcp.Connection.write

    def write(self: tcp.Connection, data: bytes) -> None:
        if (
            data
            and not self.TLS
            and self.connected
            and not self._writeDisconnected
            and not self.dataBuffer
            and not self._tempDataBuffer
            and type(data) is bytes
        ):
            try:
                sent = self.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # Twisted's path below finds the error and reports it.
            if sent == len(data):
                return
            data = data[sent:]
        queued_write(self, data)

    tcp.Connection.write = write
    return True


def use_uvloop() -> bool:
    """Run Twisted's asyncio reactor on uvloop (SERVER_UVLOOP=false: asyncio's own loop).

    Buys 11 % of server CPU per forwarded message at 1,000-3,000 msgs/s, with
    direct writes on (asyncio's loop: +12 %, higher in 28 of 36 paired steps;
    p99 x1.44), measured 2026-12-01 with

        python -m bench --quick --reps 4 --workloads forward,join --duration 4
            --rates 1000,2000,3000 --variant off:SERVER_UVLOOP=false

    so it stays, with its guard below (patch_uvloop_lost_connections).
    """
    if switched_off("SERVER_UVLOOP"):
        return False
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    patch_uvloop_lost_connections()
    return True


def patch_uvloop_lost_connections() -> None:
    """Let Twisted learn about connections that uvloop dropped without a word.

    When a socket errors (a client resets its TCP connection, say), libuv
    reports the poll error with UV_EBADF and uvloop closes that file
    descriptor's poll handle without calling the reader or the writer
    (MagicStack/uvloop#552). Twisted then never learns that the connection is
    gone: nothing calls connectionLost, the ASGI application never gets
    `websocket.disconnect`, and the next write raises RuntimeError ("the
    handler is closed") out of the application's `send()`. The first time
    Twisted then asks to watch that descriptor (a write, autobahn's ping
    every 20 s) it is told here that the connection was lost, on the next
    pass of the loop, once.
    """
    from twisted.internet import asyncioreactor, error

    reactor_class = asyncioreactor.AsyncioSelectorReactor
    add_reader, add_writer = reactor_class.addReader, reactor_class.addWriter

    def lost(reactor: Any, selectable: Any, is_read: bool) -> None:
        if getattr(selectable, "_uvloop_lost", False):
            return
        selectable._uvloop_lost = True
        reactor.callLater(
            0,
            reactor._disconnectSelectable,
            selectable,
            error.ConnectionLost("uvloop closed the descriptor's poll after a socket error"),
            is_read,
        )

    def addReader(self: Any, reader: Any) -> None:
        try:
            add_reader(self, reader)
        except RuntimeError:
            lost(self, reader, True)

    def addWriter(self: Any, writer: Any) -> None:
        try:
            add_writer(self, writer)
        except RuntimeError:
            lost(self, writer, False)

    reactor_class.addReader = addReader
    reactor_class.addWriter = addWriter

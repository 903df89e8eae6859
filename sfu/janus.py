"""The Janus API over one WebSocket: sessions, handles, requests and events.

Written for Janus 1.1.2 (Debian bookworm); message shapes were checked against
that release (docs/sfu.md lists what was verified). Nothing here knows Django
or VideoRoom: sfu/videoroom.py builds the plugin's requests on top.

Shape of it:

- `JanusClient` is the process's one connection to Janus: one WebSocket
  (subprotocol ``janus-protocol``), opened on first use and again after it
  drops. Requests and replies are matched by ``transaction``; everything else
  Janus sends is an event, routed by ``sender`` to its handle.
- `Session` is a Janus session. It sends a keepalive every
  ``keepalive_interval`` seconds (Janus drops sessions that stay silent for
  its ``session_timeout``, 60 s in deploy/janus/janus.jcfg).
- `Handle` is a plugin handle in a session: ``request()`` sends a plugin
  message (with a JSEP when there is one) and waits for the plugin's answer,
  synchronous or not; ``trickle()`` relays ICE candidates; events arrive
  through the ``deliver`` callback given at attach time (by default the
  handle's own ``events`` queue).

Failure model. Janus keeps everything in memory: when it restarts, every
session, handle, PeerConnection and room is gone. When the WebSocket drops:

1. Every request waiting for a reply fails with `JanusDisconnected`.
2. Each session tries, for ``reclaim_window`` seconds, to reconnect and
   ``claim`` itself on the new connection (Janus keeps a session whose
   transport went away for ``reclaim_session_timeout``, 30 s in our
   config). Requests made meanwhile wait for the outcome.
3. If the claim succeeds, Janus did not restart: the session, its handles and
   the users' media survived (media never passed through us). Every handle
   receives a ``reclaimed`` event, because events Janus emitted while we were
   away are lost: the owner should re-read what it depends on.
4. If Janus answers that the session is unknown (it restarted, or we were
   away longer than its reclaim timeout), or Janus stays unreachable for the
   whole window, the session is lost: every handle receives a ``lost`` event,
   and every call on it raises `JanusSessionLost`. Rooms may be gone too
   (after a restart they are): the owner must check and re-create them, then
   create a new session and re-join.

A session also ends as lost when Janus times it out (its ``timeout`` event) or
answers a keepalive with "no such session". Nothing here retries a request:
a request that failed may or may not have reached Janus.

Why one module of over 500 lines: the connection, the sessions and their
handles share one state machine (connected, reclaiming, lost) and one table
of pending transactions; a reconnect walks all three at once. Apart, each
would reach into the others' private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

logger = logging.getLogger(__name__)

SUBPROTOCOL = "janus-protocol"

# Janus core error codes (src/apierror.h in 1.1.2) the client reacts to.
ERROR_UNAUTHORIZED = 403
ERROR_SESSION_NOT_FOUND = 458
ERROR_HANDLE_NOT_FOUND = 459
ERROR_PLUGIN_NOT_FOUND = 460
# Refusals of a JSEP the browser wrote (not failures of Janus).
ERROR_JSEP_UNKNOWN_TYPE = 464
ERROR_JSEP_INVALID_SDP = 465
ERROR_UNEXPECTED_ANSWER = 469

# Asynchronous messages Janus sends on its own (janus.c, ice.c).
JANUS_EVENTS = frozenset(
    {"event", "webrtcup", "media", "slowlink", "hangup", "detached", "trickle", "timeout"}
)
# Events this client makes up for the handles of a session (see the module docstring).
RECLAIMED = "reclaimed"
LOST = "lost"

# Janus' largest frames are multistream SDP offers: tens of KiB for a big room.
MAX_FRAME_BYTES = 4 * 1024 * 1024


class JanusError(Exception):
    """Janus refused a request; ``code`` is Janus' (src/apierror.h), or None for local failures."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{reason} ({code})" if code is not None else reason)
        self.code = code
        self.reason = reason


class JanusDisconnected(JanusError):
    """The WebSocket to Janus is down (or could not be opened); the request's fate is unknown."""

    def __init__(self, reason: str = "connection to Janus lost") -> None:
        super().__init__(None, reason)


class JanusTimeout(JanusError):
    """Janus did not answer within the request timeout."""

    def __init__(self, reason: str = "Janus did not answer in time") -> None:
        super().__init__(None, reason)


class JanusSessionLost(JanusError):
    """The session is gone from Janus, with all its handles and media: create a new one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(code, reason)


class PluginError(JanusError):
    """The plugin refused the request (VideoRoom: ``error_code`` 421-499)."""


@dataclass(frozen=True, slots=True)
class JanusEvent:
    """One asynchronous message for a handle.

    ``type`` is Janus' own (``event``, ``webrtcup``, ``media``, ``slowlink``,
    ``hangup``, ``detached``, ``trickle``, ``timeout``) or one of this client's
    ``reclaimed`` and ``lost``. For ``event``, ``data`` is the plugin's payload
    (``plugindata.data``) and ``jsep`` its SDP, if any; for the others ``data``
    is the message itself.
    """

    type: str
    handle_id: int
    data: Mapping[str, Any]
    jsep: Mapping[str, Any] | None = None
    transaction: str | None = None


@dataclass(frozen=True, slots=True)
class PluginReply:
    """A plugin's answer to a message: its payload and, with some, an SDP."""

    data: Mapping[str, Any]
    jsep: Mapping[str, Any] | None = None


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    # For plugin messages Janus first answers "ack", then sends the result as an
    # "event" with the same transaction; for keepalive and trickle "ack" is all.
    ack_is_final: bool
    acked: bool = False


class _Connection:
    """One open WebSocket: sends requests, matches replies, hands events to the client."""

    def __init__(self, ws: ClientConnection, client: JanusClient) -> None:
        self.ws = ws
        self.client = client
        self.pending: dict[str, _Pending] = {}
        self.closed = False
        self.reader = asyncio.get_running_loop().create_task(
            self._read(), name="janus-connection-reader"
        )

    async def request(
        self, message: dict[str, Any], *, ack_is_final: bool, seconds: float
    ) -> dict[str, Any]:
        """Send ``message``; return the reply, waiting at most ``seconds``."""
        if self.closed:
            raise JanusDisconnected()
        transaction = secrets.token_urlsafe(12)
        message["transaction"] = transaction
        if self.client.api_secret:
            message["apisecret"] = self.client.api_secret
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[transaction] = _Pending(future, ack_is_final)
        try:
            try:
                await self.ws.send(orjson.dumps(message).decode())
            except ConnectionClosed as exc:
                raise JanusDisconnected() from exc
            try:
                async with asyncio.timeout(seconds):
                    return await future
            except TimeoutError:
                pending = self.pending.get(transaction)
                what = "acknowledged, but no result" if pending and pending.acked else "no answer"
                raise JanusTimeout(f"{what} to {message.get('janus')!r} in {seconds}s") from None
        finally:
            self.pending.pop(transaction, None)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                try:
                    message = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    logger.warning("janus: dropped a frame that is not JSON")
                    continue
                if not isinstance(message, dict):
                    continue
                try:
                    self._dispatch(message)
                except Exception:
                    # An event sink that fails must not take the connection down.
                    logger.exception("janus: failed to deliver a %s message", message.get("janus"))
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            for pending in self.pending.values():
                if not pending.future.done():
                    pending.future.set_exception(JanusDisconnected())
            self.client._connection_lost(self)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        transaction = message.get("transaction")
        pending = self.pending.get(transaction) if isinstance(transaction, str) else None
        if pending is not None and not pending.future.done():
            if kind == "ack" and not pending.ack_is_final:
                pending.acked = True
                return
            # A plugin's asynchronous result carries the request's transaction.
            pending.future.set_result(message)
            return
        if kind in JANUS_EVENTS:
            self.client._route_event(message)
        elif kind != "ack":
            logger.debug("janus: unmatched %s message", kind)

    async def close(self) -> None:
        self.closed = True
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class JanusClient:
    """The process's connection to one Janus: opens it on demand, and again after a drop.

    ``url`` is ``ws://host:port`` (``wss://`` works too) or ``unix:/path`` for a
    UNIX socket. ``api_secret`` goes into every request. One client per event
    loop; sessions made with it keep using it across reconnects.
    """

    def __init__(
        self,
        *,
        url: str,
        api_secret: str,
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        keepalive_interval: float = 15.0,
        reclaim_window: float = 25.0,
    ) -> None:
        self.url = url
        self.api_secret = api_secret
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.reclaim_window = reclaim_window
        self._connection: _Connection | None = None
        self._connect_lock = asyncio.Lock()
        self._sessions: dict[int, Session] = {}
        self._closed = False
        # Incremented on every new connection: a change tells the owner of
        # rooms that Janus may have restarted in between (check the rooms).
        self.connections_made = 0

    # --- Connection -------------------------------------------------------

    async def connection(self) -> _Connection:
        """The open connection, opened now if there is none."""
        if self._closed:
            raise JanusDisconnected("client closed")
        current = self._connection
        if current is not None and not current.closed:
            return current
        async with self._connect_lock:
            current = self._connection
            if current is not None and not current.closed:
                return current
            self._connection = await self._open()
            self.connections_made += 1
            return self._connection

    async def _open(self) -> _Connection:
        options: dict[str, Any] = {
            "subprotocols": [SUBPROTOCOL],
            # Janus' libwebsockets server negotiates no extensions.
            "compression": None,
            # The API is internal: never through an HTTP(S)_PROXY from the environment.
            "proxy": None,
            "open_timeout": self.connect_timeout,
            # Janus pings us (pingpong_trigger); our own pings find a dead peer
            # on a quiet connection too.
            "ping_interval": 10,
            "ping_timeout": 10,
            "max_size": MAX_FRAME_BYTES,
        }
        try:
            if self.url.startswith("unix:"):
                path = urlsplit(self.url).path
                ws = await unix_connect(path, uri="ws://localhost/", **options)
            else:
                ws = await connect(self.url, **options)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise JanusDisconnected(f"cannot connect to Janus: {exc}") from exc
        if ws.subprotocol != SUBPROTOCOL:
            await ws.close()
            raise JanusDisconnected("Janus did not accept the janus-protocol subprotocol")
        return _Connection(ws, self)

    def _connection_lost(self, connection: _Connection) -> None:
        if self._connection is connection:
            self._connection = None
        if self._closed:
            return
        for session in list(self._sessions.values()):
            if session._connection is connection:
                session._transport_lost()

    def _route_event(self, message: dict[str, Any]) -> None:
        session = self._sessions.get(message.get("session_id"))  # type: ignore[arg-type]
        if session is None:
            logger.debug("janus: event for an unknown session")
            return
        session._event(message)

    async def request(
        self, message: dict[str, Any], *, ack_is_final: bool = False
    ) -> dict[str, Any]:
        """Send one request on the current connection; return Janus' reply (errors raised)."""
        connection = await self.connection()
        reply = await connection.request(
            message, ack_is_final=ack_is_final, seconds=self.request_timeout
        )
        return _check(reply)

    async def close(self) -> None:
        """Stop keepalives and close the WebSocket (Janus keeps sessions for its reclaim time)."""
        self._closed = True
        for session in list(self._sessions.values()):
            session._stop()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    # --- API --------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        """Janus' ``info`` (name, version, plugins, transports); needs no secret in Janus."""
        return await self.request({"janus": "info"}, ack_is_final=True)

    async def create_session(self) -> Session:
        """A new Janus session with its keepalive running."""
        connection = await self.connection()
        reply = _check(
            await connection.request(
                {"janus": "create"}, ack_is_final=True, seconds=self.request_timeout
            )
        )
        session = Session(self, int(reply["data"]["id"]), connection)
        self._sessions[session.id] = session
        session._start()
        return session

    async def claim_session(self, *, session_id: int) -> Session:
        """Take over a session another connection created (another worker, before it died).

        Janus hands a session over to whoever ``claim``s it within its
        ``reclaim_session_timeout`` after the old connection went away (or at
        any time, from a live one). Raises `JanusSessionLost` when Janus no
        longer has it. Its handles are not known here: `Session.adopt` them.
        Events Janus sent while nobody held the session are lost.
        """
        if session_id in self._sessions:
            raise ValueError(f"session {session_id} is already held by this client")
        connection = await self.connection()
        _check(
            await connection.request(
                {"janus": "claim", "session_id": session_id},
                ack_is_final=True,
                seconds=self.request_timeout,
            )
        )
        session = Session(self, session_id, connection)
        self._sessions[session.id] = session
        session._start()
        return session


def _check(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("janus") == "error":
        error = reply.get("error") or {}
        code = error.get("code")
        reason = str(error.get("reason", "Janus error"))
        if code == ERROR_SESSION_NOT_FOUND:
            raise JanusSessionLost(reason, code)
        raise JanusError(code, reason)
    return reply


_SESSION_ACTIVE, _SESSION_RECLAIMING, _SESSION_LOST, _SESSION_DESTROYED, _SESSION_RELEASED = range(
    5
)


class Session:
    """A Janus session: handles live in it, and it lives as long as it is kept alive."""

    def __init__(self, client: JanusClient, session_id: int, connection: _Connection) -> None:
        self.client = client
        self.id = session_id
        self._connection: _Connection | None = connection
        self._handles: dict[int, Handle] = {}
        self._state = _SESSION_ACTIVE
        self._usable = asyncio.Event()
        self._usable.set()
        self._keepalive: asyncio.Task[None] | None = None
        self._reclaim: asyncio.Task[None] | None = None
        self.lost_reason: str | None = None

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.state}>"

    @property
    def state(self) -> str:
        """``active``, ``reclaiming`` (claim under way), ``lost``, ``destroyed`` or ``released``."""
        return ("active", "reclaiming", "lost", "destroyed", "released")[self._state]

    @property
    def handles(self) -> list[Handle]:
        return list(self._handles.values())

    # --- Requests ----------------------------------------------------------

    async def request(
        self, message: dict[str, Any], *, ack_is_final: bool = False
    ) -> dict[str, Any]:
        """Send a request in this session (``session_id`` added), waiting out a reclaim."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.client.request_timeout
        await self._wait_usable(deadline)
        connection = self._connection
        if connection is None:
            raise JanusDisconnected()
        message["session_id"] = self.id
        reply = await connection.request(
            message, ack_is_final=ack_is_final, seconds=max(deadline - loop.time(), 0.001)
        )
        try:
            return _check(reply)
        except JanusSessionLost as exc:
            self._mark_lost(f"Janus no longer knows the session: {exc.reason}")
            raise

    async def _wait_usable(self, deadline: float) -> None:
        if self._state == _SESSION_RECLAIMING:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._usable.wait()
            except TimeoutError:
                raise JanusDisconnected("connection lost; reclaim still under way") from None
        if self._state == _SESSION_LOST:
            raise JanusSessionLost(self.lost_reason or "session lost")
        if self._state == _SESSION_DESTROYED:
            raise JanusSessionLost("session destroyed")
        if self._state == _SESSION_RELEASED:
            raise JanusSessionLost("session released to another connection")

    async def attach(
        self,
        *,
        plugin: str,
        opaque_id: str | None = None,
        deliver: Callable[[JanusEvent], None] | None = None,
    ) -> Handle:
        """Attach a handle to ``plugin``; its events go to ``deliver`` (else ``handle.events``)."""
        message: dict[str, Any] = {"janus": "attach", "plugin": plugin}
        if opaque_id is not None:
            message["opaque_id"] = opaque_id
        reply = await self.request(message, ack_is_final=True)
        handle = Handle(self, int(reply["data"]["id"]), plugin, deliver)
        self._handles[handle.id] = handle
        return handle

    def adopt(
        self,
        *,
        handle_id: int,
        plugin: str,
        deliver: Callable[[JanusEvent], None] | None = None,
    ) -> Handle:
        """A handle that already exists in this session in Janus (after `claim_session`)."""
        handle = Handle(self, handle_id, plugin, deliver)
        self._handles[handle.id] = handle
        return handle

    async def keepalive(self) -> None:
        """Tell Janus this session is alive (the keepalive task does this on its own)."""
        await self.request({"janus": "keepalive"}, ack_is_final=True)

    async def destroy(self) -> None:
        """Destroy the session in Janus: every handle, PeerConnection and participant goes."""
        if self._state in (_SESSION_LOST, _SESSION_DESTROYED, _SESSION_RELEASED):
            self._forget()
            return
        try:
            await self.request({"janus": "destroy"}, ack_is_final=True)
        finally:
            self._state = _SESSION_DESTROYED
            self._stop()
            self._forget()
            for handle in self._handles.values():
                handle._closed = True

    def release(self) -> None:
        """Stop holding the session here (keepalives, events) without ending it in Janus.

        For a session another connection claimed (another worker took the
        person over): Janus sends its events there now, and a `destroy` or a
        reclaim from here would take it away from its new holder.
        """
        if self._state in (_SESSION_ACTIVE, _SESSION_RECLAIMING):
            self._state = _SESSION_RELEASED
            self.lost_reason = "released to another connection"
        self._usable.set()
        self._stop()
        self._forget()
        for handle in self._handles.values():
            handle._closed = True

    # --- Keepalive and reclaim ---------------------------------------------

    def _start(self) -> None:
        self._keepalive = asyncio.get_running_loop().create_task(
            self._keep_alive(), name=f"janus-keepalive-{self.id}"
        )

    def _stop(self) -> None:
        for task in (self._keepalive, self._reclaim):
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    async def _keep_alive(self) -> None:
        while self._state in (_SESSION_ACTIVE, _SESSION_RECLAIMING):
            await asyncio.sleep(self.client.keepalive_interval)
            if self._state != _SESSION_ACTIVE:
                continue
            try:
                await self.keepalive()
            except JanusSessionLost:
                return  # request() marked the session lost
            except JanusError as exc:
                # A dropped connection is the reader's to handle (reclaim);
                # a slow answer is not fatal: Janus allows several misses.
                logger.info("janus: keepalive of session %s failed: %s", self.id, exc)

    def _transport_lost(self) -> None:
        if self._state != _SESSION_ACTIVE:
            return
        self._state = _SESSION_RECLAIMING
        self._usable.clear()
        self._connection = None
        self._reclaim = asyncio.get_running_loop().create_task(
            self._reclaim_session(), name=f"janus-reclaim-{self.id}"
        )

    async def _reclaim_session(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.client.reclaim_window
        delay = 0.1
        last_error = "Janus unreachable"
        while loop.time() < deadline and self._state == _SESSION_RECLAIMING:
            try:
                connection = await self.client.connection()
                reply = await connection.request(
                    {"janus": "claim", "session_id": self.id},
                    ack_is_final=True,
                    seconds=min(self.client.request_timeout, max(deadline - loop.time(), 0.1)),
                )
                _check(reply)
            except JanusSessionLost as exc:
                self._mark_lost(f"Janus no longer knows the session (restarted?): {exc.reason}")
                return
            except JanusError as exc:
                last_error = str(exc)
                await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
                delay = min(delay * 2, 2.0)
                continue
            if connection.closed:
                continue  # dropped again right away; try again
            self._connection = connection
            self._state = _SESSION_ACTIVE
            self._usable.set()
            logger.info("janus: session %s reclaimed on a new connection", self.id)
            for handle in list(self._handles.values()):
                handle._deliver_local(RECLAIMED, {"session_id": self.id})
            return
        if self._state == _SESSION_RECLAIMING:
            self._mark_lost(f"could not reclaim within {self.client.reclaim_window}s: {last_error}")

    def _mark_lost(self, reason: str) -> None:
        if self._state in (_SESSION_LOST, _SESSION_DESTROYED, _SESSION_RELEASED):
            return
        logger.warning("janus: session %s lost: %s", self.id, reason)
        self._state = _SESSION_LOST
        self.lost_reason = reason
        self._usable.set()
        self._stop()
        self._forget()
        for handle in list(self._handles.values()):
            handle._closed = True
            handle._deliver_local(LOST, {"session_id": self.id, "reason": reason})

    def _forget(self) -> None:
        self.client._sessions.pop(self.id, None)

    # --- Events --------------------------------------------------------------

    def _event(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        if kind == "timeout":
            self._mark_lost("Janus timed the session out")
            return
        handle = self._handles.get(message.get("sender"))  # type: ignore[arg-type]
        if handle is None:
            logger.debug("janus: %s event for an unknown handle", kind)
            return
        handle._deliver_janus(message)


class Handle:
    """A plugin handle: one PeerConnection's worth of plugin state in a session."""

    def __init__(
        self,
        session: Session,
        handle_id: int,
        plugin: str,
        deliver: Callable[[JanusEvent], None] | None,
    ) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.events: asyncio.Queue[JanusEvent] = asyncio.Queue()
        self._deliver = deliver or self.events.put_nowait
        self._closed = False

    def __repr__(self) -> str:
        return f"<Handle {self.id} {self.plugin}>"

    @property
    def closed(self) -> bool:
        """True once detached here or by Janus, or when the session is gone."""
        return self._closed

    async def request(
        self, body: Mapping[str, Any], *, jsep: Mapping[str, Any] | None = None
    ) -> PluginReply:
        """Send a plugin message and return the plugin's answer (raises `PluginError`).

        Synchronous plugin requests are answered at once; asynchronous ones
        after Janus' ``ack``, by an event with the same transaction.
        """
        message: dict[str, Any] = {"janus": "message", "handle_id": self.id, "body": dict(body)}
        if jsep is not None:
            message["jsep"] = dict(jsep)
        reply = await self.session.request(message)
        plugindata = reply.get("plugindata") or {}
        data = plugindata.get("data") or {}
        if "error_code" in data:
            raise PluginError(int(data["error_code"]), str(data.get("error", "plugin error")))
        return PluginReply(data=data, jsep=reply.get("jsep"))

    async def trickle(self, *, candidate: Mapping[str, Any] | None) -> None:
        """Relay one ICE candidate (RTCIceCandidate fields), or None for end-of-candidates."""
        message: dict[str, Any] = {"janus": "trickle", "handle_id": self.id}
        message["candidate"] = dict(candidate) if candidate is not None else {"completed": True}
        await self.session.request(message, ack_is_final=True)

    async def hangup(self) -> None:
        """Close this handle's PeerConnection (the handle stays)."""
        await self.session.request({"janus": "hangup", "handle_id": self.id}, ack_is_final=True)

    async def detach(self) -> None:
        """Detach from the plugin; the handle cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        self.session._handles.pop(self.id, None)
        await self.session.request({"janus": "detach", "handle_id": self.id}, ack_is_final=True)

    def _deliver_janus(self, message: dict[str, Any]) -> None:
        kind = str(message.get("janus"))
        if kind == "event":
            plugindata = message.get("plugindata") or {}
            data = plugindata.get("data") or {}
        else:
            data = message
        if kind == "detached":
            # Janus detached it (as it does for every handle of a session it
            # times out). Still listed in the session, so a `lost` that
            # follows reaches it too.
            self._closed = True
        self._deliver(
            JanusEvent(
                type=kind,
                handle_id=self.id,
                data=data,
                jsep=message.get("jsep"),
                transaction=message.get("transaction"),
            )
        )

    def _deliver_local(self, kind: str, data: dict[str, Any]) -> None:
        self._deliver(JanusEvent(type=kind, handle_id=self.id, data=data))

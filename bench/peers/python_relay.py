"""Bare Python signaling relay: the floor the benchmark compares the server with.

websockets + Redis pub/sub, uvloop. It speaks the subset of protocol v1 the
benchmark drives (create, join, offer/answer/candidate to one peer, peer-joined,
peer-left, ping) and nothing else: no auth, no validation, no database. Room
membership lives in one Redis hash per room so that any process can join any
room; every peer has its own pub/sub channel, subscribed on the one pub/sub
connection of the process that holds its socket, and a forward is one PUBLISH.

    python bench/peers/python_relay.py --port 9001 --redis redis://127.0.0.1:6379/13
"""

import argparse
import asyncio
import contextlib
import secrets

import orjson
import redis.asyncio as aioredis
import websockets

PREFIX = "bench-relay:"
FORWARDED = {"offer", "answer", "candidate"}
# Join atomically: who is there, and me in, in one step, so that of two peers
# joining at once the second always sees the first (else neither would offer
# to the other). KEYS[1] the room's hash; ARGV[1] the peer; ARGV[2] "1" when
# the room must exist (a join, not a create). nil: no such room.
JOIN_SCRIPT = """
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return false end
local others = redis.call('HKEYS', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[1], '1')
return others
"""


class Relay:
    def __init__(self, redis_url: str) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.join_script = self.redis.register_script(JOIN_SCRIPT)
        self.local: dict[str, websockets.ServerConnection] = {}

    async def deliver(self) -> None:
        """Hand every message published to a local peer's channel to its socket."""
        await self.pubsub.subscribe(PREFIX + "noop")  # listen() needs one subscription
        async for message in self.pubsub.listen():
            ws = self.local.get(message["channel"].decode()[len(PREFIX) :])
            if ws is not None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.send(message["data"].decode())

    async def publish(self, peer_id: str, payload: dict) -> None:
        await self.redis.publish(PREFIX + peer_id, orjson.dumps(payload))

    async def handler(self, ws: websockets.ServerConnection) -> None:
        peer_id = secrets.token_hex(8)
        room = None
        self.local[peer_id] = ws
        await self.pubsub.subscribe(PREFIX + peer_id)
        try:
            async for raw in ws:
                msg = orjson.loads(raw)
                kind = msg.get("type")
                if kind in FORWARDED:
                    msg["from"] = peer_id
                    await self.publish(msg.pop("to"), msg)
                elif kind in ("create", "join"):
                    if kind == "create":
                        room = str(secrets.randbelow(900_000_000) + 100_000_000)
                    else:
                        room = msg["room"]
                    others = await self.join_script(
                        keys=[PREFIX + room], args=[peer_id, "1" if kind == "join" else "0"]
                    )
                    if others is None:
                        await ws.send(orjson.dumps(_error("room-not-found", msg)).decode())
                        room = None
                        continue
                    others = [p.decode() for p in others]
                    answer = {
                        "type": "joined",
                        "room": {"number": room, "participants": len(others) + 1},
                        "peerId": peer_id,
                        "peers": [{"peerId": p} for p in others],
                        "created": kind == "create",
                    }
                    if "id" in msg:
                        answer["re"] = msg["id"]
                    await ws.send(orjson.dumps(answer).decode())
                    for other in others:
                        await self.publish(
                            other, {"type": "peer-joined", "peer": {"peerId": peer_id}}
                        )
                elif kind == "ping":
                    await ws.send(orjson.dumps({"type": "pong", "re": msg.get("id")}).decode())
                else:
                    await ws.send(orjson.dumps(_error("bad-message", msg)).decode())
        except websockets.ConnectionClosed:
            pass
        finally:
            del self.local[peer_id]
            await self.pubsub.unsubscribe(PREFIX + peer_id)
            if room is not None:
                await self.redis.hdel(PREFIX + room, peer_id)
                for other in await self.redis.hkeys(PREFIX + room):
                    left = {"type": "peer-left", "peerId": peer_id, "reason": "disconnected"}
                    await self.publish(other.decode(), left)


def _error(code: str, msg: dict) -> dict:
    return {"type": "error", "code": code, "message": code, "re": msg.get("id")}


async def main(port: int, redis_url: str) -> None:
    relay = Relay(redis_url)
    deliver = asyncio.create_task(relay.deliver())
    async with websockets.serve(
        relay.handler, "127.0.0.1", port, compression=None, max_size=64 * 1024, ping_interval=None
    ) as server:
        print(f"python relay listening on 127.0.0.1:{port}", flush=True)
        await asyncio.gather(server.serve_forever(), deliver)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.port, args.redis))
    except ImportError:
        asyncio.run(main(args.port, args.redis))

// socket.io 4 + @socket.io/redis-adapter signaling relay: the Node peer of the benchmark.
//
// The same logical protocol as protocol.md (create, join, offer/answer/candidate
// to one peer, peer-joined, peer-left, ping), carried as socket.io events named
// "msg" whose one argument is the protocol's JSON object. Rooms are socket.io
// rooms; the peer id is the socket id, so a targeted send is io.to(id).emit(),
// which the Redis adapter publishes for the other processes. Room membership
// lives in one Redis hash per room, as in the Python relay, so any process can
// answer a join. No auth, no validation, no database: a relay, not a product.
//
//   node server.js --port 9101 --redis redis://127.0.0.1:6379/13
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const port = Number(arg("port", "9101"));
const redisUrl = arg("redis", "redis://127.0.0.1:6379/13");
const PREFIX = "bench-sio:";
const FORWARDED = new Set(["offer", "answer", "candidate"]);
// Join atomically (as the Python relay does): who is there, and me in, in one
// step, so that of two peers joining at once the second always sees the first.
// KEYS[1] the room's hash; ARGV[1] the peer; ARGV[2] "1" for a join (the room
// must exist). null: no such room.
const JOIN_SCRIPT = `
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return false end
local others = redis.call('HKEYS', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[1], '1')
return others
`;

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  const store = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect(), store.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    transports: ["websocket"],
    serveClient: false,
    perMessageDeflate: false,
    maxHttpBufferSize: 64 * 1024,
    adapter: createAdapter(pub, sub),
  });

  io.on("connection", (socket) => {
    const peerId = socket.id;
    let room = null;
    const reply = (msg, answer) => {
      if (msg.id !== undefined) answer.re = msg.id;
      socket.emit("msg", answer);
    };

    socket.on("msg", async (msg) => {
      const kind = msg && msg.type;
      if (FORWARDED.has(kind)) {
        const to = msg.to;
        delete msg.to;
        msg.from = peerId;
        io.to(to).emit("msg", msg);
      } else if (kind === "create" || kind === "join") {
        const number =
          kind === "create" ? String(100000000 + crypto.randomInt(900000000)) : msg.room;
        const others = await store.eval(JOIN_SCRIPT, {
          keys: [PREFIX + number],
          arguments: [peerId, kind === "join" ? "1" : "0"],
        });
        if (others === null) {
          reply(msg, { type: "error", code: "room-not-found", message: "room-not-found" });
          return;
        }
        room = number;
        socket.join(room);
        reply(msg, {
          type: "joined",
          room: { number: room, participants: others.length + 1 },
          peerId,
          peers: others.map((p) => ({ peerId: p })),
          created: kind === "create",
        });
        socket.to(room).emit("msg", { type: "peer-joined", peer: { peerId } });
      } else if (kind === "ping") {
        reply(msg, { type: "pong" });
      } else {
        reply(msg, { type: "error", code: "bad-message", message: "bad-message" });
      }
    });

    socket.on("disconnect", async () => {
      if (room === null) return;
      socket.to(room).emit("msg", { type: "peer-left", peerId, reason: "disconnected" });
      await store.hDel(PREFIX + room, peerId);
    });
  });

  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`socket.io relay listening on 127.0.0.1:${port}`);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

"""Capture what real browsers send towards Janus: the data of tests/sfu/test_sdp_fuzz.py.

Run by hand, as root, when a browser version changes (not part of the suite):

    .venv/bin/python -m tests.sfu.capture_browsers chromium firefox

For each browser: a headless run (a few seconds) of a tiny page that does
what static/js/sfu.js does -- getUserMedia with fake devices, a sendonly
publisher PeerConnection with the simulcast encodings h/m/l, and a receiving
PeerConnection that answers a real Janus' subscriber offer (VideoRoom's dummy
publisher) -- and posts every SDP and ICE candidate back. The result goes to
tests/sfu/data/<browser>.json.

Everything runs in a network namespace of its own: `lo` and a veth pair
whose ends are both inside it, with 198.18.0.1/15 (a benchmarking range,
RFC 2544) and a default route, so the browsers gather host candidates and
no packet can leave the machine. Firefox ESR: `apt-get install firefox-esr`.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data")
HOST_IP = "198.18.0.1"
NETNS_SETUP = f"""set -eu
ip link set lo up
ip link add cap0 type veth peer name cap1
ip addr add {HOST_IP}/15 dev cap0
ip link set cap1 up
ip link set cap0 up
tries=0
until ip -o link show cap0 | grep -q "state UP"; do
    tries=$((tries + 1)); [ "$tries" -le 100 ] || exit 1; sleep 0.05
done
ip route add default via 198.18.0.2 dev cap0
exec "$@"
"""

TURN_USER, TURN_PASSWORD = "capture", "capture-password"
# static/js/sfu.js's SIMULCAST_ENCODINGS.
ENCODINGS = [
    {"rid": "h", "maxBitrate": 900000},
    {"rid": "m", "maxBitrate": 300000, "scaleResolutionDownBy": 2},
    {"rid": "l", "maxBitrate": 100000, "scaleResolutionDownBy": 4},
]

PAGE = """<!doctype html><meta charset="utf-8"><title>capture</title><script type="module">
const ENCODINGS = %(encodings)s;
const CONFIG = %(config)s;
const gathered = (pc, into) => new Promise((resolve) => {
  pc.addEventListener('icecandidate', ({ candidate }) => {
    if (candidate) into.push(candidate.toJSON()); else resolve();
  });
  setTimeout(resolve, 5000);
});
const post = (path, body) => fetch(path, { method: 'POST', body: JSON.stringify(body) });
async function main() {
  const stream = await navigator.mediaDevices.getUserMedia(
    { audio: true, video: { width: 960, height: 540 } });
  const out = { userAgent: navigator.userAgent };
  const publisher = new RTCPeerConnection(CONFIG);
  out.publisher_candidates = [];
  const publisherDone = gathered(publisher, out.publisher_candidates);
  for (const track of [stream.getAudioTracks()[0], stream.getVideoTracks()[0]]) {
    const init = { direction: 'sendonly', streams: [stream] };
    if (track.kind === 'video') init.sendEncodings = ENCODINGS.map((e) => ({ ...e }));
    publisher.addTransceiver(track, init);
  }
  await publisher.setLocalDescription();
  out.publisher_offer = publisher.localDescription.sdp;
  await publisherDone;
  out.publisher_offer_gathered = publisher.localDescription.sdp;

  // The receiving connection: Janus' offer, then its renegotiation (one stream removed).
  const subscriber = new RTCPeerConnection(CONFIG);
  out.subscriber_candidates = [];
  const subscriberDone = gathered(subscriber, out.subscriber_candidates);
  await subscriber.setRemoteDescription(
    { type: 'offer', sdp: await (await fetch('/janus-offer')).text() });
  await subscriber.setLocalDescription();
  out.subscriber_answer = subscriber.localDescription.sdp;
  await subscriberDone;
  out.subscriber_answer_gathered = subscriber.localDescription.sdp;
  const update = await (await fetch('/janus-update',
    { method: 'POST', body: out.subscriber_answer })).text();
  await subscriber.setRemoteDescription({ type: 'offer', sdp: update });
  await subscriber.setLocalDescription();
  out.subscriber_answer_updated = subscriber.localDescription.sdp;
  return out;
}
main().catch((err) => ({ error: String(err) })).then((out) => post('/result', out));
</script>"""


class JanusSide:
    """A real Janus (its own namespace) and a subscription to VideoRoom's dummy publisher."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.offers: list[str] = []

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def subscribe(self, server: Any) -> str:
        """Subscribe to the dummy's Opus and VP8 streams; Janus' offer."""
        from sfu import JanusClient, VideoRoomAdmin, VideoRoomParticipant, room_credentials

        self.client = JanusClient(url=server.url, api_secret=server.api_secret)
        admin = await VideoRoomAdmin.attach(
            await self.client.create_session(), admin_key=server.admin_key
        )
        room = 1000 + secrets.randbelow(10**6)
        creds = room_credentials(key=server.admin_key, room=room)
        await admin.create_room(
            room=room, secret=creds.secret, pin=creds.pin, publishers=3,
            extra={"dummy_publisher": True},
        )  # fmt: skip
        self.me = await VideoRoomParticipant.join(
            await self.client.create_session(), room=room, pin=creds.pin, display="capture"
        )
        (dummy,) = self.me.publishers
        offer = await self.me.subscribe(
            streams=[{"feed": dummy["id"], "mid": s["mid"]} for s in dummy["streams"]]
        )
        self.offers.append(offer.jsep["sdp"])
        return offer.jsep["sdp"]

    async def update(self, answer: str) -> str:
        """Start with the browser's answer, then drop the audio stream: Janus' new offer."""
        from sfu import jsep

        await self.me.start(answer=jsep(kind="answer", sdp=answer))
        offer = await self.me.update_subscription(unsubscribe=[{"sub_mid": "0"}])
        self.offers.append(offer.jsep["sdp"])
        return offer.jsep["sdp"]

    async def new_subscription(self) -> str:
        """A fresh subscriber handle (each browser answers its own)."""
        await self.me.subscriber.detach()
        self.me.subscriber = None
        self.me.subscribed = []
        (dummy,) = self.me.publishers
        offer = await self.me.subscribe(
            streams=[{"feed": dummy["id"], "mid": s["mid"]} for s in dummy["streams"]]
        )
        self.offers = [offer.jsep["sdp"]]
        return offer.jsep["sdp"]


def browser_command(browser: str, url: str, profile: Path) -> list[str]:
    if browser == "chromium":
        return [
            "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            f"--user-data-dir={profile}", url,
        ]  # fmt: skip
    (profile / "user.js").write_text(
        'user_pref("media.navigator.streams.fake", true);\n'
        'user_pref("media.navigator.permission.disabled", true);\n'
        'user_pref("app.update.enabled", false);\n'
        'user_pref("browser.shell.checkDefaultBrowser", false);\n'
        'user_pref("datareporting.policy.dataSubmissionEnabled", false);\n'
    )
    return ["firefox-esr", "--headless", "--no-remote", "--profile", str(profile), url]


def capture(browser: str, janus: JanusSide, janus_offer: str) -> dict[str, Any]:
    """Run `browser` on the page once; return what it posted."""
    result: dict[str, Any] = {}
    done = threading.Event()
    config = {
        "iceServers": [
            {"urls": f"stun:{HOST_IP}:3478"},
            {
                "urls": f"turn:{HOST_IP}:3478?transport=udp",
                "username": TURN_USER,
                "credential": TURN_PASSWORD,
            },
        ]
    }
    page = (PAGE % {"encodings": json.dumps(ENCODINGS), "config": json.dumps(config)}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/janus-offer":
                self.reply(janus_offer.encode(), "text/plain")
            else:
                self.reply(page, "text/html")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/janus-update":
                self.reply(janus.run(janus.update(body.decode())).encode(), "text/plain")
                return
            result.update(json.loads(body))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = Path(tempfile.mkdtemp(prefix=f"capture-{browser}-"))
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    proc = subprocess.Popen(
        browser_command(browser, url, profile),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if not done.wait(60):
            raise SystemExit(f"{browser} posted nothing within 60 s")
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    if "error" in result:
        raise SystemExit(f"{browser}: {result['error']}")
    result["janus_subscriber_offers"] = list(janus.offers)
    return result


def turn_server(run_dir: Path) -> subprocess.Popen:
    """coturn on 198.18.0.1:3478 (STUN and TURN), so the browsers gather srflx and relay too."""
    command = [
        "turnserver", "-n", f"--listening-ip={HOST_IP}", f"--relay-ip={HOST_IP}",
        "--listening-port=3478", "--min-port=40000", "--max-port=40100",
        "--lt-cred-mech", f"--user={TURN_USER}:{TURN_PASSWORD}", "--realm=capture",
        "--no-cli", "--no-tls", "--no-dtls", "--log-file=stdout",
        f"--userdb={run_dir / 'turndb'}", f"--pidfile={run_dir / 'turn.pid'}",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def inside(browsers: list[str]) -> None:
    from tests.sfu.janusproc import janus_servers

    run_dir = Path(tempfile.mkdtemp(prefix="capture-"))
    turn = turn_server(run_dir)
    janus = JanusSide()
    try:
        with janus_servers(run_dir) as make:
            server = make(name="janus-capture")
            DATA.mkdir(exist_ok=True)
            for index, browser in enumerate(browsers):
                subscribe = janus.subscribe(server) if index == 0 else janus.new_subscription()
                out = capture(browser, janus, janus.run(subscribe))
                path = DATA / f"{browser}.json"
                path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
                print(f"{path}: {out['userAgent']}")
            janus.run(janus.client.close())
    finally:
        os.killpg(turn.pid, 9)
        turn.wait()
        shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    browsers = [b for b in sys.argv[1:] if b != "--inside"] or ["chromium", "firefox"]
    if "--inside" in sys.argv:
        inside(browsers)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root: the capture makes a network namespace")
    command = [sys.executable, "-m", "tests.sfu.capture_browsers", "--inside", *browsers]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true"}
    subprocess.run(
        ["unshare", "--net", "sh", "-c", NETNS_SETUP, "capture", *command], check=True, env=env
    )


if __name__ == "__main__":
    main()

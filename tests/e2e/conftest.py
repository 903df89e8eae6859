"""Real browsers on a real stack: Redis, daphne workers, coturn and Chromium, all on loopback.

Everything here is session-scoped and started once (in parallel where it can
be): one Redis, two daphne workers sharing it (the main app), a third worker
configured for relay-only calls through a coturn started here, one Chromium.
Workers start as every server of the project does, with `python -m
config.serve` (the launcher's flags, patches, system checks and warm-up).
Each test gets fresh browser contexts (one per person), so cookies, media
devices and pages never leak between tests.

`tests/e2e/run` starts this inside a loopback-only network namespace. Where
no namespace can be made it sets E2E_FORCE_RELAY=1 and every call is forced
through the local coturn instead, so no media ever uses a real interface.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
FORCE_RELAY = os.environ.get("E2E_FORCE_RELAY", "") == "1"
TURN_SECRET = secrets.token_hex(16)
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-sync",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-dev-shm-usage",
    # Several people share one browser process: keep background tabs running.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
# People the tests log in as: username -> full name (the name on their tile).
PEOPLE = {
    "alice": ("Alice", "Anders"),
    "bob": ("Bob", "Berg"),
    "carol": ("Carol", "Chen"),
    "dave": ("Dave", "Diaz"),
    "erin": ("Erin", "Evans"),
    "frank": ("Frank", "Fox"),
}
# Machines under load (CI) are slower than a laptop; the 2 s / 5 s promises
# of the product are asserted with explicit timeouts where they are made.
expect.set_options(timeout=10_000)
LOG_DIR = Path(os.environ.get("E2E_LOG_DIR", tempfile.gettempdir())) / f"e2e-{os.getpid()}"
# The tests' own window into each page (window.__e2e): injected into every
# context before the page's scripts run; the product serves no test hooks.
INSTRUMENT = Path(__file__).with_name("instrument.js")
# TURN credentials on the relay-only worker last 40 s, so the server's renewal
# over the socket (`ice-servers`, half-way: 20 s after the join) comes within a test.
RELAY_TURN_TTL = 40


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_udp_range(size: int) -> tuple[int, int]:
    """A run of UDP ports that are free now, for coturn's relay allocations."""
    for _ in range(50):
        start = free_port(socket.SOCK_DGRAM)
        if start + size > 65535:
            continue
        socks = []
        try:
            for port in range(start, start + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return start, start + size - 1
    raise RuntimeError("no free UDP port range for coturn")


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05):
    """Poll `check` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as err:  # keep polling; reported on timeout
            last_error = err
            result = None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last error: {last_error})")


class Proc:
    """A child process with its output in a log file, shown when a test fails."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.env = env
        self.log_path = LOG_DIR / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_tcp(port: int, proc: Proc, timeout: float = 30) -> None:
    def ready() -> bool:
        proc.check_alive()
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(ready, timeout=timeout, what=f"{proc.name} listening on {port}", interval=0.1)


def wait_http(url: str, proc: Proc, timeout: float = 45) -> None:
    def ready() -> bool:
        proc.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback URL
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            return False

    wait_until(ready, timeout=timeout, what=f"{proc.name} answering {url}", interval=0.1)


@dataclass
class Stack:
    """The running servers: base URLs of the workers."""

    main: list[str]
    relay: str
    turn_port: int
    turn_log: Path
    # The SQLite file every worker shares: tests read what the server stored.
    db: Path | None = None
    procs: list[Proc] = field(default_factory=list)
    # The main workers' environment (Redis, database), for workers started later.
    env: dict[str, str] = field(default_factory=dict)
    turn_env: dict[str, str] = field(default_factory=dict)

    def turn_log_text(self) -> str:
        try:
            return self.turn_log.read_text(errors="replace")
        except OSError:
            return ""

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail(2500)}" for p in self.procs)


def coturn_command(*, name: str, port: int, relay_ip: str, ports: int = 200) -> list[str]:
    """A private coturn on 127.0.0.1:`port` relaying from `relay_ip`, for the suite's secret."""
    min_port, max_port = free_udp_range(ports)
    return [
        # Line-buffered, so the test can read a session's log line at once.
        "stdbuf", "-oL", "turnserver", "-n",
        "--listening-ip=127.0.0.1", f"--relay-ip={relay_ip}",
        f"--listening-port={port}",
        f"--min-port={min_port}", f"--max-port={max_port}",
        "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}",
        "--realm=test", "--allow-loopback-peers",
        "--no-cli", "--no-tls", "--no-dtls",
        "--log-file=stdout", "--verbose",
        # A private user database, not the system one.
        f"--userdb={LOG_DIR / f'turndb-{name}'}",
        f"--pidfile={LOG_DIR / f'{name}.pid'}",
    ]  # fmt: skip


def worker_command(port: int | str) -> list[str]:
    """The launcher every server of the project starts with (config/serve.py), on `port`."""
    return [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port)]


def start_worker(name: str, env: dict[str, str]) -> tuple[Proc, str]:
    """A worker of the app on a free port: its process and base URL (not waited for)."""
    port = free_port()
    proc = Proc(name, worker_command(port), env=env)
    return proc, f"http://127.0.0.1:{port}"


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, coturn, two app workers on Redis and one relay-only worker."""
    for binary in ("redis-server", "turnserver", CHROMIUM):
        if not shutil.which(binary):
            pytest.fail(f"{binary} is required for the browser tests")
    db = tmp_path_factory.mktemp("e2e") / "db.sqlite3"
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REDIS_", "TURN_", "STUN_", "ICE_", "DATABASE_", "SIGNALING_"))
    }
    base_env.update(
        DEBUG="true",
        SECRET_KEY="e2e-" + secrets.token_hex(16),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"sqlite:///{db}",
        STATIC_MANIFEST="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        # The same few people make a room in nearly every test of the session:
        # far more than the per-account caps allow a person (docs/reliability.md).
        OPEN_ROOMS_PER_USER="1000",
        ROOMS_CREATED_PER_HOUR="1000",
    )
    procs: list[Proc] = []
    try:
        redis_port = free_port()
        redis = Proc(
            "redis",
            [
                "redis-server",
                "--port", str(redis_port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
            ],
        )  # fmt: skip
        procs.append(redis)

        turn_port = free_port(socket.SOCK_DGRAM)
        turn = Proc("coturn", coturn_command(name="coturn", port=turn_port, relay_ip="127.0.0.1"))
        procs.append(turn)

        # Migrate and create the people while Redis and coturn start.
        manage(base_env, "migrate", "--noinput")
        create = "\n".join(
            [
                "from django.contrib.auth import get_user_model",
                "User = get_user_model()",
                f"people = {PEOPLE!r}",
                "for name, (first, last) in people.items():",
                "    user, _ = User.objects.get_or_create(username=name)",
                "    user.first_name, user.last_name = first, last",
                f"    user.set_password({PASSWORD!r})",
                "    user.save()",
            ]
        )
        manage(base_env, "shell", "-c", create)
        wait_tcp(redis_port, redis)

        turn_env = {
            "TURN_URLS": f"turn:127.0.0.1:{turn_port}?transport=udp",
            "TURN_SECRET": TURN_SECRET,
            "TURN_TTL": "3600",
            "ICE_TRANSPORT_POLICY": "relay",
        }
        main_env = {**base_env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        if FORCE_RELAY:
            main_env.update(turn_env)
        relay_env = {**main_env, **turn_env, "TURN_TTL": str(RELAY_TURN_TTL)}

        workers: list[tuple[Proc, str]] = []
        for name, env in (("worker-1", main_env), ("worker-2", main_env), ("relay", relay_env)):
            proc, url = start_worker(name, env)
            procs.append(proc)
            workers.append((proc, url))
        for proc, url in workers:
            wait_http(f"{url}/accounts/login/", proc)
        yield Stack(
            main=[url for _, url in workers[:2]],
            relay=workers[2][1],
            turn_port=turn_port,
            turn_log=turn.log_path,
            db=db,
            procs=procs,
            env=main_env,
            turn_env=turn_env,
        )
    finally:
        for proc in reversed(procs):
            proc.stop()


def write_voice_wav(path: Path, seconds: float = 2.0, rate: int = 16000) -> None:
    """A speech-like test signal: bursts of harmonic tones with pauses, looped by Chromium.

    Chromium's built-in fake microphone beeps once a second, and with several
    people in one browser process each beep reaches only one of them; a file
    gives every fake microphone the same steady, audible signal.
    """
    frames = bytearray()
    pitches = (180.0, 240.0, 150.0, 210.0)
    for i in range(int(seconds * rate)):
        t = i / rate
        syllable, within = divmod(t, 0.4)
        if within < 0.28:
            f0 = pitches[int(syllable) % len(pitches)]
            envelope = math.sin(math.pi * within / 0.28)
            value = sum(math.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2, 3, 4))
            sample = int(9000 * envelope * value)
        else:
            sample = 0
        frames += struct.pack("<h", max(-32768, min(32767, sample)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    voice = tmp_path_factory.mktemp("media") / "voice.wav"
    write_voice_wav(voice)
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={voice}"]
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield instance
        instance.close()


class Person:
    """One person at one browser window: a context of their own and a page."""

    def __init__(self, context: BrowserContext, base_url: str, username: str) -> None:
        self.context = context
        self.base_url = base_url
        self.username = username
        self.display_name = " ".join(PEOPLE[username])
        self.page: Page = context.new_page()
        self.console: list[str] = []
        self.tabs: list[Person] = []
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))

    def new_tab(self) -> Person:
        """Another page of the same browser context: the same person, the same session."""
        tab = Person(self.context, self.base_url, self.username)
        self.tabs.append(tab)
        return tab

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- Getting in ---------------------------------------------------------------------

    def login_through_page(self) -> None:
        self.page.goto(self.url("/"))
        expect(self.page).to_have_url(self.url("/accounts/login/?next=/"))
        self.page.get_by_label("Username").fill(self.username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page).to_have_url(self.url("/"))
        expect(self.page.get_by_test_id("current-user")).to_have_text(self.display_name)

    def login(self) -> None:
        """Log in over the JSON API (fast path for tests about something else)."""
        response = self.context.request.post(
            self.url("/api/auth/login"), data={"username": self.username, "password": PASSWORD}
        )
        assert response.status == 200, response.text()

    def create_room(
        self, *, name: str = "", capacity: int | None = None, pin: str = "", media: str = ""
    ) -> str:
        """Create a room from the lobby form; return its number (now on its page)."""
        self.page.goto(self.url("/"))
        if media:
            self.page.get_by_test_id("create-media").select_option(media)
        if name:
            self.page.get_by_test_id("create-name").fill(name)
        if capacity:
            self.page.get_by_test_id("create-capacity").select_option(str(capacity))
        if pin:
            self.page.get_by_test_id("create-pin").fill(pin)
        self.page.get_by_test_id("create-submit").click()
        self.page.wait_for_url("**/rooms/*/")
        return self.page.url.rstrip("/").rsplit("/", 1)[1]

    def join_from_lobby(self, typed_number: str, *, pin: str = "") -> None:
        self.page.goto(self.url("/"))
        self.page.get_by_test_id("join-number").fill(typed_number)
        if pin:
            self.page.get_by_test_id("join-pin").fill(pin)
        self.page.get_by_test_id("join-submit").click()

    def open_room(self, number: str) -> None:
        self.page.goto(self.url(f"/rooms/{number}/"))

    def press_join(self) -> None:
        button = self.page.get_by_test_id("join-button")
        # Enabled once the camera started: a fifth browser on a loaded machine took >10 s.
        expect(button).to_be_enabled(timeout=30000)
        button.click()

    def enter(self, number: str) -> None:
        """Open the room's page and join the call."""
        self.open_room(number)
        self.press_join()
        self.wait_in_call()

    def wait_in_call(self) -> None:
        # The join's round trip through a worker: seconds behind on a loaded machine.
        expect(self.page.get_by_test_id("local-tile")).to_be_visible(timeout=30000)
        expect(self.page.locator("body")).to_have_attribute("data-phase", "in-call")

    # --- What the person sees ----------------------------------------------------------------

    def tiles(self):
        return self.page.locator('[data-testid="tile"]')

    def tile_of(self, other: Person):
        return self.tiles().filter(has_text=other.display_name)

    def peer_id(self) -> str:
        """Our own peer id, which the local tile carries once we are in the call."""
        peer_id = self.page.get_by_test_id("local-tile").get_attribute("data-peer-id")
        assert peer_id, f"{self.username} has no peer id (not in the call?)"
        return peer_id

    def remote_peer_ids(self) -> list[str]:
        return self.page.evaluate(
            """() => [...document.querySelectorAll('[data-testid="tile"]')]
                .map((tile) => tile.dataset.peerId)"""
        )

    def peers(self) -> list[dict[str, Any]]:
        """The live peer connections (test instrumentation): remote peer id, state, first SDP."""
        return self.page.evaluate("window.__e2e.peers()")

    def wait_remote_videos(self, count: int, timeout: float = 25) -> None:
        """Wait until `count` remote videos show pictures and their frames keep coming."""
        self.page.wait_for_function(
            """(n) => {
                const vids = [...document.querySelectorAll('[data-testid="remote-video"]')];
                return vids.length === n
                    && vids.every((v) => v.videoWidth > 0 && v.readyState >= 2);
            }""",
            arg=count,
            timeout=timeout * 1000,
        )
        # Counted per element: a tile that changes source (mesh to SFU) shows the new
        # one in a new element, whose count starts again from zero.
        self.page.evaluate("() => { window.__e2eFramesFrom = new WeakMap(); }")
        self.page.wait_for_function(
            """(n) => {
                const vids = [...document.querySelectorAll('[data-testid="remote-video"]')];
                const from = window.__e2eFramesFrom;
                let all = vids.length === n;
                for (const v of vids) {
                    const frames = v.getVideoPlaybackQuality().totalVideoFrames;
                    if (!from.has(v)) {
                        from.set(v, frames);
                        all = false;
                    } else if (frames < from.get(v) + 5 || v.paused || v.videoWidth === 0) {
                        all = false;
                    }
                }
                return all;
            }""",
            arg=count,
            timeout=timeout * 1000,
        )

    def wait_video_of(self, other: Person, timeout: float = 25) -> None:
        """Wait until the other person's tile shows moving pictures."""
        peer_id = self.tile_of(other).get_attribute("data-peer-id")
        selector = f'[data-testid="remote-video"][data-peer-id="{peer_id}"]'
        self.page.wait_for_function(
            "(sel) => { const v = document.querySelector(sel);"
            " return v && v.videoWidth > 0 && v.readyState >= 2; }",
            arg=selector,
            timeout=timeout * 1000,
        )
        frames = "document.querySelector(sel).getVideoPlaybackQuality().totalVideoFrames"
        first = self.page.evaluate(f"(sel) => {frames}", selector)
        self.page.wait_for_function(
            f"([sel, first]) => {frames} >= first + 5",
            arg=[selector, first],
            timeout=timeout * 1000,
        )

    def frame_counts(self) -> dict[str, int]:
        return self.page.evaluate(
            """() => Object.fromEntries(
                [...document.querySelectorAll('[data-testid="remote-video"]')].map(
                    (v) => [v.dataset.peerId, v.getVideoPlaybackQuality().totalVideoFrames]))"""
        )

    def wait_audio_live(self, count: int, timeout: float = 20) -> None:
        """Every remote stream has a live audio track, and audio packets keep arriving."""
        self.page.wait_for_function(
            """(n) => {
                const vids = [...document.querySelectorAll('[data-testid="remote-video"]')];
                return vids.length === n && vids.every((v) => v.srcObject
                    && v.srcObject.getAudioTracks().length === 1
                    && v.srcObject.getAudioTracks()[0].readyState === 'live'
                    && !v.muted);
            }""",
            arg=count,
            timeout=timeout * 1000,
        )
        peers = self.remote_peer_ids()
        first = {pid: self.stats(pid)["audioPacketsReceived"] for pid in peers}
        wait_until(
            lambda: all(self.stats(pid)["audioPacketsReceived"] > first[pid] + 10 for pid in peers),
            timeout=timeout,
            what=f"{self.username}: audio packets arriving",
        )

    def stats(self, peer_id: str) -> dict[str, Any]:
        """Figures from getStats() on the connection to one peer (test instrumentation)."""
        stats = self.page.evaluate("(id) => window.__e2e.stats(id)", peer_id)
        assert stats is not None, f"{self.username} has no connection to {peer_id}"
        return stats

    def diagnostics(self) -> str:
        try:
            state = self.page.evaluate(
                """() => [
                    document.body.dataset.phase, window.__e2e.openSockets(), window.__e2e.peers(),
                    [...document.querySelectorAll('[data-testid="tile"]')].map((tile) => {
                        const v = tile.querySelector('[data-testid="remote-video"]');
                        const next = tile.querySelector('[data-testid="remote-video-next"]');
                        const tracks = v && v.srcObject ? v.srcObject.getTracks() : [];
                        return {
                            peer: tile.dataset.peerId,
                            state: tile.dataset.state,
                            width: v ? v.videoWidth : null,
                            frames: v ? v.getVideoPlaybackQuality().totalVideoFrames : null,
                            ready: v ? v.readyState : null,
                            tracks: tracks.map((t) => `${t.kind}:${t.readyState}:${t.muted}`),
                            next: Boolean(next),
                        };
                    }),
                    window.__e2e.timeline().slice(-40)]"""
            )
        except Exception as err:  # the page may be closed
            state = repr(err)
        # The whole timeline beside the server logs (kept with E2E_KEEP_LOGS=1), on
        # one clock: performance.timeOrigin + each event's time.
        if os.environ.get("E2E_LOG_DIR"):
            with contextlib.suppress(Exception):
                origin, events = self.page.evaluate(
                    "() => [performance.timeOrigin, window.__e2e.timeline()]"
                )
                path = Path(os.environ["E2E_LOG_DIR"]) / f"timeline-{self.username}.json"
                path.write_text(json.dumps({"origin": origin, "events": events}))
        lines = [
            f"{self.username}: [phase, open sockets, peers, tiles, last events]={state}",
            *self.console[-30:],
        ]
        return "\n  ".join(lines) + "".join(f"\n(tab) {tab.diagnostics()}" for tab in self.tabs)


@pytest.fixture(scope="session")
def sessions() -> dict[tuple[str, str], Any]:
    """Logged-in browser storage per (site, username): password hashing once, not per test."""
    return {}


@pytest.fixture
def people(
    browser: Browser,
    stack: Stack,
    sessions: dict[tuple[str, str], Any],
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Person]]:
    """Make people in fresh browser contexts, logged in unless asked not to; close them after."""
    made: list[Person] = []

    def make(username: str, *, base_url: str | None = None, logged_in: bool = True) -> Person:
        site = base_url or stack.main[0]
        state = sessions.get((site, username)) if logged_in else None
        context = browser.new_context(viewport={"width": 1280, "height": 720}, storage_state=state)
        context.set_default_timeout(15000)
        context.add_init_script(path=INSTRUMENT)
        person = Person(context, site, username)
        made.append(person)
        if logged_in and state is None:
            person.login()
            sessions[(site, username)] = context.storage_state()
        return person

    yield make
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print("\n".join(p.diagnostics() for p in made))
        print(stack.logs())
    for person in made:
        person.context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --- The SFU: a real Janus and workers that use it ----------------------------------------


def only_loopback_here() -> bool:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]


@pytest.fixture(scope="session")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Janus from deploy/janus, API on 127.0.0.1, ICE on 127.0.0.2, in this run's namespace.

    Janus 1.1.2 never gathers on a loopback interface, so a veth pair whose
    two ends both stay in the namespace carries 127.0.0.2 for its ICE
    (tests/sfu/janusproc.py explains why); removed afterwards.
    """
    from tests.deploy.procs import processes
    from tests.sfu.janusproc import JANUS_IP, JanusServer, require_janus

    require_janus()
    if not only_loopback_here():
        pytest.fail(
            "the SFU browser tests need tests/e2e/run's loopback-only network namespace"
            " (run it as root); here other interfaces exist and Janus would gather on them"
        )
    subprocess.run(
        ["ip", "link", "add", "janus0", "type", "veth", "peer", "name", "janus1"], check=True
    )
    try:
        for command in (
            ["sysctl", "-qw", "net.ipv6.conf.janus0.disable_ipv6=1"],
            ["sysctl", "-qw", "net.ipv6.conf.janus1.disable_ipv6=1"],
            ["ip", "addr", "add", f"{JANUS_IP}/32", "dev", "janus0"],
            ["ip", "link", "set", "janus1", "up"],
            ["ip", "link", "set", "janus0", "up"],
        ):
            subprocess.run(command, check=True)
        # Janus skips interfaces that are not running yet.
        wait_until(
            lambda: (
                "state UP"
                in subprocess.run(
                    ["ip", "-o", "link", "show", "janus0"], capture_output=True, text=True
                ).stdout
            ),
            timeout=5,
            what="janus0 up",
        )
        with processes(tmp_path_factory.mktemp("janus-e2e")) as start:
            env = {"JANUS_ICE_ENFORCE_LIST": "janus0"}
            if os.environ.get("E2E_JANUS_DEBUG"):
                env["JANUS_DEBUG_LEVEL"] = os.environ["E2E_JANUS_DEBUG"]
            server = JanusServer(start, name="janus-e2e", isolated=False, env=env)
            server.start()
            try:
                yield server
            finally:
                server.stop()
    finally:
        subprocess.run(["ip", "link", "del", "janus0"], check=False)


@dataclass
class SfuStack:
    """Workers whose rooms can go through Janus, and Janus' own view of its rooms."""

    janus: Any
    main: list[str]
    relay: str
    env: dict[str, str]
    procs: dict[str, Proc]
    db: Path | None

    def janus_call(self, make: Callable[[Any], Any]) -> Any:
        """Run `make(admin)` (a coroutine) on a fresh VideoRoomAdmin session; its result."""
        import asyncio

        from sfu import JanusClient, VideoRoomAdmin

        async def run() -> Any:
            client = JanusClient(url=self.janus.url, api_secret=self.janus.api_secret)
            try:
                session = await client.create_session()
                admin = await VideoRoomAdmin.attach(session, admin_key=self.janus.admin_key)
                return await make(admin)
            finally:
                await client.close()

        # Playwright's sync API runs a loop on this thread: a thread of its own.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result(30)

    def participants(self, room_pk: int) -> list[dict[str, Any]]:
        """Janus' listparticipants for the room ([] when it has no such room)."""

        async def listed(admin: Any) -> list[dict[str, Any]]:
            if not await admin.room_exists(room=room_pk):
                return []
            return await admin.list_participants(room=room_pk)

        return self.janus_call(listed)

    def room_exists(self, room_pk: int) -> bool:
        return self.janus_call(lambda admin: admin.room_exists(room=room_pk))

    def room_pk(self, number: str) -> int:
        """The Django primary key (the Janus room id) of the open room `number`."""
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db)) as db:
            (pk,) = db.execute(
                "SELECT id FROM rooms_room WHERE number = ? AND closed_at IS NULL", (number,)
            ).fetchone()
        return pk

    def restart_worker(self, name: str) -> None:
        """Start the named worker again on its port (after a test killed it)."""
        proc = self.procs[name]
        url = next(u for n, u in self.urls() if n == name)
        port = url.rsplit(":", 1)[1]
        new = Proc(name + "-again", worker_command(port), env=proc.env)
        self.procs[name] = new
        wait_http(f"{url}/accounts/login/", new)

    def urls(self) -> list[tuple[str, str]]:
        return [("sfu-1", self.main[0]), ("sfu-2", self.main[1]), ("sfu-relay", self.relay)]


@pytest.fixture(scope="session")
def sfu(stack: Stack, janus: Any) -> Iterator[SfuStack]:
    """Two workers with Janus (sharing the stack's Redis and database) and a relay-only one."""
    janus_env = {
        "JANUS_URL": janus.url,
        "JANUS_API_SECRET": janus.api_secret,
        "JANUS_ADMIN_KEY": janus.admin_key,
        # The pages' candidates are loopback (host 127.0.0.1, the coturns' relays
        # 127.0.0.1 and 127.0.0.2): the workers must let Janus check them.
        "SFU_CANDIDATE_ALLOW": "127.0.0.0/8,::1/128",
    }
    env = {**stack.env, **janus_env}
    # A coturn of its own for calls relayed to Janus: it relays from Janus'
    # own address (127.0.0.2, on the veth), because Janus' answers to an
    # address on `lo` (127.0.0.1, the main coturn's relay address) never
    # arrive: its connectivity checks then fail (seen in its debug log).
    turn_port = free_port(socket.SOCK_DGRAM)
    turn = Proc(
        "coturn-sfu",
        coturn_command(name="coturn-sfu", port=turn_port, relay_ip="127.0.0.2", ports=100),
    )
    relay_env = {
        **env,
        **stack.turn_env,
        "TURN_URLS": f"turn:127.0.0.1:{turn_port}?transport=udp",
        "TURN_TTL": "3600",
    }
    procs: dict[str, Proc] = {"coturn-sfu": turn}
    urls: dict[str, str] = {}
    try:
        for name, worker_env in (("sfu-1", env), ("sfu-2", env), ("sfu-relay", relay_env)):
            proc, url = start_worker(name, worker_env)
            procs[name], urls[name] = proc, url
        for name, url in urls.items():
            wait_http(f"{url}/accounts/login/", procs[name])
        stack.procs.extend(procs.values())
        yield SfuStack(
            janus=janus,
            main=[urls["sfu-1"], urls["sfu-2"]],
            relay=urls["sfu-relay"],
            env=env,
            procs=procs,
            db=stack.db,
        )
    finally:
        for proc in procs.values():
            proc.stop()

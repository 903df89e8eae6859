"""The pages under their Content-Security-Policy and Permissions-Policy, in real Chromium.

Every page a person or an admin uses is visited with a listener for
`securitypolicyviolation` installed before any script of the page runs, and
with the page's console recorded: none may report a violation, a console
error, or a complaint about either policy header. Violations are reported
asynchronously, so each check ends on a barrier: it provokes one violation of
its own (an image from another origin, `https://sentinel-N.invalid/`, which
img-src refuses before any request is made) and waits until exactly that one
has been reported; anything the page caused before it has arrived by then.
"""

from __future__ import annotations

import itertools
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PASSWORD, ROOT, Person, Stack

pytestmark = pytest.mark.e2e

REPORTER = """
document.addEventListener('securitypolicyviolation', (event) => {
  window.reportPolicyViolation({
    page: location.pathname,
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
  });
});
"""
_sentinels = itertools.count(1)


class PolicyWatch:
    """Violations and policy complaints of one person's browser context, across navigations."""

    def __init__(self, person: Person) -> None:
        self.person = person
        self.violations: list[dict[str, Any]] = []
        person.context.expose_function("reportPolicyViolation", self._report)
        person.context.add_init_script(REPORTER)

    def _report(self, violation: dict[str, Any]) -> None:
        self.violations.append(violation)

    @staticmethod
    def wait(page: Page, done: Callable[[], bool], what: str, timeout: float = 5) -> None:
        """Poll `done()`; Playwright delivers the reports only while it is called into."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"no policy report within {timeout}s on {what}")
            page.wait_for_timeout(20)

    def check(self, page: Page | None = None) -> None:
        """The page as it is now has the policy, and reported nothing (barrier: a sentinel)."""
        page = page or self.person.page
        path = re.sub(r"^https?://[^/]+", "", page.url)
        headers = self.person.context.request.get(page.url).headers
        assert "default-src 'self'" in headers["content-security-policy"], path
        assert "camera=(self)" in headers["permissions-policy"], path
        sentinel = f"https://sentinel-{next(_sentinels)}.invalid/"
        page.evaluate("(url) => { new Image().src = url; }", sentinel)
        self.wait(page, lambda: any(v["blocked"] == sentinel for v in self.violations), path)
        violations = [v for v in self.violations if v["blocked"] != sentinel]
        complaints = [
            line
            for line in self.person.console
            if ".invalid/" not in line  # the sentinels' own console lines
            and (
                line.startswith(("error:", "pageerror:"))
                or "Content Security Policy" in line
                or "Permissions-Policy" in line
            )
        ]
        assert (violations, complaints) == ([], []), path
        self.violations.clear()


@pytest.fixture
def watched(people):
    """Make a person (as `people` does) whose pages are watched for policy violations."""

    def make(username: str, **options: Any) -> tuple[Person, PolicyWatch]:
        person = people(username, **options)
        return person, PolicyWatch(person)

    return make


def test_inline_script_and_style_are_refused_and_reported(watched):
    """The policy really is enforced: an injected inline script does not run, a style attribute
    is not applied, and both are reported (what the checks below rely on)."""
    person, watch = watched("alice", logged_in=False)
    person.page.goto(person.url("/accounts/login/"))
    person.page.evaluate(
        """() => {
            const script = document.createElement('script');
            script.textContent = 'window.injected = true';
            document.head.append(script);
            const html = '<p id="styled" style="color: red">x</p>';
            document.body.insertAdjacentHTML('beforeend', html);
        }"""
    )
    watch.wait(person.page, lambda: len(watch.violations) == 2, "/accounts/login/")
    assert sorted((v["directive"], v["blocked"]) for v in watch.violations) == [
        ("script-src-elem", "inline"),
        ("style-src-attr", "inline"),
    ]
    assert person.page.evaluate("window.injected") is None
    color = person.page.evaluate("getComputedStyle(document.getElementById('styled')).color")
    assert color != "rgb(255, 0, 0)"


def test_sign_up_lobby_and_sign_out_pages(watched):
    """Login, sign-up, the lobby after signing up, the sign-out page and the login page after it."""
    person, watch = watched("alice", logged_in=False)
    page = person.page
    page.goto(person.url("/accounts/login/"))
    watch.check()
    page.get_by_role("link", name="Create one").click()
    expect(page).to_have_url(person.url("/accounts/signup/"))
    watch.check()
    name = f"csp{secrets.token_hex(3)}"
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_test_id("signup-button").click()
    expect(page).to_have_url(person.url("/"))
    expect(page.get_by_test_id("current-user")).to_have_text(name)
    watch.check()
    page.get_by_role("link", name="Sign out").click()
    expect(page).to_have_url(person.url("/accounts/logout/"))
    watch.check()
    page.get_by_test_id("logout-button").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    watch.check()


def test_room_page_before_and_during_a_one_person_call(watched):
    """Lobby, the room's pre-join preview, the call (signaling socket, chat, mute) and leaving."""
    alice, watch = watched("alice")
    page = alice.page
    page.goto(alice.url("/"))
    watch.check()
    number = alice.create_room(name="Policy check")
    button = page.get_by_test_id("join-button")
    expect(button).to_be_enabled()  # the camera preview is running
    page.wait_for_function(
        "() => document.querySelector('[data-testid=preview-video]').readyState >= 2"
    )
    watch.check()
    button.click()
    # In the call: the server answered `joined` over the WebSocket (connect-src 'self').
    expect(page.get_by_test_id("local-tile")).to_be_visible()
    expect(page.get_by_test_id("room-number")).to_have_text(
        f"{number[:3]} {number[3:6]} {number[6:]}"
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=local-video]').readyState >= 2"
    )
    page.get_by_test_id("chat-input").fill("checking the policy")
    page.get_by_test_id("chat-send").click()
    expect(page.get_by_test_id("chat-log")).to_contain_text("checking the policy")
    page.get_by_test_id("toggle-mic").click()
    expect(page.get_by_test_id("toggle-mic")).to_have_attribute("aria-pressed", "true")
    watch.check()
    page.get_by_test_id("leave").click()
    expect(page.get_by_test_id("ended-title")).to_be_visible()
    watch.check()


def worker_env(stack: Stack) -> dict[str, str]:
    """The environment the first app worker runs with (its database), read from /proc."""
    worker = next(p for p in stack.procs if p.name == "worker-1")
    raw = Path(f"/proc/{worker.proc.pid}/environ").read_bytes().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_django_admin_pages(watched, stack: Stack):
    """An admin's index, room list and room change page (with its inlines and autocomplete)."""
    alice, _ = watched("alice")
    number = alice.create_room(name="Admin policy check")
    admin_name = f"cspadmin{secrets.token_hex(3)}"
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_superuser({admin_name!r}, None, {PASSWORD!r})",
        ],
        cwd=ROOT,
        env=worker_env(stack),
        check=True,
        capture_output=True,
        timeout=120,
    )
    person, watch = watched("dave", logged_in=False)
    page = person.page
    page.goto(person.url("/admin/login/"))
    watch.check()
    page.get_by_label("Username").fill(admin_name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(person.url("/admin/"))
    watch.check()
    page.goto(person.url("/admin/rooms/room/"))
    expect(page.get_by_role("link", name=number, exact=True)).to_be_visible()
    watch.check()
    page.get_by_role("link", name=number, exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/rooms/room/\d+/change/$"))
    expect(page.locator(".field-number")).to_contain_text(number)
    watch.check()
    # The owner field's autocomplete (select2) opens and lists users.
    page.locator(".select2-selection").first.click()
    expect(page.locator(".select2-results__option").first).to_be_visible()
    watch.check()

"""Django admin as the live console, in real Chromium, while a real call is on.

An admin opens a room's console while Alice is alone in the call; Bob joins
from the other worker, and the console shows him without a reload (the page
is the same document), then both directions of their connection with the
figures their browsers reported. The admin removes Bob from the console and
Bob's page says he was removed. Every page is watched for CSP violations
(tests/e2e/test_csp.py's PolicyWatch, barrier included). The screenshots in
docs/operations.md are taken here: docs/img/admin-console.png and
docs/img/admin-overview.png.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, ROOT, Stack
from tests.e2e.test_csp import PolicyWatch, worker_env

pytestmark = pytest.mark.e2e

SCREENSHOTS = ROOT / "docs" / "img"


def make_superuser(stack: Stack) -> str:
    name = f"operator{secrets.token_hex(3)}"
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_superuser({name!r}, None, {PASSWORD!r},"
            " first_name='Olga', last_name='Operator')",
        ],
        cwd=ROOT,
        env=worker_env(stack),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return name


def test_the_console_follows_a_live_call_and_removes_someone(people, stack: Stack):
    """The console lists Bob as he joins (no reload), shows both pairs' reports, removes him."""
    operator_name = make_superuser(stack)
    alice = people("alice")
    number = alice.create_room(name="Weekly review")
    alice.press_join()
    alice.wait_in_call()

    operator = people("dave", logged_in=False)
    watch = PolicyWatch(operator)
    page = operator.page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(operator.url("/admin/login/"))
    page.get_by_label("Username").fill(operator_name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(operator.url("/admin/"))
    expect(page.get_by_test_id("operations")).to_contain_text("Overview")
    watch.check()
    page.goto(operator.url(f"/admin/rooms/room/?q={number}"))
    page.get_by_role("link", name=number, exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/rooms/room/\d+/change/"))
    people_rows = page.locator('[data-testid="console-people"] tbody tr[data-peer-id]')
    expect(people_rows).to_have_count(1)
    expect(people_rows.first).to_contain_text("Alice Anders (alice) owner")
    watch.check()
    # A mark on this document: still there after the updates means no reload happened.
    page.evaluate("window.sameDocument = true")

    bob = people("bob", base_url=stack.main[1])
    bob.enter(number)
    for person in (alice, bob):
        person.wait_remote_videos(1)
    expect(people_rows).to_have_count(2, timeout=10_000)
    expect(page.get_by_test_id("console-people-now")).to_have_text("2")
    bob_row = page.locator(f'[data-testid="console-people"] tr[data-peer-id="{bob.peer_id()}"]')
    expect(bob_row).to_contain_text("Bob Berg (bob)")
    expect(bob_row.locator("td").nth(4)).to_have_text("on")  # mic
    # Each browser's report with bitrates (the one 10 s after the first frame).
    pairs = page.locator('[data-testid="console-pairs"] tbody tr[data-pair]')
    expect(pairs).to_have_count(2, timeout=40_000)
    for reporter, remote in ((alice, bob), (bob, alice)):
        row = page.locator(
            f'[data-testid="console-pairs"] tr[data-pair="{reporter.peer_id()}:{remote.peer_id()}"]'
        )
        expect(row.locator("td").first).to_have_text(f"{reporter.username} → {remote.username}")
        expect(row.locator("td").nth(1)).to_have_text("connected")
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d+ ms$"))
        expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^\d+ kbit/s$"), timeout=40_000)
    assert page.evaluate("window.sameDocument") is True
    watch.check()
    page.screenshot(path=str(SCREENSHOTS / "admin-console.png"))

    bob_row.get_by_role("button", name="Remove").click()
    expect(page.locator(".messagelist")).to_contain_text("Removed bob (peer")
    expect(bob.page.get_by_test_id("ended-title")).to_have_text("You were removed")
    expect(alice.tiles()).to_have_count(0)
    expect(people_rows).to_have_count(1)
    watch.check()

    page.goto(operator.url("/admin/overview/"))
    expect(page.get_by_test_id("overview-calls")).to_be_visible()
    expect(page.get_by_test_id("overview-relayed")).to_have_text(re.compile(r"^\d+\.\d %$"))
    expect(page.get_by_test_id("overview-p50")).to_have_text(re.compile(r"^\d+ ms$"))
    watch.check()
    page.screenshot(path=str(SCREENSHOTS / "admin-overview.png"), full_page=True)

"""Failed logins and sign-up attempts counted per client address: the script slowed, not the school.

Time is the counters' clock, moved by hand (as tests/accounts/test_limits.py
does), so "per minute" is exact and nothing waits.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client

from infra import counters
from tests.accounts import hashers
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SCHOOL = "198.51.100.20"
ELSEWHERE = "203.0.113.80"


@pytest.fixture
def clock(settings, monkeypatch):
    """The counters' clock, in memory, with a fresh prefix; `clock[0] += s` moves it."""
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYER_PREFIX = f"addr-{uuid.uuid4().hex[:8]}"
    now = [5_000_000.0]
    monkeypatch.setattr(counters.time, "time", lambda: now[0])
    return now


@pytest.fixture
def counted(settings):
    """Passwords hashed with a hasher that counts; the list is emptied once the users exist."""
    settings.PASSWORD_HASHERS = ["tests.accounts.hashers.CountingHasher"]
    hashers.HASHED.clear()
    return hashers.HASHED


def api_login(address: str, username: str, password: str):
    return Client(REMOTE_ADDR=address).post(
        "/api/auth/login",
        data=json.dumps({"username": username, "password": password}),
        content_type="application/json",
    )


def test_an_unknown_username_costs_the_same_hash_as_a_known_one(counted, make_user, clock):
    """Django's ModelBackend hashes once for a name nobody has: no timing oracle, same cost."""
    make_user("alice")
    counted.clear()
    assert api_login(ELSEWHERE, "alice", "wrong").status_code == 401
    assert counted == [2_000]
    assert api_login(ELSEWHERE, "nobody-by-this-name", "wrong").status_code == 401
    assert counted == [2_000, 2_000]
    # The answers are the same too.
    known = api_login(ELSEWHERE, "alice", "wrong2").json()
    unknown = api_login(ELSEWHERE, "nobody-either", "wrong2").json()
    assert (
        known
        == unknown
        == {"error": {"code": "invalid-credentials", "message": "Wrong username or password."}}
    )


def test_fresh_usernames_from_one_address_are_slowed_to_ten_hashes_a_minute(
    counted, clock, settings
):
    """200 fresh usernames: 100 hashed at once, then 429 (no hash); 10 a minute after that."""
    assert settings.LOGIN_FAILURE_ADDRESS_LIMIT == 100
    assert settings.LOGIN_FAILURE_ADDRESS_WINDOW == 600
    answers = [api_login(SCHOOL, f"guess{n}", "hunter2").status_code for n in range(200)]
    assert answers == [401] * 100 + [429] * 100
    assert len(counted) == 100
    refused = api_login(SCHOOL, "guess-more", "hunter2")
    assert refused.json() == {
        "error": {
            "code": "too-many-attempts",
            "message": "Too many failed logins from your network. Try again in 6 seconds.",
        }
    }
    assert refused["Retry-After"] == "6"
    # A minute later the script gets 10 more hashes, however fast it asks.
    clock[0] += 60
    answers = [api_login(SCHOOL, f"later{n}", "hunter2").status_code for n in range(200)]
    assert answers.count(401) == 10
    assert answers.count(429) == 190
    assert len(counted) == 110
    # Another address is not slowed.
    assert api_login(ELSEWHERE, "guess0", "hunter2").status_code == 401
    # The login page is slowed alike, with a page saying when.
    page = Client(REMOTE_ADDR=SCHOOL).post(
        "/accounts/login/", {"username": "guess-page", "password": "hunter2"}
    )
    assert page.status_code == 429
    assert page["Retry-After"] == "6"
    assert b"Too many failed logins from your network. Try again in 6 seconds." in page.content
    assert len(counted) == 111


def test_a_classroom_with_typos_signs_in_behind_one_address(counted, make_user, clock):
    """30 classmates, 3 typos each (90 failures), all sign in unslowed; their logins are free."""
    pupils = [make_user(f"pupil{n}") for n in range(30)]
    counted.clear()
    for n, pupil in enumerate(pupils):
        typos = ("corect horse", "correct hrose", "Correct horse battery staple")
        if n % 2:
            for typo in typos:
                assert api_login(SCHOOL, pupil.username, typo).status_code == 401
            assert api_login(SCHOOL, pupil.username, PASSWORD).status_code == 200
        else:  # the login page
            browser = Client(REMOTE_ADDR=SCHOOL)
            for typo in typos:
                page = browser.post(
                    "/accounts/login/", {"username": pupil.username, "password": typo}
                )
                assert page.status_code == 200
                assert b"Please enter a correct username and password." in page.content
            page = browser.post(
                "/accounts/login/", {"username": pupil.username, "password": PASSWORD}
            )
            assert (page.status_code, page["Location"]) == (302, "/")
    assert len(counted) == 120
    # Ten failures of the burst left: successful logins took nothing from it.
    answers = [api_login(SCHOOL, f"stranger{n}", "x").status_code for n in range(11)]
    assert answers == [401] * 10 + [429]


def test_a_login_refused_by_axes_takes_nothing_from_the_address(counted, make_user, clock):
    """A username locked for its address (axes) answers 429 without a hash and without a count."""
    make_user("alice")
    for _ in range(5):
        api_login(SCHOOL, "alice", "wrong")
    counted.clear()
    for _ in range(20):
        assert api_login(SCHOOL, "alice", "wrong").status_code == 429
    assert counted == []
    answers = [api_login(SCHOOL, f"x{n}", "x").status_code for n in range(96)]
    assert answers == [401] * 95 + [429]


def signup(client: Client, username: str, password: str = PASSWORD):
    return client.post(
        "/accounts/signup/", {"username": username, "password1": password, "password2": password}
    )


def unmasked(page: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", page)


TAKEN = b"A user with that username already exists."


def test_the_sign_up_form_answers_whether_a_name_is_taken_only_so_often(make_user, clock, settings):
    """100 probes of taken names are answered; past them 429, the same page for taken and free."""
    assert settings.SIGNUP_ATTEMPT_ADDRESS_LIMIT == 100
    for n in range(3):
        make_user(f"member{n}")
    prober = Client(REMOTE_ADDR=SCHOOL)
    for n in range(100):
        # A password that fails too: no account is ever made, only the name is tested.
        answer = signup(prober, f"member{n % 3}", "1")
        assert answer.status_code == 200
        assert TAKEN in answer.content
    taken = signup(prober, "member0", "1")
    free = signup(prober, "nobody-has-this", "1")
    assert (taken.status_code, free.status_code) == (429, 429)
    assert taken["Retry-After"] == free["Retry-After"] == "6"
    message = b"Many sign-ups were tried from your network just now. Try again in 6 seconds."
    for page in (taken, free):
        assert message in page.content
        assert TAKEN not in page.content
    # The same page, but for the CSRF token's masking: nothing about the name.
    assert unmasked(taken.content) == unmasked(free.content)
    # Another address asks freely; the prober gets one answer per 6 s.
    assert TAKEN in signup(Client(REMOTE_ADDR=ELSEWHERE), "member1", "1").content
    clock[0] += 6
    assert TAKEN in signup(prober, "member2", "1").content
    assert signup(prober, "member2", "1").status_code == 429


def test_a_classroom_signs_up_with_typos_behind_one_address(clock, django_user_model):
    """30 sign-ups from one address, each after a mistyped attempt or two: all 30 made."""
    for n in range(30):
        pupil = Client(REMOTE_ADDR=SCHOOL)
        assert signup(pupil, f"newpupil{n}", "short").status_code == 200  # too short
        if n % 2:
            assert signup(pupil, f"newpupil{n}", "1234567890").status_code == 200  # only digits
        assert signup(pupil, f"newpupil{n}").status_code == 302
    assert django_user_model.objects.filter(username__startswith="newpupil").count() == 30

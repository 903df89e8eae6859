"""accounts/signals.py: when a user's sessions end, `sessions_revoked` says so (once committed)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client

from accounts import services
from accounts.models import UserSession
from accounts.signals import sessions_revoked
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def revoked():
    """Every `sessions_revoked` sent during the test, as (user id, session key, reason)."""
    sent: list[tuple[int, str | None, str]] = []

    def record(sender: Any, user_id: int, session_key: str | None, reason: str, **kw: Any):
        sent.append((user_id, session_key, reason))

    sessions_revoked.connect(record, dispatch_uid="test-recorder")
    yield sent
    sessions_revoked.disconnect(dispatch_uid="test-recorder")


def logged_in(user) -> Client:
    """A client signed in through the login API, as the browser is."""
    client = Client()
    response = client.post(
        "/api/auth/login",
        {"username": user.get_username(), "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return client


def test_login_tracks_the_session_and_logout_revokes_only_it(make_user, revoked):
    """Each login is tracked; logging out revokes that session and stops tracking it."""
    user = make_user()
    laptop, phone = logged_in(user), logged_in(user)
    keys = {laptop.session.session_key, phone.session.session_key}
    assert set(UserSession.objects.filter(user=user).values_list("session_key", flat=True)) == keys
    laptop_key = laptop.session.session_key
    laptop.post("/api/auth/logout")
    assert revoked == [(user.pk, laptop_key, "signed-out")]
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [
        phone.session.session_key
    ]


@pytest.mark.parametrize(
    "change",
    [
        lambda u: (u.set_password("a brand new password"), u.save()),
        lambda u: (setattr(u, "is_active", False), u.save()),
        lambda u: (setattr(u, "is_active", False), u.save(update_fields=["is_active"])),
        lambda u: u.delete(),
    ],
    ids=["password", "deactivation", "deactivation-update-fields", "deletion"],
)
def test_credential_changes_revoke_every_session(make_user, revoked, change):
    """A new password, a deactivation or a deletion revokes all the user's sessions."""
    user = make_user()
    user_id = user.pk
    change(user)
    assert revoked == [(user_id, None, "signed-out")]


def test_other_saves_revoke_nothing(make_user, revoked):
    """A login (last_login), a new name, or reactivating a user revokes nothing."""
    user = make_user(is_active=False)
    user.first_name = "New"
    user.save()
    user.is_active = True
    user.save()
    logged_in(user)
    assert revoked == []


def test_sign_out_everywhere_ends_every_session(make_user, revoked):
    """The admin's sign-out deletes each of the user's sessions and revokes as 'removed'."""
    user, other = make_user(), make_user()
    clients = [logged_in(user), logged_in(user)]
    bystander = logged_in(other)
    assert services.user_sign_out_everywhere(user=user) == 2
    assert revoked == [(user.pk, None, "removed")]
    assert list(Session.objects.values_list("session_key", flat=True)) == [
        bystander.session.session_key
    ]
    for client in clients:
        assert client.get("/api/config").status_code == 401
    assert bystander.get("/api/config").status_code == 200


def test_block_deactivates_and_signs_out(make_user, revoked):
    """Blocking signs the user out everywhere (as 'removed'), then deactivates them."""
    user = make_user()
    client = logged_in(user)
    services.user_block(user=user)
    assert revoked[0] == (user.pk, None, "removed")
    assert not get_user_model().objects.get(pk=user.pk).is_active
    assert client.get("/api/config").status_code == 401
    refused = Client().post(
        "/api/auth/login",
        {"username": user.get_username(), "password": PASSWORD},
        content_type="application/json",
    )
    assert refused.status_code == 401

"""accounts/receivers.py: when a user's sessions end, `sessions_revoked` says so, once committed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.backends.cached_db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client

from accounts import services
from accounts.middleware import user_for_session
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


@pytest.mark.parametrize(
    "change",
    [
        lambda u: (setattr(u, "is_staff", False), u.save()),
        lambda u: (setattr(u, "is_superuser", False), u.save(update_fields=["is_superuser"])),
        lambda u: u.user_permissions.remove(Permission.objects.get(codename="change_user")),
        lambda u: u.user_permissions.clear(),
        lambda u: u.groups.remove(Group.objects.get(name="moderators")),
        lambda u: Group.objects.get(name="moderators").permissions.clear(),
        lambda u: Permission.objects.get(codename="view_room").group_set.clear(),
    ],
    ids=["staff", "superuser", "permission", "permissions", "group", "group-perms", "perm-groups"],
)
def test_staff_rights_taken_away_revoke_every_session(make_user, revoked, change):
    """A staff user demoted, or losing a permission or a group (or a group its permission),
    has every socket revoked: a socket holds its user's rights from its handshake."""
    user = make_user(is_staff=True, is_superuser=True)
    group = Group.objects.create(name="moderators")
    group.permissions.add(Permission.objects.get(codename="view_room"))
    user.groups.add(group)
    user.user_permissions.add(Permission.objects.get(codename="change_user"))
    assert revoked == []
    change(user)
    assert revoked == [(user.pk, None, "signed-out")]


def test_rights_given_or_taken_from_non_staff_revoke_nothing(make_user, revoked):
    """Making someone staff, or a group change for non-staff members, revokes nothing."""
    user = make_user()
    group = Group.objects.create(name="readers")
    user.groups.add(group)
    user.groups.remove(group)
    user.is_staff = True
    user.save()
    assert revoked == []


def test_a_session_of_an_older_generation_is_anonymous_and_gone(make_user):
    """A session copy kept (or put back) in the cache after "sign out everywhere" is refused
    over HTTP and at a socket's handshake, and deleted."""
    user = make_user()
    client = logged_in(user)
    key = client.session.session_key
    stale = dict(SessionStore(key).load())
    services.user_sign_out_everywhere(user=user)
    # What a request racing the sign-out did: the row it read, cached again.
    cache.set(SessionStore(key).cache_key, stale)
    assert user_for_session(key).is_authenticated is False
    assert client.get("/api/config").status_code == 401
    assert cache.get(SessionStore(key).cache_key) is None
    # A new login is of the new generation.
    assert logged_in(user).get("/api/config").status_code == 200

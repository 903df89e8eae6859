"""The one registry of client message types (signaling/messages.py) and the consumer's table."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from rooms import protocol as p
from signaling.consumer import SignalingConsumer
from signaling.messages import Registry


async def handler(socket, msg, msg_id) -> None:
    """A handler that does nothing."""


def test_the_consumer_handles_every_client_type():
    """The consumer's table has exactly the protocol's client types."""
    assert set(SignalingConsumer.handler_for) == set(p.VALIDATORS)


def test_a_type_without_a_handler_stops_the_start(monkeypatch):
    """A client type added to the protocol with no handler: no table, named in the error."""
    registry = Registry()
    registry(*p.VALIDATORS)(handler)
    monkeypatch.setitem(p.VALIDATORS, "wave", lambda msg: {"type": "wave"})
    with pytest.raises(ImproperlyConfigured, match=r"without a handler: \['wave'\]"):
        registry.table()


def test_a_handler_without_a_type_or_twice_is_refused():
    """A handler for a type the protocol lacks, or a second handler for a type, is refused."""
    registry = Registry()
    registry(*p.VALIDATORS, "wave")(handler)
    with pytest.raises(ImproperlyConfigured, match=r"without a type in the protocol: \['wave'\]"):
        registry.table()
    with pytest.raises(ImproperlyConfigured, match="two handlers for the 'ping' message"):
        registry(p.PING)(handler)

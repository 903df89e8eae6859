"""Moved to tests/support/transport.py: test helpers live outside the product's packages.

Kept only while tests/signaling/test_protocol.py and tests/accounts/test_middleware.py
(other branches of the split) still import it from here; delete once they import
`tests.support.transport`.
"""

from tests.support.transport import WebsocketCommunicator

__all__ = ["WebsocketCommunicator"]

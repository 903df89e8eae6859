"""The transport tests use the integration tests' private redis-server."""

from tests.integration.conftest import private_redis  # noqa: F401 - a fixture

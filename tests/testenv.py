"""Environment for the test run, loaded as a plugin before Django reads its settings.

Tests run with DEBUG off, as production does, so they need a SECRET_KEY; the
variables a developer has exported for `make run` must not leak into them.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
for name in ("REDIS_URL", "TURN_URLS", "TURN_SECRET", "STUN_URLS", "SIGNALING_URL", "DOMAIN"):
    os.environ.pop(name, None)
os.environ["STATIC_MANIFEST"] = "false"
# The test client speaks plain http: the HTTPS settings that DEBUG off turns on
# are off here (tests/config/test_settings.py checks the defaults themselves).
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ["SECURE_COOKIES"] = "false"
os.environ["SECURE_HSTS_SECONDS"] = "0"
# pytest owns SIGTERM in the test process.
os.environ["SIGTERM_DRAIN"] = "false"

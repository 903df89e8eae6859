"""Settings for the video-room site, split by concern; every value comes from the environment.

`DJANGO_SETTINGS_MODULE=config.settings` reads this package, which gathers:

    env.py       the environment parsers, BASE_DIR, DEBUG, DOMAIN
    core.py      the Django site: apps, middleware, URLs, templates, static files
    data.py      database, Redis, channel layer, cache
    security.py  secret key, hosts, logins and sign-ups, HTTPS, CSP, sessions
    calls.py     signaling, ICE/TURN, presence, rates and limits, housekeeping, quality
    sfu.py       Janus (validated by sfu/checks.py as system checks)
    ops.py       logs

Unset variables fall back to embedded defaults that run the whole product on
one machine (SQLite, in-memory channel layer, no TURN). `.env.example` lists
every variable read here. A setting a module needs from another is imported
from it by name, so each file shows what it depends on.
"""

from config.settings.calls import *  # noqa: F403
from config.settings.core import *  # noqa: F403
from config.settings.data import *  # noqa: F403
from config.settings.env import *  # noqa: F403
from config.settings.ops import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.sfu import *  # noqa: F403

"""The SFU: Janus (docs/sfu.md). Validated by sfu/checks.py as system checks, all at once."""

from __future__ import annotations

from config.settings.env import env_int, env_list, env_str

# Calls past a few people go through Janus' VideoRoom, which the site drives
# over the Janus API (sfu/). JANUS_URL unset means no SFU: every call
# stays a mesh. ws://host:port, wss://..., or unix:/path for a UNIX socket.
JANUS_URL = env_str("JANUS_URL")
# Janus' api_secret and the VideoRoom admin_key (deploy/janus/entrypoint
# renders the same two into Janus' config). Room secrets and PINs are derived
# from the admin key per room (sfu.room_credentials).
JANUS_API_SECRET = env_str("JANUS_API_SECRET")
JANUS_ADMIN_KEY = env_str("JANUS_ADMIN_KEY")
# Rooms in `auto` media mode (the default) stay peer to peer up to this many
# people and move to the SFU when one more joins (and Janus answers).
MESH_MAX_PEERS = env_int("MESH_MAX_PEERS", 4)
# An `auto` room on the SFU goes back to direct (mesh) once it has had
# MESH_MAX_PEERS people or fewer for MESH_RETURN_AFTER seconds (someone who
# leaves and comes back within it changes nothing: no flapping); the Janus
# room is destroyed SFU_RETURN_GRACE seconds later, the browsers' time to set
# up their direct links while still receiving through the SFU. The grace is
# shorter than the delay, so a room's next return never meets its last grace.
MESH_RETURN_AFTER = env_int("MESH_RETURN_AFTER", 60)
SFU_RETURN_GRACE = env_int("SFU_RETURN_GRACE", 30)
# The largest capacity of an `sfu` or `auto` room (mesh rooms: 12); each Janus
# room admits its room's capacity of publishers.
SFU_CAPACITY_MAX = env_int("SFU_CAPACITY_MAX", 50)
# Seconds: a Janus request's answer; between keepalives of each session (Janus
# drops a session silent for its session_timeout, 60 s); how long a worker
# tries to claim its sessions back after its connection to Janus dropped
# (Janus keeps them for its reclaim_session_timeout, 30 s).
JANUS_REQUEST_TIMEOUT = env_int("JANUS_REQUEST_TIMEOUT", 10)
JANUS_KEEPALIVE_INTERVAL = env_int("JANUS_KEEPALIVE_INTERVAL", 15)
JANUS_RECLAIM_WINDOW = env_int("JANUS_RECLAIM_WINDOW", 25)
# The server's watchdog of every SFU PeerConnection (sfu/seat.py): one not up
# this many seconds after its answer is replaced (doubling on each failure, to 60 s).
# The browser's own watchdog acts first (static/js/sfu.js); this is for when it cannot.
SFU_SETUP_TIMEOUT = env_int("SFU_SETUP_TIMEOUT", 30)
# Where Janus may send ICE connectivity checks (sfu/sdp.py): the browsers'
# candidates on public unicast addresses only, plus the networks in ALLOW (a site
# whose browsers or TURN relays are on a LAN; the test stacks' loopback), minus
# those in DENY (public addresses that must not be probed, e.g. the server's own).
# Comma-separated CIDRs.
SFU_CANDIDATE_ALLOW = env_list("SFU_CANDIDATE_ALLOW")
SFU_CANDIDATE_DENY = env_list("SFU_CANDIDATE_DENY")

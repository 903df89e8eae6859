"""The JSON API (docs/protocol.md section 1): the HTTP edge that composes the apps.

Not a Django app: it owns no models. `api.base` is the plumbing every answer
goes through (JSON in and out, errors included); `api.views` are the
endpoints, thin over `accounts` (who is signed in) and `rooms` (services,
selectors, and `rooms.wire` for what goes out).
"""

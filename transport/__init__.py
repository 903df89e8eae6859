"""Everything that reaches into a dependency (or replaces one) to make the signaling path fast.

    transport/
      versions.py  the guard: the releases each module was written for (one plain
                   list), checked at start-up, fail loudly
      patches.py   the server patches the launcher (config/serve.py) installs: Inbox
                   queues, 1012 closes, no crash on sends to closed sockets,
                   backpressure, direct Twisted writes, uvloop and its guard
      inbox.py     Inbox: the one queue per socket that the server and the layer share
      consumer.py  DirectDispatch: the consumer's fast `__call__` and `dispatch`
      layer.py     the channel layers (Redis pub/sub, in-memory), public API only
      switches.py  the environment switches that turn a speed-up off for an A/B run
      apps.py      checks every guard when Django loads

transport/ imports nothing of the project's but infra/ (a contract `make lint`
checks). docs/architecture.md ("Transport") gives what each piece touches, the
releases it was written for and what it buys.
"""

"""Load benchmark of the signaling path: our server against socket.io and a bare relay.

`python -m bench --quick` (make bench) or `--full` (make bench-full); see
docs/benchmarks.md, which the benchmark regenerates.
"""

"""This process's name among the workers: the host (a container's is its id) and the pid."""

from __future__ import annotations

import functools
import os
import socket


@functools.cache
def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"

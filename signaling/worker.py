"""Moved to signaling/runtime/: kept for the merge of issue 23 only.

Importers outside this branch's files: config/warmup.py, tests/sfu/test_media_return.py,
tests/sfu/test_resume.py. They import `signaling.runtime` once merged; then this goes.
"""

from signaling.runtime import all_workers, get_worker

__all__ = ["all_workers", "get_worker"]

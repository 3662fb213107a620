"""Run functions for spawned bench workers in tests/test_faults.py: a light module, so that a
worker imports only what its run needs (not pytest and the test module)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def run_or_die(spec: Any, out: Path, suite: str, progress: bool) -> dict:
    """``run_spec``, except that the run named in ``out/die_on`` SIGKILLs its worker."""
    marker = out / "die_on"
    if marker.exists() and marker.read_text() == spec.run_id:
        os.kill(os.getpid(), signal.SIGKILL)
    from tokengym.bench import rows

    return rows.run_spec(spec, out, suite, progress)


def sleep_run(spec: Any, out: Path, suite: str, progress: bool) -> dict:
    """Record this worker's PID, then outlive any test."""
    (out / f"worker-{os.getpid()}").write_text("")
    time.sleep(120)
    raise AssertionError("a worker outlived its driver")

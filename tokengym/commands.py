"""The console scripts ``tokengym-train`` and ``tokengym-bench``.

They live here, in the torch-free package, so that a missing extra prints one line with its
``pip install`` command instead of an import traceback.
"""

from __future__ import annotations

import sys

from .errors import MissingDependencyError


def train_command() -> None:
    """``tokengym-train``: ``python -m tokengym.agents.train``."""
    try:
        from .agents.train import main
    except MissingDependencyError as e:
        sys.exit(f"tokengym-train: {e}")
    sys.exit(main())


def bench_command() -> None:
    """``tokengym-bench``: ``python -m tokengym.bench``."""
    try:
        from .bench.__main__ import main
    except MissingDependencyError as e:
        sys.exit(f"tokengym-bench: {e}")
    sys.exit(main())

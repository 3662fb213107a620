"""The console scripts ``tokengym-train`` and ``tokengym-bench``.

They live here, in the torch-free package, so that a missing extra prints one line with its
``pip install`` command instead of an import traceback.
"""

from __future__ import annotations

import importlib.util
import sys

from .errors import MissingDependencyError

HELP_FLAGS = ("-h", "--help")


def train_command() -> None:
    """``tokengym-train``: ``python -m tokengym.agents.train``."""
    if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
        _bare_package("tokengym.agents")  # --help needs the config only: no torch (~1.2 s)
    try:
        from .agents.command import main
    except MissingDependencyError as e:
        sys.exit(f"tokengym-train: {e}")
    sys.exit(main())


def _bare_package(name: str) -> None:
    """Register package ``name`` without running its ``__init__`` (which imports torch), so
    that its torch-free submodules load alone. Only for a process that prints help and exits."""
    spec = importlib.util.find_spec(name)
    if spec is None or name in sys.modules:
        return
    sys.modules[name] = importlib.util.module_from_spec(spec)


def bench_command() -> None:
    """``tokengym-bench``: ``python -m tokengym.bench``."""
    try:
        from .bench.__main__ import main
    except MissingDependencyError as e:
        sys.exit(f"tokengym-bench: {e}")
    sys.exit(main())

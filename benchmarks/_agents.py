"""The one door from the benchmark suite to the agents package.

In a checkout the agents are the top-level package ``agents``; in the wheel they install as
``tokengym_agents`` (next to ``tokengym_benchmarks``). Everything in ``benchmarks/`` reaches them
through :func:`agents_module`, never through a bare ``import agents``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import tokengym  # noqa: F401  (registers TokenGen-v0 before any agent builds an env)

AGENTS_PACKAGE = "tokengym_agents" if (__package__ or "").startswith("tokengym_") else "agents"


def agents_module(name: str) -> ModuleType:
    """Import a module of the agents package by its relative name.

    Args:
        name: dotted path inside the package, e.g. ``"train"`` or ``"sb3.profile"``.

    Returns:
        The imported module.

    Example:
        >>> agents_module("metrics").__name__.endswith(".metrics")
        True
    """
    return importlib.import_module(f"{AGENTS_PACKAGE}.{name}")

"""One line instead of a traceback when an optional dependency is missing."""

from __future__ import annotations

import importlib.util

from .errors import MissingDependencyError


def require(*modules: str, extra: str, package: str) -> None:
    """Raise :class:`MissingDependencyError` naming the ``pip install`` line if a module is absent.

    Called at the top of ``package``'s ``__init__``. The error names ``package`` as the module
    that cannot be imported, so ``python -m package.module`` reports it in one line ("Error while
    finding module specification ... pip install ...") and the console scripts print it alone.

    Example:
        >>> require("torch", extra="torch", package="tokengym.agents")  # doctest: +SKIP
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f'{package} needs {", ".join(missing)}: pip install "tokengym[{extra}]"', name=package
        )

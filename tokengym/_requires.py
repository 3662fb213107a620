"""One line instead of a traceback when an optional dependency is missing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

from .errors import MissingDependencyError

CHECKOUT = Path(__file__).resolve().parent.parent


def install_hint(extra: str) -> str:
    """The ``pip install`` line that adds ``extra`` to tokengym as it was installed here.

    A checkout (an editable install, or the source folder on the path) gets ``pip install -e``
    of that folder (``"."`` when it is the working directory); an install from a wheel file gets
    that file with the extra; anything else, the package name.

    Example:
        >>> install_hint("torch")  # in a checkout's folder  # doctest: +SKIP
        'pip install -e ".[torch]"'
    """
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "agents").is_dir():
        here = Path.cwd().resolve() == CHECKOUT
        return f'pip install -e "{"." if here else CHECKOUT}[{extra}]"'
    wheel = _installed_from_file()
    if wheel is not None:
        return f'pip install "{wheel}[{extra}]"'
    return f'pip install "tokengym[{extra}]"'


def _installed_from_file() -> str | None:
    """The local wheel (or folder) tokengym was installed from, per PEP 610's direct_url.json."""
    try:
        text = importlib.metadata.distribution("tokengym").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    url = json.loads(text).get("url", "") if text else ""
    if url.startswith("file://"):
        path = url.removeprefix("file://")
        return path if os.path.exists(path) else None
    return None


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
            f"{package} needs {', '.join(missing)}: {install_hint(extra)}", name=package
        )

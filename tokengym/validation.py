"""The validation helpers of every config (env, agents, benchmark): each raises ``ConfigError``
with a message that names the field, the value and what is allowed.

Example:
    >>> check_int("batch_size", 0, 1)
    Traceback (most recent call last):
    ...
    tokengym.errors.ConfigError: batch_size=0 is invalid; expected an int >= 1
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """Rejects ``value`` unless it is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is invalid; expected one of {tuple(allowed)}")


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """Rejects anything but an int (bools excluded) in ``[low, high]``; returns it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{name}={value!r} is invalid; expected an int {bound}")
    return value


def check_env_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """`check_int` that also takes numpy integers, as the task knobs do (env arguments such as
    ``max_new_tokens`` and ``num_envs``); returns a Python int."""
    if isinstance(value, np.integer) and not isinstance(value, np.bool_):
        value = int(value)
    return check_int(name, value, low, high)


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Rejects anything but a finite real number in the range; returns it as a float.

    ``low_open`` excludes ``low`` itself (``lr`` must be > 0, ``gamma`` may be 0).
    """
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    ok = real and math.isfinite(value)  # type: ignore[arg-type]
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        if low is not None and high is not None:
            bound = f" in {'(' if low_open else '['}{low}, {high}]"
        elif low is not None:
            bound = f" {'>' if low_open else '>='} {low}"
        else:
            bound = ""
        raise ConfigError(f"{name}={value!r} is invalid; expected a finite number{bound}")
    return float(value)  # type: ignore[arg-type]

"""Typed errors of tokengym: every message names the bad value and what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import gymnasium


class TokenGymError(Exception):
    """Base class of every error tokengym raises on purpose."""


class UnknownNameError(TokenGymError, ValueError):
    """A task, reward or other name that is not registered."""


class UnknownArgumentError(UnknownNameError, TypeError):
    """A keyword argument the environment does not take.

    A `TypeError` too, worded as Python words it ("got an unexpected keyword argument 'x'"), so
    that clients which retry without an optional argument on `TypeError` (SB3's `make_vec_env`,
    torchrl's `GymEnv`) work.
    """


class ConfigError(TokenGymError, ValueError):
    """An environment argument with a value that is not allowed."""


class RenderModeError(ConfigError, TypeError):
    """A `render_mode` the environment does not support.

    A `TypeError` too: SB3's `make_vec_env` passes `render_mode="rgb_array"` and retries without
    it on a `TypeError` only.
    """


class DatasetError(TokenGymError, ValueError):
    """A prompt dataset that is empty, malformed or does not fit the environment."""


class TokenizerError(TokenGymError, ValueError):
    """A tokenizer that lacks a special token or disagrees with the action space."""


class InvalidActionError(TokenGymError, ValueError):
    """An action that is not an integer token id of the action space."""


class ResetNeeded(TokenGymError, gymnasium.error.ResetNeeded):
    """`step` before the first `reset`, or after the episode ended."""


class RewardError(TokenGymError, RuntimeError):
    """A reward function that raised or returned a value that is not a finite number."""


def _suggest(name: object, known: Iterable[str], n: int = 3) -> str:
    close = difflib.get_close_matches(str(name), sorted(known), n=n, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown_name(
    kind: str, name: object, known: Iterable[str], context: str = ""
) -> UnknownNameError:
    """Builds the error for an unknown name, suggesting the closest known ones."""
    known = sorted(known)
    return UnknownNameError(
        f"unknown {kind} {name!r}{context}.{_suggest(name, known)} Known {kind}s: "
        f"{', '.join(known)}."
    )


def unexpected_argument(
    owner: str, name: str, arguments: Iterable[str], knobs: Iterable[str], knob_owner: str
) -> UnknownArgumentError:
    """Python's error for an unknown keyword, suggesting the closest argument or task knob.

    Example:
        >>> str(unexpected_argument("f", "bx", ["a", "bb"], [], "task 't'"))[:54]
        "f() got an unexpected keyword argument 'bx'. Did you m"
    """
    arguments, knobs = sorted(arguments), sorted(knobs)
    knob_text = f"knobs of {knob_owner}: {', '.join(knobs)}" if knobs else f"{knob_owner}: no knobs"
    return UnknownArgumentError(
        f"{owner}() got an unexpected keyword argument {name!r}."
        f"{_suggest(name, arguments + knobs, n=2)} Arguments: {', '.join(arguments)}; "
        f"{knob_text}."
    )


class MissingDependencyError(TokenGymError, ModuleNotFoundError):
    """An optional dependency is not installed; the message holds the ``pip install`` line."""

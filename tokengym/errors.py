"""Typed errors of tokengym: every message names the bad value and what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import gymnasium


class TokenGymError(Exception):
    """Base class of every error tokengym raises on purpose."""


class UnknownNameError(TokenGymError, ValueError):
    """A task, reward or other name that is not registered."""


class ConfigError(TokenGymError, ValueError):
    """An environment argument with a value that is not allowed."""


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


def unknown_name(
    kind: str, name: object, known: Iterable[str], context: str = ""
) -> UnknownNameError:
    """Builds the error for an unknown name, suggesting the closest known ones."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(
        f"unknown {kind} {name!r}{context}.{hint} Known {kind}s: {', '.join(known)}."
    )


class MissingDependencyError(TokenGymError, ModuleNotFoundError):
    """An optional dependency is not installed; the message holds the ``pip install`` line."""

"""Sequence rewards R(prompt, completion, reference).

Reward modes (see `TokenGenEnv`): "terminal" pays R on the last step only; "dense" pays the
potential-based shaping `gamma * Phi(s') - Phi(s)` on every step plus R on the last one, Phi
being the share of the reference's tokens matched in order over the longer of the reference and
the prefix (computed incrementally by the environments).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from .errors import ConfigError, RewardError, unknown_name

RewardFn = Callable[[str, str, "str | None"], float]
REWARD_MODES = ("terminal", "dense")


def exact_match(prompt: str, completion: str, reference: str | None) -> float:
    """1.0 if the completion equals the reference, else 0.0."""
    return 1.0 if completion == reference else 0.0


def prefix_match(prompt: str, completion: str, reference: str | None) -> float:
    """Length of the common prefix over the longer of the two strings (1.0 iff equal).

    Example:
        >>> prefix_match("", "abx", "abcd")
        0.5
    """
    assert reference is not None
    longest = max(len(completion), len(reference))
    if longest == 0:
        return 1.0
    common = 0
    for a, b in zip(completion, reference):
        if a != b:
            break
        common += 1
    return common / longest


def edit_similarity(prompt: str, completion: str, reference: str | None) -> float:
    """1 - Levenshtein distance / length of the longer string (1.0 iff equal).

    Example:
        >>> edit_similarity("", "abxd", "abcd")
        0.75
    """
    assert reference is not None
    longest = max(len(completion), len(reference))
    if longest == 0:
        return 1.0
    previous = list(range(len(reference) + 1))
    for i, a in enumerate(completion, start=1):
        current = [i]
        for j, b in enumerate(reference, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return 1.0 - previous[-1] / longest


REWARDS: dict[str, RewardFn] = {
    "exact": exact_match,
    "prefix": prefix_match,
    "edit": edit_similarity,
}


def resolve_reward(reward: str | RewardFn) -> tuple[RewardFn, bool]:
    """A reward function and whether it needs a reference answer for every prompt."""
    if isinstance(reward, str):
        if reward not in REWARDS:
            raise unknown_name("reward", reward, REWARDS)
        return REWARDS[reward], True
    if callable(reward):
        return reward, False
    raise ConfigError(
        f"reward must be one of {sorted(REWARDS)} or a callable "
        f"(prompt, completion, reference) -> float, got {reward!r}"
    )


def score(reward_fn: RewardFn, prompt: str, completion: str, reference: str | None) -> float:
    """Calls the reward function; failures and non-finite values become a `RewardError`."""
    try:
        value = reward_fn(prompt, completion, reference)
    except Exception as exc:
        raise RewardError(
            f"the reward function {getattr(reward_fn, '__name__', reward_fn)!r} raised "
            f"{type(exc).__name__}: {exc} (prompt {prompt!r}, completion {completion!r})"
        ) from exc
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise RewardError(
            f"the reward function must return a finite number, got {value!r} "
            f"(prompt {prompt!r}, completion {completion!r})"
        )
    return float(value)

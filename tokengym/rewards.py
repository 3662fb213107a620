"""Sequence rewards R(prompt, completion, reference) and the per-step reward rule of each mode.

Reward modes (see `TokenGenEnv`): "terminal" pays R on the last step only; "dense" pays the
potential-based shaping `gamma * Phi(s') - Phi(s)` on every step plus R on the last one, Phi
being the share of the reference's tokens matched in order over the longer of the reference and
the prefix; "progress" pays `1 / (len(reference) + 1)` for every token that extends the matched
prefix of the reference followed by EOS, plus R on the last step. `STEP_RULES` holds the rule
of each mode, shared by `TokenGenEnv` and `TokenGenVectorEnv`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .errors import ConfigError, RewardError, unknown_name

RewardFn = Callable[[str, str, "str | None"], float]
REWARD_MODES = ("terminal", "dense", "progress")


# The per-step reward rule of each shaped mode, written once for both environments: plain
# arithmetic on the step's counts, so the same code runs on Python numbers (TokenGenEnv) and
# elementwise on numpy arrays (TokenGenVectorEnv). Counts after the step's token: `matched`
# leading generated tokens equal the reference, `generated` tokens were generated (EOS
# included), the reference has `reference_length` tokens (EOS excluded). `state` is what the
# rule returned on the previous step (0 after reset). The env adds R on the last step.


def dense_step(
    matched: Any, generated: Any, reference_length: Any, state: Any, gamma: float
) -> tuple[Any, Any]:
    """Mode "dense", a step that does not end the episode: ``gamma * Phi(s_t+1) - Phi(s_t)``.

    ``Phi(s) = matched / max(reference_length, generated)``; the state is ``Phi(s_t)``.

    Example:
        >>> dense_step(1, 1, 4, 0.0, 0.5)  # "a" of reference "abcd"
        (0.125, 0.25)
    """
    # max(reference_length, generated), in a form that also works on integer arrays.
    longest = reference_length + (generated > reference_length) * (generated - reference_length)
    phi = matched / longest
    return gamma * phi - state, phi


def dense_last(
    matched: Any, generated: Any, reference_length: Any, state: Any, gamma: float, eos: Any
) -> Any:
    """Mode "dense", the last step, before R: Phi of the final state is 0, so ``-Phi(s_T)``.

    Example:
        >>> dense_last(2, 3, 4, 0.5, 0.5, True)  # "ab" then EOS, reference "abcd"
        -0.5
    """
    return -state


def progress_step(
    matched: Any, generated: Any, reference_length: Any, state: Any, gamma: float
) -> tuple[Any, Any]:
    """Mode "progress", a step that does not end the episode: its share if it extends the match.

    The target is the reference followed by EOS: ``reference_length + 1`` tokens, each worth
    ``1 / (reference_length + 1)``, paid undiscounted to the token that extends the matched
    prefix (no closing term). The state is the matched count before the step.

    Example:
        >>> progress_step(1, 1, 3, 0, 1.0)  # "a" of reference "abc"
        (0.25, 1)
    """
    return (matched - state) / (reference_length + 1), matched


def progress_last(
    matched: Any, generated: Any, reference_length: Any, state: Any, gamma: float, eos: Any
) -> Any:
    """Mode "progress", the last step, before R: its share if it extends the match.

    An EOS right after the whole reference completes the target and earns the last share, so
    the undiscounted progress total is ``k / (reference_length + 1)`` for a matched prefix of
    k target tokens: 1 for the exact answer only.

    Example:
        >>> progress_last(3, 4, 3, 3, 1.0, True)  # "abc" then EOS, reference "abc"
        0.25
    """
    complete = eos & (matched == reference_length) & (generated == reference_length + 1)
    return (matched + complete - state) / (reference_length + 1)


class StepRule(NamedTuple):
    """The per-step reward of a shaped mode, before R (see the functions above).

    Attributes:
        step: ``(matched, generated, reference_length, state, gamma) -> (reward, state)`` for a
            step that does not end the episode.
        last: ``(matched, generated, reference_length, state, gamma, eos) -> reward`` for the
            step that ends it, EOS or not; the env adds R to it.
    """

    step: Callable[[Any, Any, Any, Any, float], tuple[Any, Any]]
    last: Callable[[Any, Any, Any, Any, float, Any], Any]


# The rule of each reward mode; "terminal" has none (0 on every step, R on the last).
STEP_RULES: dict[str, StepRule | None] = {
    "terminal": None,
    "dense": StepRule(dense_step, dense_last),
    "progress": StepRule(progress_step, progress_last),
}


def dense_step_scalar(
    matched: int, generated: int, reference_length: int, state: float, gamma: float
) -> tuple[float, float]:
    """`dense_step` on Python numbers (the single env's hot path): the same values, with a
    branch for the max that the array form cannot use."""
    phi = matched / (generated if generated > reference_length else reference_length)
    return gamma * phi - state, phi


# The single env's rules where a scalar form is faster; the others are STEP_RULES'.
SCALAR_STEP_RULES: dict[str, StepRule | None] = {
    **STEP_RULES,
    "dense": StepRule(dense_step_scalar, dense_last),
}


def dense_step_arrays(
    matched: np.ndarray,
    generated: np.ndarray,
    reference_length: np.ndarray,
    state: np.ndarray,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """`dense_step` on int arrays (the vector env's hot path): the same values, with one
    `np.maximum` for the max instead of four array operations."""
    phi = matched / np.maximum(generated, reference_length)
    return (phi if gamma == 1.0 else gamma * phi) - state, phi  # 1.0 * phi is phi, bit for bit


# The vector env's rules where an array form is faster; the others are STEP_RULES'.
ARRAY_STEP_RULES: dict[str, StepRule | None] = {
    **STEP_RULES,
    "dense": StepRule(dense_step_arrays, dense_last),
}


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


# The registered `spec.reward_threshold` of TokenGen-v0: a mean return of 0.9 is 90% exact
# answers under an exact-match R in the terminal mode. `exact_answer_threshold` turns it into the
# threshold with that meaning in the other modes.
REGISTERED_REWARD_THRESHOLD = 0.9
EXACT_SHARE = 0.9


def exact_answer_threshold(
    reward_mode: str, gamma: float, longest_reference: int, invalid_reward: float
) -> float | None:
    """The mean undiscounted return at or above which at least 90% of the answers are exact,
    under an exact-match R (1 for the exact answer, else 0).

    With E the smallest return of an exact answer and F the largest return of any other
    episode, a mean of at least ``0.9 E + 0.1 F`` needs a share p >= 0.9 of exact answers
    (``p E + (1 - p) F`` grows with p). In the terminal mode (and dense at gamma 1) E = 1 and
    F = 0, so the threshold is 0.9 and a mean return is the share itself. None where no
    threshold can say it (E <= F).

    Example:
        >>> exact_answer_threshold("progress", 1.0, 5, 0.0)  # 0.9 * 2 + 0.1 * 5/6
        1.8833333333333333
    """
    m, worst_invalid = longest_reference, max(0.0, invalid_reward)
    if reward_mode == "progress":  # exact: 1 + R = 2; else at most m/(m+1) partial credit
        best_exact, best_other = 2.0, m / (m + 1) + worst_invalid
    elif reward_mode == "dense":  # an exact answer of m tokens: 1 - (1 - gamma) * sum Phi_t
        best_exact, best_other = 1.0 - (1.0 - gamma) * (m + 1) / 2, worst_invalid
    else:
        best_exact, best_other = 1.0, worst_invalid
    if best_exact <= best_other:
        return None
    return EXACT_SHARE * best_exact + (1 - EXACT_SHARE) * best_other

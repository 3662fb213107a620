"""The options of `reset`: a pinned prompt and a prefix of generated tokens, checked once for
both environments (`TokenGenEnv` and `TokenGenVectorEnv`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError

RESET_OPTIONS = ("prompt_index", "prefix")


def check_reset_options(options: object, extra: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """The `prompt_index` and `prefix` options (None where absent); any other key is an error.

    `options` must be None or a mapping: anything else (`[]`, a string) is refused rather than
    ignored. `extra` names the keys the caller handles itself (the vector env's `reset_mask`).
    """
    if options is None:
        return None, None
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"reset options must be a dict (keys {list(RESET_OPTIONS + extra)}) or None, got "
            f"{options!r} of type {type(options).__name__}"
        )
    unknown = sorted(set(options) - set(RESET_OPTIONS) - set(extra), key=str)
    if unknown:
        raise ConfigError(
            f"unknown reset options {unknown}; the options are {list(RESET_OPTIONS + extra)}"
        )
    return options.get("prompt_index"), options.get("prefix")


def check_prompt_index(index: object, num_prompts: int) -> int:
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise ConfigError(f"prompt_index must be an int in [0, {num_prompts - 1}], got {index!r}")
    if not 0 <= index < num_prompts:
        raise ConfigError(f"prompt_index must be in [0, {num_prompts - 1}], got {index}")
    return int(index)


def is_token_id(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_prefix(
    prefix: object, vocab_size: int, specials: dict[int, str], max_new_tokens: int, name: str
) -> list[int]:
    """The token ids of a prefix, checked: ints in [0, V), none of them special, and short
    enough that the episode has a step left (at most `max_new_tokens - 1` tokens).

    `specials` maps the ids of EOS, PAD, BOS and SEP to their names; `name` is how the errors
    call the prefix ("prefix", "prefix[2]" for a row of the vector env).
    """
    if isinstance(prefix, np.ndarray) and prefix.ndim == 1:
        prefix = prefix.tolist()
    if isinstance(prefix, (str, bytes)) or not isinstance(prefix, Sequence):
        raise ConfigError(f"{name} must be a sequence of token ids, got {prefix!r}")
    ids = []
    for position, token in enumerate(prefix):
        where = f"{name}[{position}]"
        if not is_token_id(token):
            raise ConfigError(
                f"{where} must be an int token id in [0, {vocab_size - 1}], got {token!r}"
            )
        token = int(token)
        if not 0 <= token < vocab_size:
            raise ConfigError(
                f"{where} = {token} is out of range: token ids run from 0 to {vocab_size - 1}"
            )
        if token in specials:
            raise ConfigError(
                f"{where} = {token} is {specials[token]}: a prefix holds tokens generated before "
                f"the episode's end, so it may not contain EOS, PAD, BOS or SEP"
            )
        ids.append(token)
    if len(ids) >= max_new_tokens:
        raise ConfigError(
            f"{name} has {len(ids)} tokens; at most max_new_tokens - 1 = {max_new_tokens - 1} "
            f"fit ({name}[{max_new_tokens - 1}] would be the step that ends the episode at "
            f"max_length)"
        )
    return ids


def row_prefixes(
    prefix: object, num_envs: int, check: Callable[[object, str], list[int]]
) -> list[list[int]]:
    """The prefix of every sub-env of the vector env, checked by `check(prefix, name)`.

    `prefix` is one sequence of token ids for every sub-env, or a sequence of `num_envs`
    entries, each None (no prefix) or a sequence of token ids.
    """
    if isinstance(prefix, np.ndarray):
        prefix = list(prefix) if prefix.ndim == 2 else prefix.tolist()
    if isinstance(prefix, (str, bytes)) or not isinstance(prefix, Sequence):
        raise ConfigError(
            f"prefix must be a sequence of token ids or a sequence of {num_envs} such sequences "
            f"(None for no prefix), got {prefix!r}"
        )
    if all(is_token_id(token) for token in prefix):
        return [check(prefix, "prefix")] * num_envs
    if len(prefix) != num_envs:
        raise ConfigError(
            f"prefix must be a sequence of token ids or a sequence of {num_envs} such sequences "
            f"(None for no prefix), got {len(prefix)} entries"
        )
    return [[] if row is None else check(row, f"prefix[{i}]") for i, row in enumerate(prefix)]


def state_after(
    step: Callable[[Any, Any, Any, Any, float], tuple[Any, Any]],
    matched: np.ndarray,
    generated: np.ndarray,
    reference_length: np.ndarray,
    gamma: float,
) -> np.ndarray:
    """The shaping state after `generated` tokens of which the first `matched` agree with the
    reference, by running the reward rule's `step` over them as stepping would."""
    state = np.zeros(len(generated), dtype=np.float64)
    for t in range(1, int(generated.max(initial=0)) + 1):
        new = step(np.minimum(matched, t), t, reference_length, state, gamma)[1]
        state = np.where(t <= generated, new, state)
    return state


def check_seeds(seed: object, num_envs: int) -> list[int | None]:
    """The seed of each sub-env: None, an int >= 0 (sub-env i gets seed + i) or a sequence of
    num_envs entries, each None or an int >= 0 (what `SyncVectorEnv` takes)."""
    if seed is None:
        return [None] * num_envs
    if is_token_id(seed) and seed >= 0:  # type: ignore[operator]
        return [int(seed) + i for i in range(num_envs)]  # type: ignore[call-overload]
    if isinstance(seed, np.ndarray):
        seed = seed.tolist()
    if (
        isinstance(seed, Sequence)
        and not isinstance(seed, (str, bytes))
        and len(seed) == num_envs
        and all(s is None or (is_token_id(s) and s >= 0) for s in seed)
    ):
        return [None if s is None else int(s) for s in seed]
    raise ConfigError(
        f"seed must be None, an int >= 0 or a sequence of {num_envs} entries (None or an int "
        f">= 0), got {seed!r}"
    )

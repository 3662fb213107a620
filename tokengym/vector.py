"""TokenGenVectorEnv: N TokenGen episodes stepped together in numpy (`gym.make_vec`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .env import PROMPT_DRAW_BLOCK, STOP_REASONS, check_prompt_index, check_reset_options
from .errors import ConfigError, InvalidActionError, ResetNeeded
from .problem import ProblemAttributes, build_problem, check_positive_int
from .rewards import STEP_RULES, score
from .tokenizer import character_table

# Stop reasons by code, as the object array the infos hold.
STOP_EOS, STOP_MAX_LENGTH, STOP_INVALID = 0, 1, 2
STOP_NAMES = np.array(STOP_REASONS, dtype=object)


class TokenGenVectorEnv(ProblemAttributes, VectorEnv):
    """`num_envs` copies of `TokenGenEnv` stepped as arrays, with NEXT_STEP autoreset.

    It returns the same observations, rewards and infos as a `SyncVectorEnv` of `TokenGenEnv`
    with the same seeds (sub-env i is seeded with seed + i), at a fraction of the cost.
    Arguments are those of `TokenGenEnv`, plus `num_envs`, `max_episode_steps` (what
    `gym.make` turns into a `TimeLimit`) and `copy` (False returns the internal observation
    buffer, which the next step overwrites). `reset(options={"prompt_index": ...})` takes an
    int for every sub-env or an int array of shape (num_envs,).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["ansi"]}

    def __init__(
        self,
        num_envs: int = 1,
        *,
        max_episode_steps: int | None = None,
        copy: bool = True,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        check_positive_int("num_envs", num_envs)
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, int)
            or max_episode_steps < 1
        ):
            raise ConfigError(
                f"max_episode_steps must be None or an int >= 1, got {max_episode_steps!r}"
            )
        if render_mode not in (None, "ansi"):
            raise ConfigError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.problem = p = build_problem(**env_kwargs)
        self.num_envs, self.render_mode = num_envs, render_mode
        self.max_episode_steps, self.copy = max_episode_steps, copy
        vocab, length = p.vocab_size, p.observation_length
        self.single_action_space = spaces.Discrete(vocab)
        self.single_observation_space = spaces.Box(0, vocab - 1, (length,), np.int64)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        table = character_table(p.tokenizer)
        self._chars = None if table is None else np.array(table, dtype="<U1")
        self._rows = np.arange(num_envs)
        self._offsets = np.arange(p.max_new_tokens)
        self._masks = np.repeat(p.action_mask[None], num_envs, axis=0)
        self._prompt_texts = np.array(p.prompts, dtype=object)
        self._reference_texts = np.array(p.references, dtype=object)
        # Per sub-env state.
        self._obs = np.repeat(p.templates[:1], num_envs, axis=0)
        self._index = np.zeros(num_envs, dtype=np.int64)
        self._start = np.zeros(num_envs, dtype=np.int64)
        self._generated = np.zeros(num_envs, dtype=np.int64)
        self._matched = np.zeros(num_envs, dtype=np.int64)
        self._reference_length = np.zeros(num_envs, dtype=np.int64)
        self._phi = np.zeros(num_envs, dtype=np.float64)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.ones(num_envs, dtype=bool)
        self._started = False
        # Prompt draws: sub-env i draws blocks from its own generator, as TokenGenEnv does.
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._draws = np.zeros((num_envs, PROMPT_DRAW_BLOCK), dtype=np.int64)
        self._draw_pos = np.full(num_envs, PROMPT_DRAW_BLOCK, dtype=np.int64)

    # ------------------------------------------------------------------ reset
    def _seed(self, seed: int | Sequence[int | None] | None) -> None:
        seeds = (
            [None if seed is None else seed + i for i in range(self.num_envs)]
            if (seed is None or isinstance(seed, (int, np.integer)))
            else list(seed)
        )
        if len(seeds) != self.num_envs:
            raise ConfigError(
                f"seed must be an int or a list of {self.num_envs} seeds, got {len(seeds)}"
            )
        for i, s in enumerate(seeds):
            if s is not None or self._rngs[i] is None:
                self._rngs[i] = seeding.np_random(s)[0]
                self._draw_pos[i] = PROMPT_DRAW_BLOCK

    def _draw_prompt_indices(self, rows: np.ndarray) -> np.ndarray:
        for i in rows[self._draw_pos[rows] == PROMPT_DRAW_BLOCK]:  # a refill per 256 episodes
            rng = self._rngs[i]
            assert rng is not None
            self._draws[i] = rng.integers(0, self.problem.num_prompts, size=PROMPT_DRAW_BLOCK)
            self._draw_pos[i] = 0
        position = self._draw_pos[rows]
        self._draw_pos[rows] = position + 1
        return self._draws[rows, position]

    def _reset_rows(self, rows: np.ndarray, indices: np.ndarray, infos: dict[str, Any]) -> None:
        p = self.problem
        self._obs[rows] = np.take(p.templates, indices, axis=0)
        self._index[rows], self._start[rows] = indices, p.generation_start[indices]
        self._reference_length[rows] = p.reference_lengths[indices]
        self._generated[rows] = self._matched[rows] = self._elapsed[rows] = 0
        self._phi[rows] = 0.0
        self._needs_reset[rows] = False
        self._set_info(infos, "prompt", rows, self._prompt_texts[indices], object)
        self._set_info(infos, "reference", rows, self._reference_texts[indices], object)
        self._set_info(infos, "prompt_index", rows, indices, np.int64)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._seed(seed)
        pinned = check_reset_options(options)
        if pinned is None:
            indices = self._draw_prompt_indices(self._rows)
        elif isinstance(pinned, (int, np.integer)) and not isinstance(pinned, (bool, np.bool_)):
            indices = np.full(self.num_envs, check_prompt_index(pinned, self.num_prompts))
        else:
            indices = np.asarray(pinned)
            if indices.shape != (self.num_envs,) or indices.dtype.kind not in "iu":
                raise ConfigError(
                    f"prompt_index must be an int or an int array of shape ({self.num_envs},), "
                    f"got {pinned!r}"
                )
            for index in indices:
                check_prompt_index(index, self.num_prompts)
        infos: dict[str, Any] = {}
        self._reset_rows(self._rows, indices.astype(np.int64), infos)
        self._started = True
        self._add_masks(infos)
        return self._observation(), infos

    # ------------------------------------------------------------------- step
    def _check_actions(self, actions: object, active: np.ndarray) -> np.ndarray:
        """Token ids of the stepping sub-envs; resetting ones get PAD (their action is ignored)."""
        array = np.asarray(actions)
        if array.shape != (self.num_envs,) or array.dtype.kind not in "iu":
            raise InvalidActionError(
                f"actions must be an int array of shape ({self.num_envs},) with token ids in "
                f"[0, {self.problem.vocab_size - 1}], got dtype {array.dtype} shape {array.shape}"
            )
        tokens = array.astype(np.int64)
        tokens[~active] = self.problem.tokenizer.pad_id
        if tokens.min() < 0 or tokens.max() >= self.problem.vocab_size:
            first = int(np.argmax((tokens < 0) | (tokens >= self.problem.vocab_size)))
            raise InvalidActionError(
                f"action {tokens[first]} of sub-env {first} is out of range: token ids "
                f"run from 0 to {self.problem.vocab_size - 1}"
            )
        return tokens

    def step(
        self, actions: object
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps every sub-env at once; whole-batch array operations, rows masked by `active`."""
        if not self._started:
            raise ResetNeeded("step() called before reset(); call reset() first")
        p, infos = self.problem, {}
        resetting = self._needs_reset
        active = ~resetting
        tokens = self._check_actions(actions, active)
        n = self._generated + 1
        # Resetting rows write into their BOS slot; their reset below rewrites the whole row.
        self._obs[self._rows, np.where(active, self._start + n - 1, 0)] = tokens
        self._generated = n
        eos = tokens == p.tokenizer.eos_id
        invalid = (p.action_mask[tokens] == 0) & ~eos
        ended = active & (eos | invalid | (n == p.max_new_tokens))
        # Leading tokens that agree with the reference: Phi and exact-match scoring use them.
        table = p.reference_table  # (P, R), R >= max_new_tokens; resetting rows may reach R
        expected = table[self._index, np.minimum(n - 1, table.shape[1] - 1)]
        extends = (self._matched == n - 1) & (n <= self._reference_length) & (expected == tokens)
        self._matched = np.where(extends, n, self._matched)
        rule = STEP_RULES[p.reward_mode]
        if rule is None:
            rewards = np.zeros(self.num_envs, dtype=np.float64)
        else:  # the ending rows get their reward in _finish, the resetting rows a fresh state
            going = active & ~ended
            shaped, state = rule.step(self._matched, n, self._reference_length, self._phi, p.gamma)
            rewards = np.where(going, shaped, 0.0)
            self._phi = np.where(going, state, self._phi)
        if ended.any():
            rows = np.flatnonzero(ended)
            stop = np.where(
                eos[rows], STOP_EOS, np.where(invalid[rows], STOP_INVALID, STOP_MAX_LENGTH)
            )
            self._finish(rows, n[rows] - (eos | invalid)[rows], stop, rewards, infos)
        terminated = ended
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            self._elapsed += active
            truncated = active & (self._elapsed >= self.max_episode_steps)
        if resetting.any():
            rows = np.flatnonzero(resetting)
            self._reset_rows(rows, self._draw_prompt_indices(rows), infos)
        self._needs_reset = terminated | truncated
        self._add_masks(infos)
        return self._observation(), rewards, terminated, truncated, infos

    def _finish(
        self,
        rows: np.ndarray,
        kept: np.ndarray,
        stop: np.ndarray,
        rewards: np.ndarray,
        infos: dict[str, Any],
    ) -> None:
        """Scores the episodes that ended on this step and writes their final infos."""
        p = self.problem
        index = self._index[rows]
        columns = self._start[rows, None] + self._offsets  # (k, max_new_tokens)
        generated = np.where(self._offsets < kept[:, None], self._obs[rows[:, None], columns], -1)
        if self._chars is not None:
            chars = self._chars[np.maximum(generated, 0)]
            chars[generated < 0] = ""
            completions = chars.view(f"<U{p.max_new_tokens}").ravel().astype(object)
        else:
            completions = np.empty(len(rows), dtype=object)
            completions[:] = [p.tokenizer.decode(g[g >= 0].tolist()) for g in generated]
        references = self._reference_texts[index]
        invalid = stop == STOP_INVALID
        if p.scores_by_ids:
            exact = (self._matched[rows] == kept) & (kept == self._reference_length[rows])
            sequence = exact.astype(np.float64)
        else:
            sequence = np.array(
                [
                    0.0 if bad else score(p.reward_fn, p.prompts[i], c, r)
                    for i, c, r, bad in zip(index, completions, references, invalid)
                ],
                dtype=np.float64,
            )
        sequence[invalid] = p.invalid_reward
        rule = STEP_RULES[p.reward_mode]
        if rule is None:
            rewards[rows] = sequence
        else:
            shaped = rule.last(
                self._matched[rows],
                self._generated[rows],
                self._reference_length[rows],
                self._phi[rows],
                p.gamma,
                stop == STOP_EOS,
            )
            rewards[rows] = shaped + sequence
        success = ~invalid & (sequence >= p.success_threshold)
        self._set_info(infos, "completion", rows, completions, object)
        self._set_info(infos, "reference", rows, references, object)
        self._set_info(infos, "sequence_reward", rows, sequence, np.float64)
        self._set_info(infos, "success", rows, success, bool)
        self._set_info(infos, "stop_reason", rows, STOP_NAMES[stop], object)
        self._set_info(infos, "gamma", rows, np.full(len(rows), p.gamma), np.float64)

    # ------------------------------------------------------------------ infos
    def _set_info(
        self, infos: dict[str, Any], key: str, rows: np.ndarray, values: np.ndarray, dtype: Any
    ) -> None:
        """Gymnasium's vector info layout: a value array and a `_key` mask per key."""
        if len(rows) == 0:
            return
        if key not in infos:
            # np.empty of object dtype holds None, as SyncVectorEnv's fill does.
            empty = np.empty if dtype is object else np.zeros
            infos[key] = empty(self.num_envs, dtype=dtype)
            infos[f"_{key}"] = np.zeros(self.num_envs, dtype=bool)
        array = infos[key]
        array[rows] = values
        infos[f"_{key}"][rows] = True

    def _add_masks(self, infos: dict[str, Any]) -> None:
        infos["action_mask"] = self._masks.copy()
        infos["_action_mask"] = np.ones(self.num_envs, dtype=bool)

    def _observation(self) -> np.ndarray:
        return self._obs.copy() if self.copy else self._obs

    def action_masks(self) -> np.ndarray:
        """(num_envs, V) bool: tokens each sub-env may generate."""
        return self._masks.astype(bool)

    def render(self) -> tuple[str, ...] | None:
        if self.render_mode is None:
            return None
        p = self.problem
        return tuple(
            f"{p.prompts[i]} => {p.tokenizer.decode(self._obs[row, s : s + g].tolist())}"
            for row, (i, s, g) in enumerate(zip(self._index, self._start, self._generated))
        )

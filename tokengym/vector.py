"""TokenGenVectorEnv: N TokenGen episodes stepped together in numpy (`gym.make_vec`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .env import PROMPT_DRAW_BLOCK, check_prompt_index, check_reset_options
from .errors import ConfigError, InvalidActionError, ResetNeeded
from .problem import Problem, ProblemAttributes, build_problem
from .rewards import score

STOP_EOS, STOP_MAX_LENGTH, STOP_INVALID = "eos", "max_length", "invalid_token"


def _char_table(problem: Problem) -> np.ndarray | None:
    """id -> character ('' for special tokens) for one-char-per-id tokenizers, else None."""
    tok = problem.tokenizer
    if not getattr(tok, "is_char_level", False):
        return None
    specials = {tok.pad_id, tok.bos_id, tok.sep_id, tok.eos_id}
    return np.array(
        ["" if i in specials else tok.decode([i]) for i in range(tok.vocab_size)], dtype="<U1"
    )


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
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"num_envs must be an int >= 1, got {num_envs!r}")
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
        self._chars = _char_table(p)
        self._rows = np.arange(num_envs)
        self._offsets = np.arange(p.max_new_tokens)
        width = max(p.max_new_tokens, p.reference_table.shape[1])
        self._references = np.full((p.num_prompts, width), -1, dtype=np.int64)
        self._references[:, : p.reference_table.shape[1]] = p.reference_table
        self._masks = np.broadcast_to(p.action_mask, (num_envs, vocab))
        # Per sub-env state.
        self._obs = np.repeat(p.templates[:1], num_envs, axis=0)
        self._index = np.zeros(num_envs, dtype=np.int64)
        self._start = np.zeros(num_envs, dtype=np.int64)
        self._generated = np.zeros(num_envs, dtype=np.int64)
        self._matched = np.zeros(num_envs, dtype=np.int64)
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
        for i in rows[self._draw_pos[rows] == PROMPT_DRAW_BLOCK]:  # one refill per 64 episodes
            rng = self._rngs[i]
            assert rng is not None
            self._draws[i] = rng.integers(0, self.problem.num_prompts, size=PROMPT_DRAW_BLOCK)
            self._draw_pos[i] = 0
        position = self._draw_pos[rows]
        self._draw_pos[rows] = position + 1
        return self._draws[rows, position]

    def _reset_rows(self, rows: np.ndarray, indices: np.ndarray, infos: dict[str, Any]) -> None:
        p = self.problem
        self._obs[rows] = p.templates[indices]
        self._index[rows], self._start[rows] = indices, p.generation_start[indices]
        self._generated[rows] = self._matched[rows] = self._elapsed[rows] = 0
        self._phi[rows] = 0.0
        self._needs_reset[rows] = False
        prompts = np.array(p.prompts, dtype=object)[indices] if len(rows) else []
        references = [p.references[i] for i in indices]
        self._set_info(infos, "prompt", rows, prompts, object)
        self._set_info(infos, "reference", rows, references, object)
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
    def _check_actions(self, actions: object, rows: np.ndarray) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != (self.num_envs,) or array.dtype.kind not in "iu":
            raise InvalidActionError(
                f"actions must be an int array of shape ({self.num_envs},) with token ids in "
                f"[0, {self.problem.vocab_size - 1}], got dtype {array.dtype} shape {array.shape}"
            )
        tokens = array[rows].astype(np.int64)
        bad = (tokens < 0) | (tokens >= self.problem.vocab_size)
        if bad.any():
            first = int(np.argmax(bad))
            raise InvalidActionError(
                f"action {tokens[first]} of sub-env {rows[first]} is out of range: token ids "
                f"run from 0 to {self.problem.vocab_size - 1}"
            )
        return tokens

    def step(
        self, actions: object
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise ResetNeeded("step() called before reset(); call reset() first")
        p, infos = self.problem, {}
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        resetting = self._needs_reset
        stepping = self._rows[~resetting]
        tokens = self._check_actions(actions, stepping)
        if resetting.any():
            rows = self._rows[resetting]
            self._reset_rows(rows, self._draw_prompt_indices(rows), infos)

        n = self._generated[stepping] + 1
        self._obs[stepping, self._start[stepping] + n - 1] = tokens
        self._generated[stepping] = n
        eos = tokens == p.tokenizer.eos_id
        invalid = (p.action_mask[tokens] == 0) & ~eos
        ended = eos | invalid | (n == p.max_new_tokens)
        if p.reward_mode == "dense":
            self._shape(stepping[~ended], tokens[~ended], n[~ended], rewards)
        if ended.any():
            stop = np.where(
                eos[ended], STOP_EOS, np.where(invalid[ended], STOP_INVALID, STOP_MAX_LENGTH)
            )
            self._finish(stepping[ended], n[ended] - (eos | invalid)[ended], stop, rewards, infos)
            terminated[stepping[ended]] = True
        if self.max_episode_steps is not None:
            self._elapsed[stepping] += 1
            truncated[stepping] = self._elapsed[stepping] >= self.max_episode_steps
        self._needs_reset = terminated | truncated
        self._add_masks(infos)
        return self._observation(), rewards, terminated, truncated, infos

    def _shape(
        self, rows: np.ndarray, tokens: np.ndarray, n: np.ndarray, rewards: np.ndarray
    ) -> None:
        """Dense rewards of the steps that did not end: gamma * Phi(s') - Phi(s)."""
        index = self._index[rows]
        lengths = self.problem.reference_lengths[index]
        expected = self._references[index, np.minimum(n - 1, self._references.shape[1] - 1)]
        extends = (self._matched[rows] == n - 1) & (n <= lengths) & (expected == tokens)
        matched = np.where(extends, n, self._matched[rows])
        self._matched[rows] = matched
        phi = matched / np.maximum(lengths, n)
        rewards[rows] = self.problem.gamma * phi - self._phi[rows]
        self._phi[rows] = phi

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
            completions = chars.view(f"<U{p.max_new_tokens}").ravel().tolist()
        else:
            completions = [p.tokenizer.decode(g[g >= 0].tolist()) for g in generated]
        references = [p.references[i] for i in index]
        if p.scores_by_ids:
            width = self._references.shape[1]
            padded = np.full((len(rows), width), -1, dtype=np.int64)
            padded[:, : p.max_new_tokens] = generated
            sequence = (padded == self._references[index]).all(axis=1).astype(np.float64)
        else:
            sequence = np.array(
                [
                    score(p.reward_fn, p.prompts[i], c, r) if s != STOP_INVALID else 0.0
                    for i, c, r, s in zip(index, completions, references, stop)
                ],
                dtype=np.float64,
            )
        invalid = stop == STOP_INVALID
        sequence[invalid] = p.invalid_reward
        rewards[rows] = sequence - self._phi[rows] if p.reward_mode == "dense" else sequence
        success = ~invalid & (sequence >= p.success_threshold)
        self._set_info(infos, "completion", rows, completions, object)
        self._set_info(infos, "reference", rows, references, object)
        self._set_info(infos, "sequence_reward", rows, sequence, np.float64)
        self._set_info(infos, "success", rows, success, bool)
        self._set_info(infos, "stop_reason", rows, stop.astype(object), object)
        self._set_info(infos, "gamma", rows, np.full(len(rows), p.gamma), np.float64)

    # ------------------------------------------------------------------ infos
    def _set_info(
        self, infos: dict[str, Any], key: str, rows: np.ndarray, values: Any, dtype: Any
    ) -> None:
        """Gymnasium's vector info layout: a value array and a `_key` mask per key."""
        if len(rows) == 0:
            return
        if key not in infos:
            fill = None if dtype is object else 0
            infos[key] = np.full(self.num_envs, fill, dtype=dtype)
            infos[f"_{key}"] = np.zeros(self.num_envs, dtype=bool)
        array = infos[key]
        if dtype is object:
            for row, value in zip(rows.tolist(), values):
                array[row] = value  # element-wise: numpy would unpack sequences
        else:
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

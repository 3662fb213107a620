"""TokenGenVectorEnv: N TokenGen episodes stepped together in numpy (`gym.make_vec`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.lib.stride_tricks import sliding_window_view

from .decoding import CompletionTexts
from .draws import PromptDraws
from .env import check_render_mode, render_tokens
from .errors import ConfigError, InvalidActionError, ResetNeeded
from .options import (
    check_prefix,
    check_prompt_index,
    check_reset_options,
    row_prefixes,
    state_after,
)
from .problem import ProblemAttributes, build_problem, check_keywords
from .rewards import ARRAY_STEP_RULES, score
from .validation import check_env_int
from .vector_infos import VectorInfos
from .vector_state import FIELD, STATE_FIELDS, starting_state

# Stop reasons by code: indices of STOP_REASONS.
STOP_EOS, STOP_MAX_LENGTH, STOP_INVALID = 0, 1, 2
AUTORESET_MODES = [mode.value for mode in AutoresetMode]
VECTOR_ARGUMENTS = ("num_envs", "max_episode_steps", "copy", "render_mode", "autoreset_mode")


class TokenGenVectorEnv(ProblemAttributes, VectorEnv):
    """`num_envs` copies of `TokenGenEnv` stepped as arrays.

    It returns the same observations, rewards and infos as a `SyncVectorEnv` of `TokenGenEnv`
    with the same seeds (sub-env i is seeded with seed + i) and the same `autoreset_mode`, at a
    fraction of the cost. Arguments are those of `TokenGenEnv`, plus `num_envs`,
    `max_episode_steps` (what `gym.make` turns into a `TimeLimit`), `copy` (False returns the
    internal observation buffer, which the next step overwrites) and `autoreset_mode`:
    "NextStep" (default: the step after an episode's end resets that sub-env and ignores its
    action), "SameStep" (the ending step resets at once; `infos["final_obs"]` and
    `infos["final_info"]` hold the end) or "Disabled" (`reset(options={"reset_mask": m})`
    resets the ended sub-envs).

    `reset(options=...)` takes the options of `TokenGenEnv.reset`, each for every sub-env or
    per sub-env, plus `reset_mask`:
    - `"reset_mask"`: a bool array of shape (num_envs,); only its True sub-envs are reset, the
      others keep their episodes (and get blanks in the infos, as in `SyncVectorEnv`).
    - `"prompt_index"`: an int for every sub-env, or an int array of shape (num_envs,).
    - `"prefix"`: token ids generated before the first step (see `TokenGenEnv`): one sequence
      of ids for every sub-env, or a sequence of num_envs entries, each None (no prefix) or a
      sequence of ids.
    Per-sub-env values are all checked, and those of sub-envs outside `reset_mask` are unused.
    Example, VinePPO's K rollouts from the prefix `[5, 6]` of prompt 3 in rows 0..K-1:
    `reset(options={"reset_mask": rows, "prompt_index": 3, "prefix": [5, 6]})`.
    Autoresets (NextStep, SameStep) always start a drawn prompt with no prefix.

    The infos' masks are read-only (num_envs, V) broadcast views of one (V,) array, and the
    `_key` arrays and `gamma` are shared read-only arrays; the other values are fresh arrays
    each step. torchrl's `GymWrapper` takes this env in SameStep mode with `text_infos=False`
    (its reader of `final_info` fails on text), or in Disabled mode with text.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["ansi"]}

    def __init__(
        self,
        num_envs: int = 1,
        *,
        max_episode_steps: int | None = None,
        copy: bool = True,
        render_mode: str | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ) -> None:
        check_keywords("TokenGenVectorEnv.__init__", VECTOR_ARGUMENTS, env_kwargs)
        num_envs = check_env_int("num_envs", num_envs, 1)
        if not isinstance(autoreset_mode, AutoresetMode) and autoreset_mode not in AUTORESET_MODES:
            raise ConfigError(
                f"autoreset_mode must be an AutoresetMode or one of {AUTORESET_MODES}, got "
                f"{autoreset_mode!r}"
            )
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, int)
            or max_episode_steps < 1
        ):
            raise ConfigError(
                f"max_episode_steps must be None or an int >= 1, got {max_episode_steps!r}"
            )
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.problem = p = build_problem(**env_kwargs)
        self.num_envs, self.render_mode = num_envs, render_mode
        self.max_episode_steps, self.copy = max_episode_steps, copy
        vocab, length = p.vocab_size, p.observation_length
        self.single_action_space = spaces.Discrete(vocab)
        self.single_observation_space = spaces.Box(0, vocab - 1, (length,), np.int64)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._rows = np.arange(num_envs)
        # Flat views and flat row offsets: one 1-D fancy index per step costs a third of a 2-D one.
        self._row_base = self._rows * length  # flat index of each row's BOS slot in _obs
        self._ref_flat = p.reference_table.reshape(-1)
        self._info = VectorInfos(p, num_envs)
        self._texts = CompletionTexts(p.tokenizer, p.max_new_tokens)
        masked = p.action_mask == 0  # (V,) tokens that end an episode as invalid
        self._stops = masked.copy()  # (V,) tokens that end an episode: those and EOS
        self._stops[p.tokenizer.eos_id] = True
        self._vocab, self._pad_id = vocab, p.tokenizer.pad_id  # properties of the tokenizer
        # (V,) the stop code of a token that ends an episode (a plain token only ends one at the
        # budget): one lookup instead of two masks and two wheres.
        self._stop_codes = np.where(masked, STOP_INVALID, STOP_MAX_LENGTH)
        self._stop_codes[p.tokenizer.eos_id] = STOP_EOS
        # (V,) per last token: 1 where the completion leaves it out (EOS or a masked token),
        # and whether it is allowed.
        self._dropped = (self._stop_codes != STOP_MAX_LENGTH).astype(np.int64)
        self._valid = self._stop_codes != STOP_INVALID
        self._rule = ARRAY_STEP_RULES[p.reward_mode]  # the mode's per-step rule (None: terminal)
        self._specials = p.special_tokens  # may not be in a prefix
        # Per sub-env state.
        self._obs = np.repeat(p.templates[:1], num_envs, axis=0)
        # The integer state of every row, one row of `_state` per field: a reset is then one
        # gather of the prompts' starting values (`_bind_views` names the fields).
        self._state = np.zeros((len(STATE_FIELDS), num_envs), dtype=np.int64)
        self._starting = starting_state(p)
        self._bind_views()
        self._phi = np.zeros(num_envs, dtype=np.float64)
        self._needs_reset = np.ones(num_envs, dtype=bool)
        self._pending = self._rows  # np.flatnonzero(self._needs_reset), kept with it
        self._started = False
        self._broken = ""  # the error that interrupted a step: only a full reset clears it
        self._draws = PromptDraws(num_envs, p.num_prompts)

    def _bind_views(self) -> None:
        """The views of `_obs` and `_state` that the step writes through (only ever in place)."""
        self._flat_obs = self._obs.reshape(-1)
        # Row j: the max_new_tokens slots from flat index j; a row's completion is its window
        # at its first generated slot (one gather, where building the (k, max_new) indices
        # cost as much again).
        self._windows = sliding_window_view(self._flat_obs, self.problem.max_new_tokens)
        (
            self._index,
            self._start,
            self._base,  # flat index of each row's first generated slot in _obs
            self._ref_base,  # flat index of its reference's row in the reference table
            self._reference_length,
            self._generated,
            self._matched,
            self._elapsed,
        ) = self._state

    def __getstate__(self) -> dict[str, Any]:
        # Pickle and deepcopy copy each array on its own, which would cut the views from
        # their bases: they are dropped here and bound again on load.
        views = ("_flat_obs", "_windows", *(f"_{name}" for name in STATE_FIELDS))
        return {k: v for k, v in self.__dict__.items() if k not in views}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_views()

    # ------------------------------------------------------------------ reset
    def _reset_rows(self, rows: np.ndarray, indices: np.ndarray) -> None:
        p = self.problem
        self._obs[rows] = p.templates.take(indices, axis=0)
        self._state[:, rows] = self._starting.take(indices, axis=1)
        self._base[rows] += self._row_base[rows]
        if self._rule is not None:
            self._phi[rows] = 0.0

    def _check(self, prefix: object, name: str) -> list[int]:
        p = self.problem
        return check_prefix(prefix, p.vocab_size, self._specials, p.max_new_tokens, name)

    def _advance(self, rows: np.ndarray, prefixes: list[list[int]]) -> None:
        """Appends each row's checked prefix as stepping it would: the matched counts and the
        shaping states are those after its tokens."""
        p = self.problem
        lengths = np.array([len(prefix) for prefix in prefixes], dtype=np.int64)
        rows, prefixes = rows[lengths > 0], [prefix for prefix in prefixes if prefix]
        if not prefixes:
            return
        matched = np.zeros(len(rows), dtype=np.int64)
        for k, (row, prefix) in enumerate(zip(rows, prefixes)):
            start = self._start[row]
            self._obs[row, start : start + len(prefix)] = prefix
            reference = p.reference_ids[self._index[row]] or []
            while matched[k] < min(len(prefix), len(reference)) and (
                prefix[matched[k]] == reference[matched[k]]
            ):
                matched[k] += 1
        generated = lengths[lengths > 0]
        self._generated[rows], self._matched[rows] = generated, matched
        if self._rule is not None:
            length = self._reference_length[rows]
            self._phi[rows] = state_after(self._rule.step, matched, generated, length, p.gamma)

    def _reset_mask(self, mask: object) -> np.ndarray:
        shape = (self.num_envs,)
        if not (
            isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == shape
        ) or not np.any(mask):
            raise ConfigError(
                f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) with at "
                f"least one True, got {mask!r}"
            )
        return np.flatnonzero(mask)

    def _pinned_indices(self, pinned: object, rows: np.ndarray) -> np.ndarray:
        if pinned is None:
            return self._draws.draw(rows)
        if isinstance(pinned, (int, np.integer)) and not isinstance(pinned, (bool, np.bool_)):
            return np.full(len(rows), check_prompt_index(pinned, self.num_prompts))
        indices = np.asarray(pinned)
        if indices.shape != (self.num_envs,) or indices.dtype.kind not in "iu":
            raise ConfigError(
                f"prompt_index must be an int or an int array of shape ({self.num_envs},), "
                f"got {pinned!r}"
            )
        for index in indices:
            check_prompt_index(index, self.num_prompts)
        return indices[rows].astype(np.int64)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets every sub-env, or those of `options["reset_mask"]` (a bool array)."""
        rows = self._rows
        pinned, prefix = check_reset_options(options, ("reset_mask",))
        if options and "reset_mask" in options:
            if self._broken:
                raise ResetNeeded(self._broken_message("reset(options={'reset_mask': ...})"))
            rows = self._reset_mask(options["reset_mask"])
        prefixes = None if prefix is None else row_prefixes(prefix, self.num_envs, self._check)
        self._draws.seed(seed, rows)
        self._reset_rows(rows, self._pinned_indices(pinned, rows))
        if prefixes is not None:
            self._advance(rows, [prefixes[row] for row in rows])
        self._started, self._broken = True, ""
        self._needs_reset[rows] = False
        self._pending = self._needs_reset.nonzero()[0]
        infos = self._infos()
        if len(rows) < self.num_envs:
            infos = self._only(infos, self._reset_rows_mask(rows))
        return self._observation(), infos

    def _broken_message(self, call: str) -> str:
        return (
            f"{call} called after a step raised ({self._broken}), which left the sub-envs "
            f"mid-step; call reset() (of every sub-env) first"
        )

    def _reset_rows_mask(self, rows: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[rows] = True
        return mask

    # ------------------------------------------------------------------- step
    def _check_actions(self, actions: object, pending: np.ndarray) -> np.ndarray:
        """Token ids of the stepping sub-envs; the `pending` (resetting) rows get PAD (their
        action is ignored)."""
        array, vocab = np.asarray(actions), self._vocab
        if array.shape != (self.num_envs,) or array.dtype.kind not in "iu":
            raise InvalidActionError(
                f"actions must be an int array of shape ({self.num_envs},) with token ids in "
                f"[0, {vocab - 1}], got dtype {array.dtype} shape {array.shape}"
            )
        tokens = array.astype(np.int64)  # a copy: the caller's array is never written
        tokens[pending] = self._pad_id
        # One reduction checks both bounds: a negative id read as unsigned is above any V.
        if np.maximum.reduce(tokens.view(np.uint64)) >= vocab:
            first = int(np.argmax((tokens < 0) | (tokens >= vocab)))
            raise InvalidActionError(
                f"action {tokens[first]} of sub-env {first} is out of range: token ids "
                f"run from 0 to {vocab - 1}"
            )
        return tokens

    def step(
        self, actions: object
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps every sub-env at once; whole-batch array operations, the resetting rows
        (ended on the previous step, NextStep mode) patched by index."""
        if not self._started:
            raise ResetNeeded("step() called before reset(); call reset() first")
        if self._broken:
            raise ResetNeeded(self._broken_message("step()"))
        pending = self._pending  # only in NEXT_STEP mode: ended on the previous step
        if self.autoreset_mode is AutoresetMode.DISABLED and len(pending):
            raise ResetNeeded(
                f"step() called on sub-envs {pending.tolist()} after their "
                f"episodes ended; with autoreset_mode=DISABLED call "
                f"reset(options={{'reset_mask': mask}}) first"
            )
        tokens = self._check_actions(actions, pending)  # raises before any state changes
        try:
            return self._step(tokens, pending)
        except BaseException as exc:  # a reward error, an interrupt: rows are left mid-step
            self._broken = f"{type(exc).__name__}: {exc}"
            raise

    def _step(
        self, tokens: np.ndarray, pending: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        p = self.problem
        generated = self._generated  # where the token goes; pending rows may be at the budget
        write = self._base + generated
        # Pending rows write into their BOS slot; their reset below rewrites the whole row.
        write[pending] = self._row_base[pending]
        self._flat_obs[write] = tokens
        # Leading tokens that agree with the reference: Phi and exact-match scoring use them.
        # The table holds -1 past each reference (never a token) and has max_new + 1 columns.
        expected = self._ref_flat[self._ref_base + generated]
        self._matched += (self._matched == generated) & (expected == tokens)
        generated += 1  # in place: now the count after this step's token
        ended = self._stops[tokens]
        ended |= generated == p.max_new_tokens
        ended[pending] = False
        rewards, phi_before = self._shaping(pending)
        rows = ended.nonzero()[0]  # np.flatnonzero costs twice this on a 1-D array
        end = self._finish(rows, tokens, phi_before, rewards) if len(rows) else None
        terminated, done, done_rows = ended, ended.copy(), rows
        truncated = self._info.falses.copy()
        if self.max_episode_steps is not None:
            self._elapsed += 1  # the pending rows' count is reset to 0 below
            truncated = self._elapsed >= self.max_episode_steps
            truncated[pending] = False
            done = ended | truncated
            done_rows = done.nonzero()[0]
        if len(pending):
            self._reset_rows(pending, self._draws.draw(pending))
        infos = self._infos(end)
        if self.autoreset_mode is AutoresetMode.SAME_STEP:
            if len(done_rows):
                infos = self._reset_same_step(done, done_rows, infos)
        else:
            self._needs_reset, self._pending = done, done_rows
        return self._observation(), rewards, terminated, truncated, infos

    def _shaping(self, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This step's shaped rewards (0 on pending rows; `_finish` overwrites the ending rows)
        and the shaping states before it (the ending rows' last reward needs them)."""
        p, rule, phi_before = self.problem, self._rule, self._phi
        if rule is None:
            return np.zeros(self.num_envs, dtype=np.float64), phi_before
        shaped, state = rule.step(
            self._matched, self._generated, self._reference_length, phi_before, p.gamma
        )
        rewards = np.asarray(shaped, dtype=np.float64)  # a fresh array from the rule
        rewards[pending] = 0.0
        # Every row takes its new state; the ending and pending rows are reset before they
        # step again. The progress rule's state is the env's own int `_matched`, which asarray
        # copies into a float array; the dense rule's is already a fresh float array.
        self._phi = np.asarray(state, dtype=np.float64)
        return rewards, phi_before

    def _reset_same_step(
        self, done: np.ndarray, rows: np.ndarray, final: dict[str, Any]
    ) -> dict[str, Any]:
        """Resets the `done` sub-envs (`rows`) now; their last observation and info go in the
        infos."""
        final_obs = np.full(self.num_envs, None, dtype=object)
        for row in rows:
            final_obs[row] = self._obs[row].copy()
        self._reset_rows(rows, self._draws.draw(rows))
        infos = self._infos()
        infos["final_obs"], infos["_final_obs"] = final_obs, done.copy()
        infos["final_info"], infos["_final_info"] = self._only(final, done), done.copy()
        return infos

    def _finish(
        self, rows: np.ndarray, tokens: np.ndarray, phi_before: np.ndarray, rewards: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Scores the episodes that ended on this step (`rows`, their last tokens in `tokens`):
        their rows, completions, sequence rewards, successes and stop reasons."""
        p = self.problem
        last = tokens[rows]
        stop, valid = self._stop_codes[last], self._valid[last]
        state = self._state.take(rows, axis=1)  # one gather of every field
        index, base = state[FIELD["index"]], state[FIELD["base"]]
        generated, matched = state[FIELD["generated"]], state[FIELD["matched"]]
        length = state[FIELD["reference_length"]]
        kept = generated - self._dropped[last]  # EOS or a masked token left out
        text = p.text_infos or not p.scores_by_ids
        completions = self._texts(self._windows[base], kept) if text else None
        # An invalid end pays the invalid reward.
        if p.scores_by_ids:
            # matched <= kept (EOS and masked tokens are in no reference): the two equal the
            # length together only for the exact answer.
            exact = (matched == kept) & (kept == length)
            sequence = np.where(valid, exact, p.invalid_reward)
        elif p.exact_reward:  # exact match: compare the texts without a call per episode
            exact = completions == self._info.references[index]
            sequence = np.where(valid, exact, p.invalid_reward)
        else:
            references = [p.references[i] for i in index]
            sequence = np.array(
                [
                    score(p.reward_fn, p.prompts[i], c, r) if ok else p.invalid_reward
                    for i, c, r, ok in zip(index, completions, references, valid)
                ],
                dtype=np.float64,
            )
        rule = self._rule
        if rule is None:
            rewards[rows] = sequence
        else:
            eos = stop == STOP_EOS
            shaped = rule.last(matched, generated, length, phi_before[rows], p.gamma, eos)
            rewards[rows] = shaped + sequence
        success = valid & (sequence >= p.success_threshold)
        return rows, completions, sequence, success, stop

    # ------------------------------------------------------------------ infos
    def _infos(self, end: tuple[np.ndarray, ...] | None = None) -> dict[str, Any]:
        return self._info.build(self._index, end)

    _only = staticmethod(VectorInfos.only)

    def _observation(self) -> np.ndarray:
        return self._obs.copy() if self.copy else self._obs

    def action_masks(self) -> np.ndarray:
        """(num_envs, V) bool: tokens each sub-env may generate (a read-only view, no copy)."""
        return self._info.masks_bool

    def render(self) -> tuple[str, ...] | None:
        if self.render_mode is None:
            return None
        p = self.problem
        return tuple(
            f"{p.prompts[i]} => {render_tokens(p.tokenizer, self._obs[row, s : s + g].tolist())}"
            for row, (i, s, g) in enumerate(zip(self._index, self._start, self._generated))
        )

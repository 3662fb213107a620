"""TokenGenEnv: token generation as a Gymnasium MDP."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .decoding import fast_decode
from .errors import InvalidActionError, RenderModeError, ResetNeeded
from .options import check_prefix, check_prompt_index, check_reset_options
from .problem import ProblemAttributes, TokenizerArg, build_problem, check_keywords
from .rewards import SCALAR_STEP_RULES, RewardFn, score
from .tasks import DatasetSource, Task
from .tokenizer import TokenizerLike

# Prompt indices are drawn from np_random in blocks: one generator call per 256 episodes instead
# of one per episode. The native vector env draws the same blocks, so both envs see the same
# prompts for the same seeds.
PROMPT_DRAW_BLOCK = 256
STOP_REASONS = ("eos", "max_length", "invalid_token")
# Keys whose value exists only once an episode ended: before that they hold these defaults, so
# every info has the same keys with the same types (clients that batch infos need that).
END_INFO_DEFAULTS: dict[str, Any] = {
    "completion": "",
    "sequence_reward": 0.0,
    "success": False,
    "stop_reason": "",
}
# The same with `text_infos=False`: no text; the stop reason as its index in STOP_REASONS.
NUMERIC_END_INFO_DEFAULTS: dict[str, Any] = {
    "sequence_reward": 0.0,
    "success": False,
    "stop_code": -1,
}


def check_render_mode(render_mode: object, allowed: list[str]) -> None:
    """Rejects a render mode outside `allowed` with a `RenderModeError` (also a TypeError)."""
    if render_mode is not None and render_mode not in allowed:
        raise RenderModeError(f"render_mode must be None or one of {allowed}, got {render_mode!r}")


def render_tokens(tokenizer: TokenizerLike, ids: list[int]) -> str:
    """Text of `ids` with the special tokens shown by name ("ab<eos>"), others as `<id>`."""
    names = {getattr(tokenizer, f"{r}_id"): f"<{r}>" for r in ("pad", "bos", "sep", "eos")}
    return "".join(names.get(t) or tokenizer.decode([t]) or f"<{t}>" for t in ids)


def _type_name(kind: type) -> str:
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


class TokenGenEnv(ProblemAttributes, gym.Env[np.ndarray, np.int64]):
    """Generate a completion to a prompt one token at a time; the completion is then scored.

    ## Description
    Each episode draws a prompt iid (with replacement) from a fixed dataset split and asks the
    agent for a completion, one token per step. Transitions are deterministic (the chosen token
    is appended) and the sequence reward R(prompt, completion) is deterministic, so the only
    hard part left is credit assignment over the tokens.

    ## Action Space
    `Discrete(V)`, V = `tokenizer.vocab_size`: the id of the next token. PAD, BOS and SEP may
    not be generated: `info["action_mask"]` (int8) and `action_masks()` (bool, the sb3-contrib
    MaskablePPO convention) mark them 0. Generating one ends the episode as a failure
    (stop_reason "invalid_token", R = `invalid_reward`).

    ## Observation Space
    `Box(0, V-1, (L,), int64)` with L = 2 + max_prompt_tokens + max_new_tokens, laid out
    `[BOS] prompt [SEP] generated... [PAD]...`. PAD differs from EOS, so the prompt, the
    generation and its length can all be read off the ids.

    ## Starting State
    `[BOS] prompt [SEP]` followed by PAD, for a prompt drawn with `self.np_random`;
    `reset(options={"prompt_index": i})` pins prompt i of the split.
    `reset(options={"prompt_index": i, "prefix": ids})` starts the episode with the token ids
    `ids` already generated: the observation, the mask, the rewards to come (dense and progress
    shaping included) and the end are exactly those after stepping `ids` from the plain reset
    (the info too: nothing has ended). A prefix may be empty; it may not contain EOS, PAD, BOS
    or SEP, and holds at most `max_new_tokens - 1` tokens (at `max_new_tokens` the episode
    would have ended); a bad one raises `ConfigError` naming the position. Without
    `prompt_index` the prompt is drawn as usual. An outer `TimeLimit` counts steps from the
    reset, not the prefix. Any other option, or options that are not a dict, is an error.

    ## Rewards
    - `reward_mode="terminal"`: 0 on every step but the last, which pays R.
    - `reward_mode="dense"`: potential-based shaping `r_t = gamma * Phi(s_t+1) - Phi(s_t)`,
      Phi(final state) = 0, the last step also paying R. Phi is the share of the reference's
      tokens matched in order, over the longer of the reference and the prefix. The discounted
      sum of dense rewards equals the terminal one minus Phi(s_0) = 0, so the optimal policy is
      that of the terminal reward for any gamma. Under Monte-Carlo returns it changes nothing
      else either: the reward-to-go from step t is the terminal one minus Phi(s_t), i.e. it
      only adds the state-dependent baseline -Phi(s_t) (it helps agents that bootstrap).
    - `reward_mode="progress"`: partial credit, not shaping. With m reference tokens, the
      target is the reference followed by EOS (m + 1 tokens); a token that extends the
      matched prefix of that target pays `1 / (m + 1)`, any other token 0, undiscounted, and
      the last step also pays R. There is no closing term: the episode's undiscounted total
      is `k / (m + 1) + R` for a matched prefix of k target tokens, `1 + R` for the exact
      answer (EOS counts only right after the whole reference, so running on earns nothing).
      The exact answer stays the optimum for an exact-match R (any gamma > 0) and for any R
      that is largest on it (gamma = 1), as long as `max_new_tokens` leaves room for its EOS.
    The per-step rule of each mode is `tokengym.rewards.STEP_RULES`. Nothing is paid after
    EOS or for padding.
    R is the task's verifier (1.0 for the exact answer), a reward name ("exact", "prefix",
    "edit") or any callable `(prompt, completion, reference) -> float`; a NaN, an infinity or
    an exception from it is raised as `RewardError`, never passed on.

    ## Episode End
    `terminated=True` when EOS is generated ("eos"), when `max_new_tokens` tokens were
    generated without EOS ("max_length": the completion is final and scored, so nothing may be
    bootstrapped past it), or on a masked token ("invalid_token"). `truncated` is never set by
    the environment: it is left to an outer time limit, `gym.make(..., max_episode_steps=k)`.

    ## Information
    Every info, after `reset` and after each step, has the same keys with the same types (clients
    that batch infos, such as Tianshou, need that): `prompt`, `reference` ("" where the data has
    none), `prompt_index`, `action_mask` (int8), `action_mask_bool` (the same mask as bool, for
    torchrl's `ActionMask` with a `Binary` spec), `gamma`, and the keys that get a value when
    the episode ends: `completion` (text, EOS excluded), `sequence_reward` (R), `success`
    (R >= `success_threshold` and a valid stop) and `stop_reason`; before the end they hold "",
    0.0, False and "". Each info's masks are its own copies of the env's one read-only mask
    (`action_masks()` returns that one, no copy), since users keep infos and Gymnasium's checker
    (1.4 on) rejects two calls that return the same array. With `text_infos=False` the infos
    hold no text, for clients that turn every info into a tensor (torchrl's SameStep vector
    reader): `prompt_index`, `sequence_reward`, `success`, `stop_code` (the index of the stop
    reason in `tokengym.env.STOP_REASONS`, -1 before the end), `gamma` and the two masks; the
    completion is then decoded only when the reward needs its text.

    ## Arguments
    ```python
    gym.make("TokenGen-v0", task="addition", reward_mode="dense", max_new_tokens=6, digits=3)
    ```
    - `task`: "copy" (default), "reverse", "sort", "addition", "parity", "target", or a Task.
    - `dataset`: a JSONL path, a list of {"prompt", "answer"} dicts, or {"train": .., "test": ..}.
    - `reward`: None (the task's verifier), "exact", "prefix", "edit", or a callable.
    - `reward_mode`: "terminal", "dense" or "progress". `gamma`: discount in [0, 1] used by
      the dense shaping.
    - `max_new_tokens`: generation budget (default: longest answer + 1 for EOS).
    - `max_prompt_tokens`: prompt budget of the observation (default: longest prompt).
    - `split`: "train" or "test", two disjoint fixed prompt sets.
    - `tokenizer`: None (characters of the task), a tokenizer.json path, a
      `tokenizers.Tokenizer` or a `tokengym.Tokenizer`; `pad_token`, `bos_token`, `sep_token`,
      `eos_token` name the special tokens of the first two. Roles left unnamed that the file
      lacks (GPT-2 has only `<|endoftext|>`, its EOS) are appended at the end of the vocabulary,
      listed in `env.unwrapped.tokenizer.added_special_tokens` (token -> id, the same each load).
    - `render_mode`: None, "ansi" or "human" (another raises `RenderModeError`, a TypeError).
      `success_threshold`: R needed for success.
    - `invalid_reward`: R of an episode ended by a masked token.
    - `text_infos`: False drops the text from the infos (see Information).
    - any other keyword is a task knob: `data_seed`, `train_size`, `test_size`, `min_length`,
      `max_length`, `alphabet_size`, `digits`, `target`, `test_fraction` (datasets). A keyword
      that is neither raises `UnknownArgumentError`, a TypeError worded as Python words it.
    `max_new_tokens` and `max_prompt_tokens` are at most 4096; a `max_new_tokens` shorter than
    some answers warns. `env.spec.reward_threshold` means 90% exact answers under an
    exact-match R in the env's own reward mode: a mean undiscounted return at or above it needs
    at least 90% exact answers (`tokengym.rewards.exact_answer_threshold`). It is 0.9 (the
    registered value) in the terminal mode and the dense one at gamma 1, where a mean return of
    0.9 is exactly 90%; 0.9 * 2 + 0.1 * m / (m + 1) in the progress mode (m: the longest
    reference), lower in the dense mode at gamma < 1; None for other rewards.

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        task: str | Task | None = None,
        *,
        dataset: DatasetSource | None = None,
        reward: str | RewardFn | None = None,
        reward_mode: str = "terminal",
        gamma: float = 1.0,
        max_new_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        split: str = "train",
        tokenizer: TokenizerArg = None,
        render_mode: str | None = None,
        success_threshold: float = 1.0,
        invalid_reward: float = 0.0,
        **task_knobs: Any,
    ) -> None:
        check_keywords(
            "TokenGenEnv.__init__",
            ("render_mode",),
            {"task": task, "dataset": dataset, **task_knobs},
        )
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
        self.problem = p = build_problem(
            task,
            dataset=dataset,
            reward=reward,
            reward_mode=reward_mode,
            gamma=gamma,
            max_new_tokens=max_new_tokens,
            max_prompt_tokens=max_prompt_tokens,
            split=split,
            tokenizer=tokenizer,
            success_threshold=success_threshold,
            invalid_reward=invalid_reward,
            **task_knobs,
        )
        vocab = p.vocab_size
        self.action_space = spaces.Discrete(vocab)
        self.observation_space = spaces.Box(0, vocab - 1, (p.observation_length,), np.int64)
        # Hot-path copies of the problem's constants, as plain Python objects.
        self._vocab, self._eos_id, self._mask = vocab, p.tokenizer.eos_id, p.action_mask
        self._mask_bool = p.action_mask.astype(bool)
        self._mask_bool.flags.writeable = False  # shared by every info, as `p.action_mask` is
        self._allowed = self._mask_bool.tolist()
        # Tokens that end an episode: EOS and every masked one.
        self._stops = [not ok or t == self._eos_id for t, ok in enumerate(self._allowed)]
        self._specials = p.special_tokens  # may not be in a prefix
        self._gamma, self._max_new = p.gamma, p.max_new_tokens
        # The reward mode's rule (rewards.SCALAR_STEP_RULES): shaping of a step, and the last.
        self._shape, self._close = SCALAR_STEP_RULES[p.reward_mode] or (None, None)
        self._decode = fast_decode(p.tokenizer)
        # How `_finish` scores: decode the text only when the reward or the infos need it.
        self._text_infos, self._by_ids, self._exact = p.text_infos, p.scores_by_ids, p.exact_reward
        self._invalid_reward, self._threshold = p.invalid_reward, p.success_threshold
        # Episode state; `_ended` is True until the first reset.
        self._ended, self._started = True, False
        self._obs = p.templates[0].copy()
        self._index = self._start = self._generated = self._matched = 0
        self._phi = 0.0
        self._reference: list[int] = []
        self._reference_length = 0  # len(self._reference), read on every step
        self._info: dict[str, Any] = {}
        # What a reset sets from its prompt, built on the prompt's first episode (`_record`).
        self._records: dict[int, tuple[int, np.ndarray, list[int], int, dict[str, Any]]] = {}
        self._draws: list[int] = []
        self._draw_pos, self._draw_rng = 0, None

    def action_masks(self) -> np.ndarray:
        """Tokens that may be generated (bool, shape (V,), read-only): the sb3-contrib
        MaskablePPO hook."""
        return self._mask_bool

    def _draw_prompt_index(self) -> int:
        rng, position = self.np_random, self._draw_pos
        if self._draw_rng is not rng or position == len(self._draws):
            draws = rng.integers(0, self.problem.num_prompts, size=PROMPT_DRAW_BLOCK)
            self._draws, self._draw_rng, position = draws.tolist(), rng, 0
        self._draw_pos = position + 1
        return self._draws[position]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:  # all that Env.reset does
            super().reset(seed=seed)
        pinned = prefix = None
        if options is not None:
            pinned, prefix = check_reset_options(options)
            if prefix is not None:
                prefix = check_prefix(prefix, self._vocab, self._specials, self._max_new, "prefix")
        if pinned is not None:
            index = check_prompt_index(pinned, self.problem.num_prompts)
        elif self._draw_rng is self._np_random and self._draw_pos < len(self._draws):
            index = self._draws[self._draw_pos]  # the next draw of the current block, inline
            self._draw_pos += 1
        else:
            index = self._draw_prompt_index()
        self._index = index
        record = self._records.get(index) or self._record(index)
        # The info of every step of this episode but the last (steps copy it).
        self._start, template, self._reference, self._reference_length, info = record
        self._obs = obs = template.copy()
        self._generated = self._matched = 0
        self._phi = 0.0
        self._ended, self._started = False, True
        self._info = info
        if prefix:
            self._advance(prefix)
        if self.render_mode == "human":
            self.render()
        return obs.copy(), self._fresh_info()

    def _fresh_info(self) -> dict[str, Any]:
        """A copy of the episode's info with masks of its own: users keep infos, and
        Gymnasium's checkers (1.4 on) require that no two calls return the same array."""
        info = self._info.copy()
        info["action_mask"], info["action_mask_bool"] = self._mask.copy(), self._mask_bool.copy()
        return info

    def _record(self, index: int) -> tuple[int, np.ndarray, list[int], int, dict[str, Any]]:
        """Prompt `index`'s generation start, template, reference ids and their count, and the
        info of every step of its episodes but the last, without the masks."""
        p = self.problem
        info: dict[str, Any] = (
            {
                "prompt": p.prompts[index],
                "reference": p.references[index] or "",
                "prompt_index": index,
                **END_INFO_DEFAULTS,
            }
            if p.text_infos
            else {"prompt_index": index, **NUMERIC_END_INFO_DEFAULTS}
        )
        info["gamma"] = p.gamma  # the masks come last, copied per call (_fresh_info)
        reference = p.reference_ids[index] or []
        start = int(p.generation_start[index])
        self._records[index] = record = (start, p.templates[index], reference, len(reference), info)
        return record

    def _advance(self, prefix: list[int]) -> None:
        """Appends checked tokens (no EOS, none masked, the budget not reached) as `step` does,
        so the matched count and the shaping state are those of stepping them."""
        reference, n = self._reference, self._generated
        for token in prefix:
            self._obs[self._start + n] = token
            n += 1
            if self._matched == n - 1 and n <= len(reference) and reference[n - 1] == token:
                self._matched = n
            if self._shape is not None:
                self._phi = self._shape(self._matched, n, len(reference), self._phi, self._gamma)[1]
        self._generated = n

    def _check_action(self, action: object) -> int:
        """The token id of a valid action; anything else raises `InvalidActionError`."""
        kind = type(action)
        if kind is bool or not (
            isinstance(action, (int, np.integer))
            or (isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu")
        ):
            raise InvalidActionError(
                f"action must be an integer token id in [0, {self._vocab - 1}], got {action!r} "
                f"of type {_type_name(kind)}"
            )
        token = int(action)  # type: ignore[call-overload]
        if not 0 <= token < self._vocab:
            raise InvalidActionError(
                f"action {token} is out of range: token ids run from 0 to {self._vocab - 1}"
            )
        return token

    def step(self, action: object) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._ended:
            raise ResetNeeded(
                "step() called after the episode ended; call reset() first"
                if self._started
                else "step() called before reset(); call reset() first"
            )
        kind = type(action)
        token = int(action) if kind is np.int64 or kind is int else -1  # type: ignore[call-overload]
        if not 0 <= token < self._vocab:  # anything but an in-range int64 or int
            token = self._check_action(action)
        n = self._generated
        self._obs[self._start + n] = token
        n += 1
        self._generated = n
        # Count the leading tokens that agree with the reference: Phi and exact match use it.
        length = self._reference_length
        if self._matched == n - 1 and n <= length and self._reference[n - 1] == token:
            self._matched = n
        if self._stops[token] or n == self._max_new:  # one test on the common path
            if token == self._eos_id:
                return self._finish("eos")
            if not self._allowed[token]:
                return self._finish("invalid_token")
            return self._finish("max_length")
        reward = 0.0
        if self._shape is not None:
            reward, self._phi = self._shape(self._matched, n, length, self._phi, self._gamma)
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), reward, False, False, self._fresh_info()

    def _finish(self, stop_reason: str) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._ended = True
        invalid = stop_reason == "invalid_token"
        kept = self._generated - (stop_reason != "max_length")  # drop EOS or a masked token
        start, index, text_infos = self._start, self._index, self._text_infos
        completion = ""
        if text_infos or not (self._by_ids or invalid):
            completion = self._decode(self._obs[start : start + kept].tolist())
        if invalid:
            sequence_reward = self._invalid_reward
        elif self._by_ids:  # exact match under a one-char-per-id tokenizer: compare ids
            exact = self._matched == kept == len(self._reference)
            sequence_reward = 1.0 if exact else 0.0
        elif self._exact:  # exact match of the texts: no call through `score`
            sequence_reward = 1.0 if completion == self.problem.references[index] else 0.0
        else:
            p = self.problem
            sequence_reward = score(p.reward_fn, p.prompts[index], completion, p.references[index])
        reward = sequence_reward
        if self._close is not None:
            shaped = self._close(
                self._matched,
                self._generated,
                len(self._reference),
                self._phi,
                self._gamma,
                stop_reason == "eos",
            )
            reward = shaped + sequence_reward
        info = self._fresh_info()
        info["sequence_reward"] = sequence_reward
        info["success"] = not invalid and sequence_reward >= self._threshold
        if text_infos:
            info["completion"], info["stop_reason"] = completion, stop_reason
        else:
            info["stop_code"] = STOP_REASONS.index(stop_reason)
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), reward, True, False, info

    def render(self) -> str | None:
        """ "prompt => generated" with the stop reason once the episode ended."""
        if not self._started:  # what gymnasium's OrderEnforcing would raise (see the spec)
            raise ResetNeeded("render() called before reset(); call reset() first")
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass render_mode='ansi'")
            return None
        p = self.problem
        generated = self._obs[self._start : self._start + self._generated].tolist()
        text = render_tokens(p.tokenizer, generated)
        line = f"{p.prompts[self._index]} => {text}"
        if self._ended and self._started:
            line += "  [end]"
        if self.render_mode == "ansi":
            return line
        print(line)
        return None

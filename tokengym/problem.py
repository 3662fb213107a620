"""Everything an environment precomputes from its arguments, shared by the single and vector env.

Validation happens here, at construction, so that a bad argument fails in `gym.make` and never
deep inside a worker process.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import tokenizers
from gymnasium.envs.registration import EnvSpec

from .errors import ConfigError, DatasetError, TokenizerError, unexpected_argument
from .rewards import (
    REGISTERED_REWARD_THRESHOLD,
    REWARD_MODES,
    RewardFn,
    exact_answer_threshold,
    exact_match,
    resolve_reward,
)
from .tasks import DatasetSource, Example, Task, make_task, task_knobs
from .tokenizer import TokenizerLike, resolve_tokenizer
from .validation import check_env_int, check_number

SPLITS = ("train", "test")
# Largest generation and prompt budgets: the prompt tables hold (prompts, 2 + both budgets)
# int64 ids, 33 MB for 1000 prompts at this bound.
MAX_TOKENS = 4096
ENTRY_POINT = "tokengym.env:TokenGenEnv"  # what TokenGen-v0 is registered with
TokenizerArg = TokenizerLike | tokenizers.Tokenizer | str | os.PathLike[str] | None


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Problem:
    """The resolved configuration of a TokenGen environment (one split of one task)."""

    task: Task
    tokenizer: TokenizerLike
    split: str
    prompts: list[str]
    references: list[str | None]
    prompt_ids: list[list[int]]
    reference_ids: list[list[int] | None]
    reward_fn: RewardFn
    reward_mode: str
    gamma: float
    max_new_tokens: int
    max_prompt_tokens: int
    success_threshold: float
    invalid_reward: float
    # Arrays for the step loop, all read-only:
    action_mask: np.ndarray  # (V,) int8, 1 = may be generated
    templates: np.ndarray  # (P, L) int64: [BOS] prompt [SEP] PAD...
    generation_start: np.ndarray  # (P,) int64: index of the first generated token
    reference_table: np.ndarray  # (P, R) int64: reference ids, -1 past the end; R > max_new
    reference_lengths: np.ndarray  # (P,) int64: -1 where there is no reference
    # True when R is 1.0 iff the generated ids equal the reference ids (else 0.0), so a batch
    # can be scored without decoding: an exact-match reward under a one-char-per-id tokenizer.
    scores_by_ids: bool
    # True when R is exact match of the completion's text with the reference (every prompt has
    # one): the envs then compare texts instead of calling the reward per episode.
    exact_reward: bool
    # False: the infos hold no text (see TokenGenEnv's Information); nothing is decoded unless
    # the reward needs the completion's text.
    text_infos: bool

    @property
    def num_prompts(self) -> int:
        return len(self.prompts)

    @property
    def observation_length(self) -> int:
        return 2 + self.max_prompt_tokens + self.max_new_tokens

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def special_tokens(self) -> dict[int, str]:
        """The ids of EOS, PAD, BOS and SEP, with their names."""
        tok = self.tokenizer
        return {tok.eos_id: "EOS", tok.pad_id: "PAD", tok.bos_id: "BOS", tok.sep_id: "SEP"}


def _encode_all(
    tokenizer: TokenizerLike, texts: list[str], what: str, where: list[str]
) -> list[list[int]]:
    """Token ids of every text; `where[i]` says where text i comes from, for the errors."""
    encoded, unk = [], getattr(tokenizer, "unk_id", None)
    for i, text in enumerate(texts):
        ids = tokenizer.encode(text)
        bad = [t for t in ids if not 0 <= t < tokenizer.vocab_size]
        if bad:
            raise TokenizerError(
                f"encoding {what} {where[i]} ({text!r}) gave ids {bad} outside the action space "
                f"Discrete({tokenizer.vocab_size}): the tokenizer's vocab_size disagrees with "
                f"its ids"
            )
        if unk is not None and unk in ids:
            raise TokenizerError(
                f"the tokenizer maps {what} {where[i]} ({text!r}) to its unknown token (id "
                f"{unk}, at token {ids.index(unk)}): that text cannot be represented; use a "
                f"tokenizer whose vocabulary covers the data"
            )
        encoded.append(ids)
    return encoded


def _origins(task: Task, split: str, count: int) -> list[str]:
    """Where each example of a split comes from ("qa.jsonl:7"), or its index in the split."""
    origins = getattr(task, "origins", None)
    return list(origins(split)) if origins is not None else [str(i) for i in range(count)]


def _check_tokenizer(tokenizer: TokenizerLike) -> None:
    size = tokenizer.vocab_size
    for role in ("pad", "bos", "sep", "eos"):
        token_id = getattr(tokenizer, f"{role}_id", None)
        if token_id is None:
            raise TokenizerError(f"the tokenizer has no {role.upper()} token ({role}_id is None)")
        if not 0 <= token_id < size:
            raise TokenizerError(
                f"{role}_id={token_id} lies outside the action space Discrete({size})"
            )
    ids = {tokenizer.pad_id, tokenizer.bos_id, tokenizer.sep_id, tokenizer.eos_id}
    if len(ids) != 4:
        raise TokenizerError("PAD, BOS, SEP and EOS must be four distinct token ids")


def check_keywords(owner: str, own_arguments: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    """Rejects a keyword that is neither an environment argument nor a knob of the task, with
    Python's `TypeError` wording and the closest name among both."""
    knobs = task_knobs(kwargs.get("task"), kwargs.get("dataset"))
    if knobs is None:
        return  # an unknown task name: make_task says so
    arguments = own_arguments + problem_arguments()
    for name in kwargs:
        if name not in arguments and name not in knobs[1]:
            raise unexpected_argument(owner, name, arguments, knobs[1], knobs[0])


def _warn_short_budget(
    max_new_tokens: int,
    answer_ids: dict[str, list[list[int] | None]],
    examples: dict[str, list[Example]],
    origins: dict[str, list[str]],
) -> None:
    """Warns when some answers do not fit in `max_new_tokens`: those prompts are unsolvable."""
    too_long = [
        (name, i)
        for name, ids_of in answer_ids.items()
        for i, ids in enumerate(ids_of)
        if ids is not None and len(ids) > max_new_tokens
    ]
    if too_long:
        name, i = too_long[0]
        longest = max(len(ids) for ids_of in answer_ids.values() for ids in ids_of if ids)
        warnings.warn(
            f"max_new_tokens={max_new_tokens} is shorter than {len(too_long)} answers, e.g. "
            f"{name} answer {origins[name][i]} ({examples[name][i].answer!r}, "
            f"{len(answer_ids[name][i] or [])} tokens): those prompts cannot be answered; "
            f"the longest answer needs max_new_tokens={longest} ({longest + 1} with its EOS)",
            UserWarning,
            stacklevel=4,
        )


def build_problem(
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
    success_threshold: float = 1.0,
    invalid_reward: float = 0.0,
    text_infos: bool = True,
    pad_token: str | None = None,
    bos_token: str | None = None,
    sep_token: str | None = None,
    eos_token: str | None = None,
    **task_knobs: Any,
) -> Problem:
    """Validates the environment arguments and precomputes the prompt tables."""
    if reward_mode not in REWARD_MODES:
        raise ConfigError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    gamma = check_number("gamma", gamma, low=0.0, high=1.0)
    success_threshold = check_number("success_threshold", success_threshold)
    invalid_reward = check_number("invalid_reward", invalid_reward)
    if not isinstance(text_infos, (bool, np.bool_)):
        raise ConfigError(f"text_infos must be True or False, got {text_infos!r}")
    if task is None and dataset is None:
        task = "copy"
    task_obj = make_task(task, dataset, **task_knobs)

    reward_name = task_obj.default_reward if reward is None else reward
    reward_fn, needs_reference = resolve_reward(reward_name)
    examples: dict[str, list[Example]] = {"train": task_obj.train, "test": task_obj.test}
    origins = {name: _origins(task_obj, name, len(ex)) for name, ex in examples.items()}
    for name, split_examples in examples.items():
        if not split_examples:
            raise DatasetError(f"the {name} split of task {task_obj.name!r} is empty")
        if needs_reference or reward_mode != "terminal":
            missing = [origins[name][i] for i, e in enumerate(split_examples) if e.answer is None]
            if missing:
                need = (
                    f"reward_mode={reward_mode!r}"
                    if reward_mode != "terminal"
                    else f"reward {reward_name!r}"
                )
                raise DatasetError(
                    f"{need} needs an answer for every prompt; {name} records "
                    f"{', '.join(missing[:5])} have none (use a reward callable and "
                    f"reward_mode='terminal')"
                )

    named = {"pad_token": pad_token, "bos_token": bos_token, "sep_token": sep_token}
    named["eos_token"] = eos_token
    tok = resolve_tokenizer(
        tokenizer, task_obj.alphabet, {k: v for k, v in named.items() if v is not None}
    )
    _check_tokenizer(tok)
    encoded = {
        name: _encode_all(tok, [e.prompt for e in ex], f"{name} prompt", origins[name])
        for name, ex in examples.items()
    }
    longest_prompt = max(len(ids) for ids_list in encoded.values() for ids in ids_list)
    max_prompt_tokens = (
        longest_prompt
        if max_prompt_tokens is None
        else check_env_int("max_prompt_tokens", max_prompt_tokens, 1, MAX_TOKENS)
    )
    if max_prompt_tokens < longest_prompt:
        name, i = next(
            (n, i)
            for n, ids_of in encoded.items()
            for i, ids in enumerate(ids_of)
            if len(ids) > max_prompt_tokens
        )
        raise DatasetError(
            f"{name} prompt {origins[name][i]} ({examples[name][i].prompt!r}) is "
            f"{len(encoded[name][i])} tokens long, over the observation budget "
            f"max_prompt_tokens={max_prompt_tokens}"
        )
    if longest_prompt > MAX_TOKENS:
        raise DatasetError(
            f"the longest prompt is {longest_prompt} tokens, over the bound of {MAX_TOKENS}"
        )

    answer_ids = {
        name: [
            None if e.answer is None else ids
            for e, ids in zip(
                ex,
                _encode_all(tok, [e.answer or "" for e in ex], f"{name} answer", origins[name]),
            )
        ]
        for name, ex in examples.items()
    }
    lengths = [len(ids) for ids_of in answer_ids.values() for ids in ids_of if ids is not None]
    if max_new_tokens is None:
        if not lengths:
            raise ConfigError(
                "the dataset has no answers to size generations by: pass max_new_tokens"
            )
        max_new_tokens = max(lengths) + 1  # room for EOS
        if max_new_tokens > MAX_TOKENS:
            raise DatasetError(
                f"the longest answer is {max_new_tokens - 1} tokens, over the bound of "
                f"{MAX_TOKENS - 1}"
            )
    else:
        max_new_tokens = check_env_int("max_new_tokens", max_new_tokens, 1, MAX_TOKENS)
        _warn_short_budget(max_new_tokens, answer_ids, examples, origins)
    chosen, reference_ids = examples[split], answer_ids[split]
    answers = [e.answer for e in chosen]

    length = 2 + max_prompt_tokens + max_new_tokens
    templates = np.full((len(chosen), length), tok.pad_id, dtype=np.int64)
    for row, ids in zip(templates, encoded[split]):
        row[0], row[1 : 1 + len(ids)], row[1 + len(ids)] = tok.bos_id, ids, tok.sep_id
    width = max([len(r) for r in reference_ids if r is not None] + [max_new_tokens + 1])
    reference_table = np.full((len(chosen), width), -1, dtype=np.int64)
    for row, ids in zip(reference_table, reference_ids):
        row[: len(ids or [])] = ids or []
    mask = np.ones(tok.vocab_size, dtype=np.int8)
    mask[[tok.pad_id, tok.bos_id, tok.sep_id]] = 0
    exact = reward_fn is exact_match or (reward is None and task_obj.verifier_is_exact_match)
    return Problem(
        task=task_obj,
        tokenizer=tok,
        split=split,
        prompts=[e.prompt for e in chosen],
        references=answers,
        prompt_ids=encoded[split],
        reference_ids=reference_ids,
        reward_fn=reward_fn,
        reward_mode=reward_mode,
        gamma=gamma,
        max_new_tokens=max_new_tokens,
        max_prompt_tokens=max_prompt_tokens,
        success_threshold=success_threshold,
        invalid_reward=invalid_reward,
        action_mask=_read_only(mask),
        templates=_read_only(templates),
        generation_start=_read_only(np.array([len(i) + 2 for i in encoded[split]], np.int64)),
        reference_table=_read_only(reference_table),
        reference_lengths=_read_only(
            np.array([-1 if r is None else len(r) for r in reference_ids], np.int64)
        ),
        scores_by_ids=exact and getattr(tok, "is_char_level", False),
        exact_reward=exact,
        text_infos=bool(text_infos),
    )


def reward_threshold(problem: Problem) -> float | None:
    """The return threshold that means 90% exact answers in this problem's reward mode (see
    `rewards.exact_answer_threshold`); None unless R is exact match."""
    if not problem.exact_reward:
        return None
    longest = int(problem.reference_lengths.max(initial=0))
    return exact_answer_threshold(
        problem.reward_mode, problem.gamma, longest, problem.invalid_reward
    )


class ProblemAttributes:
    """Read-only views of the problem, shared by `TokenGenEnv` and `TokenGenVectorEnv`."""

    problem: Problem
    _spec: EnvSpec | None = None

    @property
    def spec(self) -> EnvSpec | None:
        return self._spec

    @spec.setter
    def spec(self, spec: EnvSpec | None) -> None:
        """`gym.make` sets the registered spec: its threshold (0.9, 90% exact answers in the
        terminal mode) becomes the one with that meaning in this env's mode. A threshold that
        someone registered otherwise is kept as it is."""
        if (
            spec is not None
            and spec.entry_point == ENTRY_POINT
            and spec.reward_threshold == REGISTERED_REWARD_THRESHOLD
        ):
            spec = dataclasses.replace(spec, reward_threshold=reward_threshold(self.problem))
        self._spec = spec

    @property
    def tokenizer(self) -> TokenizerLike:
        return self.problem.tokenizer

    @property
    def task(self) -> Task:
        return self.problem.task

    @property
    def split(self) -> str:
        return self.problem.split

    @property
    def prompts(self) -> list[str]:
        """Prompts of the active split, indexed by `prompt_index`."""
        return self.problem.prompts

    @property
    def references(self) -> list[str | None]:
        return self.problem.references

    @property
    def prompt_ids(self) -> list[list[int]]:
        return self.problem.prompt_ids

    @property
    def reference_ids(self) -> list[list[int] | None]:
        return self.problem.reference_ids

    @property
    def num_prompts(self) -> int:
        return self.problem.num_prompts

    @property
    def reward_mode(self) -> str:
        return self.problem.reward_mode

    @property
    def gamma(self) -> float:
        return self.problem.gamma

    @property
    def max_new_tokens(self) -> int:
        return self.problem.max_new_tokens

    @property
    def max_prompt_tokens(self) -> int:
        return self.problem.max_prompt_tokens

    @property
    def observation_length(self) -> int:
        return self.problem.observation_length


def problem_arguments() -> tuple[str, ...]:
    """The named arguments of `build_problem`, which both environments take (its signature is
    the list, so an argument added there is known here)."""
    parameters = inspect.signature(build_problem).parameters.values()
    return tuple(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD)

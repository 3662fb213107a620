"""The task protocol and the base of the generated task families."""

from __future__ import annotations

import functools
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError

LETTERS = string.ascii_lowercase


class Example(NamedTuple):
    """One prompt and its reference answer (None where a dataset has none)."""

    prompt: str
    answer: str | None


@runtime_checkable
class Task(Protocol):
    """A fixed prompt dataset with its verifier.

    `default_reward` is the sequence reward R used when the environment is given none: a reward
    name or a callable `(prompt, completion, reference) -> float`. `verifier_is_exact_match`
    declares that R is 1.0 exactly when the completion equals the reference and 0.0 otherwise.
    `alphabet` holds every character of every prompt and answer (the default character
    tokenizer is built from it).
    """

    name: str
    verifier_is_exact_match: bool

    @property
    def default_reward(self) -> str | Callable[[str, str, str | None], float]: ...

    @property
    def alphabet(self) -> str: ...

    @property
    def train(self) -> list[Example]: ...

    @property
    def test(self) -> list[Example]: ...


def check_int(owner: str, name: str, value: object, low: int, high: int | None = None) -> None:
    """Rejects a knob that is not an int in [low, high]."""
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{owner}: {name} must be an int {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{owner}: {name} must be {allowed}, got {value}")


@dataclass(frozen=True)
class GeneratedTask:
    """A task family whose prompts are drawn from `data_seed`; subclasses define the family.

    Prompts are unique across both splits, so train and test are disjoint.

    Attributes:
        data_seed: seed of the prompt generator; the same seed gives the same two splits.
        train_size: number of training prompts.
        test_size: number of test prompts.
    """

    name = "generated"
    # Built-in verifiers score 1.0 exactly when the completion equals solve(prompt) and 0.0
    # otherwise; the vector env relies on this to score whole batches by comparing token ids.
    verifier_is_exact_match = True

    data_seed: int = 0
    train_size: int = 1000
    test_size: int = 200
    _splits: tuple[tuple[Example, ...], tuple[Example, ...]] = field(
        init=False, repr=False, compare=False, hash=False, default=((), ())
    )

    def __post_init__(self) -> None:
        check_int(self.name, "data_seed", self.data_seed, 0)
        check_int(self.name, "train_size", self.train_size, 1)
        check_int(self.name, "test_size", self.test_size, 1)
        self.check_knobs()
        wanted = self.train_size + self.test_size
        available = self.num_distinct_prompts()
        if wanted > available:
            raise ConfigError(
                f"{self.name}: train_size + test_size = {wanted} but these settings have only "
                f"{available} distinct prompts; lower the sizes or raise the difficulty knobs"
            )
        object.__setattr__(self, "_splits", _generate_splits(self))

    @property
    def train(self) -> list[Example]:
        return list(self._splits[0])

    @property
    def test(self) -> list[Example]:
        return list(self._splits[1])

    def verify(self, prompt: str, completion: str) -> float:
        """R: 1.0 if the completion is the task's exact answer to the prompt, else 0.0."""
        return 1.0 if completion == self.solve(prompt) else 0.0

    def default_reward(self, prompt: str, completion: str, reference: str | None) -> float:
        """The verifier as a reward function; the reference is not needed."""
        return self.verify(prompt, completion)

    # The family: subclasses implement these four.
    def check_knobs(self) -> None:
        raise NotImplementedError

    def num_distinct_prompts(self) -> int:
        raise NotImplementedError

    def sample_prompt(self, rng: np.random.Generator) -> str:
        raise NotImplementedError

    def solve(self, prompt: str) -> str:
        raise NotImplementedError

    @property
    def alphabet(self) -> str:
        raise NotImplementedError


@functools.lru_cache(maxsize=64)
def _generate_splits(task: GeneratedTask) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """The two splits of a task: a pure function of its knobs, so one generation is shared by
    every environment built with the same knobs (a vector env of 1024 copies, say)."""
    rng = np.random.default_rng(task.data_seed)
    seen: dict[str, None] = {}  # insertion-ordered set: the order is part of the dataset
    while len(seen) < task.train_size + task.test_size:
        seen.setdefault(task.sample_prompt(rng))
    examples = tuple(Example(p, task.solve(p)) for p in seen)
    return examples[: task.train_size], examples[task.train_size :]


@dataclass(frozen=True)
class RandomStringTask(GeneratedTask):
    """Prompts are random strings over the first `alphabet_size` letters.

    Attributes:
        min_length: shortest prompt.
        max_length: longest prompt.
        alphabet_size: number of distinct letters (1-26).
    """

    min_length: int = 3
    max_length: int = 5
    alphabet_size: int = 5

    def check_knobs(self) -> None:
        check_int(self.name, "min_length", self.min_length, 1)
        check_int(self.name, "max_length", self.max_length, self.min_length)
        check_int(self.name, "alphabet_size", self.alphabet_size, 1, len(LETTERS))

    def num_distinct_prompts(self) -> int:
        lengths = range(self.min_length, self.max_length + 1)
        return sum(self.alphabet_size**n for n in lengths)

    def sample_prompt(self, rng: np.random.Generator) -> str:
        length = int(rng.integers(self.min_length, self.max_length + 1))
        letters = rng.integers(0, self.alphabet_size, size=length)
        return "".join(LETTERS[i] for i in letters)

    @property
    def alphabet(self) -> str:
        return LETTERS[: self.alphabet_size]

"""Arithmetic tasks: multi-digit addition and bit-string parity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import GeneratedTask, check_int


@dataclass(frozen=True)
class AdditionTask(GeneratedTask):
    """Add two non-negative integers: "17+5" -> "22".

    Attributes:
        digits: operands are drawn uniformly from [0, 10**digits).
    """

    name = "addition"
    digits: int = 2

    def check_knobs(self) -> None:
        check_int(self.name, "digits", self.digits, 1, 9)

    def num_distinct_prompts(self) -> int:
        return 10 ** (2 * self.digits)

    def sample_prompt(self, rng: np.random.Generator) -> str:
        a, b = rng.integers(0, 10**self.digits, size=2)
        return f"{a}+{b}"

    def solve(self, prompt: str) -> str:
        a, b = prompt.split("+")
        return str(int(a) + int(b))

    @property
    def alphabet(self) -> str:
        return "+0123456789"


@dataclass(frozen=True)
class ParityTask(GeneratedTask):
    """Parity of the number of ones in a bit string: "1101" -> "1".

    Attributes:
        min_length: shortest bit string.
        max_length: longest bit string.
    """

    name = "parity"
    min_length: int = 6
    max_length: int = 10

    def check_knobs(self) -> None:
        check_int(self.name, "min_length", self.min_length, 1)
        check_int(self.name, "max_length", self.max_length, self.min_length, 60)

    def num_distinct_prompts(self) -> int:
        return sum(2**n for n in range(self.min_length, self.max_length + 1))

    def sample_prompt(self, rng: np.random.Generator) -> str:
        length = int(rng.integers(self.min_length, self.max_length + 1))
        return "".join("01"[b] for b in rng.integers(0, 2, size=length))

    def solve(self, prompt: str) -> str:
        return str(prompt.count("1") % 2)

    @property
    def alphabet(self) -> str:
        return "01"

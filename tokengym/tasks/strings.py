"""String transformation tasks: copy, reverse, sort, and the fixed-target sanity check."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .base import RandomStringTask


@dataclass(frozen=True)
class CopyTask(RandomStringTask):
    """Repeat the prompt: "abca" -> "abca"."""

    name = "copy"

    def solve(self, prompt: str) -> str:
        return prompt


@dataclass(frozen=True)
class ReverseTask(RandomStringTask):
    """Reverse the prompt: "abca" -> "acba"."""

    name = "reverse"

    def solve(self, prompt: str) -> str:
        return prompt[::-1]


@dataclass(frozen=True)
class SortTask(RandomStringTask):
    """Sort the prompt's letters: "cabd" -> "abcd"."""

    name = "sort"

    def solve(self, prompt: str) -> str:
        return "".join(sorted(prompt))


@dataclass(frozen=True)
class TargetTask(RandomStringTask):
    """Ignore the prompt and answer `target`: a bandit-like sanity check with a known optimum.

    Attributes:
        target: the answer to every prompt.
    """

    name = "target"
    target: str = "ab"

    def check_knobs(self) -> None:
        super().check_knobs()
        if not isinstance(self.target, str) or not self.target:
            raise ConfigError(f"target: target must be a non-empty string, got {self.target!r}")

    def solve(self, prompt: str) -> str:
        return self.target

    @property
    def alphabet(self) -> str:
        return "".join(sorted(set(super().alphabet) | set(self.target)))

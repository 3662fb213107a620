"""The exact-credit section's spec (a suite field), apart from the code that measures it.

Example:
    >>> spec = CreditExactSpec(task=(("task", "copy"),), baselines=("none", "rloo"))
    >>> [label for label, _ in spec.estimators()][:2]
    ['final, none', 'final, rloo']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tokengym.errors import ConfigError
from tokengym.validation import check_choice, check_int, check_number

from ..agents.exact import Estimator

CREDIT_EXACT = "credit-exact"  # the --only key
CREDIT_EXACT_FILE = "credit_exact.json"
# The baselines measured: name -> Estimator fields (the group size comes from the spec).
BASELINES: dict[str, dict[str, Any]] = {
    "none": {"baseline": "none"},
    "mean": {"baseline": "mean"},
    "rloo": {"baseline": "rloo", "grouped": True},
    "grpo": {"baseline": "group", "scale_rewards": "group", "grouped": True},
    "value": {"baseline": "value"},
}
CREDITS = ("final", "every_token", "trajectory")


@dataclass(frozen=True)
class CreditExactSpec:
    """What the section measures.

    Attributes:
        task: the enumerated task (RunSpec ``task`` pairs), trained and measured on.
        levels: J levels at which the weights are kept, ascending in [0, 1).
        credits: (credit, gamma) pairs: REINFORCE's credit modes (``final``, ``every_token``,
            ``trajectory``) with their discount.
        baselines: names of ``BASELINES``.
        batch_sizes: episodes per batch at which variance and batch cosine are measured.
        mc_batches: Monte Carlo batches (>= 1,000).
        seed: the training seed (weights, samples) and the Monte Carlo seed.
        group_size: completions per prompt of rloo and grpo.
        train_batch, lr, max_updates: the REINFORCE schedule (leave-one-out, final credit).
        asymmetry_pairs: direction pairs of the gradient-field test (``credit_stats.asymmetry``)
            of each credit mode at the last checkpoint; 0 skips it.
    """

    task: tuple[tuple[str, Any], ...]
    levels: tuple[float, ...] = (0.0, 0.25, 0.5)
    credits: tuple[tuple[str, float], ...] = (
        ("final", 1.0), ("every_token", 1.0), ("final", 0.9), ("final", 0.5),
    )  # fmt: skip
    baselines: tuple[str, ...] = tuple(BASELINES)
    batch_sizes: tuple[int, ...] = (8, 16, 64, 256, 512)
    mc_batches: int = 1000
    seed: int = 0
    group_size: int = 8
    train_batch: int = 256
    lr: float = 3e-3
    max_updates: int = 300
    asymmetry_pairs: int = 2

    def __post_init__(self) -> None:
        if "task" not in dict(self.task):
            raise ConfigError(f"task={self.task!r} is invalid; expected pairs with a 'task' key")
        if not self.levels or list(self.levels) != sorted(self.levels):
            raise ConfigError(f"levels={self.levels!r} is invalid; expected ascending values")
        for level in self.levels:
            check_number("levels", level, low=0.0, high=1.0)
            if level >= 1.0:
                raise ConfigError(f"levels={self.levels!r} is invalid; expected values below 1")
        if not self.credits:
            raise ConfigError("credits=() is invalid; expected >= 1 (credit, gamma) pair")
        for credit, gamma in self.credits:
            check_choice("credits", credit, CREDITS)
            check_number("credits", gamma, low=0.0, high=1.0, low_open=True)
        if not self.baselines:
            raise ConfigError("baselines=() is invalid; expected some of " + str(tuple(BASELINES)))
        for name in self.baselines:
            check_choice("baselines", name, tuple(BASELINES))
        if not self.batch_sizes:
            raise ConfigError("batch_sizes=() is invalid; expected >= 1 batch size")
        for b in self.batch_sizes:
            check_int("batch_sizes", b, 1)
        check_int("mc_batches", self.mc_batches, 1000)
        check_int("seed", self.seed, 0)
        check_int("group_size", self.group_size, 2)
        check_int("train_batch", self.train_batch, self.group_size)
        if self.train_batch % self.group_size:
            raise ConfigError(
                f"train_batch={self.train_batch!r} is invalid; expected a multiple of "
                f"group_size={self.group_size}"
            )
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_int("max_updates", self.max_updates, 1)
        check_int("asymmetry_pairs", self.asymmetry_pairs, 0)

    def estimators(self) -> list[tuple[str, Estimator]]:
        """(label, Estimator) of every credit x baseline, e.g. ``"final g=0.9, rloo"``."""
        out = []
        for credit, gamma in self.credits:
            for name in self.baselines:
                fields = dict(BASELINES[name])
                grouped = fields.pop("grouped", False)
                est = Estimator(credit=credit, gamma=gamma, group_size=1, **fields)
                if grouped:
                    est = replace(est, group_size=self.group_size)
                label = f"{credit_label(credit, gamma)}, {name}"
                out.append((label, est))
        return out


def credit_label(credit: str, gamma: float) -> str:
    """``"final"``, ``"final g=0.9"``: a credit mode with its discount where below 1."""
    return credit + ("" if gamma == 1.0 else f" g={gamma:g}")

"""The tuning stage: per arm a small grid on seeds never reported, and the pick it yields.

An arm's grid is its learning rate (4 log-spaced values) times its completions per update
(where the arm is free to choose them), every point trained on the same budget of sampled
completions (examples for the supervised agent), so a bigger batch gets fewer updates. The pick
is the point with the best mean greedy success over training (IQM over the tuning seeds; ties
keep grid order). The evaluation runs are the pick on the evaluation seeds.

Example:
    >>> from tokengym.bench.suites import COPY, RunSpec
    >>> t = Tuning("rl", RunSpec("reinforce", COPY), (1e-3, 3e-3), (64, 256), 25_600, (900,))
    >>> [(s.lr, s.batch_size, s.iterations) for s in t.specs()][:2]
    [(0.001, 64, 400), (0.001, 256, 100)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tokengym.errors import ConfigError

from . import stats

EVALUATIONS = 20  # greedy evaluations per run, whatever its batch size


def per_update(spec: Any) -> int:
    """Completions (examples for supervised) one update of ``spec`` samples."""
    return spec.batch_size * (spec.group_size if spec.agent == "dpo" else 1)


@dataclass(frozen=True)
class Tuning:
    """One arm's grid.

    Attributes:
        arm: the arm's name (a table row of the tuning section).
        base: the arm's spec; its lr and batch size are what the grid sets.
        lrs: learning rates tried.
        completions: completions per update tried (() keeps the base's batch size).
        budget: sampled completions (examples) per run, equal for every grid point.
        seeds: the tuning seeds (never among the evaluation seeds).
    """

    arm: str
    base: Any
    lrs: tuple[float, ...]
    completions: tuple[int, ...]
    budget: int
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.lrs or not self.seeds:
            raise ConfigError(f"tuning {self.arm!r}: lrs and seeds must be non-empty")
        for size in self.completions or (per_update(self.base),):
            if self.budget < size:
                raise ConfigError(
                    f"budget={self.budget} of tuning {self.arm!r} is invalid; expected >= "
                    f"{size} completions (one update)"
                )

    def point(self, lr: float, completions: int | None) -> Any:
        """The grid point at (lr, completions per update), on the base's seed."""
        spec = self.base
        if completions is not None:
            per = spec.group_size if spec.agent == "dpo" else 1
            spec = replace(spec, batch_size=completions // per)
        iterations = max(1, self.budget // per_update(spec))
        every = max(1, iterations // EVALUATIONS)
        return replace(spec, lr=lr, iterations=iterations, eval_every=every)

    def points(self) -> list[Any]:
        """Every grid point (seed of the base)."""
        sizes: tuple[int | None, ...] = self.completions or (None,)
        return [self.point(lr, size) for lr in self.lrs for size in sizes]

    def specs(self) -> tuple[Any, ...]:
        """Every grid point on every tuning seed: the runs of the tuning stage."""
        return tuple(replace(p, seed=s) for p in self.points() for s in self.seeds)


def auc(row: Mapping[str, Any]) -> float:
    """Mean greedy success over a run's evaluations."""
    points = row["curve"]
    return sum(p["success"] for p in points) / len(points) if points else 0.0


def scores(tuning: Tuning, rows: Mapping[str, Mapping[str, Any]]) -> list[tuple[Any, list[float]]]:
    """(grid point, mean success over training per finished tuning seed), in grid order."""
    out = []
    for point in tuning.points():
        done = [rows.get(s.run_id) for s in (replace(point, seed=x) for x in tuning.seeds)]
        out.append((point, [auc(r) for r in done if r is not None]))
    return out


def pick(tuning: Tuning, rows: Mapping[str, Mapping[str, Any]]) -> Any | None:
    """The best grid point (IQM of mean success over training), None until every tuning run
    has finished (the evaluation stage waits for it)."""
    if any(s.run_id not in rows for s in tuning.specs()):
        return None
    scored = scores(tuning, {k: v for k, v in rows.items()})
    return max(scored, key=lambda item: stats.iqm(item[1]))[0]  # first of equals wins

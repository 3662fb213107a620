"""Statistics over seeds, after rliable (Agarwal et al., 2021), in numpy alone.

- IQM: the interquartile mean, rliable's ``aggregate_iqm`` = ``scipy.stats.trim_mean(x, 0.25,
  axis=None)``: sort all scores, drop ``int(0.25 * n)`` from each end, average the rest (for n
  not divisible by 4 that drops less than a quarter: n = 3 keeps all, n = 5 and 6 drop one
  from each end).
- 95% CIs: rliable's stratified percentile bootstrap: runs (seeds) are resampled with
  replacement within each task (column), ``reps`` times, under a seeded numpy Generator; the CI
  is the 2.5 and 97.5 percentiles (linear interpolation) of the statistic over the resamples.
- Probability of improvement ``P(X > Y)``: over all pairs of a run of X and a run of Y of the
  same task, the share with X better, ties counting 1/2, averaged over tasks (rliable's
  Mann-Whitney form); its CI resamples the runs of X and of Y independently.

Scores are per seed: a 1-D array (one task) or (runs, tasks). A run that never reached a target
is ``+inf`` (or None in :func:`to_threshold`): the IQM stays finite while at most ``int(n / 4)``
runs never reach, and a CI bound is ``inf`` ("not within the budget") where too many resamples
hold such runs. rliable's ``scipy`` and ``arch`` dependencies are not needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

IQM_CUT = 0.25
DEFAULT_REPS = 2000
Statistic = Callable[[np.ndarray], np.ndarray]


def _matrix(scores: Sequence[float | None] | np.ndarray) -> np.ndarray:
    """Scores as a float (runs, tasks) matrix; None becomes +inf."""
    array = np.asarray(
        [math.inf if s is None else s for s in scores]
        if isinstance(scores, (list, tuple))
        else scores,
        dtype=np.float64,
    )
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or np.isnan(array).any():
        raise ValueError(
            f"scores must be a non-empty (runs,) or (runs, tasks) array without NaN, "
            f"got shape {array.shape}"
        )
    return array


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of (R, N) samples."""
    ordered = np.sort(samples, axis=1)
    cut = int(IQM_CUT * ordered.shape[1])
    kept = ordered[:, cut : ordered.shape[1] - cut]
    return kept.mean(axis=1)


def _median_rows(samples: np.ndarray) -> np.ndarray:
    ordered = np.sort(samples, axis=1)
    n = ordered.shape[1]
    low, high = ordered[:, (n - 1) // 2], ordered[:, n // 2]
    return np.where(low == high, low, (low + high) / 2)  # inf-safe


def _mean_rows(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1)


# Statistics of (R, N) samples -> (R,): each row is the flattened scores of one resample.
STATISTICS: dict[str, Statistic] = {"iqm": _iqm_rows, "median": _median_rows, "mean": _mean_rows}


def _statistic(name: str) -> Statistic:
    if name not in STATISTICS:
        raise ValueError(f"statistic={name!r} is invalid; expected one of {sorted(STATISTICS)}")
    return STATISTICS[name]


def iqm(scores: Sequence[float | None] | np.ndarray) -> float:
    """Interquartile mean over all runs and tasks (rliable's ``aggregate_iqm``).

    Example:
        >>> iqm([1.0, 2.0, 3.0, 4.0, 100.0])  # int(0.25 * 5) = 1 dropped from each end
        3.0
    """
    return float(_iqm_rows(_matrix(scores).reshape(1, -1))[0])


def percentile(values: np.ndarray, q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, where ``inf`` stays ``inf``.

    Example:
        >>> percentile(np.array([1.0, 2.0, np.inf]), 50)
        2.0
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
    position = q / 100 * (len(ordered) - 1)
    low, high = ordered[math.floor(position)], ordered[math.ceil(position)]
    if low == high:
        return float(low)
    return float(low + (high - low) * (position - math.floor(position)))


def _resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, runs * tasks): runs drawn with replacement within each task, then flattened."""
    runs, tasks = scores.shape
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    return scores[rows, np.arange(tasks)].reshape(reps, -1)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float

    def overlaps(self, other: Estimate) -> bool:
        """Whether the two CIs share a point."""
        return self.low <= other.high and other.low <= self.high

    def format(self, budget: float | None = None) -> str:
        """``value [low, high]`` with :func:`number`."""
        low, high = number(self.low, budget), number(self.high, budget)
        return f"{number(self.value, budget)} [{low}, {high}]"


def number(x: float, budget: float | None = None) -> str:
    """A number for a sentence: >= 100 as a rounded integer with commas, >= 10 with one decimal,
    else two; ``inf`` is ``">budget"`` (or ``"never"`` without a budget).

    Example:
        >>> number(1050.4), number(12.34), number(0.9), number(math.inf, 4096)
        ('1,050', '12.3', '0.90', '>4,096')
    """
    if math.isinf(x):
        return "never" if budget is None else f">{number(budget)}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def bootstrap_ci(
    scores: Sequence[float | None] | np.ndarray,
    statistic: str = "iqm",
    *,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """The statistic of the scores with its stratified percentile bootstrap CI.

    Args:
        scores: per run, shape (runs,) or (runs, tasks); ``inf`` or None for "never".
        statistic: "iqm", "median" or "mean", over all runs and tasks.
        reps: bootstrap resamples.
        confidence: coverage of the interval.
        seed: seeds the numpy Generator that draws the resamples.

    Returns:
        The :class:`Estimate`.

    Example:
        >>> bootstrap_ci([1.0, 1.0, 1.0, 1.0])
        Estimate(value=1.0, low=1.0, high=1.0)
    """
    fn, matrix = _statistic(statistic), _matrix(scores)
    values = fn(_resample(matrix, reps, np.random.default_rng(seed)))
    tail = (1 - confidence) / 2 * 100
    point = float(fn(matrix.reshape(1, -1))[0])
    return Estimate(point, percentile(values, tail), percentile(values, 100 - tail))


def _improvement(x: np.ndarray, y: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """P(X better than Y), ties 1/2, per leading batch index: x (..., nx, T), y (..., ny, T)."""
    if not higher_is_better:
        x, y = -x, -y  # -inf == -inf stays a tie
    a, b = x[..., :, None, :], y[..., None, :, :]  # (..., nx, ny, T)
    wins = (a > b).mean(axis=(-3, -2)) + 0.5 * (a == b).mean(axis=(-3, -2))  # (..., T)
    return wins.mean(axis=-1)


def probability_of_improvement(
    scores_x: Sequence[float | None] | np.ndarray,
    scores_y: Sequence[float | None] | np.ndarray,
    *,
    higher_is_better: bool = True,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``P(X > Y)`` (``P(X < Y)`` when lower is better), ties 1/2, with its bootstrap CI.

    Args:
        scores_x: runs of X, (runs_x,) or (runs_x, tasks).
        scores_y: runs of Y, (runs_y,) or (runs_y, tasks), same tasks.
        higher_is_better: False for costs such as episodes to a target.
        reps: bootstrap resamples (runs of X and Y resampled independently, within tasks).
        confidence: coverage of the interval.
        seed: seeds the numpy Generator.

    Returns:
        The :class:`Estimate` of the probability.

    Example:
        >>> probability_of_improvement([3.0, 4.0], [1.0, 2.0]).value
        1.0
    """
    x, y = _matrix(scores_x), _matrix(scores_y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"X has {x.shape[1]} tasks and Y {y.shape[1]}; they must match")
    rng = np.random.default_rng(seed)
    tasks = np.arange(x.shape[1])
    xs = x[rng.integers(0, x.shape[0], size=(reps, *x.shape)), tasks]  # (reps, nx, T)
    ys = y[rng.integers(0, y.shape[0], size=(reps, *y.shape)), tasks]  # (reps, ny, T)
    values = _improvement(xs, ys, higher_is_better)
    tail = (1 - confidence) / 2 * 100
    point = float(_improvement(x, y, higher_is_better))
    return Estimate(point, percentile(values, tail), percentile(values, 100 - tail))


@dataclass(frozen=True)
class ThresholdSummary:
    """Episodes (or tokens, seconds) to a target over seeds, never-reached seeds as ``inf``.

    Attributes:
        reached: seeds that reached the target.
        runs: seeds in all.
        estimate: the statistic over all seeds (IQM by default) with its bootstrap CI; finite
            while few enough seeds never reach (at most ``int(runs / 4)`` for the IQM).
    """

    reached: int
    runs: int
    estimate: Estimate

    def format(self, budget: float | None = None) -> str:
        """``"256 [192, 320] (3/3 reached)"``; ``inf`` reads ``">budget"``."""
        return f"{self.estimate.format(budget)} ({self.reached}/{self.runs} reached)"


def to_threshold(
    values: Sequence[float | None],
    *,
    statistic: str = "iqm",
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> ThresholdSummary:
    """Summarise per-seed costs to a target where some seeds never get there (None or inf).

    Never counts as ``+inf``, not as the budget and not as a dropped seed: dropping would
    reward an arm for its failures, and the budget would make the number depend on it. The IQM
    (or median) over all seeds then stays finite while failures are rare enough, and reads
    ``">budget"`` otherwise, as do unbounded CI ends.

    Example:
        >>> to_threshold([256, 192, 320, None], reps=200).format(budget=4096)
        '288 [192, >4,096] (3/4 reached)'
    """
    matrix = _matrix(list(values))
    reached = int(np.isfinite(matrix).sum())
    return ThresholdSummary(
        reached, matrix.size, bootstrap_ci(matrix, statistic, reps=reps, seed=seed)
    )


@dataclass(frozen=True)
class Metric:
    """What the scores measure, for the generated sentences.

    Attributes:
        name: e.g. "final greedy success" or "episodes to 0.9 greedy success".
        higher_is_better: False for costs.
        goal: for a cost to a target, the target ("0.9 greedy success").
        unit: for a cost to a target, what is counted ("episodes").
        budget: the most that was spent; ``inf`` prints as ``">budget"``.
    """

    name: str
    higher_is_better: bool = True
    goal: str | None = None
    unit: str | None = None
    budget: float | None = None


def _better(a: float, b: float, metric: Metric) -> bool:
    return a > b if metric.higher_is_better else a < b


def conclude(
    question: str,
    arm_a: tuple[str, Sequence[float | None] | np.ndarray],
    arm_b: tuple[str, Sequence[float | None] | np.ndarray],
    metric: Metric,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> str:
    """One sentence comparing two arms: IQMs with 95% CIs, overlap, P(better).

    The arm with the better IQM is named first. Non-overlapping CIs give a claim ("A reaches
    {goal} in 4.1x fewer {unit} than B", or "A has a higher {name} than B"); overlapping ones
    give "no clear difference".

    Args:
        question: the sentence's lead, e.g. "Q1"; empty for none.
        arm_a: (name, per-seed scores).
        arm_b: (name, per-seed scores).
        metric: what the scores are.
        reps: bootstrap resamples.
        seed: seeds every bootstrap.

    Returns:
        The sentence, ending with a period.

    Example:
        >>> m = Metric("episodes to 0.9 success", False, "0.9 success", "episodes")
        >>> sentence = conclude("", ("SL", [256] * 3), ("RL", [1024] * 3), m)
        >>> print(sentence)  # doctest: +NORMALIZE_WHITESPACE
        SL reaches 0.9 success in 4.0x fewer episodes than RL (IQM 256 [256, 256] vs
        1,024 [1,024, 1,024]; CIs do not overlap; P(SL better) = 1.00 [1.00, 1.00]).
    """
    (name_a, scores_a), (name_b, scores_b) = arm_a, arm_b
    est_a = bootstrap_ci(scores_a, reps=reps, seed=seed)
    est_b = bootstrap_ci(scores_b, reps=reps, seed=seed)
    if _better(est_b.value, est_a.value, metric):
        (name_a, scores_a, est_a), (name_b, scores_b, est_b) = (
            (name_b, scores_b, est_b),
            (name_a, scores_a, est_a),
        )
    p = probability_of_improvement(
        scores_a, scores_b, higher_is_better=metric.higher_is_better, reps=reps, seed=seed
    )
    budget = metric.budget
    overlap = est_a.overlaps(est_b)
    details = (
        f"IQM {est_a.format(budget)} vs {est_b.format(budget)}; "
        f"CIs {'overlap' if overlap else 'do not overlap'}; "
        f"P({name_a} better) = {p.format()}"
    )
    lead = f"{question}: " if question else ""
    if overlap:
        claim = f"no clear difference in {metric.name} between {name_a} and {name_b}"
    elif metric.goal and metric.unit and not metric.higher_is_better:
        if math.isinf(est_b.value):
            claim = f"{name_a} reaches {metric.goal} and {name_b} does not, within the budget"
        else:
            times = f"{est_b.value / est_a.value:.1f}x " if est_a.value > 0 else ""
            claim = f"{name_a} reaches {metric.goal} in {times}fewer {metric.unit} than {name_b}"
    else:
        side = "higher" if metric.higher_is_better else "lower"
        claim = f"{name_a} has a {side} {metric.name} than {name_b}"
    return f"{lead}{claim} ({details})."


def conclude_many(
    question: str,
    arms: Sequence[tuple[str, Sequence[float | None] | np.ndarray]],
    metric: Metric,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> str:
    """One sentence over several arms: the best IQM, the arms whose CIs overlap its CI, the rest.

    Example:
        >>> m = Metric("final success")
        >>> arms = [("a", [0.2] * 4), ("b", [0.9] * 4), ("c", [0.5] * 4)]
        >>> print(conclude_many("Q2", arms, m))  # doctest: +NORMALIZE_WHITESPACE
        Q2: best final success: b, IQM 0.90 [0.90, 0.90]; no other arm's CI overlaps it;
        below it: c 0.50 [0.50, 0.50], a 0.20 [0.20, 0.20].
    """
    if len(arms) < 2:
        raise ValueError(f"conclude_many needs two arms or more, got {len(arms)}")
    estimates = [(name, bootstrap_ci(s, reps=reps, seed=seed)) for name, s in arms]
    sign = -1.0 if metric.higher_is_better else 1.0
    ranked = sorted(estimates, key=lambda item: sign * item[1].value)  # stable: ties keep order
    (best, top), rest = ranked[0], ranked[1:]
    budget = metric.budget
    close = [f"{n} {e.format(budget)}" for n, e in rest if e.overlaps(top)]
    apart = [f"{n} {e.format(budget)}" for n, e in rest if not e.overlaps(top)]
    parts = [f"best {metric.name}: {best}, IQM {top.format(budget)}"]
    parts.append(
        f"CIs overlapping it: {', '.join(close)}" if close else "no other arm's CI overlaps it"
    )
    if apart:
        parts.append(f"{'below' if metric.higher_is_better else 'above'} it: {', '.join(apart)}")
    lead = f"{question}: " if question else ""
    return f"{lead}{'; '.join(parts)}."


def iqm_band(
    curves: np.ndarray, *, reps: int = 500, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over seeds at every point of (seeds, points) curves, with its bootstrap CI band.

    The seeds are resampled together for all points (one resample = one set of runs), as
    rliable's sample-efficiency curves do.

    Example:
        >>> mid, low, high = iqm_band(np.array([[0.0, 1.0], [0.0, 1.0]]), reps=10)
        >>> mid.tolist(), low.tolist(), high.tolist()
        ([0.0, 1.0], [0.0, 1.0], [0.0, 1.0])
    """
    seeds, points = curves.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, seeds, size=(reps, seeds))  # (R, seeds)
    samples = curves[rows]  # (R, seeds, points)
    flat = samples.transpose(0, 2, 1).reshape(reps * points, seeds)  # (R * points, seeds)
    resampled = _iqm_rows(flat).reshape(reps, points)
    tail = 100 * (1 - confidence) / 2
    low = np.percentile(resampled, tail, axis=0)
    high = np.percentile(resampled, 100 - tail, axis=0)
    return _iqm_rows(curves.T), low, high

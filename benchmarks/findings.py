"""What the report says before its tables: the setting's claims answered one by one, the
collapsed seeds, the smallest difference each question can resolve, and the tuning picks.

Every sentence is generated from the rows (``stats.conclude``), never written by hand; a claim
whose question has no finished runs says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import stats

AUC = stats.Metric("mean greedy success over training")
# A seed has collapsed when it ends below the threshold and its greedy success moved by at most
# FLAT over the last half of its evaluations (it gives the same answers, update after update);
# where the run logged the per-token policy entropy, that entropy must be below LOW_ENTROPY too.
FLAT = 0.07
LOW_ENTROPY = 0.1
Arms = Mapping[str, Sequence[Mapping[str, Any]]]


def auc(row: Mapping[str, Any]) -> float:
    """Mean greedy success over the run's evaluations."""
    points = row["curve"]
    return sum(p["success"] for p in points) / len(points) if points else 0.0


def collapsed(row: Mapping[str, Any]) -> bool:
    """Whether a run stalled below its threshold (see ``FLAT`` and ``LOW_ENTROPY``).

    Example:
        >>> flat = {"threshold": 0.9, "curve": [{"success": s} for s in (0.0, 0.25, 0.25, 0.25)]}
        >>> collapsed(flat), collapsed({**flat, "curve": flat["curve"] + [{"success": 0.9}]})
        (True, False)
    """
    points = row["curve"]
    if len(points) < 4 or points[-1]["success"] >= row["threshold"]:
        return False
    late = [p["success"] for p in points[len(points) // 2 :]]
    if max(late) - min(late) > FLAT:
        return False
    entropies = [p["entropy"] for p in points if "entropy" in p]
    return not entropies or entropies[-1] < LOW_ENTROPY


def late_zero_advantage_share(row: Mapping[str, Any]) -> float | None:
    """Mean share of zero-advantage samples over the last half of a run's evaluations (None
    where the run did not log ``diagnostics/zero_advantage_share``)."""
    points = row["curve"]
    late = points[len(points) // 2 :]
    shares = [p["zero_advantage_share"] for p in late if "zero_advantage_share" in p]
    return sum(shares) / len(shares) if shares else None


def collapse_lines(arms: Arms) -> list[str]:
    """Per arm with collapsed seeds: "arm: 3/20 seeds collapsed (seeds 1, 4, 7)", followed,
    where those runs logged it, by the range of their zero-advantage share (the mean over the
    last half of each run's evaluations: the window of the ``FLAT`` rule).

    Example:
        >>> flat = {"spec": {"seed": 3}, "threshold": 0.9, "curve": [{"success": 0.25}] * 4}
        >>> late = {**flat, "curve": [{"success": 0.25, "zero_advantage_share": 0.9}] * 4}
        >>> for line in collapse_lines({"final": [flat], "rloo": [late]}):
        ...     print(line)
        final: 1/1 seeds collapsed (seeds 3)
        rloo: 1/1 seeds collapsed (seeds 3; zero-advantage share 0.90 over the last half)
    """
    lines = []
    for label, runs in arms.items():
        bad = sorted((r for r in runs if collapsed(r)), key=lambda r: r["spec"]["seed"])
        if bad:
            seeds = ", ".join(str(r["spec"]["seed"]) for r in bad)
            shares = sorted(s for s in map(late_zero_advantage_share, bad) if s is not None)
            if shares:
                span = f"{shares[0]:.2f}" + (f"-{shares[-1]:.2f}" if len(shares) > 1 else "")
                seeds += f"; zero-advantage share {span} over the last half"
            lines.append(f"{label}: {len(bad)}/{len(runs)} seeds collapsed (seeds {seeds})")
    return lines


def resolution(arms: Arms) -> str:
    """The smallest difference in mean success over training the question's CIs resolve."""
    widths = [stats.bootstrap_ci([auc(r) for r in runs]) for runs in arms.values()]
    spans = sorted(e.high - e.low for e in widths)
    seeds = sorted({len(runs) for runs in arms.values()})
    median = float(np.median(spans))
    return (
        f"Resolution: with {'-'.join(map(str, seeds))} seeds per arm the 95% CIs of mean "
        f"success over training are {spans[0]:.2f}-{spans[-1]:.2f} wide (median {median:.2f}), "
        f"so two arms whose IQMs differ by less than about {median:.2f} cannot be told apart."
    )


def difference(a: Sequence[float], b: Sequence[float], reps: int = 2000) -> stats.Estimate:
    """IQM(a) - IQM(b) with a 95% bootstrap CI (seeds of a and b resampled independently)."""
    rng = np.random.default_rng(0)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    xs = x[rng.integers(0, len(x), size=(reps, len(x)))]
    ys = y[rng.integers(0, len(y), size=(reps, len(y)))]
    diffs = np.array([stats.iqm(p) - stats.iqm(q) for p, q in zip(xs, ys)])
    return stats.Estimate(
        stats.iqm(x) - stats.iqm(y),
        stats.percentile(diffs, 2.5),
        stats.percentile(diffs, 97.5),
    )


def _pair(arms: Arms, a: str, b: str, lead: str) -> str | None:
    if a not in arms or b not in arms:
        return None
    return stats.conclude(lead, (a, [auc(r) for r in arms[a]]), (b, [auc(r) for r in arms[b]]), AUC)


def _sl_vs_rl(groups: Mapping[str, Arms]) -> list[str]:
    arms = groups.get("sl-vs-rl", {})
    return [s for s in [_pair(arms, "supervised", "reinforce", "")] if s]


def _credit(groups: Mapping[str, Arms]) -> list[str]:
    arms = groups.get("ladder", {})
    rungs = dict.fromkeys(label.split(", ")[0] for label in arms)
    out = []
    for rung in rungs:
        final, every = f"{rung}, credit_mode=final", f"{rung}, credit_mode=every_token"
        sentence = _pair(arms, final, every, f"answers of {rung.split('=')[1]} letters")
        if sentence:
            out.append(sentence)
    return out


def _discount(groups: Mapping[str, Arms]) -> list[str]:
    arms = groups.get("gamma", {})
    if len(arms) < 2:
        return []
    scores = [(label, [auc(r) for r in runs]) for label, runs in arms.items()]
    return [stats.conclude_many("", scores, AUC)]


def _exploration(groups: Mapping[str, Arms]) -> list[str]:
    arms = groups.get("explore", {})
    out = []
    for regime in ("scratch", "warm"):
        plain = f"init_label={regime}, variant=reinforce"
        bonus = f"init_label={regime}, variant=reinforce + entropy 0.01"
        sentence = _pair(arms, bonus, plain, f"{regime}")
        if sentence:
            verdict = "no clear difference" not in sentence
            out.append(
                f"{sentence} So an entropy bonus (exploration) "
                f"{'changes' if verdict else 'does not measurably change'} the outcome "
                f"{'from scratch' if regime == 'scratch' else 'from the warm start'}."
            )
    start = _pair(
        arms, "init_label=warm, variant=reinforce", "init_label=scratch, variant=reinforce", "start"
    )
    return out + ([start] if start else [])


def _dpo(groups: Mapping[str, Arms]) -> list[str]:
    arms = groups.get("sl-vs-rl", {})
    return [s for s in (_pair(arms, "dpo", "supervised", ""), _pair(arms, "dpo", "reinforce", ""))
            if s]  # fmt: skip


CLAIMS: tuple[tuple[str, Callable[[Mapping[str, Arms]], list[str]]], ...] = (
    ("Supervised learning vs REINFORCE on the same prompts (who controls the data)", _sl_vs_rl),
    ("Final-token vs every-token reward, by answer length", _credit),
    ("The discount (gamma < 1 optimises E[gamma^T R], favouring short answers)", _discount),
    ("Exploration from scratch vs from a warm start", _exploration),
    ("DPO as the supervised-like end", _dpo),
)


def findings(groups: Mapping[str, Arms], exact: Mapping[str, Any] | None = None) -> list[str]:
    """The Findings section's lines: per claim its generated sentences (or "not run"), and
    the exact-credit section's headline where ``exact`` (``credit_exact.json``) is given."""
    lines = ["## Findings (each sentence generated from the numbers below)", ""]
    for claim, build in CLAIMS:
        sentences = build(groups)
        body = " ".join(sentences) if sentences else "not measured in this suite (no runs)."
        lines.append(f"- **{claim}.** {body}")
    if exact is not None:
        from .credit_report import headline

        lines.append(f"- **Credit measured exactly.** {headline(exact)}")
    return [*lines, ""]


def pick_label(arms: Arms) -> str | None:
    """The tuning pick: the arm with the best IQM of mean success over training."""
    if not arms:
        return None
    return max(arms, key=lambda label: stats.iqm([auc(r) for r in arms[label]]))


def picks_table(groups: Mapping[str, Arms]) -> list[str]:
    """The tuned settings, one row per tuned arm (the candidates for the CLI defaults)."""
    rows = []
    for key, arms in groups.items():
        label = pick_label(arms) if key.startswith("tune-") else None
        if label is None:
            continue
        best = arms[label]
        scores = stats.bootstrap_ci([auc(r) for r in best]).format()
        rows.append(f"| {key.removeprefix('tune-')} | {label} | {len(best)} | {scores} |")
    if not rows:
        return []
    head = "| arm | pick | tuning seeds | mean success over training |"
    return ["## Tuned settings (the picks)", "", head, "|---|---|---:|---:|", *rows, ""]

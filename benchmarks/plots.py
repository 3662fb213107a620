"""PNG plots of the report (matplotlib, Agg backend): learning curves and throughput bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from .stats import iqm_band

AXES = {
    "episodes": "training episodes (examples for supervised)",
    "train_seconds": "training seconds (evaluations excluded)",
}
MAX_LINES = 5  # arms per panel: more cannot be told apart


def band(runs: list[dict[str, Any]], x: str, points: int = 100) -> tuple[np.ndarray, ...]:
    """(grid, IQM, CI low, CI high) of greedy success over seeds along ``x``.

    The grid starts where every seed has evaluated once; a seed's curve is held flat after its
    last evaluation.
    """
    curves = [r["curve"] for r in runs if r["curve"]]
    start = max(c[0][x] for c in curves)
    grid = np.linspace(start, max(start, max(c[-1][x] for c in curves)), points)
    ys = np.stack(
        [np.interp(grid, [p[x] for p in c], [p["success"] for p in c]) for c in curves]
    )  # (seeds, points)
    mid, low, high = iqm_band(ys)
    return grid, mid, low, high


def _short(x: float, _: object = None) -> str:
    """A tick label without an offset text: 2,500 -> "2.5k", 3e6 -> "3M"."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:g}{suffix}"
    return f"{x:g}"


def _draw(ax: Any, arms: dict[str, list[dict[str, Any]]], x: str) -> None:
    for label, runs in arms.items():
        if not any(r["curve"] for r in runs):
            continue
        grid, mid, low, high = band(runs, x)
        (line,) = ax.plot(grid, mid, label=f"{label} (n={len(runs)})")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(AXES[x])
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(FuncFormatter(_short))


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def learning_curves(
    arms: dict[str, list[dict[str, Any]]], question: dict[str, Any], out: Path
) -> list[Path]:
    """The question's PNGs: greedy success (IQM and 95% CI band over seeds) against episodes
    and training seconds; a question with two arm fields gets one panel per value of the first
    (at most ``MAX_LINES`` arms per panel), legends outside the data."""
    key, title = question["key"], question["title"]
    if len(question["arm"]) == 2:
        facets: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for label, runs in arms.items():
            facet, _, rest = label.partition(", ")
            facets.setdefault(facet, {})[rest] = runs
        cols = min(3, len(facets))
        rows = -(-len(facets) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
        for ax, (facet, group) in zip(axes.flat, facets.items()):
            _draw(ax, dict(list(group.items())[:MAX_LINES]), "episodes")
            ax.set_title(facet, fontsize=9)
            ax.legend(fontsize=7, loc="lower right")
        for ax in list(axes.flat)[len(facets) :]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("greedy success")
        fig.suptitle(f"{title} (IQM, 95% CI band over seeds)", fontsize=10)
        fig.tight_layout()
        return [_save(fig, out / f"curves_{key}.png")]
    paths = []
    chunks = [dict(list(arms.items())[i : i + MAX_LINES]) for i in range(0, len(arms), MAX_LINES)]
    for n, chunk in enumerate(chunks):
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
        for ax, x in zip(axes, AXES):
            _draw(ax, chunk, x)
        axes[0].set_ylabel("greedy success")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3)
        fig.suptitle(f"{title} (IQM, 95% CI band over seeds)", fontsize=10)
        fig.tight_layout()
        suffix = "" if len(chunks) == 1 else f"_{n + 1}"
        paths.append(_save(fig, out / f"curves_{key}{suffix}.png"))
    return paths


def throughput_bars(env: dict[str, Any], agents: list[Any], path: Path) -> Path:
    """Two bar charts (linear scale): env steps/s per setup, training tokens/s per agent."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(env)
    left.barh(names, [env[n].steps_per_second for n in names], color="tab:blue")
    left.set_xlabel("env steps / s")
    left.invert_yaxis()
    measured = [a for a in agents if a.tokens_per_second is not None]
    right.barh([a.agent for a in measured], [a.tokens_per_second for a in measured], color="C1")
    right.set_xlabel("training tokens / s")
    right.invert_yaxis()
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="x")
        widths = [bar.get_width() for bar in ax.patches]
        ax.set_xlim(0, 1.3 * max(widths, default=1.0))  # room for the value labels
        ax.xaxis.set_major_formatter(FuncFormatter(_short))
        for bar in ax.patches:
            at = (bar.get_width(), bar.get_y() + bar.get_height() / 2)
            ax.annotate(f"{bar.get_width():,.0f}", at, fontsize=7, va="center", ha="left")
    fig.suptitle("Throughput (1 torch thread; single-process env loops)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ladder_gap(arms: dict[str, list[dict[str, Any]]], path: Path, split: str = "train") -> Path:
    """Each credit mode's mean success over training (IQM, 95% CI over seeds) against answer
    length, and every_token minus final per rung (IQM difference with its bootstrap CI)."""
    from .findings import auc, difference
    from .stats import bootstrap_ci

    rungs: dict[str, dict[str, list[float]]] = {}
    for label, runs in arms.items():
        rung, _, mode = label.partition(", ")
        rungs.setdefault(rung.split("=")[-1], {})[mode.split("=")[-1]] = [auc(r) for r in runs]
    names = list(rungs)
    xs = np.arange(len(names))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    modes = dict.fromkeys(m for r in rungs.values() for m in r)
    for shift, mode in zip(np.linspace(-0.08, 0.08, len(modes)), modes):
        have = [i for i, n in enumerate(names) if mode in rungs[n]]  # a partial folder lacks some
        est = [bootstrap_ci(rungs[names[i]][mode]) for i in have]
        mid = np.array([e.value for e in est])
        err = np.array([[e.value - e.low for e in est], [e.high - e.value for e in est]])
        left.errorbar(xs[have] + shift, mid, yerr=err, marker="o", capsize=3, label=mode)
    left.set_ylabel("mean greedy success over training")
    left.set_ylim(-0.02, 1.02)
    left.legend(fontsize=8)
    left.set_title("each credit mode", fontsize=9)
    both = [i for i, n in enumerate(names) if {"every_token", "final"} <= set(rungs[n])]
    gaps = [difference(rungs[names[i]]["every_token"], rungs[names[i]]["final"]) for i in both]
    if gaps:
        mid = np.array([g.value for g in gaps])
        err = np.array([[g.value - g.low for g in gaps], [g.high - g.value for g in gaps]])
        right.errorbar(xs[both], mid, yerr=err, marker="o", capsize=3, color="C2")
    right.axhline(0.0, color="black", linewidth=0.8)
    right.set_ylabel("every_token - final")
    right.set_title("gap (above 0: every_token better)", fontsize=9)
    for ax in (left, right):
        ax.set_xticks(xs, names)
        ax.set_xlabel("answer length (letters, + EOS)")
        ax.grid(alpha=0.3)
    where = "train prompts (J)" if split == "train" else "held-out prompts"
    fig.suptitle(f"Credit mode against answer length, greedy success on the {where} "
                 "(IQM over seeds, 95% CI)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return _save(fig, path)

"""PNG plots of the report (matplotlib, Agg backend): learning curves and throughput bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported

import matplotlib.pyplot as plt
import numpy as np

AXES = (("episodes", "training episodes (examples for supervised)"),
        ("train_seconds", "training seconds (evaluations excluded)"))  # fmt: skip


def band(runs: list[dict[str, Any]], x: str, points: int = 200) -> tuple[np.ndarray, ...]:
    """(grid, q25, median, q75) of greedy success over seeds.

    The grid starts where every seed has evaluated once; a seed's curve is held flat after its
    last evaluation.
    """
    curves = [r["curve"] for r in runs if r["curve"]]
    end = max(c[-1][x] for c in curves)
    grid = np.linspace(max(c[0][x] for c in curves), end, points)  # every seed defined
    ys = np.stack(
        [np.interp(grid, [p[x] for p in c], [p["success"] for p in c], left=np.nan) for c in curves]
    )  # (seeds, points)
    ok = ~np.isnan(ys).all(0)
    q25, med, q75 = (np.full(points, np.nan) for _ in range(3))
    if ok.any():
        q25[ok], med[ok], q75[ok] = np.nanpercentile(ys[:, ok], [25, 50, 75], axis=0)
    return grid, q25, med, q75


def learning_curves(arms: dict[str, list[dict[str, Any]]], title: str, path: Path) -> Path:
    """Greedy test success vs episodes and vs training seconds, median and IQR band per arm."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, runs in arms.items():
        if not any(r["curve"] for r in runs):
            continue
        for ax, (x, _) in zip(axes, AXES):
            grid, q25, med, q75 = band(runs, x)
            (line,) = ax.plot(grid, med, label=f"{label} (n={len(runs)})")
            ax.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.2, linewidth=0)
    for ax, (_, name) in zip(axes, AXES):
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("greedy test success")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{title} (median, IQR band over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def throughput_bars(env: dict[str, Any], agents: list[Any], path: Path) -> Path:
    """Two bar charts (log scale): env steps/s per setup, training tokens/s per agent."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(env)
    left.barh(names, [env[n].steps_per_second for n in names], color="tab:blue")
    left.set_xscale("log")
    left.set_xlabel("env steps / s")
    left.invert_yaxis()
    measured = [a for a in agents if a.tokens_per_second is not None]
    right.barh([a.agent for a in measured], [a.tokens_per_second for a in measured], color="C1")
    right.set_xscale("log")
    right.set_xlabel("training tokens / s")
    right.invert_yaxis()
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="x")
        for bar in ax.patches:
            at = (bar.get_width(), bar.get_y() + bar.get_height() / 2)
            ax.annotate(f"{bar.get_width():,.0f}", at, fontsize=7, va="center", ha="left")
    fig.suptitle("Throughput (1 torch thread; single-process env loops)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

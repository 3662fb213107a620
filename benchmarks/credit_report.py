"""The exact-credit section of the report: tables, the batch-cosine plot and the sentences.

Everything is read from ``credit_exact.json`` (``credit_exact.measure``); every sentence is
generated from its numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported

import matplotlib.pyplot as plt

PLOT_FILE = "credit_exact.png"
# The plot: a colour per credit mode, a line style and marker per baseline.
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
STYLES = {"none": ("--", "o"), "mean": (":", "s"), "rloo": ("-", "^"), "grpo": ("-.", "D"),
          "value": ((0, (6, 2, 1, 2)), "v")}  # fmt: skip
UNBIASED_COS = 1 - 1e-6  # an expected gradient this aligned with grad J counts as unbiased
SAME_OBJECTIVE = 0.9999  # ... with an objective's gradient: it optimises that objective


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _variance_cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "n/a"
    if cell["exact"]:
        return f"{_num(cell['variance'])} (exact)"
    low, high = cell["variance_ci"]
    return f"{_num(cell['variance'])} ± {_num((high - low) / 2, 2)}"


def _bias_cells(bias: dict[str, Any]) -> list[str]:
    tag = "" if bias["exact"] else " (MC)"
    cells = [f"{bias['cosine']:.6f}{tag}", f"{bias['relative_norm']:.4f}{tag}"]
    if not bias["exact"]:
        low, high = bias["projection_ci"]
        cells[1] += f", along grad J {bias['projection']:.3f} [{low:.3f}, {high:.3f}]"
    return cells


def table(point: dict[str, Any], sizes: list[int]) -> list[str]:
    """One checkpoint's Markdown table."""
    head = ["estimator", "cosine with grad J", "rel. norm"]
    head += [f"variance B={b}" for b in sizes]
    head += ["adv. corr. with A", "zero-adv. samples", "zero-adv. groups"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for row in point["rows"]:
        cells = [row["estimator"], *_bias_cells(row["bias"])]
        cells += [_variance_cell(row["batches"].get(str(b))) for b in sizes]
        cells += [_num(row["advantage_correlation"]), f"{row['zero_advantage_share']:.3f}"]
        cells += [f"{row['zero_group_share']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(record: dict[str, Any], path: Path) -> Path:
    """``credit_exact.png``: one batch's cosine with grad J against batch size, per estimator,
    one panel per checkpoint (95% CI bars over the Monte Carlo batches)."""
    points = record["checkpoints"]
    fig, axes = plt.subplots(1, len(points), figsize=(5.2 * len(points), 4.6), squeeze=False,
                             sharey=True)  # fmt: skip
    labels = [row["estimator"] for row in points[0]["rows"]] if points else []
    credits = list(dict.fromkeys(label.split(", ")[0] for label in labels))
    for ax, point in zip(axes[0], points):
        for row in point["rows"]:
            sizes = sorted(int(b) for b in row["batches"])
            mid = [row["batches"][str(b)]["batch_cosine"] for b in sizes]
            cis = [row["batches"][str(b)]["batch_cosine_ci"] for b in sizes]
            err = [[m - c[0] for m, c in zip(mid, cis)], [c[1] - m for m, c in zip(mid, cis)]]
            credit, name = row["estimator"].split(", ")
            line, marker = STYLES.get(name, ("-", "o"))
            ax.errorbar(sizes, mid, yerr=err, label=row["estimator"],
                        color=COLORS[credits.index(credit) % len(COLORS)], linestyle=line,
                        marker=marker, markersize=4, capsize=2, linewidth=1.2)  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size B (completions per update, log scale)")
        ax.set_title(f"J = {point['J']:.2f} (after {point['updates']} updates)")
        ax.grid(alpha=0.3)
        ax.set_ylim(-0.05, 1.02)
    axes[0][0].set_ylabel("cosine(one batch's gradient, exact grad J)")
    fig.suptitle(
        "How well one batch's gradient points along the exact grad J, by batch size "
        "(mean over Monte Carlo batches, 95% CI)"
    )
    if labels:
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="center left",
                   bbox_to_anchor=(1.0, 0.5), fontsize=8, title="credit, baseline")  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def optimises(record: dict[str, Any]) -> list[str]:
    """Per biased estimator (at the last checkpoint): the candidate objective whose gradient
    its expected gradient is closest to, and whether it is that objective's gradient."""
    if not record["checkpoints"]:
        return []
    point = record["checkpoints"][-1]
    out = []
    for row in point["rows"]:
        bias = row["bias"]
        if bias["cosine"] >= UNBIASED_COS or not bias["exact"]:
            continue
        best, num = max(bias["objectives"].items(), key=lambda kv: kv[1]["cosine"])
        others = ", ".join(
            f"{name} {v['cosine']:.4f}" for name, v in bias["objectives"].items() if name != best
        )
        if num["cosine"] >= SAME_OBJECTIVE and best != "E[R]":
            verdict = f"it follows the gradient of {best} (cosine {num['cosine']:.6f})"
        else:
            verdict = (
                f"it is the gradient of none of the candidates: closest is {best} (cosine "
                f"{num['cosine']:.4f})"
            )
        out.append(
            f"{row['estimator']}: cosine with grad J {bias['cosine']:.4f}; {verdict}; others: "
            f"{others}."
        )
    return out


def lowest_variance(record: dict[str, Any], sizes: tuple[int, ...] = (64, 256, 512)) -> list[str]:
    """Per checkpoint and suite batch size: the unbiased estimator with the lowest variance."""
    out = []
    for point in record["checkpoints"]:
        parts = []
        for b in sizes:
            cand = [
                (r["batches"][str(b)]["variance"], r["estimator"])
                for r in point["rows"]
                if r["bias"]["cosine"] >= UNBIASED_COS and str(b) in r["batches"]
            ]
            if cand:
                var, name = min(cand)
                parts.append(f"B={b}: {name} ({_num(var)})")
        if parts:
            out.append(f"at J = {point['J']:.2f}: " + "; ".join(parts))
    return out


def zero_growth(record: dict[str, Any]) -> str | None:
    """How the zero-advantage share of the grouped baselines moves with J."""
    seen: dict[str, list[str]] = {}
    for point in record["checkpoints"]:
        for row in point["rows"]:
            if row["credit"] == "final" and row["gamma"] == 1.0:
                seen.setdefault(row["estimator"], []).append(
                    f"{row['zero_advantage_share']:.2f} (groups {row['zero_group_share']:.2f})"
                )
    if not seen or not record["checkpoints"]:
        return None
    js = " -> ".join(f"{p['J']:.2f}" for p in record["checkpoints"])
    parts = "; ".join(f"{name}: {' -> '.join(v)}" for name, v in seen.items())
    return f"Zero-advantage share of samples as J goes {js}: {parts}."


def headline(record: dict[str, Any]) -> str:
    """The Findings bullet: what each biased estimator optimises, and the best unbiased one."""
    if not record["checkpoints"]:
        return "no checkpoint was reached."
    opt = optimises(record)
    low = lowest_variance(record, (64,))
    text = " ".join(opt[:3]) if opt else "no biased estimator measured."
    if low:
        text += f" Lowest-variance unbiased estimator at B=64, {low[-1]}."
    return text


def section(out: Path, record: dict[str, Any]) -> list[str]:
    """The report's lines for the section (and ``credit_exact.png`` in ``out``)."""
    spec = record["spec"]
    png = plot(record, out / PLOT_FILE)
    sizes = list(spec["batch_sizes"])
    lines = [
        "## Credit measured exactly",
        "",
        f"Task: {dict((k, v) for k, v in spec['task'])['task']} with every completion of its "
        f"{record['prompts']} train prompts enumerated ({record['episodes']:,} episodes). "
        f"REINFORCE (the suite's GRU policy, seed {spec['seed']}, leave-one-out over "
        f"{spec['group_size']}, {spec['train_batch']} completions per update, lr "
        f"{spec['lr']:g}) trains until J, the exact expected success of the sampling policy "
        "on the train prompts (not the greedy success of the other tables), first reaches "
        f"each level of {spec['levels']}; each checkpoint is measured in float64. Cosine and "
        "relative norm: of the estimator's expected gradient against the exact grad J (its "
        "bias; 1 and 1 is unbiased; the mean baseline's norm is 1 - 1/B, shown at B=64), exact "
        "by enumeration unless marked MC (Monte Carlo over "
        f"{spec['mc_batches']:,} batches; for MC, the component along grad J with its 95% CI). "
        "Variance: trace of the covariance of one batch's gradient, exact where every batch "
        "(or group) can be enumerated, else MC ± the 95% CI half-width. Advantage correlation "
        "and zero-advantage shares at the smallest batch. grpo: group mean baseline with the "
        "group std scaling; value: the exact V(s_t) as baseline. "
        f"Section: {record['wall_seconds']:.0f} s wall, {record['cpu_seconds']:.0f} s CPU.",
        "",
    ]
    if record["missing_levels"]:
        lines += [f"Levels not reached within {spec['max_updates']} updates: "
                  f"{record['missing_levels']}.", ""]  # fmt: skip
    for point in record["checkpoints"]:
        lines += [f"### J = {point['J']:.3f} (level {point['level']:g}, after "
                  f"{point['updates']} updates, {point['episodes']:,} episodes)", ""]  # fmt: skip
        lines += [*table(point, sizes), ""]
    opt = optimises(record)
    if opt:
        lines += ["**What each biased estimator optimises instead of J** (last checkpoint; "
                  "cosine of its expected gradient with each candidate objective's exact "
                  "gradient):", "", *[f"- {s}" for s in opt], ""]  # fmt: skip
    low = lowest_variance(record)
    if low:
        lines += ["**Lowest-variance unbiased estimator at the suite's batch sizes:** "
                  + "; ".join(low) + ".", ""]  # fmt: skip
    growth = zero_growth(record)
    if growth:
        lines += [f"**Zero advantage.** {growth}", ""]
    lines += [f"![credit exact]({png.name})", ""]
    return lines

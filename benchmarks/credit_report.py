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
# The plot: a colour, a line style and a marker per baseline.
COLORS = {"none": "tab:blue", "mean": "tab:orange", "rloo": "tab:green", "grpo": "tab:red",
          "value": "tab:purple"}  # fmt: skip
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
    """``credit_exact.png``: one batch's cosine with grad J against batch size, a panel per
    (checkpoint, credit mode), a line per baseline (95% CI bars over the Monte Carlo batches)."""
    points = record["checkpoints"]
    labels = [row["estimator"] for row in points[0]["rows"]] if points else []
    credits = list(dict.fromkeys(label.split(", ")[0] for label in labels)) or ["-"]
    nrows, ncols = max(1, len(points)), len(credits)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False,
                             sharex=True, sharey=True)  # fmt: skip
    sizes = sorted(int(b) for b in record["spec"]["batch_sizes"])
    for i, point in enumerate(points):
        for row in point["rows"]:
            credit, name = row["estimator"].split(", ")
            ax = axes[i][credits.index(credit)]
            xs = sorted(int(b) for b in row["batches"])
            mid = [row["batches"][str(b)]["batch_cosine"] for b in xs]
            cis = [row["batches"][str(b)]["batch_cosine_ci"] for b in xs]
            err = [[m - c[0] for m, c in zip(mid, cis)], [c[1] - m for m, c in zip(mid, cis)]]
            line, marker = STYLES.get(name, ("-", "o"))
            ax.errorbar(xs, mid, yerr=err, label=name, linestyle=line, marker=marker,
                        color=COLORS.get(name, "black"), markersize=4,
                        capsize=2, linewidth=1.3)  # fmt: skip
        for j, credit in enumerate(credits):
            ax = axes[i][j]
            ax.set_title(f"{credit} credit, at J = {point['J']:.2f}", fontsize=10)
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes, [str(b) for b in sizes])
            ax.minorticks_off()
            ax.grid(alpha=0.3)
            ax.set_ylim(-0.02, 1.02)
    for ax in axes[-1]:
        ax.set_xlabel("batch size B (completions)")
    for row_axes in axes:
        row_axes[0].set_ylabel("cos(batch gradient, grad J)")
    fig.suptitle(
        "Cosine of one batch's gradient with the exact grad J, against batch size\neach row a "
        "checkpoint (J: exact expected success), each column a credit mode, each line a "
        "baseline (mean over Monte Carlo batches, 95% CI)",
        fontsize=11,
    )
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(names),
               title="baseline (grpo: group mean and std; value: exact V)")  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def unbiased(row: dict[str, Any]) -> bool:
    """Exact rows: cosine 1 and norm 1 (to 1e-6); Monte Carlo rows: the 95% CI of the
    component along grad J covers 1. The mean baseline (its mean is (1 - 1/B) grad J) never."""
    bias = row["bias"]
    if row["baseline"] == "mean":
        return False
    if bias["exact"]:
        return bias["cosine"] >= UNBIASED_COS and abs(bias["relative_norm"] - 1) < 1e-6
    low, high = bias["projection_ci"]
    return low <= 1.0 <= high


def optimises(record: dict[str, Any]) -> list[str]:
    """Per biased credit mode (at the last checkpoint, its exact no-baseline row: a baseline
    does not move the mean): the candidate objective closest to its expected gradient, and
    whether that mean is the gradient of any objective (``credit_stats.asymmetry``)."""
    if not record["checkpoints"]:
        return []
    point = record["checkpoints"][-1]
    asym = point.get("asymmetry", {})
    control = asym.get("final")
    out, seen = [], set()
    for row in point["rows"]:
        credit = row["estimator"].split(", ")[0]
        bias = row["bias"]
        if credit in seen or not bias["exact"] or unbiased(row) or row["baseline"] == "mean":
            continue
        seen.add(credit)
        best, num = max(bias["objectives"].items(), key=lambda kv: kv[1]["cosine"])
        cosines = ", ".join(f"{n} {v['cosine']:.4f}" for n, v in bias["objectives"].items())
        text = f"{credit}: cosine with grad J {bias['cosine']:.4f} (with {cosines})"
        if num["cosine"] >= SAME_OBJECTIVE and best != "E[R]":
            text += f"; it follows the gradient of {best}"
        if credit in asym:
            verdict = "is not" if asym[credit] > 1e-3 else "may be"
            text += (
                f"; its expected gradient {verdict} the gradient of any fixed objective (the "
                f"asymmetry of its Jacobian is {asym[credit]:.2g}"
            )
            text += f", against {control:.1g} for grad J)" if control is not None else ")"
        out.append(text + ".")
    return out


def lowest_variance(record: dict[str, Any], sizes: tuple[int, ...] = (64, 256, 512)) -> list[str]:
    """Per checkpoint and suite batch size: the ``unbiased`` estimator of lowest variance."""
    out = []
    for point in record["checkpoints"]:
        parts = []
        for b in sizes:
            cand = [
                (r["batches"][str(b)]["variance"], r["estimator"])
                for r in point["rows"]
                if unbiased(r) and str(b) in r["batches"]
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
    share: dict[str, list[float]] = {}
    for point in record["checkpoints"]:
        for row in point["rows"]:
            if row["credit"] == "final" and row["gamma"] == 1.0:
                share.setdefault(row["estimator"], []).append(row["zero_advantage_share"])
                seen.setdefault(row["estimator"], []).append(
                    f"{row['zero_advantage_share']:.2f} ({row['zero_group_share']:.2f})"
                )
    if not seen or not record["checkpoints"]:
        return None
    js = " -> ".join(f"{p['J']:.2f}" for p in record["checkpoints"])

    def trend(shares: list[float]) -> str:
        if shares[-1] > shares[0] + 0.01:
            return "grows"
        return "falls" if shares[-1] < shares[0] - 0.01 else "stays flat"

    parts = "; ".join(f"{name} {trend(share[name])}: {' -> '.join(v)}" for name, v in seen.items())
    return f"Zero-advantage share of samples (of groups) as J goes {js}: {parts}."


def headline(record: dict[str, Any]) -> str:
    """The Findings bullet: what each biased estimator optimises, and the best unbiased one."""
    if not record["checkpoints"]:
        return "no checkpoint was reached."
    opt = optimises(record)
    low = lowest_variance(record, (64,))
    text = " ".join(opt) if opt else "no biased estimator measured."
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
        "The plot: one batch's cosine with grad J (a batch of zero gradient counts 0); every "
        "estimator is sampled with the same seed, so lines that coincide hide each other. "
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
                  "gradient, T the answer's tokens with EOS; asymmetry: "
                  "|u'Dg v - v'Dg u| / (|u'Dg v| + |v'Dg u|) for random directions u, v, 0 "
                  "exactly when the mean g is the gradient of some objective):", "",
                  *[f"- {s}" for s in opt], ""]  # fmt: skip
    low = lowest_variance(record)
    if low:
        lines += ["**Lowest-variance unbiased estimator at the suite's batch sizes:** "
                  + "; ".join(low) + ".", ""]  # fmt: skip
    growth = zero_growth(record)
    if growth:
        lines += [f"**Zero advantage.** {growth}", ""]
    lines += [f"![credit exact]({png.name})", ""]
    return lines

"""The report: per question a table (IQM over seeds with 95% bootstrap CIs), a sentence of
conclusions generated from those numbers, and learning curves; then the throughput section.

``tokengym-bench report RESULTS_DIR`` rebuilds ``report.md`` and the plots from the folder
alone: ``suite.json`` (which runs answer which question), ``runs.jsonl`` and ``throughput.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import credit_report, findings, plots, stats
from .credit_spec import CREDIT_EXACT_FILE
from .run_spec import RunSpec
from .runner import read_rows, summarize

REPORT_FILE = "report.md"
SUITE_FILE = "suite.json"
THROUGHPUT_FILE = "throughput.json"


_MARKDOWN = re.compile(r"([\\`*\[\]<>|])")


def md(text: object) -> str:
    """``text`` as literal Markdown: no line breaks, and the characters that make links,
    images, HTML, code, emphasis or table cells escaped (results files are data, not markup).

    Example:
        >>> md("a|b [x](y)")
        'a\\|b \\[x\\](y)'
    """
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


def file_key(key: object) -> str:
    """A suite key as a file-name part: letters, digits, ``.``, ``-`` and ``_`` only, never a
    path (``../x`` -> ``.._x`` -> ``_._x``), so every PNG stays in the results folder."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(key))
    return ("_" + name[1:] if name.startswith(".") else name) or "_"


def spec_of(row: dict[str, Any]) -> RunSpec:
    """The :class:`RunSpec` of a row."""
    spec = row["spec"]
    pairs = {key: tuple(tuple(p) for p in spec.get(key, ())) for key in ("task", "estimator")}
    return RunSpec(**{**spec, **pairs})


def arm_label(spec: RunSpec, arm: Sequence[str]) -> str:
    """The row name of a run, from its question's arm fields (``credit_mode=dense, gamma=0.9``)."""
    values = [str(getattr(spec, field)) for field in arm]
    if len(arm) == 1 and not isinstance(getattr(spec, arm[0]), str):
        return f"{arm[0]}={values[0]}"  # a bare number (a discount) would not say what it is
    return values[0] if len(arm) == 1 else ", ".join(f"{f}={v}" for f, v in zip(arm, values))


def group(question: dict[str, Any], rows: dict[str, dict[str, Any]]) -> dict[str, list[dict]]:
    """The finished rows of a question by arm label, arms in suite order; for a ``heldout``
    question, each row as scored on the held-out split (:func:`heldout_view`)."""
    arms: dict[str, list[dict]] = {}
    for run_id in question["run_ids"]:
        if run_id in rows:
            row = heldout_view(rows[run_id]) if question.get("heldout") else rows[run_id]
            arms.setdefault(md(arm_label(spec_of(row), question["arm"])), []).append(row)
    return arms


def heldout_view(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its held-out curve as the curve, and the summary (final success, the
    threshold's costs) recomputed from it."""
    points = row["curve_heldout"]
    return {**row, **summarize(spec_of(row), points), "curve": points}


def auc(row: dict[str, Any]) -> float:
    """Mean greedy success over the run's evaluations: how early and how well it learned."""
    points = row["curve"]
    return sum(p["success"] for p in points) / len(points) if points else 0.0


def cost_cell(runs: list[dict], key: str, spent: str, reached: bool = False) -> str:
    """IQM [CI] over seeds of a cost to the threshold (``key``, None where never reached), a
    never-reached bound printed as ``>`` the most any seed spent (``spent``); with
    ``reached``, the seeds that got there too."""
    summary = stats.to_threshold([r[key] for r in runs])
    budget = max(float(r[spent] or 0.0) for r in runs)
    return summary.format(budget) if reached else summary.estimate.format(budget)


def question_table(arms: dict[str, list[dict]], with_time: bool = True) -> str:
    """Markdown: per arm the IQM [95% CI] over seeds of final success, mean success over
    training, and episodes (tokens, seconds) to the threshold with the seeds that reached it."""
    threshold = next(iter(arms.values()))[0]["threshold"]
    head = ["arm", "seeds", "final greedy success", "mean success over training"]
    head += [f"episodes to {threshold:g}", f"tokens to {threshold:g}"]
    head += [f"train s to {threshold:g}"] if with_time else []
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for label, runs in arms.items():
        cells = [
            label,
            str(len(runs)),
            stats.bootstrap_ci([r["final_success"] for r in runs]).format(),
            stats.bootstrap_ci([auc(r) for r in runs]).format(),
            cost_cell(runs, "episodes_to_threshold", "episodes", reached=True),
            cost_cell(runs, "tokens_to_threshold", "tokens"),
        ]
        if with_time:
            cells.append(cost_cell(runs, "seconds_to_threshold", "train_seconds"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def identical_arms(arms: dict[str, list[dict]]) -> list[tuple[str, str]]:
    """Pairs of arms whose curves are equal seed for seed (they measure the same thing)."""

    def key(runs: list[dict]) -> list[Any]:
        ordered = sorted(runs, key=lambda r: r["spec"]["seed"])
        return [[(p["episodes"], p["success"]) for p in r["curve"]] for r in ordered]

    labels = list(arms)
    return [
        (a, b)
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
        if key(arms[a]) == key(arms[b])
    ]


AUC = stats.Metric("mean greedy success over training")


def conclusion(title: str, arms: dict[str, list[dict]]) -> str:
    """The question's finding, generated from its numbers: the best arm by mean success over
    training (IQM, 95% CI), which arms' CIs overlap it, and P(best better) than the next one."""
    scores = [(label, [auc(r) for r in runs]) for label, runs in arms.items()]
    lead = title.split(".")[0]
    if len(scores) == 1:
        return f"{lead}: one arm only ({scores[0][0]}); nothing to compare."
    if len(scores) == 2:
        return stats.conclude(lead, scores[0], scores[1], AUC)
    ranked = sorted(scores, key=lambda item: -stats.iqm(item[1]))
    runner_up = stats.conclude("", ranked[0], ranked[1], AUC)
    return f"{stats.conclude_many(lead, scores, AUC)} Against the next best: {runner_up}"


def load(out: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any] | None]:
    """(suite, the last "ok" row of every run id, throughput record or None) of a results dir."""
    suite = json.loads((out / SUITE_FILE).read_text())
    rows = {r["run_id"]: r for r in read_rows(out) if r.get("status") == "ok"}
    path = out / THROUGHPUT_FILE
    return suite, rows, json.loads(path.read_text()) if path.exists() else None


def tables(out: Path, with_time: bool = True) -> dict[str, str]:
    """Every question's Markdown table, by question key (only questions with finished runs)."""
    suite, rows, _ = load(out)
    groups = {q["key"]: group(q, rows) for q in suite["questions"]}
    return {key: question_table(arms, with_time) for key, arms in groups.items() if arms}


NOTE = (
    "Numbers are the interquartile mean (IQM) over seeds with a 95% stratified bootstrap "
    "confidence interval (rliable's method). *final greedy success*: at the last evaluation; "
    "*mean success over training*: the average over all evaluations (the area under the "
    "learning curve, which rewards learning early); *episodes to {t:g}*: training episodes "
    "(examples for the supervised agent, sampled completions for DPO) until the first "
    "evaluation with greedy success >= {t:g}, a seed that never got there counting as "
    "infinite (`>N`: beyond the budget N), with the seeds that reached it; *tokens*: env steps "
    "(tokens trained on for the supervised agent); *train s*: training seconds, evaluations "
    "excluded (the only number that changes from run to run). Conclusions compare mean success "
    "over training; P(A better) is the probability that a run of A beats a run of B."
)


def build(out: Path) -> str:
    """Write ``report.md`` and the PNGs in ``out``; returns the Markdown."""
    suite, rows, speed = load(out)
    failed = [r for r in read_rows(out) if r.get("status") == "failed" and r["run_id"] not in rows]
    some = next(iter(rows.values()), None)
    lines = [f"# tokengym benchmark report: suite {md(suite['name'])}", ""]
    conclusions = []
    body: list[str] = []
    groups = {q["key"]: group(q, rows) for q in suite["questions"]}
    for question in suite["questions"]:
        arms = groups[question["key"]]
        if not arms:
            continue
        spec = spec_of(next(iter(arms.values()))[0])
        key, title = file_key(question["key"]), md(question["title"])
        body += [f"## {title}", ""]
        split = "test" if question.get("heldout") else spec.eval_split
        body += [f"Task: {md(spec.task_name)}, greedy success on the {md(split)} "]
        body[-1] += "prompts. " + md(question.get("note", ""))
        if question["key"].startswith("tune-") or question["key"] == "warm-sl":
            table = question_table(arms)
            pick = findings.pick_label(arms) if question["key"] != "warm-sl" else None
            if pick is not None:
                table = table.replace(f"| {pick} |", f"| **{pick} (pick)** |", 1)
            body += ["", table, ""]
            if question["key"] == "warm-sl":
                landed = sorted(next(iter(arms.values())), key=lambda r: r["spec"]["seed"])
                cells = ", ".join(f"{r['spec']['seed']}: {r['final_success']:.3f}" for r in landed)
                inside = sum(0.3 <= r["final_success"] <= 0.5 for r in landed)
                body += [f"Greedy success of each checkpoint (seed: success): {cells}; "
                         f"{inside}/{len(landed)} in 0.3-0.5.", ""]  # fmt: skip
            continue
        pngs = plots.learning_curves(arms, {**question, "key": key}, out)
        if question["key"].startswith("ladder"):
            pngs.append(plots.ladder_gap(arms, out / f"{key}_gap.png", split))
        for png in pngs:  # file_key keeps them there; a plots change must too
            if png.resolve().parent != out.resolve():
                raise ValueError(f"plot {png} is outside the results folder {out}")
        finding = conclusion(title, arms)
        conclusions.append(f"- {finding}")
        body += ["", question_table(arms), "", f"**Finding.** {finding}", ""]
        body += [findings.resolution(arms), ""]
        if question.get("heldout"):  # collapse is a property of training, flagged on its split
            body += ["Collapsed seeds: as flagged for these runs on their train prompts.", ""]
        else:
            flags = findings.collapse_lines(arms)
            body += [
                "Collapsed seeds (below the threshold, greedy success flat over the last half "
                "of training): " + ("; ".join(flags) if flags else "none") + ".",
                "",
            ]
        for a, b in identical_arms(arms):
            body += [f"Note: arms {a} and {b} gave identical curves on every seed.", ""]
        body += [f"![{key}]({png.name})" for png in pngs] + [""]
    if some is not None:
        finished = sorted(r["finished_at"] for r in rows.values())
        lines += [
            f"tokengym {some['tokengym']}, torch {some['torch']}, Python {some['python']}, "
            f"{some['platform']} ({some['machine']['cpu_count']} CPUs, 1 torch thread per run); "
            f"{len(rows)} runs, {sum(r['wall_seconds'] for r in rows.values()):,.0f} s of run "
            f"wall time in all, finished between {finished[0]} and {finished[-1]}. "
            f"Rebuild: `tokengym-bench report {out}`.",
            "",
            NOTE.format(t=some["threshold"]),
            "",
        ]
    exact_path = out / CREDIT_EXACT_FILE
    exact = json.loads(exact_path.read_text()) if exact_path.exists() else None
    if any(k in groups for k in ("sl-vs-rl", "ladder", "gamma", "explore")) or exact:
        lines += findings.findings(groups, exact)
    lines += findings.picks_table(groups)
    if conclusions:
        lines += ["## Conclusions (generated from the numbers below)", "", *conclusions, ""]
    lines += body
    if speed is not None:
        from . import agent_speed, throughput

        env = {r["name"]: throughput.Throughput(**r) for r in speed["env"]}
        agents = [agent_speed.AgentSpeed(**r) for r in speed["agents"]]
        png = plots.throughput_bars(env, agents, out / "throughput.png")
        lines += ["## Q7. Throughput", "", "Environment steps per second (median of repeats):", ""]
        lines += [throughput.table(env), ""]
        if speed.get("env_scaling"):
            lines += throughput.scaling_markdown(speed["env_scaling"])
        lines += ["Agent training speed (1 torch thread):", ""]
        lines += [agent_speed.table(agents), "", f"![throughput]({png.name})", ""]
        if speed.get("limits"):
            limits = [agent_speed.PolicyLimit(**r) for r in speed["limits"]]
            lines += ["Each custom agent against its policy's limit (CLI defaults):", ""]
            lines += [agent_speed.limit_table(limits), ""]
    if exact is not None:
        lines += credit_report.section(out, exact)
    if failed:
        lines += ["## Failed runs", ""]
        lines += [f"- {md(r['run_id'])} {md(r['spec']['agent'])}: {md(r['error'])}" for r in failed]
    report = "\n".join(lines).rstrip() + "\n"
    (out / REPORT_FILE).write_text(report)
    return report

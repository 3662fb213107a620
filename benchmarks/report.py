"""The report: one Markdown table per question (median [IQR] over seeds) and the PNG plots.

``tokengym-bench report RESULTS_DIR`` rebuilds ``report.md`` and the plots from the folder
alone: ``suite.json`` (which runs answer which question), ``runs.jsonl`` and ``throughput.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import plots
from .runner import read_rows
from .suites import RunSpec

REPORT_FILE = "report.md"
SUITE_FILE = "suite.json"
THROUGHPUT_FILE = "throughput.json"


def quantiles(values: Sequence[float | None]) -> tuple[float, float, float]:
    """(q25, median, q75) with linear interpolation; None (never reached) counts as +inf."""
    xs = sorted(math.inf if v is None else float(v) for v in values)

    def q(p: float) -> float:
        pos = p * (len(xs) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        if math.inf in (xs[lo], xs[hi]):
            return math.inf
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return q(0.25), q(0.5), q(0.75)


def _num(x: float, digits: int) -> str:
    return "never" if math.isinf(x) else f"{x:,.{digits}f}"


def cell(values: Sequence[float | None], digits: int = 0) -> str:
    """``median [q25, q75]``, or "never" where half of the seeds or more never got there."""
    lo, mid, hi = quantiles(values)
    return f"{_num(mid, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def arm_label(spec: dict[str, Any], arm: Sequence[str]) -> str:
    """The row name of a run, from its question's arm fields (``credit=dense, gamma=0.9``)."""
    run = RunSpec(**{**spec, "task": tuple(tuple(p) for p in spec["task"])})
    values = [str(getattr(run, field)) for field in arm]
    return values[0] if len(arm) == 1 else ", ".join(f"{f}={v}" for f, v in zip(arm, values))


def group(question: dict[str, Any], rows: dict[str, dict[str, Any]]) -> dict[str, list[dict]]:
    """The finished rows of a question by arm label, arms in suite order."""
    arms: dict[str, list[dict]] = {}
    for run_id in question["run_ids"]:
        if run_id in rows:
            row = rows[run_id]
            arms.setdefault(arm_label(row["spec"], question["arm"]), []).append(row)
    return arms


def question_table(arms: dict[str, list[dict]], with_time: bool = True) -> str:
    """Markdown: per arm, seeds, final success, episodes/tokens (and train s) to threshold."""
    threshold = next(iter(arms.values()))[0]["threshold"]
    head = ["arm", "seeds", "final greedy success", f"episodes to {threshold:g}", "reached"]
    head += [f"tokens to {threshold:g}"] + ([f"train s to {threshold:g}"] if with_time else [])
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for label, runs in arms.items():
        reached = sum(r["episodes_to_threshold"] is not None for r in runs)
        cells = [
            label,
            str(len(runs)),
            cell([r["final_success"] for r in runs], 2),
            cell([r["episodes_to_threshold"] for r in runs]),
            f"{reached}/{len(runs)}",
            cell([r["tokens_to_threshold"] for r in runs]),
        ]
        if with_time:
            cells.append(cell([r["seconds_to_threshold"] for r in runs], 1))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    "Median [interquartile range] over seeds. *episodes to {t:g}*: training episodes (examples "
    "for the supervised agent) until the first greedy test evaluation with success >= {t:g} "
    '("never": not within the budget for half of the seeds or more); *tokens*: env steps (tokens '
    "trained on for the supervised agent); *train s*: training seconds, evaluations excluded "
    "(the only number that changes from run to run)."
)


def build(out: Path) -> str:
    """Write ``report.md`` and the PNGs in ``out``; returns the Markdown."""
    suite, rows, speed = load(out)
    failed = [r for r in read_rows(out) if r.get("status") == "failed" and r["run_id"] not in rows]
    some = next(iter(rows.values()), None)
    lines = [f"# tokengym benchmark report: suite `{suite['name']}`", ""]
    if some is not None:
        lines += [
            f"tokengym {some['tokengym']}, torch {some['torch']}, Python {some['python']}, "
            f"{some['platform']} ({some['machine']['cpu_count']} CPUs, 1 torch thread); "
            f"{len(rows)} runs. Rebuild: `tokengym-bench report {out}`.",
            "",
            NOTE.format(t=some["threshold"]),
            "",
        ]
    for question in suite["questions"]:
        arms = group(question, rows)
        if not arms:
            continue
        spec = next(iter(arms.values()))[0]["spec"]
        task = RunSpec(**{**spec, "task": tuple(tuple(p) for p in spec["task"])}).task_name
        png = plots.learning_curves(arms, question["title"], out / f"curves_{question['key']}.png")
        lines += [f"## {question['title']}", "", f"Task: {task}. {question.get('note', '')}", ""]
        lines += [question_table(arms), "", f"![{question['key']}]({png.name})", ""]
    if speed is not None:
        from . import agent_speed, throughput

        env = {r["name"]: throughput.Throughput(**r) for r in speed["env"]}
        agents = [agent_speed.AgentSpeed(**r) for r in speed["agents"]]
        png = plots.throughput_bars(env, agents, out / "throughput.png")
        lines += ["## Q6. Throughput", "", "Environment steps per second (median of repeats):", ""]
        lines += [throughput.table(env), "", "Agent training speed (1 torch thread):", ""]
        lines += [agent_speed.table(agents), "", f"![throughput]({png.name})", ""]
    if failed:
        lines += ["## Failed runs", ""]
        lines += [f"- `{r['run_id']}` {r['spec']['agent']}: {r['error']}" for r in failed]
    report = "\n".join(lines).rstrip() + "\n"
    (out / REPORT_FILE).write_text(report)
    return report

"""Check the RL agents' CLI defaults on every small built-in task (issue 15, item 8).

    python -m tokengym.bench.defaults_check --out DIR [--seeds 0-4] [--workers N]
        [--tasks copy,reverse] [--agents reinforce,dpo] [--set KEY=VALUE ...]

Trains REINFORCE and DPO at their defaults (``TrainConfig``/``AGENT_DEFAULTS``, nothing but the
task and the seed set) on each task of :data:`SMALL_TASKS`, stopping at 0.9 greedy success on
the train prompts, and appends one JSON line per run to ``DIR/runs.jsonl``: task, agent, seed,
whether it reached 0.9, updates, wall and CPU seconds, final greedy success. A run already in
the file (same task, agent, seed and resolved settings: lr, batch, budget...) is skipped, so an
interrupted check resumes; each line is written whole. It then prints the Markdown table of
the runs at these settings: seeds reaching 0.9, median wall and CPU minutes. ``--set``
overrides a TrainConfig field (a sweep on tuning seeds; the value is read as JSON, else as a
string) and is part of each row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tokengym.errors import ConfigError

AGENTS = ("reinforce", "dpo")
TARGET = 0.9
RUNS_FILE = "runs.jsonl"
_STRINGS = {"alphabet_size": 4, "min_length": 2, "max_length": 4, "train_size": 256}
# The small difficulty of each built-in task: alphabet 4 and answers of 2-4 letters for the
# string tasks (336 distinct prompts: 256 train, 64 test); target answers "abc" (3 letters) to
# prompts of that kind; parity reads 2-4 bits (28 prompts; the answer is 1 token); addition
# adds two 1-digit numbers (100 prompts).
SMALL_TASKS: dict[str, dict[str, Any]] = {
    "copy": {**_STRINGS, "test_size": 64},
    "reverse": {**_STRINGS, "test_size": 64},
    "sort": {**_STRINGS, "test_size": 64},
    "target": {**_STRINGS, "test_size": 64, "target": "abc"},
    "parity": {"min_length": 2, "max_length": 4, "train_size": 20, "test_size": 8},
    "addition": {"digits": 1, "train_size": 80, "test_size": 20},
}


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-4"`` -> (0, 1, 2, 3, 4); ``"1,3"`` -> (1, 3); ``"7"`` -> (7,)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            seeds.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ConfigError(
            f"--seeds {text!r} is invalid; expected e.g. 0-4, 1,3 or 7 (seeds >= 0)"
        ) from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r} is invalid; expected e.g. 0-4, 1,3 or 7 (seeds >= 0)")
    return tuple(dict.fromkeys(seeds))


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["lr=0.003", "credit=final"]`` -> {"lr": 0.003, "credit": "final"} (JSON, else text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is invalid; expected KEY=VALUE, e.g. lr=0.003")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run_key(task: str, agent: str, seed: int, settings: Mapping[str, Any]) -> str:
    """The identity of a run in ``runs.jsonl`` (what resume compares): its resolved settings,
    so a row trained at other defaults is not taken for one at today's."""
    return json.dumps([task, agent, seed, dict(sorted(settings.items()))])


def _config(task: str, agent: str, seed: int, overrides: Mapping[str, Any], out: str) -> Any:
    from tokengym.agents import TrainConfig

    return TrainConfig(
        agent=agent,
        task=task,
        env_kwargs=SMALL_TASKS[task],
        seed=seed,
        eval_split="train",
        target_success=TARGET,
        out=out,
        checkpoint=False,
        progress=False,
        **overrides,
    )


def settings_of(config: Any) -> dict[str, Any]:
    """The fields a run's result depends on, besides task and seed (the defaults of the day)."""
    names = ("lr", "batch_size", "group_size", "iterations", "eval_every")
    if config.agent == "reinforce":
        names += ("credit", "baseline", "entropy_coef")
    return {name: getattr(config, name) for name in names}


def train_one(task: str, agent: str, seed: int, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Train one run at the agent's defaults (plus ``overrides``); return its row."""
    from tokengym.agents import train

    with tempfile.TemporaryDirectory(prefix="defaults-check-") as folder:
        config = _config(task, agent, seed, overrides, str(Path(folder) / "run"))
        wall, cpu = time.perf_counter(), time.process_time()
        result = train(config)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "task": task,
        "agent": agent,
        "seed": seed,
        "overrides": dict(sorted(overrides.items())),
        "reached": result.stopped == "target",
        "updates": int(result["iterations"]),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "greedy_success": result["eval/greedy_success"],
        "settings": settings_of(config),
    }


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of ``runs.jsonl``; a line cut short by a kill is skipped (its run runs again)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: skipping a cut line of {path}", file=sys.stderr)
    return rows


def _append(path: Path, row: Mapping[str, Any]) -> None:
    cut = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with path.open("a") as handle:  # one write of a whole line (after a cut one's end)
        handle.write(("\n" if cut else "") + json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def run_check(
    out: Path,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    tasks: Sequence[str] = tuple(SMALL_TASKS),
    agents: Sequence[str] = AGENTS,
    overrides: Mapping[str, Any] | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Train every (task, agent, seed) not yet in ``out/runs.jsonl``; return the selected rows.

    Args:
        out: the results folder (created).
        seeds: the seeds of each task and agent.
        tasks: names of :data:`SMALL_TASKS`.
        agents: names of :data:`AGENTS`.
        overrides: TrainConfig fields to set on every run (a sweep); None: the defaults.
        workers: runs at once, each in its own process (1: in this process).

    Returns:
        The rows of the selected runs, in the order of tasks, agents, seeds.
    """
    overrides = dict(overrides or {})
    for name in tasks:
        if name not in SMALL_TASKS:
            raise ConfigError(f"task {name!r} is invalid; expected one of {sorted(SMALL_TASKS)}")
    for name in agents:
        if name not in AGENTS:
            raise ConfigError(f"agent {name!r} is invalid; expected one of {list(AGENTS)}")
    if workers < 1:
        raise ConfigError(f"workers={workers!r} is invalid; expected an int >= 1")
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUNS_FILE
    done = {run_key(r["task"], r["agent"], r["seed"], r["settings"]): r for r in read_rows(path)}
    keys = {
        (t, a, s): run_key(t, a, s, settings_of(_config(t, a, s, overrides, str(out / "probe"))))
        for t in tasks
        for a in agents
        for s in seeds
    }
    todo = [w for w, key in keys.items() if key not in done]
    if workers == 1:
        for task, agent, seed in todo:
            done[keys[task, agent, seed]] = row = train_one(task, agent, seed, overrides)
            _append(path, row)
    else:
        with ProcessPoolExecutor(workers) as pool:
            futures = {pool.submit(train_one, *w, overrides): w for w in todo}
            for future in as_completed(futures):
                done[keys[futures[future]]] = row = future.result()
                _append(path, row)
    return [done[key] for key in keys.values()]


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table: per task and agent, seeds reaching 0.9 and median wall/CPU minutes."""
    lines = [
        "| task | agent | seeds reaching 0.9 | median wall min | median CPU min |",
        "|---|---|---|---|---|",
    ]
    cells: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["task"], row["agent"]), []).append(row)
    for (task, agent), group in cells.items():
        reached = sum(bool(r["reached"]) for r in group)
        wall = statistics.median(r["wall_s"] for r in group) / 60
        cpu = statistics.median(r["cpu_s"] for r in group) / 60
        lines.append(f"| {task} | {agent} | {reached}/{len(group)} | {wall:.2f} | {cpu:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); prints the table, returns 0."""
    parser = argparse.ArgumentParser(prog="python -m tokengym.bench.defaults_check")
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 (the default), 1,3")
    parser.add_argument("--workers", type=int, default=1, help="runs at once")
    parser.add_argument("--tasks", default=",".join(SMALL_TASKS), help="comma-separated")
    parser.add_argument("--agents", default=",".join(AGENTS), help="comma-separated")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a field"
    )
    args = parser.parse_args(argv)
    try:
        rows = run_check(
            args.out,
            seeds=parse_seeds(args.seeds),
            tasks=args.tasks.split(","),
            agents=args.agents.split(","),
            overrides=parse_sets(args.set),
            workers=args.workers,
        )
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

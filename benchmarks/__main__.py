"""The benchmark suite's command.

    tokengym-bench run [--suite quick|full|smoke] [--only KEY[,KEY]] [--out DIR]
                       [--workers N | --executor ray [--address auto|HOST:PORT]]
    tokengym-bench report RESULTS_DIR   (or: python -m tokengym.bench ...)

``run`` trains every run of the suite not yet finished in ``DIR`` (resume), measures throughput
(once per folder), and writes ``DIR/report.md`` with its PNG plots; ``report`` rebuilds the
report from a results folder. ``--only`` keys: those of the suite (``runner.select`` lists them;
quick and full: tune-<arm>, warm-sl, sl-vs-rl, ladder, gamma, explore, throughput,
credit-exact (credit measured exactly, ``credit_exact.json``, once per folder), and in full
baseline and sb3). quick and full run in two stages: the tuning grids and the warm start's
checkpoints first, then the questions built from the picks (a resume picks up either stage).
``--executor ray`` runs each run as a
Ray task (a local instance, or the cluster at ``--address``); this process writes every file.

One ``run`` per folder at a time: a second exits 1 naming the first one's PID. ``run`` exits 1
when a selected run has no "ok" row (a failed run; the same command runs it again). A line of
``runs.jsonl`` cut by a kill is skipped with a warning naming the file and line, and its run
runs again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tokengym.errors import ConfigError, DatasetError, MissingDependencyError
from tokengym.validation import check_choice, check_int

from . import agent_speed, credit_exact, report, runner, throughput
from .credit_spec import CREDIT_EXACT, CREDIT_EXACT_FILE
from .ray_executor import RayOptions, require_ray
from .suites import SUITES, THROUGHPUT, Suite


def write_suite(suite: Suite, out: Path) -> None:
    """``suite.json``: the suite's questions with their run ids (what the report groups by)."""
    questions = [
        {"key": q.key, "title": q.title, "arm": list(q.arm), "note": q.note}
        | {"run_ids": [s.run_id for s in q.specs], "heldout": q.heldout}
        for q in suite.questions
    ]
    record = {"name": suite.name, "questions": questions}
    (out / report.SUITE_FILE).write_text(json.dumps(record, indent=2) + "\n")


def measure_throughput(suite: Suite, out: Path) -> None:
    """Question 7: env steps/s and agents' training tokens/s, to ``throughput.json``."""
    env = throughput.measure(**suite.throughput)
    task = dict(suite.throughput_task)
    speeds = agent_speed.measure(suite.agent_throughput, task, suite.agent_measure)
    limits = agent_speed.measure_limits(
        tuple(a for a in suite.agent_throughput if a in agent_speed.CUSTOM_AGENTS),
        task,
        suite.agent_measure["iterations"],
        repeats=suite.throughput.get("repeats", 5),
    )
    scaling = throughput.measure_scaling(
        dict(suite.env_scaling.get("scaling", {})), dict(suite.env_scaling.get("goals", {}))
    )
    record = {
        "suite": suite.name,
        "task": task,
        **runner.environment(),
        "env": [asdict(r) for r in env.values()],
        "agents": [asdict(s) for s in speeds],
        "limits": [asdict(x) for x in limits],
        "env_scaling": scaling,
    }
    (out / report.THROUGHPUT_FILE).write_text(json.dumps(record, indent=2) + "\n")


def check_folder(suite: Suite, out: Path) -> None:
    """Refuse a results folder that holds another suite's runs: the report would mix them."""
    path = out / report.SUITE_FILE
    if path.exists():
        held = json.loads(path.read_text())["name"]
        if held != suite.name:
            raise ConfigError(
                f"out={str(out)!r} holds the results of suite {held!r}; expected a new folder "
                f"or one of suite {suite.name!r} (pass another --out)"
            )


def run(
    suite: Suite,
    out: Path,
    only: list[str] | None = None,
    progress: bool = True,
    workers: int = 1,
    cluster: RayOptions | None = None,
) -> str:
    """Run (or resume) a suite in ``out`` and write its report; returns the report's Markdown.

    ``cluster``: run each spec as a Ray task (see ``ray_executor``); None runs them here.
    """
    with runner.folder_lock(out):  # one runner per folder: a second one is refused
        check_folder(suite, out)
        if suite.staged is not None:  # stage 1 (tuning, warm-start checkpoints), then the picks
            first = suite.resolve({})
            write_suite(first, out)
            runner.run_suite(first, out, suite.first_keys(), progress, workers, cluster)
            done = {r["run_id"]: r for r in runner.read_rows(out) if r.get("status") == "ok"}
            suite = suite.resolve(done)
            only = None if only is None else [k for k in only if k in suite.keys]
        write_suite(suite, out)
        runner.run_suite(suite, out, only, progress, workers, cluster)
        keys = suite.keys if only is None else only
        if THROUGHPUT in keys and not (out / report.THROUGHPUT_FILE).exists():
            if progress:
                print("measuring throughput (question 7)...", file=sys.stderr)
            measure_throughput(suite, out)
        if CREDIT_EXACT in keys and suite.credit_exact is not None:
            if progress and not (out / CREDIT_EXACT_FILE).exists():
                print("measuring credit exactly (credit-exact)...", file=sys.stderr)
            credit_exact.run(suite.credit_exact, out)  # once per folder, like throughput
        return report.build(out)


def unfinished(suite: Suite, out: Path, only: list[str] | None) -> list[str]:
    """Run ids of the selected runs without an "ok" row (failed ones: the next run retries)."""
    return [s.run_id for s in runner.pending(suite, out, only)]


def _keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def executor_options(args: argparse.Namespace) -> RayOptions | None:
    """The Ray options of ``run``'s flags (None: the local executor); rejects a flag that the
    chosen executor would ignore, and ``--executor ray`` without ray installed.

    Example:
        >>> args = argparse.Namespace(executor="local", workers=2, address=None,
        ...                           cpus_per_run=None, gpus_per_run=None)
        >>> executor_options(args) is None
        True
    """
    check_choice("executor", args.executor, ("local", "ray"))
    check_int("workers", args.workers, 1)
    names = ("address", "cpus_per_run", "gpus_per_run")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.executor == "local":
        if given:
            name, value = next(iter(given.items()))
            raise ConfigError(f"{name}={value!r} is invalid with executor='local'; expected 'ray'")
        return None
    if args.workers != 1:
        raise ConfigError(
            f"workers={args.workers!r} is invalid with executor='ray'; expected 1 (Ray runs as "
            f"many at once as the CPUs allow; see --cpus-per-run)"
        )
    options = RayOptions(**given)
    require_ray()
    return options


def connect_ray(address: str) -> None:
    """Connect this process to the Ray cluster at ``address``; ``ConnectionError`` if none."""
    import logging

    import ray

    ray.init(address, include_dashboard=False, logging_level=logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="tokengym-bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run (or resume) a suite and write its report")
    run_parser.add_argument(
        "--suite", choices=sorted(SUITES), default="quick", help="quick (<5 min), full (hours)"
    )
    run_parser.add_argument(
        "--only",
        type=_keys,
        action="extend",
        default=None,
        metavar="KEY[,KEY]",
        help="run only these questions (repeatable): sl-vs-rl, credit, gamma, ..., throughput",
    )
    run_parser.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    run_parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run_parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="runs at once, one process each (same rows for any number; default: 1)",
    )
    run_parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: this machine (--workers); ray: one Ray task per run (same rows)",
    )
    run_parser.add_argument(
        "--address",
        help="with --executor ray: a running cluster (auto, HOST:PORT); default: a local one",
    )
    run_parser.add_argument(
        "--cpus-per-run", type=float, help="with --executor ray: CPUs per run (default: 1)"
    )
    run_parser.add_argument(
        "--gpus-per-run",
        type=float,
        help="with --executor ray: GPUs per run; above 0 runs train on CUDA (default: 0)",
    )
    report_parser = commands.add_parser("report", help="rebuild report.md and plots of a folder")
    report_parser.add_argument("results_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "report":
        if not (args.results_dir / report.SUITE_FILE).exists():
            parser.error(
                f"{args.results_dir} has no {report.SUITE_FILE}; run the suite there first"
            )
        try:
            print(report.build(args.results_dir))
        except DatasetError as e:  # a runs.jsonl line that is not a row (not the last one)
            parser.exit(1, f"{parser.prog}: error: {e}\n")
        return 0
    suite = SUITES[args.suite]
    try:
        runner.select(suite, args.only)
        check_folder(suite, args.out)
        cluster = executor_options(args)
    except (ConfigError, MissingDependencyError) as e:
        parser.error(str(e))
    if cluster is not None and cluster.address is not None:
        try:  # before any file is written; the executor then uses this connection
            connect_ray(cluster.address)
        except ConnectionError as e:
            parser.exit(2, f"{parser.prog}: error: --address {cluster.address}: {e}\n")
    start = time.perf_counter()
    progress = not args.no_progress
    try:
        text = run(suite, args.out, args.only, progress, args.workers, cluster)
    except (runner.FolderLockedError, DatasetError) as e:
        parser.exit(1, f"{parser.prog}: error: {e}\n")
    print(text)
    seconds = time.perf_counter() - start
    print(
        f"suite {suite.name}: {seconds:.0f} s; report in {args.out / report.REPORT_FILE}",
        file=sys.stderr,
    )
    failed = unfinished(suite, args.out, args.only)
    if failed:
        print(
            f"{len(failed)} run(s) failed ({', '.join(failed)}; see runs/<id>/error.txt and "
            f"runs.jsonl); the same command runs them again",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

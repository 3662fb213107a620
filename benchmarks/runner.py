"""Run a suite's specs: one JSONL row per finished run in ``<out>/runs.jsonl``, resumable.

Each run trains one agent for its fixed budget (never a wall-clock limit), with greedy test
evaluations every ``eval_every``; its row holds the spec, the learning curve (success and reward
against episodes, tokens and training seconds), episodes/tokens/seconds to the success threshold,
the final success, and the package versions and machine. A run whose id (the spec's hash) already
has an ``"ok"`` row is skipped, so an interrupted suite resumes where it stopped. The id hashes
the spec, not the agents' code: after changing an agent, use a fresh ``--out`` folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import platform
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

import tokengym
from tokengym.errors import ConfigError

from ..agents import read_metrics, train
from .suites import RunSpec, Suite

if TYPE_CHECKING:
    from .ray_executor import RayOptions

RUNS_FILE = "runs.jsonl"
# Keys of a row that measure time or describe the machine: the only ones that may change between
# two runs of the same spec (in curve points: "train_seconds").
VARYING_KEYS = ("train_seconds", "seconds_to_threshold", "wall_seconds", "finished_at", "machine")
VERSIONED = ("gymnasium", "numpy", "stable-baselines3", "sb3-contrib")


def environment() -> dict[str, Any]:
    """Versions and machine recorded in every row."""
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "tokengym": tokengym.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "versions": versions,
    }


def _train(
    spec: RunSpec, out: Path, progress: bool, device: str = "cpu"
) -> list[dict[str, float | None]]:
    """Train one spec with ``train(config)``; returns its metric lines (``metrics.jsonl``)."""
    with contextlib.redirect_stdout(io.StringIO()):  # its "final ..." line; bars use stderr
        train(spec.train_config(out, progress, device))
    return read_metrics(out / "metrics.jsonl")


def curve(lines: Iterable[dict[str, float | None]]) -> list[dict[str, float]]:
    """The evaluation points of metric lines: success and reward vs episodes/tokens/seconds."""
    points = []
    for line in lines:
        if line.get("eval/greedy_success") is None:
            continue
        tokens = line.get("charts/env_steps", line.get("charts/tokens"))
        points.append(
            {
                "step": float(line["step"]),
                "episodes": float(line["charts/episodes"] or 0.0),
                "tokens": float(tokens or 0.0),
                "train_seconds": float(line["charts/train_seconds"] or 0.0),
                "success": float(line["eval/greedy_success"]),
                "reward": float(line.get("eval/greedy_reward") or 0.0),
            }
        )
        if line.get("losses/entropy") is not None:  # per-token policy entropy: collapse flags
            points[-1]["entropy"] = float(line["losses/entropy"])
    return points


def summarize(spec: RunSpec, points: list[dict[str, float]]) -> dict[str, Any]:
    """Final success and the first evaluation at or above the threshold (None: never)."""
    hit = next((p for p in points if p["success"] >= spec.threshold), None)
    last = points[-1] if points else {}
    return {
        "final_success": last.get("success", None),
        "final_reward": last.get("reward", None),
        "episodes": last.get("episodes", None),
        "tokens": last.get("tokens", None),
        "train_seconds": last.get("train_seconds", None),
        "threshold": spec.threshold,
        "episodes_to_threshold": hit["episodes"] if hit else None,
        "tokens_to_threshold": hit["tokens"] if hit else None,
        "seconds_to_threshold": hit["train_seconds"] if hit else None,
    }


def run_spec(
    spec: RunSpec, out: Path, suite: str = "", progress: bool = False, device: str = "cpu"
) -> dict[str, Any]:
    """Train one spec (1 torch thread) and return its row (``status`` "ok" or "failed").

    Args:
        spec: the run.
        out: the results folder; the agent's files go to ``out/runs/<run_id>/``.
        suite: the suite's name, recorded in the row.
        progress: show the agent's own progress bar.
        device: where it trains (``cpu``; ``cuda`` for a Ray task given a GPU), in ``machine``.
    """
    run_dir = out / "runs" / spec.run_id
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)  # a half-written earlier attempt
    row = _row_head(spec, suite)
    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        points = curve(_train(spec, run_dir, progress, device))
        row.update(status="ok", **summarize(spec, points), curve=points)
    except Exception as e:  # one broken agent must not stop the suite; the row says why
        row.update(status="failed", error=f"{type(e).__name__}: {e}")
        (run_dir / "error.txt").parent.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
    finally:
        torch.set_num_threads(threads)
    row["wall_seconds"] = time.perf_counter() - start
    row["finished_at"] = _now()
    row.update(environment())
    row["machine"] = {"cpu_count": _cpu_count(), "torch_threads": 1, "device": device}
    return row


def _cpu_count() -> int:
    return os.cpu_count() or 1


def read_rows(out: Path) -> list[dict[str, Any]]:
    """Every row of ``out/runs.jsonl`` (empty when there is none)."""
    path = out / RUNS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def select(suite: Suite, only: Iterable[str] | None = None) -> list[RunSpec]:
    """The suite's distinct specs, in question order, of the questions named in ``only``."""
    keys = set(suite.keys if only is None else only)
    unknown = sorted(keys - set(suite.keys))
    if unknown:
        raise ConfigError(f"only={unknown!r} is invalid for suite {suite.name!r}; "
                         f"expected some of {suite.keys}")  # fmt: skip
    specs = [s for q in suite.questions if q.key in keys for s in q.specs]
    return list(dict.fromkeys(specs))


def append_row(out: Path, row: dict[str, Any]) -> None:
    """Append one row to ``out/runs.jsonl`` (the driver is its only writer)."""
    with (out / RUNS_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def pending(suite: Suite, out: Path, only: Iterable[str] | None = None) -> list[RunSpec]:
    """The selected specs without an ``"ok"`` row in ``out`` yet (what a resume runs)."""
    done = {r["run_id"] for r in read_rows(out) if r.get("status") == "ok"}
    return [s for s in select(suite, only) if s.run_id not in done]


def run_suite(
    suite: Suite,
    out: Path,
    only: Iterable[str] | None = None,
    progress: bool = True,
    workers: int = 1,
    cluster: RayOptions | None = None,
) -> list[dict[str, Any]]:
    """Run the selected specs not finished yet, appending a row to ``runs.jsonl`` as each ends.

    Args:
        suite: the suite.
        out: the results folder (resume: finished runs there are skipped).
        only: question keys to run (None: all).
        progress: a bar over runs (and, with one worker, each run's own bar).
        workers: runs at once, each in its own process on 1 torch thread; rows are the same
            for any number (each run seeds everything it draws).
        cluster: run each spec as a Ray task instead (``workers`` must be 1); same rows.

    Returns:
        The rows written by this call, in the order they finished.
    """
    out.mkdir(parents=True, exist_ok=True)
    todo = pending(suite, out, only)
    bar = tqdm(total=len(todo), desc=f"suite {suite.name}", unit="run", disable=not progress)
    rows = []
    own_bars = progress and workers == 1 and cluster is None
    for row in execute(todo, out, suite.name, workers, own_bars, cluster):
        append_row(out, row)
        rows.append(row)
        bar.set_postfix_str(f"{row['spec']['agent']} seed={row['spec']['seed']} {row['status']}")
        bar.update()
    bar.close()
    return rows


def execute(
    specs: list[RunSpec],
    out: Path,
    suite: str,
    workers: int,
    progress: bool,
    cluster: RayOptions | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of ``specs`` as they finish: in this process, in ``workers`` processes, or on Ray."""
    if cluster is not None:
        from .ray_executor import execute_ray  # here: ray_executor imports this module

        yield from execute_ray(specs, out, suite, cluster)
        return
    if workers == 1:
        for spec in specs:
            yield run_spec(spec, out, suite, progress)
        return
    context = multiprocessing.get_context("spawn")  # no torch state copied into the workers
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(run_spec, spec, out, suite): spec for spec in specs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as e:  # the worker died: the run is recorded as failed
                yield failed_row(futures[future], suite, e)


def failed_row(spec: RunSpec, suite: str, error: BaseException) -> dict[str, Any]:
    """The row of a run whose worker died before returning one (re-run on resume)."""
    return _row_head(spec, suite) | {
        "status": "failed",
        "error": f"{type(error).__name__}: {error}",
        "finished_at": _now(),
    }


def _row_head(spec: RunSpec, suite: str) -> dict[str, Any]:
    """What every row of a spec starts with: its id, suite and fields."""
    return {"run_id": spec.run_id, "suite": suite, "spec": asdict(spec)}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

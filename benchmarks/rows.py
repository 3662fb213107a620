"""Rows of ``runs.jsonl``: how one run becomes a row, and how rows are read and appended.

Below the runner and every executor (in-process, worker processes, Ray), which all call
:func:`run_spec` and build a dead worker's row with :func:`failed_row`.

``runs.jsonl`` has one JSON row per line, appended by the one driver that holds the folder's
lock. A kill can leave its last line cut: :func:`read_rows` skips that line with a warning that
names the file and the line (its run has no row, so it runs again), :func:`repair_rows` cuts it
before the next append; a bad line elsewhere is an error naming the file and the line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import time
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import tokengym
from tokengym.errors import DatasetError

from ..agents import read_metrics, train
from ..agents.evaluate import HELDOUT
from .run_spec import RunSpec

RUNS_FILE = "runs.jsonl"
# Keys of a row that measure time or describe the machine: the only ones that may change between
# two runs of the same spec (in curve points: "train_seconds").
VARYING_KEYS = ("train_seconds", "seconds_to_threshold", "wall_seconds", "finished_at", "machine")
VERSIONED = ("gymnasium", "numpy", "stable-baselines3", "sb3-contrib")


class TornLineWarning(UserWarning):
    """The last line of ``runs.jsonl`` was cut (a killed writer); it is skipped."""


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
    config = replace(spec.train_config(out, progress, device), overwrite=True)  # a retry
    with contextlib.redirect_stdout(io.StringIO()):  # its "final ..." line; bars use stderr
        train(config)
    return read_metrics(out / "metrics.jsonl")


def curve(
    lines: Iterable[dict[str, float | None]], prefix: str = "eval/"
) -> list[dict[str, float]]:
    """The evaluation points of metric lines: success and reward vs episodes/tokens/seconds;
    ``prefix`` ``HELDOUT``: the held-out split's scores of the same evaluations."""
    points = []
    for line in lines:
        if line.get(f"{prefix}greedy_success") is None:
            continue
        tokens = line.get("charts/env_steps", line.get("charts/tokens"))
        points.append(
            {
                "step": float(line["step"]),
                "episodes": float(line["charts/episodes"] or 0.0),
                "tokens": float(tokens or 0.0),
                "train_seconds": float(line["charts/train_seconds"] or 0.0),
                "success": float(line[f"{prefix}greedy_success"]),
                "reward": float(line.get(f"{prefix}greedy_reward") or 0.0),
            }
        )
        # Per-token policy entropy of the sampled rollout (the loss's, where a run predates the
        # diagnostics) and the share of zero-advantage samples: the collapse flags read them.
        entropy = line.get("diagnostics/entropy", line.get("losses/entropy"))
        if entropy is not None:
            points[-1]["entropy"] = float(entropy)
        if line.get("diagnostics/zero_advantage_share") is not None:
            points[-1]["zero_advantage_share"] = float(line["diagnostics/zero_advantage_share"])
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
        lines = _train(spec, run_dir, progress, device)
        points = curve(lines)
        row.update(status="ok", **summarize(spec, points), curve=points)
        if spec.heldout:
            row["curve_heldout"] = curve(lines, HELDOUT)
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


def _parse(path: Path, text: str) -> list[dict[str, Any]]:
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):  # no newline after it: the writer was killed mid-line
                warnings.warn(
                    f"{path}: line {number} is cut ({len(line)} characters, {e.msg}); skipped, "
                    f"its run has no row and runs again",
                    TornLineWarning,
                    stacklevel=3,
                )
                continue
            raise DatasetError(
                f"{path}: line {number} is not a JSON row ({e.msg} at column {e.colno}); "
                f"fix or delete that line"
            ) from e
    return rows


def read_rows(out: Path) -> list[dict[str, Any]]:
    """Every row of ``out/runs.jsonl`` (empty when there is none); a cut last line is skipped
    with a :class:`TornLineWarning`."""
    path = out / RUNS_FILE
    if not path.exists():
        return []
    return _parse(path, path.read_text(encoding="utf-8"))


def repair_rows(out: Path) -> None:
    """Cut a torn last line of ``out/runs.jsonl`` (with the warning), so appends start clean."""
    path = out / RUNS_FILE
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    _parse(path, data.decode("utf-8", errors="replace"))  # warns about the torn line
    with path.open("r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)
        f.flush()
        os.fsync(f.fileno())


def append_row(out: Path, row: dict[str, Any]) -> None:
    """Append one row to ``out/runs.jsonl`` in one write, fsynced (the driver is its only
    writer: it holds the folder's lock)."""
    with (out / RUNS_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


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

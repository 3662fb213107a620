"""The run folder every agent writes: ``config.json``, metrics, weights, and the final line.

A folder holds one run: starting a run in a folder that holds one is an error unless
``resume`` (continue it) or ``overwrite`` (delete its files first).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tokengym.errors import ConfigError

from .checkpoint import write_atomic
from .config import TrainConfig
from .metrics import RunLogger
from .signals import Interrupted

INTERRUPTED_EXIT = 130  # 128 + SIGINT, the shell's convention (SIGTERM: 143)
# The files that make a folder a run's (TensorBoard's events.out.tfevents.* besides).
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.pt", "model.zip")


def run_folder(config: TrainConfig) -> Path:
    """``config.out``, or a new ``runs/<agent>-<task>-<time>`` folder name."""
    if config.out is not None:
        return Path(config.out)
    task = config.task or "dataset"
    return Path("runs") / f"{config.agent}-{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_files(out: Path) -> list[Path]:
    """The files of a run in ``out`` (none: not a run folder)."""
    if not out.is_dir():
        return []
    found = [out / name for name in RUN_FILES if (out / name).exists()]
    return found + sorted(out.glob("events.out.tfevents.*"))


def claim_folder(out: Path, config: TrainConfig) -> None:
    """Refuse an ``out`` that holds a run, unless ``config.resume`` or ``config.overwrite``
    (whose run files are then deleted); called before anything is written."""
    found = run_files(out)
    if not found or config.resume is not None:
        return
    if not config.overwrite:
        names = ", ".join(p.name for p in found)
        raise ConfigError(
            f"out={str(out)!r} is invalid; it already holds a run ({names}): pass "
            f"--resume {out} to continue it, --overwrite to replace it, or another --out"
        )
    for path in found:
        path.unlink()


@contextmanager
def new_run_folder(out: Path, config: TrainConfig) -> Iterator[RunLogger]:
    """Create ``out`` with ``config.json`` and the loggers; remove it again if the start fails.

    On resume the folder's metrics file is kept (:func:`cut_metrics` trims it first)."""
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        plain = config.to_plain()
        _write_text_atomic(out / "config.json", json.dumps(plain, indent=2) + "\n")
        logger = RunLogger(out, plain, config.track)
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        raise
    try:
        yield logger
    finally:
        logger.close()


# The final line's keys, in this order, for every agent (others follow; NaN ones are left out).
FINAL_KEYS = ("eval/greedy_success", "eval/greedy_reward", "eval/sampled_success")
FINAL_KEYS += ("eval/sampled_reward", "eval/episodes_to_target", "eval/steps_to_target")
FINAL_KEYS += ("charts/episodes", "charts/train_seconds", "iterations", "charts/env_steps")


def _number(value: float) -> str:
    """Counts as integers (25600, not 2.56e+04), other values to 4 significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def final_line(final: dict[str, float], out: Path, stopped: str = "") -> str:
    """The command's last line: ``final key=value ... run=<out> (why it stopped)``."""
    keys = [k for k in FINAL_KEYS if k in final] + [k for k in final if k not in FINAL_KEYS]
    shown = [f"{k}={_number(final[k])}" for k in keys if not math.isnan(final[k])]
    return "final " + " ".join(shown) + f" run={out}" + (f" ({stopped})" if stopped else "")


def end_run(final: dict[str, float], out: Path, stopped_by: int | None, stopped: str = "") -> None:
    """Print the final line, saying why the run stopped (``stopped``, or "interrupted"); after a
    stop signal (the weights and metrics saved) raise :class:`Interrupted`, so that a script
    stops as on Ctrl-C and the command exits with ``128 + signal`` (130 for SIGINT, 143 for
    SIGTERM)."""
    print(final_line(final, out, "interrupted" if stopped_by else stopped), flush=True)
    if stopped_by:
        raise Interrupted(stopped_by)


def cut_metrics(path: Path, last_step: int) -> None:
    """Keep the lines of a metrics file up to ``last_step`` (those a resumed run continues
    from); lines written after the checkpoint, and a torn last line, go."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if record.get("step", 0) <= last_step:
            kept.append(line + "\n")
    _write_text_atomic(path, "".join(kept))


def _write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))

"""The run folder every agent writes: ``config.json``, metrics, weights, and the final line."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import TrainConfig
from .metrics import RunLogger

INTERRUPTED_EXIT = 130  # 128 + SIGINT, the shell's convention


def run_folder(config: TrainConfig) -> Path:
    """``config.out``, or a new ``runs/<agent>-<task>-<time>`` folder name."""
    if config.out is not None:
        return Path(config.out)
    task = config.task or "dataset"
    return Path("runs") / f"{config.agent}-{task}-{time.strftime('%Y%m%d-%H%M%S')}"


@contextmanager
def new_run_folder(out: Path, config: TrainConfig) -> Iterator[RunLogger]:
    """Create ``out`` with ``config.json`` and the loggers; remove it again if the start fails."""
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        plain = config.to_plain()
        (out / "config.json").write_text(json.dumps(plain, indent=2) + "\n")
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


def end_run(final: dict[str, float], out: Path, interrupted: bool, stopped: str = "") -> None:
    """Print the final line, saying why the run stopped (``stopped``, or "interrupted"); after
    Ctrl-C (the weights and metrics saved) raise it again, so that a script stops as usual and
    the command exits with ``INTERRUPTED_EXIT``."""
    print(final_line(final, out, "interrupted" if interrupted else stopped), flush=True)
    if interrupted:
        raise KeyboardInterrupt

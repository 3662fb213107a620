"""The run folder every agent writes: ``config.json``, metrics, weights, and the final line."""

from __future__ import annotations

import json
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


def final_line(final: dict[str, float], out: Path) -> str:
    """The command's last line: ``final key=value ... run=<out>``."""
    return "final " + " ".join(f"{k}={v:.4g}" for k, v in final.items()) + f" run={out}"


def end_run(final: dict[str, float], out: Path, interrupted: bool) -> None:
    """Print the final line; after Ctrl-C (the weights and metrics saved) raise it again, so
    that a script stops as usual and the command exits with ``INTERRUPTED_EXIT``."""
    print(final_line(final, out) + (" (interrupted)" if interrupted else ""), flush=True)
    if interrupted:
        raise KeyboardInterrupt

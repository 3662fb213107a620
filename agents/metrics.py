"""Append-only JSONL metrics with namespaced keys (``charts/success``, ``losses/policy``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import TracebackType
from typing import Any


class MetricsWriter:
    """Write one JSON object per line: ``{"step": ..., "charts/success": ..., ...}``.

    Args:
        path: the JSONL file; parent folders are created; lines are appended.

    Example:
        >>> with MetricsWriter("runs/x/metrics.jsonl") as w:  # doctest: +SKIP
        ...     w.write(1, {"charts/success": 0.5})
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        """Append one record; non-finite floats are written as null (strict JSON)."""
        for key in metrics:
            if "/" not in key:
                raise ValueError(f"metric name {key!r} has no namespace; use e.g. 'charts/{key}'")
        record = {"step": step}
        record.update({k: (v if math.isfinite(v) else None) for k, v in metrics.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, float | None]]:
    """All records of a metrics file, in order."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


TENSORBOARD_EVERY = 10  # steps between TensorBoard lines of a RunLogger


class RunLogger:
    """A run's metric sinks: ``metrics.jsonl`` always, a TensorBoard event file when tensorboard
    is installed, and Weights & Biases when ``track="wandb"``.

    Keys follow CleanRL (``charts/episodic_return``, ``charts/SPS``, ``losses/policy_loss``), so
    the usual dashboards read them unchanged.

    ``metrics.jsonl`` gets every line. TensorBoard gets every ``tensorboard_every``-th step,
    every line with an evaluation (``eval/...``) and the last line written before ``close``:
    a scalar per key per iteration cost about 9% of a short run, for curves no one reads at
    that resolution.

    Args:
        out: the run folder.
        config: the run's config as plain data (``wandb.init(config=...)``).
        track: None or "wandb".
        tensorboard_every: steps between TensorBoard lines (1: every step).
    """

    def __init__(
        self,
        out: Path,
        config: dict[str, Any],
        track: str | None = None,
        tensorboard_every: int = TENSORBOARD_EVERY,
    ) -> None:
        if not isinstance(tensorboard_every, int) or tensorboard_every < 1:
            raise ValueError(
                f"tensorboard_every={tensorboard_every!r} is invalid; expected an int >= 1"
            )
        self.tensorboard_every = tensorboard_every
        self._unsent: tuple[int, dict[str, float]] | None = None  # last line TensorBoard lacks
        self.jsonl = MetricsWriter(out / "metrics.jsonl")
        self.tensorboard = _tensorboard_writer(out)
        self.wandb = None
        if track == "wandb":
            try:
                import wandb
            except ImportError as e:
                raise ImportError('track="wandb" needs wandb: pip install wandb') from e
            self.wandb = wandb.init(config=config, dir=str(out), name=out.name)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        """Send one metric line to every sink."""
        self.jsonl.write(step, metrics)
        if self.tensorboard is not None:
            evaluated = any(key.startswith("eval/") for key in metrics)
            if step % self.tensorboard_every == 0 or evaluated:
                self._send(step, metrics)
            else:
                self._unsent = (step, metrics)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def _send(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.tensorboard.add_scalar(key, value, step)
        self._unsent = None

    def close(self) -> None:
        """Flush and close every sink (TensorBoard gets the last line if it lacks it)."""
        self.jsonl.close()
        if self.tensorboard is not None:
            if self._unsent is not None:
                self._send(*self._unsent)
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def _tensorboard_writer(out: Path) -> Any:
    """torch's ``SummaryWriter`` on ``out``, or None without the tensorboard package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: metrics.jsonl has every value
        return None
    return SummaryWriter(log_dir=str(out))

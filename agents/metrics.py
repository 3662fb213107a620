"""Append-only JSONL metrics with namespaced keys (``charts/success``, ``losses/policy``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import TracebackType


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

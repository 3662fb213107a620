"""What the agents' fixed costs were and are (issue 17), timed side by side in one process.

    python -m tokengym.bench.agent_overheads          # medians of 7 interleaved repeats

- evaluation: full recomputation of the prefix per token (``policy_act``) against the
  incremental decoding ``evaluate`` uses for a policy;
- TensorBoard: a ``RunLogger`` line with a scalar per key on every step against every 10th.

Wall and CPU seconds are both reported: the machine is shared.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import gymnasium as gym
import torch

from ..agents import evaluate, policy_act
from ..agents.metrics import RunLogger
from ..agents.policies import GRUConfig, TransformerConfig, build_policy


def _timed(fn: Callable[..., object], *args: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _medians(runs: list[tuple[float, float]], per: int = 1) -> tuple[float, float]:
    return median(r[0] for r in runs) / per, median(r[1] for r in runs) / per


def evaluation(repeats: int = 7, task: str = "copy") -> dict[str, dict[str, tuple[float, float]]]:
    """(wall s, CPU s) medians of one evaluation per policy kind: ``full`` and ``incremental``."""
    kwargs = {"task": task}
    probe = gym.make("TokenGen-v0", **kwargs).unwrapped
    vocab, length = probe.tokenizer.vocab_size, probe.observation_length
    out = {}
    for kind, config in (
        ("gru", GRUConfig(vocab)),
        ("transformer", TransformerConfig(vocab, length)),
    ):
        torch.manual_seed(0)
        policy = build_policy(config).eval()
        full_act = policy_act(policy, probe.tokenizer.pad_id)
        full, incremental = [], []
        for _ in range(repeats):
            full.append(_timed(evaluate, full_act, kwargs))
            incremental.append(_timed(evaluate, policy, kwargs))
        out[kind] = {"full": _medians(full), "incremental": _medians(incremental)}
    return out


def _write(logger: RunLogger, metrics: dict[str, float], lines: int) -> None:
    for step in range(1, lines + 1):
        logger.write(step, metrics)


def tensorboard(
    repeats: int = 7, lines: int = 200, keys: int = 22
) -> dict[int, tuple[float, float]]:
    """(wall s, CPU s) medians per ``RunLogger.write`` line, by ``tensorboard_every`` (1, 10)."""
    metrics = {f"charts/key{i}": 1.0 for i in range(keys)}  # a REINFORCE line has about 22
    runs: dict[int, list[tuple[float, float]]] = {1: [], 10: []}
    for _ in range(repeats):
        for every, times in runs.items():
            with tempfile.TemporaryDirectory() as folder:
                logger = RunLogger(Path(folder), {}, tensorboard_every=every)
                times.append(_timed(_write, logger, metrics, lines))
                logger.close()
    return {every: _medians(times, lines) for every, times in runs.items()}


def main() -> int:
    torch.set_num_threads(1)
    for kind, pair in evaluation().items():
        (fw, fc), (iw, ic) = pair["full"], pair["incremental"]
        print(
            f"evaluation {kind}: full {fw * 1e3:.0f} ms wall / {fc * 1e3:.0f} ms CPU, incremental "
            f"{iw * 1e3:.0f} / {ic * 1e3:.0f} ({fw / iw:.1f}x wall, {fc / ic:.1f}x CPU)"
        )
    for every, (wall, cpu) in tensorboard().items():
        print(
            f"RunLogger tensorboard_every={every}: {wall * 1e3:.3f} ms wall / "
            f"{cpu * 1e3:.3f} ms CPU per line"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

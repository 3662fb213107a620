"""Training throughput of each agent: tokens per second of training (question 6).

REINFORCE and the SB3 agents count generated tokens (= env steps); the supervised agent counts
teacher-forced tokens. Measured by ``train(config)`` itself (its metric lines), on 1 torch
thread, CPU.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..agents import SB3_AGENTS, TrainConfig, read_metrics, train

WARMUP_LINES = 2  # metric lines left out: first calls allocate and warm caches


@dataclass(frozen=True)
class AgentSpeed:
    """Training tokens per second of one agent."""

    agent: str
    tokens_per_second: float | None  # None: the measurement failed (see error)
    unit: str  # what a token is: "env step" or "teacher-forced token"
    error: str | None = None


def speed_config(
    agent: str, env_kwargs: Mapping[str, Any], sizes: Mapping[str, int], out: str
) -> TrainConfig:
    """The timed run of one agent: 1 thread, CPU, no evaluation until the end, no checkpoint."""
    kwargs = dict(env_kwargs)
    common: dict[str, Any] = {"agent": agent, "task": kwargs.pop("task"), "env_kwargs": kwargs}
    common |= {"device": "cpu", "threads": 1, "checkpoint": False, "progress": False, "out": out}
    common["target_success"] = None  # a timed run spends its whole budget
    if agent in SB3_AGENTS:
        steps = sizes["total_timesteps"]
        log_every = max(1, steps // 16)
        return TrainConfig(**common, total_timesteps=steps, eval_every=steps, log_every=log_every)
    extra = {"baseline": "rloo", "group_size": 8} if agent == "reinforce" else {}
    iterations = sizes["iterations"] + WARMUP_LINES
    return TrainConfig(
        **common, iterations=iterations, eval_every=iterations, batch_size=64, **extra
    )


def tokens_per_second(lines: list[dict[str, float | None]]) -> float:
    """Tokens/s of training between the warm-up lines and the last line (evaluation excluded)."""
    first, last = lines[WARMUP_LINES - 1], lines[-1]
    tokens = float(last["charts/tokens"] or 0.0) - float(first["charts/tokens"] or 0.0)
    seconds = float(last["charts/train_seconds"] or 0.0) - float(
        first["charts/train_seconds"] or 0.0
    )
    return tokens / seconds


def _measure_one(agent: str, env_kwargs: Mapping[str, Any], sizes: Mapping[str, int]) -> float:
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        train(speed_config(agent, env_kwargs, sizes, folder))
        return tokens_per_second(read_metrics(Path(folder) / "metrics.jsonl"))


def measure(
    agents: tuple[str, ...], env_kwargs: Mapping[str, Any], sizes: Mapping[str, int]
) -> list[AgentSpeed]:
    """Tokens/s of each agent on ``env_kwargs``'s task.

    Args:
        agents: agent names (custom and SB3).
        env_kwargs: the task (``{"task": "target"}``).
        sizes: ``{"iterations": updates timed (custom agents), "total_timesteps": env steps
            timed (SB3 agents)}``.
    """
    speeds = []
    for agent in agents:
        unit = "teacher-forced token" if agent == "supervised" else "env step"
        try:
            value = _measure_one(agent, env_kwargs, sizes)
        except Exception as e:  # one broken agent must not cost the other measurements
            speeds.append(AgentSpeed(agent, None, unit, f"{type(e).__name__}: {e}"))
            continue
        speeds.append(AgentSpeed(agent, value, unit))
    return speeds


def table(speeds: list[AgentSpeed]) -> str:
    """A Markdown table of training tokens/s."""
    lines = ["| agent | training tokens/s | token = |", "|---|---:|---|"]
    for s in speeds:
        value = "failed" if s.tokens_per_second is None else f"{s.tokens_per_second:,.0f}"
        lines.append(f"| {s.agent} | {value} | {s.unit} |")
    failed = [f"{s.agent}: {s.error}" for s in speeds if s.error]
    return "\n".join(lines + ([""] + [f"- failed: {f}" for f in failed] if failed else []))

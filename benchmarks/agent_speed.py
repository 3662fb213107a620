"""Training throughput of each agent: tokens per second of training (question 6).

REINFORCE and the SB3 agents count generated tokens (= env steps); the supervised agent counts
teacher-forced tokens. Measured with the agents' own profilers, on 1 torch thread, CPU.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ._agents import agents_module
from .suites import CUSTOM_AGENTS


@dataclass(frozen=True)
class AgentSpeed:
    """Training tokens per second of one agent."""

    agent: str
    tokens_per_second: float | None  # None: the measurement failed (see error)
    unit: str  # what a token is: "env step" or "teacher-forced token"
    error: str | None = None


def _custom(agent: str, env_kwargs: dict[str, Any], iterations: int) -> float:
    train = agents_module("train")
    argv = ["--agent", agent, "--task", env_kwargs["task"], "--device", "cpu"]
    argv += ["--batch-size", "64", "--group-size", "8", "--baseline", "rloo"]
    args = train.build_parser().parse_args(argv)
    made = train.make_agent(args, env_kwargs)
    measured = agents_module("profile").throughput(made, iterations=iterations, warmup=2)
    return float(measured["tokens_per_s"])


def _sb3(agent: str, env_kwargs: dict[str, Any], steps: int) -> float:
    frames_per_second = agents_module("sb3.profile").sb3_frames_per_second
    extra = {"repeats": 1} if "repeats" in inspect.signature(frames_per_second).parameters else {}
    return float(frames_per_second(env_kwargs, agent=agent, steps=steps, **extra))


def measure(
    agents: tuple[str, ...], env_kwargs: Mapping[str, Any], sizes: Mapping[str, int]
) -> list[AgentSpeed]:
    """Tokens/s of each agent on ``env_kwargs``'s task.

    Args:
        agents: agent names (custom and SB3).
        env_kwargs: the task (``{"task": "target"}``).
        sizes: ``{"custom": updates timed, "sb3": env steps timed}``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        speeds = []
        for agent in agents:
            unit = "teacher-forced token" if agent == "supervised" else "env step"
            try:
                if agent in CUSTOM_AGENTS:
                    value = _custom(agent, dict(env_kwargs), sizes["custom"])
                else:
                    value = _sb3(agent, dict(env_kwargs), sizes["sb3"])
            except Exception as e:  # one broken agent must not cost the other measurements
                speeds.append(AgentSpeed(agent, None, unit, f"{type(e).__name__}: {e}"))
                continue
            speeds.append(AgentSpeed(agent, value, unit))
        return speeds
    finally:
        torch.set_num_threads(threads)


def table(speeds: list[AgentSpeed]) -> str:
    """A Markdown table of training tokens/s."""
    lines = ["| agent | training tokens/s | token = |", "|---|---:|---|"]
    for s in speeds:
        value = "failed" if s.tokens_per_second is None else f"{s.tokens_per_second:,.0f}"
        lines.append(f"| {s.agent} | {value} | {s.unit} |")
    failed = [f"{s.agent}: {s.error}" for s in speeds if s.error]
    return "\n".join(lines + ([""] + [f"- failed: {f}" for f in failed] if failed else []))

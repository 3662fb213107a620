"""Training throughput of each agent: tokens per second of training (question 7).

REINFORCE and the SB3 agents count generated tokens (= env steps); the supervised agent counts
teacher-forced tokens. Measured by ``train(config)`` itself (its metric lines), on 1 torch
thread, CPU. :func:`measure_limits` also sets each custom agent's whole ``train`` run against
its policy's own limit (rollout alone and update alone: ``1 / (1/r + 1/t)``)::

    python -c "from tokengym.bench.agent_speed import measure_limits, limit_table; \
        print(limit_table(measure_limits(('reinforce',), {'task': 'copy'}, 100, 5)))"
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from typing import Any

import torch

from ..agents import CUSTOM_AGENTS, SB3_AGENTS, TrainConfig, read_metrics, train

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


# --- Each agent against its policy's own limit (issue 17) ------------------------------------
#
# The limit is what the policy's own work allows: the rollout alone (r generated tokens/s) and
# the update alone (t tokens/s) give 1 / (1/r + 1/t). They are timed in a bare loop of the same
# seed, hence on the same episodes as the run. The agent's figure is the wall time of a whole
# ``train(config)`` at the CLI defaults (start-up, evaluations, logging, checkpoint included),
# so the share says what everything else costs.


@dataclass(frozen=True)
class PolicyLimit:
    """One custom agent against its policy's limit: medians over interleaved repeats.

    Attributes:
        agent: the agent name.
        tokens_per_second: generated (or teacher-forced) tokens / wall second of ``train``.
        rollout_tokens_per_second: the rollout alone (None: the agent has no rollout).
        update_tokens_per_second: the update alone.
        limit_tokens_per_second: ``1 / (1/r + 1/t)``.
        share: median over repeats of tokens_per_second / limit_tokens_per_second.
        cpu_share: the same in CPU seconds (the bare loop's over the run's): steadier than
            wall time on a loaded machine.
        wall_seconds, cpu_seconds: of one ``train`` call (median).
        repeats: interleaved repeats (train run, then limit).
    """

    agent: str
    tokens_per_second: float
    rollout_tokens_per_second: float | None
    update_tokens_per_second: float
    limit_tokens_per_second: float
    share: float
    cpu_share: float
    wall_seconds: float
    cpu_seconds: float
    repeats: int


def limit_config(
    agent: str, env_kwargs: Mapping[str, Any], iterations: int, out: str
) -> TrainConfig:
    """The CLI defaults of ``agent`` on ``env_kwargs``'s task, for ``iterations`` updates (all
    of them: no stop at the target success, so the run and the limit see the same episodes)."""
    kwargs = dict(env_kwargs)
    task = kwargs.pop("task")
    return TrainConfig(
        agent=agent, task=task, env_kwargs=kwargs, iterations=iterations, out=out,
        target_success=None,
    )  # fmt: skip


def _phases(agent: Any) -> tuple[Callable[[], Any] | None, Callable[[Any], int]]:
    """The agent's rollout (None if it has none) and its update on what the rollout returned,
    which returns the tokens it trained on."""
    from ..agents.dpo import DPOAgent, preference_pairs
    from ..agents.reinforce import ReinforceAgent, rollout_decisions
    from ..agents.supervised import minibatch

    if isinstance(agent, ReinforceAgent):

        def update(batch: Any) -> int:
            agent.update(batch)
            return int(batch.valid.sum())

        return agent.rollout, update
    if isinstance(agent, DPOAgent) and agent.config.dpo_mode == "online":

        def dpo_update(batch: Any) -> int:
            chosen, rejected = preference_pairs(batch.sequence_reward, agent.config.group_size)
            if len(chosen) > 0:
                d = rollout_decisions(batch)
                agent.update(minibatch(d, chosen), minibatch(d, rejected))
            return int(batch.valid.sum())

        return agent.rollout, dpo_update

    def iteration(_: Any) -> int:  # supervised, offline DPO: the update is the iteration
        before = agent.tokens
        agent.train_iteration()
        return agent.tokens - before

    return None, iteration


def _limit_once(config: TrainConfig) -> tuple[float | None, float, int, float]:
    """(r, t, tokens, CPU s): the rollout alone and the update alone of ``config``'s run, in
    tokens/s, the tokens and the CPU seconds of the loop.

    The same seed gives the same batches as ``train(config)``, so both see the same episodes;
    this loop does nothing else (no evaluation, logging or bookkeeping).
    """
    from ..agents.train import make_agent

    agent = make_agent(config)
    rollout, update = _phases(agent)
    rollout_s = update_s = 0.0
    tokens, cpu = 0, time.process_time()
    for _ in range(config.budget):
        t0 = time.perf_counter()
        batch = rollout() if rollout else None
        t1 = time.perf_counter()
        tokens += update(batch)
        rollout_s, update_s = rollout_s + t1 - t0, update_s + time.perf_counter() - t1
        if rollout:  # (the iteration counts itself otherwise)
            agent.iteration += 1  # only the first rollout resets with the seed, as in train
    cpu = time.process_time() - cpu
    return (tokens / rollout_s if rollout else None), tokens / update_s, tokens, cpu


def _train_once(config: TrainConfig) -> tuple[float, float, float]:
    """(generated tokens, wall s, CPU s) of one ``train(config)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lines = read_metrics(Path(str(config.out)) / "metrics.jsonl")
    return float(lines[-1]["charts/tokens"] or 0.0), wall, cpu


def measure_limits(
    agents: tuple[str, ...],
    env_kwargs: Mapping[str, Any],
    iterations: int,
    repeats: int = 5,
) -> list[PolicyLimit]:
    """Each custom agent's ``train`` tokens/s against its policy's limit, in this process.

    Repeats interleave a whole ``train`` run and a limit measurement, on 1 torch thread (the
    CLI default); medians are reported.

    Args:
        agents: custom agent names (SB3 agents have no limit here and are rejected).
        env_kwargs: the task (``{"task": "copy"}``).
        iterations: updates of each ``train`` run (its evaluations follow ``eval_every``).
        repeats: interleaved repeats (>= 5 for a median worth reading).

    Example:
        >>> measure_limits(("reinforce",), {"task": "copy"}, 100)[0].share  # doctest: +SKIP
        0.95
    """
    unknown = [a for a in agents if a not in CUSTOM_AGENTS]
    if unknown:
        raise ValueError(f"agents={unknown!r} are invalid; expected some of {CUSTOM_AGENTS}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results = []
    try:
        for agent in agents:
            rows = []
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as folder:
                    config = limit_config(agent, env_kwargs, iterations, folder)
                    tokens, wall, cpu = _train_once(config)
                    r, t, bare, bare_cpu = _limit_once(replace(config, out=folder + "/bare"))
                if bare != tokens:  # not the same episodes: the share would mean nothing
                    raise RuntimeError(f"{agent}: train saw {tokens} tokens, the limit {bare}")
                limit = 1.0 / ((1.0 / r if r else 0.0) + 1.0 / t)
                share = tokens / wall / limit
                rows.append((tokens / wall, r, t, limit, share, bare_cpu / cpu, wall, cpu))
            med = [None if c[0] is None else median(c) for c in zip(*rows)]
            results.append(PolicyLimit(agent, *med, repeats))  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)
    return results


def limit_table(limits: list[PolicyLimit]) -> str:
    """A Markdown table: each custom agent against its policy's limit."""
    lines = [
        "| agent | train tokens/s | rollout alone | update alone | limit | share of limit "
        "| CPU share | wall s | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in limits:
        r = "-" if p.rollout_tokens_per_second is None else f"{p.rollout_tokens_per_second:,.0f}"
        lines.append(
            f"| {p.agent} | {p.tokens_per_second:,.0f} | {r} | {p.update_tokens_per_second:,.0f} "
            f"| {p.limit_tokens_per_second:,.0f} | {p.share:.2f} | {p.cpu_share:.2f} "
            f"| {p.wall_seconds:.1f} "
            f"| {p.cpu_seconds:.1f} |"
        )
    return "\n".join(lines)

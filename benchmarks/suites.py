"""The suites as plain data: which runs answer which question.

A :class:`RunSpec` is one training run (agent x task x reward mode x gamma x credit x baseline x
seed x budget); a :class:`Question` groups the runs that answer one question of the setting and
names the spec fields that tell its arms apart; a :class:`Suite` is the questions plus the sizes
of the throughput section. Runs shared by two questions (same spec) run once.

Example:
    >>> [q.key for q in SUITES["quick"].questions]
    ['sl-vs-rl', 'credit', 'gamma', 'baseline']
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tokengym.errors import ConfigError
from tokengym.validation import check_choice, check_int, check_number

from ..agents.config import AGENTS, BASELINES, CREDITS, REWARD_MODES, SB3_AGENTS, TrainConfig

# Question 2's three ways to credit tokens, as (reward_mode, credit) of the env and REINFORCE.
CREDIT_MODES: dict[str, tuple[str, str]] = {
    "terminal": ("terminal", "env"),
    "dense": ("dense", "env"),
    "broadcast": ("terminal", "trajectory"),
}
THROUGHPUT = "throughput"  # the --only key of question 6


@dataclass(frozen=True)
class RunSpec:
    """One training run; its hash is the run id that resume keys on.

    Attributes:
        agent: one of ``AGENTS``.
        task: env kwargs of the task as sorted (key, value) pairs, "task" included.
        reward_mode: the env's "terminal" or "dense" reward.
        gamma: the env's and the agent's discount.
        credit: REINFORCE's "env" (reward-to-go) or "broadcast" (episode total on every token).
        baseline: REINFORCE's "none", "mean", "rloo" or "value".
        seed: seeds the agent (weights, sampling, prompts) and its envs.
        iterations: updates of a custom agent (None for SB3 agents); fixed, never wall-clock.
        total_timesteps: env steps of an SB3 agent (None for custom agents).
        batch_size: episodes (REINFORCE) or examples (supervised) per update.
        lr: learning rate of every agent.
        group_size: REINFORCE samples per prompt (the leave-one-out group).
        eval_every: updates (custom) or env steps (SB3) between greedy test evaluations.
        eval_prompts: test prompts per evaluation (None: the whole test split).
        threshold: greedy test success that counts as solved (episodes-to-threshold).
    """

    agent: str
    task: tuple[tuple[str, Any], ...]
    reward_mode: str = "terminal"
    gamma: float = 1.0
    credit: str = "env"
    baseline: str = "rloo"
    seed: int = 0
    iterations: int | None = 80
    total_timesteps: int | None = None
    batch_size: int = 64
    lr: float = 3e-3
    group_size: int = 8
    eval_every: int = 4
    eval_prompts: int | None = 20
    threshold: float = 0.9

    def __post_init__(self) -> None:
        check_choice("agent", self.agent, AGENTS)
        check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        check_choice("credit", self.credit, CREDITS)
        check_choice("baseline", self.baseline, BASELINES)
        if "task" not in dict(self.task):
            raise ConfigError(f"task={self.task!r} is invalid; expected pairs with a 'task' key")
        check_number("gamma", self.gamma, low=0.0, high=1.0)
        budget, unused = ("total_timesteps", "iterations")
        if self.agent not in SB3_AGENTS:
            budget, unused = unused, budget
        check_int(budget, getattr(self, budget), 1)
        if getattr(self, unused) is not None:
            raise ConfigError(
                f"{unused}={getattr(self, unused)!r} is invalid for agent {self.agent!r}; its "
                f"budget is {budget} (leave {unused} None)"
            )
        for name in ("batch_size", "group_size", "eval_every"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        if self.eval_prompts is not None:
            check_int("eval_prompts", self.eval_prompts, 1)
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_number("threshold", self.threshold, low=0.0, high=1.0, low_open=True)

    @property
    def run_id(self) -> str:
        """A stable 12-hex-digit hash of every field (the resume key)."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The ``gym.make("TokenGen-v0", ...)`` kwargs of training."""
        return {**dict(self.task), "reward_mode": self.reward_mode, "gamma": self.gamma}

    def train_config(self, out: Path, progress: bool = False) -> TrainConfig:
        """The run as ``train(config)`` takes it: 1 torch thread on the CPU, no checkpoint.

        Only the fields the agent reads are passed (TrainConfig rejects the others); REINFORCE
        samples ``group_size`` completions per prompt for the leave-one-out baseline only.
        """
        kwargs = dict(self.task)
        common = {
            "agent": self.agent,
            "task": kwargs.pop("task"),
            "env_kwargs": kwargs,
            "reward_mode": self.reward_mode,
            "gamma": self.gamma,
            "lr": self.lr,
            "eval_every": self.eval_every,
            "eval_prompts": self.eval_prompts,
            "seed": self.seed,
            "device": "cpu",
            "threads": 1,  # fastest for these small networks, and one reduction order
            "out": str(out),
            "checkpoint": False,  # MBs per run; the suite needs the curves
            "progress": progress,
        }
        if self.agent in SB3_AGENTS:
            return TrainConfig(
                **common, total_timesteps=self.total_timesteps, log_every=self.total_timesteps
            )
        custom = {"iterations": self.iterations, "batch_size": self.batch_size}
        if self.agent == "reinforce":
            group_size = self.group_size if self.baseline == "rloo" else 1
            custom |= {"credit": self.credit, "baseline": self.baseline, "group_size": group_size}
        return TrainConfig(**common, **custom)

    @property
    def credit_mode(self) -> str:
        """Question 2's name of (reward_mode, credit): terminal, dense or broadcast."""
        for name, pair in CREDIT_MODES.items():
            if pair == (self.reward_mode, self.credit):
                return name
        return f"{self.reward_mode}+{self.credit}"

    @property
    def task_name(self) -> str:
        """A short name of the task, e.g. ``target(target=abc)``."""
        kwargs = dict(self.task)
        knobs = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if k != "task")
        return f"{kwargs['task']}({knobs})" if knobs else str(kwargs["task"])


def task(name: str, **knobs: Any) -> tuple[tuple[str, Any], ...]:
    """A RunSpec ``task`` value: ``task("copy", max_length=2)``."""
    return tuple(sorted({"task": name, **knobs}.items()))


def grid(base: RunSpec, seeds: tuple[int, ...], **axes: tuple[Any, ...]) -> tuple[RunSpec, ...]:
    """Every combination of ``axes`` values (``credit_mode`` expands to reward_mode + credit).

    Example:
        >>> len(grid(RunSpec("reinforce", task("target")), (0, 1), gamma=(1.0, 0.9)))
        4
    """
    specs = []
    for values in itertools.product(*axes.values(), seeds):
        change = dict(zip(axes, values[:-1]))
        if "credit_mode" in change:
            change["reward_mode"], change["credit"] = CREDIT_MODES[change.pop("credit_mode")]
        specs.append(replace(base, seed=values[-1], **change))
    return tuple(specs)


@dataclass(frozen=True)
class Question:
    """The runs that answer one question, and the spec fields that name its arms.

    Attributes:
        key: the ``--only`` name, e.g. "credit".
        title: the report heading.
        arm: RunSpec fields or properties whose values label an arm (a table row, a curve).
        specs: the runs (every arm x every seed).
        note: one paragraph for the report: what the arms are, what to check.
    """

    key: str
    title: str
    arm: tuple[str, ...]
    specs: tuple[RunSpec, ...]
    note: str = ""

    def __post_init__(self) -> None:
        if not self.specs:
            raise ConfigError(f"specs of question {self.key!r} is empty; expected >= 1 RunSpec")


@dataclass(frozen=True)
class Suite:
    """A named suite.

    Attributes:
        name: "quick", "full", ...
        questions: questions 1-5 (learning runs).
        throughput: kwargs of ``throughput.measure`` (question 6, env steps/s).
        agent_throughput: agents whose training tokens/s question 6 measures.
        agent_measure: ``{"iterations": updates timed (custom agents), "total_timesteps": env
            steps timed (SB3 agents)}``.
        throughput_task: the task the agents' throughput is measured on.
    """

    name: str
    questions: tuple[Question, ...]
    throughput: Mapping[str, int] = field(default_factory=dict)
    agent_throughput: tuple[str, ...] = AGENTS
    agent_measure: Mapping[str, int] = field(
        default_factory=lambda: {"iterations": 20, "total_timesteps": 2048}
    )
    throughput_task: tuple[tuple[str, Any], ...] = (("task", "target"),)

    def __post_init__(self) -> None:
        keys = [q.key for q in self.questions]
        if len(set(keys)) != len(keys) or THROUGHPUT in keys:
            raise ConfigError(
                f"questions={keys!r} is invalid; expected unique keys, not 'throughput'"
            )
        for agent in self.agent_throughput:
            check_choice("agent_throughput", agent, AGENTS)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every ``--only`` key of the suite."""
        return (*(q.key for q in self.questions), THROUGHPUT)


NOTES = {
    "sl-vs-rl": "Same train prompts: the supervised agent fits their reference answers (teacher "
    "forcing), REINFORCE its own samples scored by the env's reward. For the supervised agent an "
    "episode is one training example.",
    "credit": "terminal: R on the last token, reward-to-go; dense: potential-shaped rewards "
    "(Phi = matched prefix); broadcast: the terminal R credited to every token. At gamma 1 "
    "terminal and broadcast give every token the same return, so their rows must agree.",
    "gamma": "gamma is both the env's (dense shaping) and REINFORCE's discount.",
    "baseline": "none; batch mean per step; leave-one-out over the 8 samples of each prompt; a "
    "learned value head.",
    "sb3": "SB3 agents get their budget in env steps (tokens) and their own default "
    "hyper-parameters except lr; every agent is scored by the same greedy evaluation.",
}


def learning_questions(base: RunSpec, seeds: tuple[int, ...], sb3_budget: int) -> list[Question]:
    """Questions 1-5 on one task, around a base REINFORCE spec (terminal reward, gamma 1)."""
    sb3 = replace(
        base,
        agent=SB3_AGENTS[0],
        iterations=None,
        total_timesteps=sb3_budget,
        eval_every=sb3_budget // 20,
        lr=1e-3,
    )
    modes = tuple(CREDIT_MODES)
    return [
        Question("sl-vs-rl", "Q1. Supervised vs RL on the same data", ("agent",),
                 grid(base, seeds, agent=("supervised", "reinforce")), NOTES["sl-vs-rl"]),
        Question("credit", "Q2. Credit assignment (REINFORCE, gamma 1)", ("credit_mode",),
                 grid(base, seeds, credit_mode=modes), NOTES["credit"]),
        Question("gamma", "Q3. Discounting x credit mode (REINFORCE)", ("credit_mode", "gamma"),
                 grid(base, seeds, credit_mode=modes, gamma=(1.0, 0.99, 0.9)), NOTES["gamma"]),
        Question("baseline", "Q4. Variance reduction (REINFORCE, terminal reward)", ("baseline",),
                 grid(base, seeds, baseline=BASELINES), NOTES["baseline"]),
        Question("sb3", "Q5. Custom REINFORCE vs SB3 (budget in env steps for SB3)", ("agent",),
                 grid(base, seeds, agent=("reinforce",)) + grid(sb3, seeds, agent=SB3_AGENTS),
                 NOTES["sb3"]),
    ]  # fmt: skip


TARGET = task("target", target="abc")  # answer "abc" to any prompt: optimum known, 4 tokens
QUICK_BASE = RunSpec("reinforce", TARGET, iterations=60, eval_every=2)
FULL_BASE = RunSpec("reinforce", TARGET, iterations=300, eval_every=5)
# 100 of the 120 strings of length 1-4 over {a, b, c} to train on, 20 held out: supervised
# learning reaches 0.9 greedy test success in ~4,500 examples (seed 0), REINFORCE far later.
COPY = task("copy", min_length=1, max_length=4, alphabet_size=3, train_size=100, test_size=20)

SUITES: dict[str, Suite] = {
    # Seconds: CI and the tests (two seeds, two updates or 64 env steps per run).
    "smoke": Suite(
        "smoke",
        tuple(
            q
            for q in learning_questions(replace(QUICK_BASE, iterations=2, eval_every=1), (0, 1), 64)
            if q.key in ("sl-vs-rl", "credit", "sb3")
        ),
        {"repeats": 1, "single_steps": 300, "num_envs": 8, "vector_steps": 3, "sync_steps": 2},
        ("supervised", "reinforce"),
        {"iterations": 2, "total_timesteps": 64},
    ),
    # Under 5 minutes on 2 cores: questions 1-4 with 3 seeds, and question 6.
    "quick": Suite(
        "quick",
        tuple(learning_questions(QUICK_BASE, (0, 1, 2), 8192)[:4]),
        {"repeats": 3, "single_steps": 30_000, "vector_steps": 60, "sync_steps": 6},
    ),
    # Hours: every question with 5 seeds, on the target task and a copy task.
    "full": Suite(
        "full",
        tuple(learning_questions(FULL_BASE, (0, 1, 2, 3, 4), 40_000))
        + tuple(
            replace(q, key=f"{q.key}-copy", title=f"{q.title} [copy]")
            for q in learning_questions(
                replace(FULL_BASE, task=COPY, iterations=600, eval_every=10, eval_prompts=None),
                (0, 1, 2, 3, 4),
                80_000,
            )
        ),
        {"repeats": 15, "single_steps": 300_000, "vector_steps": 600, "sync_steps": 60},
        agent_measure={"iterations": 50, "total_timesteps": 8192},
    ),
}

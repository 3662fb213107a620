"""One training run of the suite as plain data (:class:`RunSpec`), and the helpers that build
and compare specs: ``task``, ``grid``, ``canonical``, ``distinct``.

Example:
    >>> RunSpec("reinforce", task("copy")).task_name
    'copy'
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tokengym.errors import ConfigError
from tokengym.problem import SPLITS
from tokengym.validation import check_choice, check_int, check_number

from ..agents.config import (
    AGENTS,
    BASELINES,
    CREDITS,
    ESTIMATOR_FIELDS,
    REWARD_MODES,
    SB3_AGENTS,
    TrainConfig,
)

# The ways to credit tokens that questions 2 and 3 compare, as (env reward_mode, REINFORCE
# credit): R on the last token, R on every token, G_0 on every token, and the env's dense
# (potential-shaped) or progress (a share per matched token) rewards, each reward-to-go.
CREDIT_MODES: dict[str, tuple[str, str]] = {
    "final": ("terminal", "final"),
    "every_token": ("terminal", "every_token"),
    "trajectory": ("terminal", "trajectory"),
    "dense": ("dense", "env"),
    "progress": ("progress", "env"),
}


@dataclass(frozen=True)
class RunSpec:
    """One training run; its hash is the run id that resume keys on.

    Attributes:
        agent: one of ``AGENTS``.
        task: env kwargs of the task as sorted (key, value) pairs, "task" included.
        reward_mode: the env's "terminal", "dense" or "progress" reward.
        gamma: the env's and the agent's discount.
        credit: REINFORCE's "final", "every_token", "trajectory" or "env" (``returns.py``).
        baseline: REINFORCE's baseline (``BASELINES``: "none", "mean", "rloo", "group" (GRPO's
            group mean), "value" or "vine").
        seed: seeds the agent (weights, sampling, prompts) and its envs.
        iterations: updates of a custom agent (None for SB3 agents); fixed, never wall-clock.
        total_timesteps: env steps of an SB3 agent (None for custom agents).
        batch_size: episodes (REINFORCE) or examples (supervised) per update; prompts for DPO.
        lr: learning rate of every agent.
        group_size: completions per prompt: REINFORCE's leave-one-out group, DPO's group.
        eval_every: updates (custom) or env steps (SB3) between greedy evaluations.
        eval_prompts: prompts per evaluation (None: the whole split).
        eval_split: the split evaluated: "train" (the prompts trained on: the objective J
            itself) or "test" (unseen prompts: generalisation).
        threshold: greedy success that counts as solved (episodes-to-threshold).
        entropy_coef: REINFORCE's entropy bonus (the exploration arms).
        kl_coef: REINFORCE's KL penalty to its initial policy (the warm start's reference).
        init: the run id of a run with ``checkpoint`` whose weights this run starts from (the
            warm start); it must finish first (the suite's first stage).
        checkpoint: keep the run's final ``checkpoint.pt`` (a warm start's source).
        estimator: REINFORCE's estimator options as sorted (field, value) pairs of
            ``TrainConfig`` (``ESTIMATOR_OPTIONS``: GRPO's ``scale_rewards``, PPO's
            ``gae_lambda`` and ``ppo_epochs``, ``loss_agg_mode``, ...), so that any estimator of
            ``agents/advantages.py`` runs as an arm.
        heldout: also score the test split at every evaluation (the row's ``curve_heldout``;
            a custom agent evaluated on "train"): one run gives J and generalisation.
    """

    agent: str
    task: tuple[tuple[str, Any], ...]
    reward_mode: str = "terminal"
    gamma: float = 1.0
    credit: str = "final"
    baseline: str = "rloo"
    seed: int = 0
    iterations: int | None = 80
    total_timesteps: int | None = None
    batch_size: int = 64
    lr: float = 3e-3
    group_size: int = 8
    eval_every: int = 4
    eval_prompts: int | None = None
    eval_split: str = "train"
    threshold: float = 0.9
    entropy_coef: float = 0.0
    kl_coef: float = 0.0
    init: str | None = None
    checkpoint: bool = False
    estimator: tuple[tuple[str, Any], ...] = ()
    heldout: bool = False

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
        check_choice("eval_split", self.eval_split, SPLITS)
        if self.heldout and (self.eval_split != "train" or self.agent in SB3_AGENTS):
            raise ConfigError(
                f"heldout=True is invalid for agent {self.agent!r} with eval_split "
                f"{self.eval_split!r}; expected a custom agent evaluated on 'train'"
            )
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_number("threshold", self.threshold, low=0.0, high=1.0, low_open=True)
        check_number("entropy_coef", self.entropy_coef, low=0.0)
        check_number("kl_coef", self.kl_coef, low=0.0)
        if (self.entropy_coef or self.kl_coef) and self.agent != "reinforce":
            raise ConfigError(
                f"entropy_coef/kl_coef={self.entropy_coef!r}/{self.kl_coef!r} is invalid for "
                f"agent {self.agent!r}; expected 0 (only reinforce reads them)"
            )
        if self.kl_coef and self.init is None:
            raise ConfigError(f"kl_coef={self.kl_coef!r} is invalid without init; expected 0")
        unknown = [name for name, _ in self.estimator if name not in ESTIMATOR_OPTIONS]
        if unknown:
            raise ConfigError(
                f"estimator={self.estimator!r} is invalid; {unknown[0]!r} is not one of "
                f"{ESTIMATOR_OPTIONS}"
            )
        if self.estimator and self.agent != "reinforce":
            raise ConfigError(
                f"estimator={self.estimator!r} is invalid for agent {self.agent!r}; expected () "
                f"(only reinforce reads it)"
            )

    @property
    def run_id(self) -> str:
        """A stable 12-hex-digit hash of every field (the resume key); fields at their
        default (the warm-start and exploration ones) are left out, so older ids still hold."""
        fields = asdict(self)
        for name, default in NEW_FIELD_DEFAULTS.items():
            if fields[name] == default:
                del fields[name]
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The ``gym.make("TokenGen-v0", ...)`` kwargs of training."""
        return {**dict(self.task), "reward_mode": self.reward_mode, "gamma": self.gamma}

    def train_config(self, out: Path, progress: bool = False, device: str = "cpu") -> TrainConfig:
        """The run as ``train(config)`` takes it: 1 torch thread on ``device``, no checkpoint.

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
            "eval_split": self.eval_split,
            "seed": self.seed,
            "device": device,
            "threads": 1,  # fastest for these small networks, and one reduction order
            "out": str(out),
            "checkpoint": self.checkpoint,  # MBs per run: only a warm start's source keeps one
            "init": None if self.init is None else str(out.parent / self.init / "checkpoint.pt"),
            "progress": progress,
            "target_success": None,  # the suite reads whole learning curves
        }
        if self.agent in SB3_AGENTS:
            return TrainConfig(
                **common, total_timesteps=self.total_timesteps, log_every=self.total_timesteps
            )
        custom = {"iterations": self.iterations, "batch_size": self.batch_size}
        custom["eval_heldout"] = self.heldout
        if self.agent == "reinforce":
            grouped = self.baseline in GROUP_BASELINES
            group_size = self.group_size if grouped else 1
            custom |= {"credit": self.credit, "baseline": self.baseline, "group_size": group_size}
            custom |= {"entropy_coef": self.entropy_coef, "kl_coef": self.kl_coef}
            custom |= dict(self.estimator)
        if self.agent == "dpo":
            custom["group_size"] = self.group_size
        return TrainConfig(**common, **custom)

    @property
    def credit_mode(self) -> str:
        """The name of (reward_mode, credit) in ``CREDIT_MODES``, e.g. "final" or "progress"."""
        for name, pair in CREDIT_MODES.items():
            if pair == (self.reward_mode, self.credit):
                return name
        return f"{self.reward_mode}+{self.credit}"

    @property
    def answer_length(self) -> str:
        """The answer lengths of a string task, e.g. "3-4" (its prompt's min and max length)."""
        kwargs = dict(self.task)
        return f"{kwargs.get('min_length', '?')}-{kwargs.get('max_length', '?')}"

    @property
    def variant(self) -> str:
        """The agent with its exploration/KL settings, e.g. "reinforce + entropy 0.01"."""
        extra = [f"entropy {self.entropy_coef:g}"] if self.entropy_coef else []
        extra += [f"KL {self.kl_coef:g}"] if self.kl_coef else []
        return " + ".join([self.agent, *extra])

    @property
    def init_label(self) -> str:
        """ "warm" for a run that starts from a checkpoint, else "scratch"."""
        return "scratch" if self.init is None else "warm"

    @property
    def task_name(self) -> str:
        """A short name of the task, e.g. ``target(target=abc)``."""
        kwargs = dict(self.task)
        knobs = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if k != "task")
        return f"{kwargs['task']}({knobs})" if knobs else str(kwargs["task"])


# Fields added after the first committed results: at these values they stay out of the run id.
NEW_FIELD_DEFAULTS: dict[str, Any] = {
    "entropy_coef": 0.0,
    "kl_coef": 0.0,
    "init": None,
    "checkpoint": False,
    "estimator": (),
    "heldout": False,
}
# REINFORCE's estimator options a spec may set (TrainConfig fields), and the baselines that
# sample ``group_size`` completions per prompt.
ESTIMATOR_OPTIONS = (*ESTIMATOR_FIELDS, "normalize_advantages")
GROUP_BASELINES = ("rloo", "group")


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


def canonical(spec: RunSpec) -> RunSpec:
    """The spec with its credit replaced by the one it equals exactly, run for run.

    Two arms of a question with the same canonical spec would give identical rows, so a
    question keeps one of them (and its note says why): at gamma 1 ``trajectory`` (G_0 on every
    token) is ``final`` (G_t = R on every token); ``env`` credit on the terminal reward is
    ``final`` at every gamma.

    Example:
        >>> canonical(RunSpec("reinforce", task("target"), credit="trajectory")).credit
        'final'
    """
    if spec.agent != "reinforce" or spec.reward_mode != "terminal":
        return spec
    if spec.credit == "env" or (spec.credit == "trajectory" and spec.gamma == 1.0):
        return replace(spec, credit="final")
    return spec


def distinct(specs: tuple[RunSpec, ...]) -> tuple[RunSpec, ...]:
    """``specs`` without those whose canonical spec came earlier (first one kept)."""
    seen: set[RunSpec] = set()
    kept = []
    for spec in specs:
        if canonical(spec) not in seen:
            seen.add(canonical(spec))
            kept.append(spec)
    return tuple(kept)

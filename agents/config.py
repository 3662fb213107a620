"""``TrainConfig``: the one description of a training run, and the single source of its defaults.

The training command's options are generated from these fields (``cli.py``), ``train(config)``
runs one, and the benchmark suite builds one per run. A field is honoured or rejected, never
replaced: a value the chosen agent would not read is an error, and ``None`` in the fields marked
"per agent" stands for that agent's default from :data:`AGENT_DEFAULTS`, filled in at
construction (so ``config.json`` records the values the run used).

Example:
    >>> TrainConfig(agent="supervised", task="target").lr
    0.003
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

import tokengym  # noqa: F401  (registers TokenGen-v0)
from tokengym._requires import require
from tokengym.errors import ConfigError
from tokengym.problem import SPLITS
from tokengym.rewards import REWARD_MODES
from tokengym.validation import check_choice, check_int, check_number

from .choices import (
    BASELINES,
    CREDITS,
    DPO_LOSSES,
    KL_ESTIMATORS,
    LOSS_AGG_MODES,
    SCALE_REWARDS,
)
from .guards import adopt_resumed, check_memory, check_run_fields

CUSTOM_AGENTS = ("reinforce", "supervised", "dpo")
SB3_AGENTS = ("ppo", "a2c", "dqn", "maskable_ppo")
AGENTS = CUSTOM_AGENTS + SB3_AGENTS
POLICIES = ("gru", "transformer")
SB3_POLICIES = ("mlp", "token")
SB3_POOLINGS = ("gru", "mean")
VEC_ENVS = ("dummy", "subproc")
START_METHODS = (None, "spawn", "fork", "forkserver")
TRACKERS = (None, "wandb")
DPO_MODES = ("online", "offline")

# What None means in the "per agent" fields. Custom agents count their budget in updates
# (iterations), SB3 agents in env steps (total_timesteps); each agent reads only its own unit.
# Budgets: a default run (stopped at DEFAULT_TARGET_SUCCESS, or its budget spent) takes at most
# about 10 minutes on 2 busy cores for reinforce (5000 updates at 0.06-0.12 s) and 2.5 for
# every other agent and built-in task (per update with the evaluations, busy machine:
# supervised 0.03 s, dpo 0.02-0.045 s; SB3 ~1.1 ms per env step); evaluations every 10
# updates / 1000 steps resolve episodes-to-threshold.
# reinforce and dpo (issue 15 item 8): measured on the small tasks of benchmarks/defaults_check.py
# (alphabet 4, answers of 2-4 letters; 1-digit addition), tuning seed 900, 2 busy cores
# (docs/benchmarks/defaults/sweeps/runs.jsonl; the check at these defaults, seeds 0-4:
# docs/benchmarks/defaults/runs.jsonl). reinforce, lr 1e-3 x 512 per update, batch-mean
# baseline: credit "final" reaches 0.9 on every string task and parity in 10-260 updates
# without a bonus; "every_token" needs 1.2-3x the updates and fails sort (0.83 after 1500).
# Addition needs the entropy bonus: without it the policy answers "9" to every prompt (0.125,
# entropy 0.001, also at lr 3e-3 or with rloo x 8); with a bonus it learns the 1-digit sums and
# finds the 2-digit ones slowly: 0.01 gives 0.46 after 8000 updates, 0.02 0.81 and 0.03 0.875
# after 6000 (0.9 at lr 2e-3 after 4960); 0.04 reaches 0.9 after 1460 updates and keeps every
# string task and parity at 0.9 within 110-680 updates (2-3x the updates without it); 0.05
# held copy at 0.19 (seed 0, 2100 updates). The full benchmark's tuning grid (stage 1 of the
# full suite: copy 1-2 letters, 16 prompts, an equal budget of 25,600 samples) favours 64 per
# update, which a wall-clock budget does not need. dpo (lr 2e-3, 64 prompts x 4) reaches 0.9
# on every string task and parity within 480 updates (18 s); on addition it solves the 1-digit
# sums only (0.54-0.59: 5000 updates, 16 prompts x 16, beta 1, lr 5e-4; 0.64 with the ipo
# loss), its samples of a 2-digit prompt all one wrong digit, so its budget stays 1500.
_CUSTOM = {"eval_every": 10, "threads": 1}
_SB3 = {"lr": 1e-3, "total_timesteps": 50_000, "eval_every": 1_000, "threads": 1}
AGENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "reinforce": {**_CUSTOM, "iterations": 5000, "lr": 1e-3, "batch_size": 512, "group_size": 1}
    | {"entropy_coef": 0.04},
    "supervised": {**_CUSTOM, "iterations": 2000, "lr": 3e-3, "batch_size": 128},
    "dpo": {**_CUSTOM, "iterations": 1500, "lr": 2e-3, "batch_size": 64, "group_size": 4},
    **{agent: dict(_SB3) for agent in SB3_AGENTS},
}

# Fields read by some agents only; every other agent must leave them at their default.
_POLICY = ("policy", "width", "layers", "heads", "init", "max_grad_norm")
_POLICY += ("checkpoint_every", "checkpoint_minutes", "resume")  # custom agents' checkpoints
_POLICY += ("eval_heldout",)
_REINFORCE = ("credit", "baseline", "normalize_advantages", "entropy_coef")
_REINFORCE += ("value_coef", "kl_coef")
# The estimator options (issue 16): advantages, PPO epochs, KL, aggregation, distillation.
ESTIMATOR_FIELDS = ("scale_rewards", "gae_lambda", "loss_agg_mode", "ppo_epochs")
ESTIMATOR_FIELDS += ("num_minibatches", "clip_range", "vine_rollouts", "kl_estimator")
ESTIMATOR_FIELDS += ("kl_in_reward", "teacher")
CREDITS_PER_STEP = ("final", "every_token", "env")  # the credits with a return-to-go
_REINFORCE += ESTIMATOR_FIELDS
_SB3_ONLY = ("sb3_policy", "sb3_pooling", "sb3_embed_dim", "sb3_hidden_dim", "sb3_net_arch")
_SB3_ONLY += ("num_envs", "vec_env", "start_method", "sb3_kwargs", "log_every")
READ_BY: dict[str, tuple[str, ...]] = {
    "reinforce": (*_POLICY, *_REINFORCE, "iterations", "batch_size", "group_size"),
    "supervised": (*_POLICY, "iterations", "batch_size"),
    "dpo": (*_POLICY, "iterations", "batch_size", "group_size", "beta", "dpo_loss", "dpo_mode"),
    **{agent: (*_SB3_ONLY, "total_timesteps") for agent in SB3_AGENTS},
}
AGENT_FIELDS = frozenset(f for names in READ_BY.values() for f in names)
# Env arguments a run sets itself: they are TrainConfig fields, or fixed by training/evaluation.
# Fields that are counts (ints >= 1), always or where they are not None.
_COUNTS = ("width", "layers", "heads", "sb3_embed_dim", "sb3_hidden_dim", "num_envs")
_COUNTS += ("log_every", "eval_every")
_OPTIONAL_COUNTS = ("iterations", "total_timesteps", "batch_size", "group_size")
_OPTIONAL_COUNTS += ("eval_prompts", "threads")
RUN_ENV_KEYS = {"task": "task", "reward_mode": "reward_mode", "gamma": "gamma", "split": None}
DEFAULT_TASK = "copy"  # task=None means this, unless env_kwargs names a dataset
DEFAULT_TARGET_SUCCESS = 0.9  # stop there unless target_success=None (--target-success none)
# The option groups of --help: the field that opens each (the sections of the class below).
SECTIONS = {
    "agent": "what to train",
    "policy": "the policy of the custom agents (reinforce, supervised, dpo)",
    "iterations": "budget and optimisation",
    "credit": "REINFORCE",
    "beta": "DPO",
    "sb3_policy": "Stable-Baselines3 agents (ppo, a2c, dqn, maskable_ppo)",
    "eval_split": "evaluation and stopping",
    "seed": "the run",
    "checkpoint_every": "checkpoints, resume and the run folder",
}
SB3_RESERVED = ("env", "policy", "seed", "learning_rate", "gamma", "device", "policy_kwargs")


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class TrainConfig:
    """One training run on ``TokenGen-v0``: environment, agent, policy, budget, evaluation.

    Every field has a one-line doc (shown by ``tokengym-train --help``). Fields marked "per
    agent" default to None, which construction replaces with :data:`AGENT_DEFAULTS` of the
    agent; a field the agent does not read must keep its default (a ``ConfigError`` says so).
    """

    # --- what to train
    agent: str = field(default="reinforce", metadata=_doc("the agent", choices=AGENTS))
    task: str | None = field(
        default=None,
        metadata=_doc(
            f"built-in task name (None: {DEFAULT_TASK!r}, or the dataset of "
            f"env_kwargs['dataset'] when it names one)"
        ),
    )
    env_kwargs: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=_doc("other gym.make('TokenGen-v0') arguments: task knobs, dataset, reward..."),
    )
    reward_mode: str = field(
        default="terminal",
        metadata=_doc("the env's reward mode (read by credit=env)", choices=REWARD_MODES),
    )
    gamma: float = field(default=1.0, metadata=_doc("discount of the env and of the agent"))
    # --- the policy of the custom agents
    policy: str = field(default="gru", metadata=_doc("policy network", choices=POLICIES))
    width: int = field(default=128, metadata=_doc("GRU hidden size / transformer d_model"))
    layers: int = field(default=1, metadata=_doc("GRU / transformer layers"))
    heads: int = field(default=4, metadata=_doc("transformer attention heads"))
    init: str | None = field(
        default=None, metadata=_doc("start from this checkpoint's weights (its policy)")
    )
    # --- optimisation
    iterations: int | None = field(
        default=None, metadata=_doc("updates to train for (custom agents; per agent)")
    )
    total_timesteps: int | None = field(
        default=None, metadata=_doc("env steps to train for (SB3 agents; per agent)")
    )
    batch_size: int | None = field(
        default=None, metadata=_doc("episodes (reinforce) or examples (supervised) per update")
    )
    lr: float | None = field(default=None, metadata=_doc("Adam learning rate (per agent)"))
    max_grad_norm: float | None = field(
        default=1.0, metadata=_doc("clip the gradient norm to this (None: no clipping)")
    )
    # --- REINFORCE
    # final: see AGENT_DEFAULTS (every_token needed more updates on the small tasks, failed sort)
    credit: str = field(
        default="final",
        metadata=_doc(
            "final: R on the last token (the default: fastest on every small task); "
            "every_token: R on every token; trajectory: G_0 on every token; env: the env's "
            "rewards (all reward-to-go but trajectory); distill: -(log pi - log pi_teacher) "
            "per token",
            choices=(*CREDITS, "distill"),
        ),
    )
    baseline: str = field(default="mean", metadata=_doc("variance reduction", choices=BASELINES))
    group_size: int | None = field(
        default=None,
        metadata=_doc("completions per prompt in a batch (per agent; rloo and dpo need >= 2)"),
    )
    normalize_advantages: bool = field(default=False, metadata=_doc("standardise advantages"))
    entropy_coef: float | None = field(
        default=None, metadata=_doc("entropy bonus weight (per agent)")
    )
    value_coef: float = field(default=0.5, metadata=_doc("value loss weight (baseline=value)"))
    kl_coef: float = field(
        default=0.0, metadata=_doc("KL penalty to the initial policy (the --init checkpoint's)")
    )
    # --- estimators (README "Estimators": GRPO, Dr. GRPO, RLOO, REINFORCE++, PPO, VinePPO)
    scale_rewards: str = field(
        default="none",
        metadata=_doc(
            "divide advantages by the std of the returns over the group (GRPO) or the batch",
            choices=SCALE_REWARDS,
        ),
    )
    gae_lambda: float | None = field(
        default=None,
        metadata=_doc("GAE(gamma, lambda) on the critic (baseline value or vine); None: G - b"),
    )
    loss_agg_mode: str = field(
        default="seq-mean-token-sum",
        metadata=_doc(
            "per-token terms to one loss (verl's names; seq-mean-token-sum-norm divides by "
            "max_new_tokens: Dr. GRPO)",
            choices=LOSS_AGG_MODES,
        ),
    )
    ppo_epochs: int = field(default=1, metadata=_doc("PPO: epochs over each rollout"))
    num_minibatches: int = field(default=1, metadata=_doc("PPO: minibatches per epoch"))
    clip_range: float = field(
        default=0.2,
        metadata=_doc("PPO: ratio clip epsilon (read when ppo_epochs or num_minibatches > 1)"),
    )
    vine_rollouts: int = field(
        default=4, metadata=_doc("VinePPO: rollouts from each visited prefix (baseline=vine)")
    )
    kl_estimator: str = field(
        default="full",
        metadata=_doc("KL estimator: full (exact over V), k1, k2, k3", choices=KL_ESTIMATORS),
    )
    kl_in_reward: bool = field(
        default=False, metadata=_doc("put -kl_coef * KL in each token's reward, not the loss")
    )
    teacher: str | None = field(
        default=None, metadata=_doc("credit=distill: the teacher's checkpoint.pt")
    )
    # --- DPO
    beta: float = field(default=0.2, metadata=_doc("DPO: inverse temperature of log(pi/pi_ref)"))
    dpo_loss: str = field(default="sigmoid", metadata=_doc("DPO loss", choices=DPO_LOSSES))
    dpo_mode: str = field(
        default="online",
        metadata=_doc(
            "online: best vs worst of each group, scored by the env; offline: reference answer "
            "vs one completion of the initial policy",
            choices=DPO_MODES,
        ),
    )
    # --- Stable-Baselines3 baselines
    sb3_policy: str = field(
        default="token",
        metadata=_doc("mlp: SB3 MlpPolicy; token: embedding extractor", choices=SB3_POLICIES),
    )
    sb3_pooling: str = field(
        default="gru", metadata=_doc("token extractor pooling", choices=SB3_POOLINGS)
    )
    sb3_embed_dim: int = field(default=32, metadata=_doc("token extractor embedding width"))
    sb3_hidden_dim: int = field(default=64, metadata=_doc("token extractor feature width"))
    sb3_net_arch: tuple[int, ...] = field(
        default=(64,), metadata=_doc("hidden layers of the SB3 policy/value heads")
    )
    num_envs: int = field(default=8, metadata=_doc("parallel envs of SB3's vector env"))
    vec_env: str = field(default="dummy", metadata=_doc("SB3 vector env", choices=VEC_ENVS))
    start_method: str | None = field(
        default=None, metadata=_doc("multiprocessing start method", choices=START_METHODS)
    )
    sb3_kwargs: Mapping[str, Any] = field(
        default_factory=dict, metadata=_doc("other SB3 constructor arguments (n_steps, ...)")
    )
    log_every: int = field(default=1_000, metadata=_doc("env steps between SB3 metric lines"))
    # --- evaluation (greedy and sampled success on fixed prompts of one split)
    eval_split: str = field(
        default="train",
        metadata=_doc(
            "test: unseen prompts; train: the prompts trained on (the objective J)", choices=SPLITS
        ),
    )
    eval_every: int | None = field(
        default=None, metadata=_doc("iterations (custom) / env steps (SB3) between evaluations")
    )
    eval_heldout: bool = field(
        default=False,
        metadata=_doc(
            "custom agents, eval_split train: score the test split too at every evaluation "
            "(eval/heldout_greedy_success; stopping still reads train)"
        ),
    )
    eval_prompts: int | None = field(
        default=256, metadata=_doc("prompts per evaluation, the split's first (None: all)")
    )
    target_success: float | None = field(
        default=DEFAULT_TARGET_SUCCESS,
        metadata=_doc("stop once greedy success on eval_split reaches this (None: never)"),
    )
    # --- the run
    seed: int = field(default=0, metadata=_doc("seeds weights, sampling, prompts and envs"))
    device: str = field(default="auto", metadata=_doc("auto (CUDA when present), cpu, cuda..."))
    threads: int | None = field(
        default=None,
        metadata=_doc(
            "torch CPU threads (per agent: 1 for every agent, the fast setting for these small "
            "policies on a shared machine; more only when asked)"
        ),
    )
    out: str | None = field(
        default=None, metadata=_doc("run folder (None: runs/<agent>-<task>-<time>)")
    )
    checkpoint: bool = field(default=True, metadata=_doc("save the trained weights"))
    progress: bool = field(default=True, metadata=_doc("show a progress bar"))
    track: str | None = field(
        default=None, metadata=_doc("also log to this tracker", choices=TRACKERS)
    )
    # --- checkpoints, resume and the run folder (custom agents save periodically; see run.py)
    checkpoint_every: int | None = field(
        default=None, metadata=_doc("updates between checkpoints (None: by time only)")
    )
    checkpoint_minutes: float | None = field(
        default=5.0, metadata=_doc("minutes of training between checkpoints (None: by updates)")
    )
    resume: str | None = field(
        default=None,
        metadata=_doc("continue the run in this folder from its last checkpoint (its config)"),
    )
    overwrite: bool = field(default=False, metadata=_doc("replace a run already in --out"))

    # --- the command line's own shortcuts
    tokenizer: str | None = field(
        default=None,
        metadata=_doc(
            "a tokenizer.json for the env (None: characters of the task)", section="what to train"
        ),
    )

    def __post_init__(self) -> None:
        if self.resume is not None:
            adopt_resumed(self)  # the run's config.json, before any other check
        if self.task is None and "dataset" not in self.env_kwargs:
            object.__setattr__(self, "task", DEFAULT_TASK)
        check_choice("agent", self.agent, AGENTS)
        if self.agent in SB3_AGENTS:
            require("stable_baselines3", "sb3_contrib", extra="sb3", package="tokengym.agents.sb3")
        self._check_agent_fields()
        for name, value in AGENT_DEFAULTS[self.agent].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        self._check_values()
        self._check_env()

    def _check_agent_fields(self) -> None:
        defaults = {f.name: _default(f) for f in dataclasses.fields(self)}
        unread = [
            f
            for f in sorted(AGENT_FIELDS - set(READ_BY[self.agent]))
            if getattr(self, f) != defaults[f]
        ]
        if unread:
            readers = sorted(a for a in AGENTS if set(unread) <= set(READ_BY[a]))
            pronoun = "it is" if len(unread) == 1 else "they are"
            hint = f"; {pronoun} read by {', '.join(readers)}" if readers else ""
            raise ConfigError(
                f"{', '.join(f'{f}={getattr(self, f)!r}' for f in unread)} "
                f"{'does' if len(unread) == 1 else 'do'} not apply to agent "
                f"{self.agent!r}{hint}. Leave {'it' if len(unread) == 1 else 'them'} unset."
            )

    def _check_values(self) -> None:
        check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        check_number("gamma", self.gamma, low=0.0, high=1.0)
        check_choice("policy", self.policy, POLICIES)
        for name in _COUNTS:
            check_int(name, getattr(self, name), 1)
        for name in _OPTIONAL_COUNTS:
            if getattr(self, name) is not None:  # None: not read by this agent, or "all"
                check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_run_fields(self)
        if self.max_grad_norm is not None:
            check_number("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
        check_choice("credit", self.credit, (*CREDITS, "distill"))
        check_choice("baseline", self.baseline, BASELINES)
        for name in ("entropy_coef", "value_coef", "kl_coef"):
            if getattr(self, name) is not None:  # entropy_coef: None for the agents without one
                check_number(name, getattr(self, name), low=0.0)
        if self.agent == "reinforce":
            self._check_groups()
            self._check_estimator()
        if self.agent == "dpo":
            check_int("group_size", self.group_size, 2)
        check_number("beta", self.beta, low=0.0, low_open=True)
        check_choice("dpo_loss", self.dpo_loss, DPO_LOSSES)
        check_choice("dpo_mode", self.dpo_mode, DPO_MODES)
        check_choice("sb3_policy", self.sb3_policy, SB3_POLICIES)
        check_choice("sb3_pooling", self.sb3_pooling, SB3_POOLINGS)
        check_choice("vec_env", self.vec_env, VEC_ENVS)
        check_choice("start_method", self.start_method, START_METHODS)
        if not self.sb3_net_arch or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.sb3_net_arch
        ):
            raise ConfigError(
                f"sb3_net_arch={self.sb3_net_arch!r} is invalid; expected a tuple of ints >= 1"
            )
        clash = sorted(set(SB3_RESERVED) & set(self.sb3_kwargs))
        if clash:
            raise ConfigError(
                f"sb3_kwargs={dict(self.sb3_kwargs)!r} is invalid; {clash} are set by the run "
                f"(use the TrainConfig fields lr, gamma, seed, device, sb3_policy)"
            )
        if self.target_success is not None:
            check_number("target_success", self.target_success, low=0.0, high=1.0, low_open=True)
        check_choice("eval_split", self.eval_split, SPLITS)
        if self.eval_heldout and self.eval_split != "train":
            raise ConfigError(
                f"eval_heldout=True with eval_split={self.eval_split!r} is invalid; the held-out "
                "score is the test split's, so eval_split must be 'train'"
            )
        check_choice("track", self.track, TRACKERS)
        if self.track == "wandb":
            require("wandb", extra="wandb", package="track='wandb'")
        if self.init is not None and not Path(self.init).is_file():
            raise ConfigError(
                f"init={self.init!r} is invalid; no such file (expected a checkpoint.pt)"
            )
        kind = self.device.split(":")[0] if isinstance(self.device, str) else self.device
        if kind not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(
                f"device={self.device!r} is invalid; expected 'auto', 'cpu', 'cuda[:N]' or 'mps'"
            )

    def _check_groups(self) -> None:
        if self.batch_size % self.group_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is invalid with group_size={self.group_size}; "
                f"expected a multiple of group_size (each prompt is sampled group_size times)"
            )
        if self.baseline == "rloo" and self.group_size < 2:
            raise ConfigError(
                f"group_size={self.group_size} is invalid with baseline='rloo'; expected >= 2 "
                f"samples per prompt to leave one out (e.g. group_size=8)"
            )

    def _check_estimator(self) -> None:
        """The estimator options: each honoured, or an error naming what is allowed."""
        check_choice("scale_rewards", self.scale_rewards, SCALE_REWARDS)
        check_choice("loss_agg_mode", self.loss_agg_mode, LOSS_AGG_MODES)
        check_choice("kl_estimator", self.kl_estimator, KL_ESTIMATORS)
        check_int("ppo_epochs", self.ppo_epochs, 1)
        check_int("num_minibatches", self.num_minibatches, 1)
        check_int("vine_rollouts", self.vine_rollouts, 1)
        check_number("clip_range", self.clip_range, low=0.0, low_open=True)
        if self.baseline == "vine" and (self.credit not in CREDITS_PER_STEP or self.kl_in_reward):
            raise ConfigError(
                f"baseline='vine' is invalid with credit={self.credit!r}, "
                f"kl_in_reward={self.kl_in_reward!r}; its values are the returns of rollouts from "
                f"each prefix: expected credit final, every_token or env, and kl_in_reward=False"
            )
        critic = self.baseline in ("value", "vine")
        if self.gae_lambda is not None:
            check_number("gae_lambda", self.gae_lambda, low=0.0, high=1.0)
            if not critic:
                raise ConfigError(
                    f"gae_lambda={self.gae_lambda!r} is invalid with baseline={self.baseline!r}; "
                    f"GAE needs a critic: baseline='value' (PPO) or 'vine' (VinePPO)"
                )
            if self.credit in ("trajectory", "distill"):
                raise ConfigError(
                    f"gae_lambda={self.gae_lambda!r} is invalid with credit={self.credit!r}; "
                    f"GAE needs per-step rewards: credit final, every_token or env"
                )
        if self.scale_rewards == "group" and self.group_size < 2:
            raise ConfigError(
                f"scale_rewards='group' is invalid with group_size={self.group_size}; a group "
                f"std needs >= 2 samples per prompt (e.g. group_size=8)"
            )
        if self.scale_rewards == "batch" and self.batch_size < 2:
            raise ConfigError(
                f"scale_rewards='batch' is invalid with batch_size={self.batch_size}; expected >= 2"
            )
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"num_minibatches={self.num_minibatches} is invalid with batch_size="
                f"{self.batch_size}; expected a divisor of batch_size"
            )
        if self.ppo_epochs == 1 and self.num_minibatches == 1 and self.clip_range != 0.2:
            raise ConfigError(
                f"clip_range={self.clip_range!r} is not read with ppo_epochs=1 and "
                f"num_minibatches=1 (the ratio is 1 in a single pass); raise ppo_epochs or "
                f"num_minibatches, or leave it unset"
            )
        if self.baseline != "vine" and self.vine_rollouts != 4:
            raise ConfigError(
                f"vine_rollouts={self.vine_rollouts!r} is read by baseline='vine' only; leave it "
                f"unset"
            )
        if self.kl_coef == 0 and (self.kl_estimator != "full" or self.kl_in_reward):
            raise ConfigError(
                f"kl_estimator={self.kl_estimator!r}, kl_in_reward={self.kl_in_reward!r} are read "
                f"with kl_coef > 0 only; set kl_coef (e.g. 0.05) or leave them unset"
            )
        if self.kl_in_reward and self.credit in ("trajectory", "distill"):
            raise ConfigError(
                f"kl_in_reward=True is invalid with credit={self.credit!r}; a per-token reward "
                f"needs credit final, every_token or env"
            )
        if self.credit == "distill":
            if self.teacher is None:
                raise ConfigError("credit='distill' needs teacher=<checkpoint.pt>")
            if self.baseline != "none" or self.scale_rewards != "none" or self.gamma != 1.0:
                raise ConfigError(
                    f"credit='distill' is invalid with baseline={self.baseline!r}, "
                    f"scale_rewards={self.scale_rewards!r}, gamma={self.gamma!r}; its advantage "
                    f"is the per-token -(log pi - log pi_teacher): expected baseline='none', "
                    f"scale_rewards='none', gamma=1.0"
                )
        if self.teacher is not None:
            if self.credit != "distill":
                raise ConfigError(
                    f"teacher={self.teacher!r} is read by credit='distill' only; set credit or "
                    f"leave teacher unset"
                )
            if not Path(self.teacher).is_file():
                raise ConfigError(
                    f"teacher={self.teacher!r} is invalid; no such file (expected a checkpoint.pt)"
                )

    def _check_env(self) -> None:
        for key, owner in RUN_ENV_KEYS.items():
            if key in self.env_kwargs:
                fix = f"set it with TrainConfig.{owner}" if owner else "the run sets it"
                raise ConfigError(
                    f"env_kwargs[{key!r}]={self.env_kwargs[key]!r} is invalid; {fix} "
                    f"(it is read by both the env and the agent or the evaluation)"
                )
        if self.task is not None and "dataset" in self.env_kwargs:
            raise ConfigError(
                f"task={self.task!r} and env_kwargs['dataset'] are both set; leave task unset "
                f"to train on the dataset"
            )
        if self.tokenizer is not None:
            if "tokenizer" in self.env_kwargs:
                raise ConfigError(
                    f"tokenizer={self.tokenizer!r} and env_kwargs['tokenizer'] are both set; "
                    f"set one of them"
                )
            if not Path(self.tokenizer).is_file():
                raise ConfigError(
                    f"tokenizer={self.tokenizer!r} is invalid; no such file (expected a "
                    f"tokenizer.json)"
                )
        probe = gym.make("TokenGen-v0", **self.make_kwargs())  # the env's own checks, now
        check_memory(self, probe.unwrapped)
        probe.close()

    def make_kwargs(self, split: str | None = None) -> dict[str, Any]:
        """The ``gym.make("TokenGen-v0", ...)`` arguments of training (or of ``split``)."""
        kwargs = dict(self.env_kwargs)
        if self.task is not None:
            kwargs["task"] = self.task
        if self.tokenizer is not None:
            kwargs["tokenizer"] = self.tokenizer
        kwargs.update(reward_mode=self.reward_mode, gamma=self.gamma)
        return kwargs if split is None else {**kwargs, "split": split}

    @property
    def is_sb3(self) -> bool:
        """True for the Stable-Baselines3 agents (budget in env steps)."""
        return self.agent in SB3_AGENTS

    @property
    def budget(self) -> int:
        """The training budget in the agent's own unit (iterations or total_timesteps)."""
        return self.total_timesteps if self.is_sb3 else self.iterations  # type: ignore[return-value]

    def to_plain(self) -> dict[str, Any]:
        """The config as JSON-ready data (``config.json``); callables are written by repr."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=repr))


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default

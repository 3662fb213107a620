"""tokengym.agents: torch policies, the REINFORCE, supervised and DPO agents, SB3 baselines,
and the one training entry point ``train(TrainConfig(...))``.

Example:
    >>> from tokengym.agents import TrainConfig, load_policy, train
    >>> result = train(TrainConfig(agent="reinforce", task="target", target_success=0.9))
    >>> load_policy(result.run_dir).generate(["0"])  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

from tokengym._requires import require

require("torch", "tqdm", extra="torch", package=__name__)
# The package exports the function train() from its module train.py (imported below), so
# "python -m tokengym.agents.train" finds that module already imported; running it again as
# __main__ is harmless (it only defines functions), and runpy's warning about it is noise.
warnings.filterwarnings(
    "ignore", r"'tokengym\.agents\.train' found in sys\.modules", RuntimeWarning
)

from .checkpoint import (  # noqa: E402  (after the dependency check)
    Checkpoint,
    VocabularyMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from .config import AGENT_DEFAULTS, AGENTS, CUSTOM_AGENTS, SB3_AGENTS, TrainConfig  # noqa: E402
from .device import resolve_device  # noqa: E402
from .dpo import DPOAgent  # noqa: E402
from .evaluate import EvalResult, evaluate, evaluate_policy, policy_act  # noqa: E402
from .losses import (  # noqa: E402
    Decisions,
    dpo_loss,
    reinforce_loss,
    sequence_logp,
    supervised_loss,
)
from .metrics import MetricsWriter, RunLogger, read_metrics  # noqa: E402
from .policies import (  # noqa: E402
    GRUConfig,
    GRUPolicy,
    Policy,
    TransformerConfig,
    TransformerPolicy,
    build_policy,
)
from .reinforce import ReinforceAgent  # noqa: E402
from .rollout import Rollout, collect_rollout  # noqa: E402
from .supervised import SupervisedAgent  # noqa: E402
from .train import train  # noqa: E402
from .trained import TrainedPolicy, TrainResult, load_policy  # noqa: E402

__all__ = [
    "AGENTS",
    "AGENT_DEFAULTS",
    "CUSTOM_AGENTS",
    "SB3_AGENTS",
    "Checkpoint",
    "DPOAgent",
    "Decisions",
    "EvalResult",
    "GRUConfig",
    "GRUPolicy",
    "MetricsWriter",
    "Policy",
    "ReinforceAgent",
    "Rollout",
    "RunLogger",
    "SupervisedAgent",
    "TrainConfig",
    "TrainResult",
    "TrainedPolicy",
    "TransformerConfig",
    "TransformerPolicy",
    "VocabularyMismatchError",
    "build_policy",
    "collect_rollout",
    "dpo_loss",
    "evaluate",
    "evaluate_policy",
    "load_checkpoint",
    "load_policy",
    "policy_act",
    "read_metrics",
    "reinforce_loss",
    "resolve_device",
    "save_checkpoint",
    "sequence_logp",
    "supervised_loss",
    "train",
]

"""tokengym agents: torch policies, REINFORCE and supervised agents, evaluation, checkpoints.

Installed as ``tokengym_agents``; inside the package every import is relative.
"""

from __future__ import annotations

from .checkpoint import Checkpoint, VocabularyMismatchError, load_checkpoint, save_checkpoint
from .device import resolve_device
from .evaluate import EvalResult, evaluate, evaluate_policy, policy_act
from .losses import Decisions, reinforce_loss, supervised_loss
from .metrics import MetricsWriter, read_metrics
from .policies import (
    GRUConfig,
    GRUPolicy,
    Policy,
    TransformerConfig,
    TransformerPolicy,
    build_policy,
)
from .reinforce import ReinforceAgent, ReinforceConfig
from .rollout import Rollout, collect_rollout
from .supervised import SupervisedAgent, SupervisedConfig

__all__ = [
    "Checkpoint",
    "Decisions",
    "EvalResult",
    "GRUConfig",
    "GRUPolicy",
    "MetricsWriter",
    "Policy",
    "ReinforceAgent",
    "ReinforceConfig",
    "Rollout",
    "SupervisedAgent",
    "SupervisedConfig",
    "TransformerConfig",
    "TransformerPolicy",
    "VocabularyMismatchError",
    "build_policy",
    "collect_rollout",
    "evaluate",
    "evaluate_policy",
    "load_checkpoint",
    "policy_act",
    "read_metrics",
    "reinforce_loss",
    "resolve_device",
    "save_checkpoint",
    "supervised_loss",
]

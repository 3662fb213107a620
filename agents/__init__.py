"""tokengym agents: torch policies, REINFORCE, supervised and DPO agents, evaluation, checkpoints.

Installed as ``tokengym_agents``; inside the package every import is relative.
"""

from __future__ import annotations

from .checkpoint import Checkpoint, VocabularyMismatchError, load_checkpoint, save_checkpoint
from .device import resolve_device
from .dpo import DPOAgent, DPOConfig
from .evaluate import EvalResult, evaluate, evaluate_policy, policy_act
from .losses import Decisions, dpo_loss, reinforce_loss, sequence_logp, supervised_loss
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
    "DPOAgent",
    "DPOConfig",
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
    "dpo_loss",
    "evaluate",
    "evaluate_policy",
    "load_checkpoint",
    "policy_act",
    "read_metrics",
    "reinforce_loss",
    "resolve_device",
    "save_checkpoint",
    "sequence_logp",
    "supervised_loss",
]

"""The allowed values of TrainConfig's choice fields, and the lr bound: torch-free, so that the
config and the command's ``--help`` load without torch."""

from __future__ import annotations

CREDITS = ("final", "every_token", "trajectory", "env")
# none/mean/rloo/group are computed from the batch's returns (batch_baseline); value is the
# policy's value head, vine the Monte Carlo value of each visited prefix (VinePPO).
BASELINES = ("none", "mean", "rloo", "group", "value", "vine")
SCALE_REWARDS = ("none", "group", "batch")
LOSS_AGG_MODES = (
    "seq-mean-token-sum",  # mean over sequences of the summed tokens: the REINFORCE formula
    "token-mean",  # mean over every valid token of the batch (DAPO, TRL "bnpo")
    "seq-mean-token-mean",  # mean over sequences of each one's token-mean (TRL "grpo")
    "seq-mean-token-sum-norm",  # token sum / (B * max_new_tokens): Dr. GRPO
)
KL_ESTIMATORS = ("full", "k1", "k2", "k3")
DPO_LOSSES = ("sigmoid", "ipo")
# Adam moves each weight by about lr per step, so an lr above 1 only diverges (divergence.py).
MAX_LR = 1.0

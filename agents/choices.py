"""The allowed values of TrainConfig's choice fields, and the lr bound: torch-free, so that the
config and the command's ``--help`` load without torch."""

from __future__ import annotations

CREDITS = ("final", "every_token", "trajectory", "env")
BASELINES = ("none", "mean", "rloo", "value")
DPO_LOSSES = ("sigmoid", "ipo")
# Adam moves each weight by about lr per step, so an lr above 1 only diverges (divergence.py).
MAX_LR = 1.0

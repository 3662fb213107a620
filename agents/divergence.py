"""Divergence guards of the custom agents' updates.

- A non-finite loss or gradient norm stops the run before the optimizer applies it
  (:class:`DivergenceError` names the iteration and the values), so the weights kept, and saved,
  are the last finite ones.
- A loss whose magnitude grows past ``LOSS_WARN_FACTOR`` times its first value (or past
  ``LOSS_WARN_FACTOR * LOSS_WARN_FLOOR`` when that first value is small) gives one
  :class:`LossGrowthWarning`: finite, but most likely the lr is too large.
- ``MAX_LR`` bounds the learning rate at construction: Adam moves each weight by about lr per
  step, so an lr above it only diverges (lr=1e38 overflowed inside Adam).
"""

from __future__ import annotations

import math
import warnings

import torch

from tokengym.errors import TokenGymError

LOSS_WARN_FACTOR = 1e4
LOSS_WARN_FLOOR = 1.0
MAX_LR = 1.0


class DivergenceError(TokenGymError, ArithmeticError):
    """An update whose loss or gradient is not finite (the update was not applied).

    Attributes:
        iteration: the update (1-based) that diverged.
        values: the loss and gradient norm it had.
    """

    def __init__(self, iteration: int, values: dict[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        super().__init__(
            f"training diverged at iteration {iteration}: {shown}; the update was not applied "
            f"(lower lr, or set max_grad_norm)"
        )
        self.iteration = iteration
        self.values = values


class LossGrowthWarning(RuntimeWarning):
    """A finite loss that grew past the documented bound (see the module docstring)."""


def gradient_norm(parameters: list[torch.Tensor]) -> torch.Tensor:
    """The total 2-norm of the gradients of ``parameters`` (those without one count 0)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


class UpdateGuard:
    """Checks each update's loss and gradient norm: :meth:`check` before the optimizer step."""

    def __init__(self) -> None:
        self.first_loss: float | None = None
        self.warned = False

    def check(self, iteration: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Raise :class:`DivergenceError` on a non-finite value; warn once on a loss growth."""
        pair = torch.stack([loss.detach().float().reshape(()), grad_norm.float().reshape(())])
        loss_value, norm_value = pair.tolist()  # one sync per update
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            raise DivergenceError(iteration, {"loss": loss_value, "grad_norm": norm_value})
        if self.first_loss is None:
            self.first_loss = abs(loss_value)
            return
        bound = LOSS_WARN_FACTOR * max(self.first_loss, LOSS_WARN_FLOOR)
        if not self.warned and abs(loss_value) > bound:
            self.warned = True
            warnings.warn(
                f"the loss grew to {loss_value:.4g} at iteration {iteration}, past {bound:.4g} "
                f"({LOSS_WARN_FACTOR:g} x the larger of its first value {self.first_loss:.4g} "
                f"and {LOSS_WARN_FLOOR:g}): the run is probably diverging (lower lr)",
                LossGrowthWarning,
                stacklevel=2,
            )

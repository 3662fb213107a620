"""Adam without the ``torch._dynamo`` import: the same updates, state dict and checkpoints.

``torch.optim`` wraps ``step``, ``zero_grad``, ``add_param_group``, ``state_dict`` and
``load_state_dict`` in helpers that import ``torch._dynamo`` on first call (about 1.4-1.8 CPU-s
and 70 MB per process), for the sake of ``torch.compile``; no ``foreach``/``fused``/
``capturable`` flag avoids it. Eager training does not compile, so :class:`EagerAdam` calls the
undecorated methods. Everything else is ``torch.optim.Adam``'s own code: the updates are
bit-identical and the state dict is the same (``tests/agents/test_perf.py`` checks both).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch


def _undecorated(method: Callable[..., Any]) -> Callable[..., Any]:
    """The function under torch's wrappers (they keep it as ``__wrapped__``)."""
    return inspect.unwrap(method)


class EagerAdam(torch.optim.Adam):
    """``torch.optim.Adam`` for eager training: no ``torch._dynamo`` import on any call.

    Under ``torch.compile`` these methods would be traced rather than skipped; compile the
    model, not the optimizer step, or use ``torch.optim.Adam``.

    Example:
        >>> layer = torch.nn.Linear(2, 1)
        >>> optimizer = EagerAdam(layer.parameters(), lr=1e-3)
        >>> isinstance(optimizer, torch.optim.Adam)
        True
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _undecorated(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _undecorated(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _undecorated(torch.optim.Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _undecorated(torch.optim.Optimizer.load_state_dict)(self, state_dict)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        # What torch's wrapper does, less its compile-only graph breaks.
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return _undecorated(torch.optim.Adam.step)(self, closure)

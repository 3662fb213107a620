"""What ``--resume`` restores beyond the weights: the optimizer, every random generator the
agent draws from (torch, numpy, the env's), its counters and the training loop's own values.

A run resumed from a checkpoint rebuilds its agent exactly as the first start did (same config,
same ``--init`` or seeded weights, so the same reference policy and offline data), then loads
this state: on CPU it continues bit for bit as if it had never stopped.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

COUNTERS = ("iteration", "episodes", "tokens")


def _numpy_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)  # JSON: its 128-bit ints are not tensor data


def _set_numpy_state(rng: np.random.Generator, text: str) -> None:
    rng.bit_generator.state = json.loads(text)


def _env_state(vec: Any) -> dict[str, Any]:
    """The prompt-drawing state of a TokenGen vector env (its per-env generators and blocks)."""
    base = getattr(vec, "unwrapped", vec)
    rngs = getattr(base, "_rngs", None)
    if rngs is None:
        return {}
    return {
        "rngs": [None if r is None else _numpy_state(r) for r in rngs],
        "draws": torch.from_numpy(np.array(base._draws)),
        "draw_pos": torch.from_numpy(np.array(base._draw_pos)),
    }


def _set_env_state(vec: Any, state: dict[str, Any]) -> None:
    base = getattr(vec, "unwrapped", vec)
    if not state:
        return
    for i, text in enumerate(state["rngs"]):
        if text is None:
            base._rngs[i] = None
        else:
            base._rngs[i] = np.random.default_rng()
            _set_numpy_state(base._rngs[i], text)
    base._draws[...] = state["draws"].numpy()
    base._draw_pos[...] = state["draw_pos"].numpy()


def capture(agent: Any, loop: dict[str, Any]) -> dict[str, Any]:
    """The agent's resumable state (plain data and tensors) with the loop's ``loop`` values."""
    torch_rngs, numpy_rngs, envs = {}, {}, {}
    for name, value in sorted(vars(agent).items()):
        if isinstance(value, torch.Generator):
            torch_rngs[name] = value.get_state()
        elif isinstance(value, np.random.Generator):
            numpy_rngs[name] = _numpy_state(value)
        elif hasattr(value, "_rngs") or hasattr(getattr(value, "unwrapped", None), "_rngs"):
            envs[name] = _env_state(value)
    return {
        "counters": {k: int(getattr(agent, k)) for k in COUNTERS},
        "torch_rng": torch.get_rng_state(),
        "torch_generators": torch_rngs,
        "numpy_generators": numpy_rngs,
        "envs": envs,
        "first_loss": agent.guard.first_loss,
        "loop": loop,
    }


def restore(agent: Any, state: dict[str, Any], optimizer_state: dict[str, Any] | None) -> None:
    """Load what :func:`capture` returned (and the optimizer's state) into a rebuilt agent."""
    for name, value in state["counters"].items():
        setattr(agent, name, value)
    torch.set_rng_state(state["torch_rng"])
    for name, value in state["torch_generators"].items():
        getattr(agent, name).set_state(value)
    for name, text in state["numpy_generators"].items():
        _set_numpy_state(getattr(agent, name), text)
    for name, env_state in state["envs"].items():
        _set_env_state(getattr(agent, name), env_state)
    agent.guard.first_loss = state["first_loss"]
    if optimizer_state is not None:
        agent.optimizer.load_state_dict(optimizer_state)

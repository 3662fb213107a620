"""Checkpoints: config, weights, optimizer state and the tokenizer vocabulary in one file.

Loaded with ``torch.load(weights_only=True)``: the file holds only tensors and plain data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .policies import GRUConfig, Policy, PolicyConfig, TransformerConfig, build_policy

FORMAT_VERSION = 1
POLICY_CONFIGS = {"GRUConfig": GRUConfig, "TransformerConfig": TransformerConfig}


class VocabularyMismatchError(ValueError):
    """A checkpoint was loaded against an env whose tokenizer has a different vocabulary."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        policy: the rebuilt policy with its weights (on CPU).
        policy_config: its config.
        agent: agent name ("reinforce", "supervised").
        agent_config: the agent config as a dict.
        optimizer_state: ``optimizer.state_dict()`` (or None).
        vocab: token -> id of the tokenizer the policy was trained with.
        env_kwargs: the env keyword arguments that were plain data.
        iteration: updates done.
    """

    policy: Policy
    policy_config: PolicyConfig
    agent: str
    agent_config: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    vocab: dict[str, int]
    env_kwargs: dict[str, Any]
    iteration: int


def _as_dict(config: Any) -> dict[str, Any]:
    """A config dataclass (or dict) as plain data: ``weights_only`` loading accepts nothing else."""
    if config is None:
        return {}
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {k: v for k, v in data.items() if _plain(v)}


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def save_checkpoint(
    path: str | Path,
    *,
    policy: Policy,
    vocab: dict[str, int],
    agent: str = "",
    agent_config: Any = None,
    optimizer: torch.optim.Optimizer | None = None,
    env_kwargs: dict[str, Any] | None = None,
    iteration: int = 0,
) -> None:
    """Write a checkpoint; env kwargs that are not plain data (callables, Task objects) are
    left out, since ``weights_only`` loading cannot rebuild them.

    Example:
        >>> vocab = env.unwrapped.tokenizer.vocab
        >>> save_checkpoint("run/ckpt.pt", policy=p, vocab=vocab)  # doctest: +SKIP
    """
    config = policy.config
    payload = {
        "format_version": FORMAT_VERSION,
        "policy_class": type(config).__name__,
        "policy_config": dataclasses.asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
        "agent": agent,
        "agent_config": _as_dict(agent_config),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "vocab": dict(vocab),
        "env_kwargs": {k: v for k, v in (env_kwargs or {}).items() if _plain(v)},
        "iteration": iteration,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def check_vocab(saved: dict[str, int], current: dict[str, int]) -> None:
    """Raise :class:`VocabularyMismatchError` unless the two vocabularies are identical."""
    if saved == current:
        return
    missing = sorted(set(saved) - set(current))[:5]
    extra = sorted(set(current) - set(saved))[:5]
    moved = sorted(t for t in set(saved) & set(current) if saved[t] != current[t])[:5]
    raise VocabularyMismatchError(
        f"the checkpoint's vocabulary ({len(saved)} tokens) differs from the env's "
        f"({len(current)} tokens): missing from env {missing}, new in env {extra}, "
        f"different ids {moved}; build the env with the tokenizer the policy was trained with"
    )


def load_checkpoint(path: str | Path, env: Any = None) -> Checkpoint:
    """Read a checkpoint and rebuild its policy.

    Args:
        path: file written by :func:`save_checkpoint`.
        env: optional ``TokenGen-v0`` env or vector env; its tokenizer vocabulary must match.

    Raises:
        VocabularyMismatchError: when ``env``'s vocabulary differs from the checkpoint's.
        ValueError: on an unknown format version or policy class.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint format_version={payload.get('format_version')!r}; "
            f"this code reads {FORMAT_VERSION}"
        )
    if env is not None:
        check_vocab(payload["vocab"], dict(getattr(env, "unwrapped", env).tokenizer.vocab))
    cls = POLICY_CONFIGS.get(payload["policy_class"])
    if cls is None:
        raise ValueError(f"unknown policy class {payload['policy_class']!r}")
    config = cls(**payload["policy_config"])
    policy = build_policy(config)
    policy.load_state_dict(payload["state_dict"])
    return Checkpoint(
        policy=policy,
        policy_config=config,
        agent=payload["agent"],
        agent_config=payload["agent_config"],
        optimizer_state=payload["optimizer_state"],
        vocab=payload["vocab"],
        env_kwargs=payload["env_kwargs"],
        iteration=payload["iteration"],
    )

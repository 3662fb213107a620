"""Checkpoints: config, weights, optimizer state and the tokenizer vocabulary in one file.

The file is one header line, ``tokengym-checkpoint 2 length=N sha256=HEX``, then N bytes
written by ``torch.save`` and read with ``torch.load(weights_only=True)`` (tensors and plain
data only). A save goes to a temporary file in the same folder, is fsynced, then renamed over
the old one, with SIGINT/SIGTERM held until it is done: a kill, a full disk or a second Ctrl-C
leaves the previous checkpoint whole. A load checks the length and the checksum, so a
truncated or altered file is an error naming its path, never wrong weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokengym.errors import TokenGymError

from .policies import GRUConfig, Policy, PolicyConfig, TransformerConfig, build_policy
from .signals import signals_held

FORMAT_VERSION = 2
MAGIC = b"tokengym-checkpoint"
POLICY_CONFIGS = {"GRUConfig": GRUConfig, "TransformerConfig": TransformerConfig}


class CheckpointError(TokenGymError, ValueError):
    """A checkpoint file that is missing, truncated, altered or not a checkpoint."""


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
        train_state: what ``--resume`` restores beyond the weights (RNG states, counters,
            the training loop's own), or None.
    """

    policy: Policy
    policy_config: PolicyConfig
    agent: str
    agent_config: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    vocab: dict[str, int]
    env_kwargs: dict[str, Any]
    iteration: int
    train_state: dict[str, Any] | None = None


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
    train_state: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically; env kwargs that are not plain data (callables, Task
    objects) are left out, since ``weights_only`` loading cannot rebuild them.

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
        "train_state": train_state,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(Path(path), framed(buffer.getvalue()))


def framed(body: bytes) -> bytes:
    """``body`` behind the header line that :func:`unframe` checks."""
    digest = hashlib.sha256(body).hexdigest()
    return MAGIC + f" {FORMAT_VERSION} length={len(body)} sha256={digest}\n".encode() + body


def unframe(data: bytes, path: Path) -> bytes:
    """The torch bytes of a checkpoint file, after its length and checksum are checked."""
    head, newline, body = data.partition(b"\n")
    fields = head.split(b" ")
    if not newline or len(fields) != 4 or fields[0] != MAGIC:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a tokengym checkpoint (no header line; "
            f"{len(data)} bytes): expected a checkpoint.pt written by tokengym"
        )
    version = fields[1].decode(errors="replace")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format_version={version!r}; "
            f"this code reads {FORMAT_VERSION}"
        )
    length = int(fields[2].removeprefix(b"length="))
    if len(body) != length:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or extended: {len(body)} bytes after the "
            f"header, expected {length} (an interrupted copy or a full disk?)"
        )
    digest = fields[3].removeprefix(b"sha256=").decode(errors="replace")
    if hashlib.sha256(body).hexdigest() != digest:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt: its sha256 differs from the one in its "
            f"header (bytes changed after it was written)"
        )
    return body


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` or leave it as it was: a temporary file in the same folder,
    fsynced, renamed over it, the folder fsynced; SIGINT/SIGTERM wait until it is done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with signals_held():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
        CheckpointError: when the file is missing, truncated, altered or not a checkpoint
            (the message names the path).
        ValueError: on an unknown policy class.
    """
    payload = read_payload(path)
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
        train_state=payload.get("train_state"),
    )


def read_payload(path: str | Path) -> dict[str, Any]:
    """The checked contents of a checkpoint file as plain data and tensors (no policy built)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {e}") from e
    body = unframe(data, path)
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as e:  # a checksum-valid file torch cannot read: another program's
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read by torch: {e}") from e
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} holds no tokengym checkpoint payload")
    return payload

"""Construction-time checks of a :class:`TrainConfig` that go beyond one field's range.

- ``resume``: the config becomes the one in the run folder's ``config.json``; a field given
  with another value is an error (:func:`adopt_resumed`).
- Checkpoint cadence, the lr bound (``divergence.MAX_LR``) and a batch whose gradient is
  identically 0 (:func:`check_run_fields`).
- Memory: a batch (or SB3 ``num_envs``) whose estimated memory exceeds this machine's
  (:func:`estimate_bytes`, a rough upper-bound model documented there).

Functions take the config as ``Any``: this module sits below ``config.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from tokengym.errors import ConfigError
from tokengym.validation import check_int, check_number

from .divergence import MAX_LR

# Fields a resumed run may change: where and how it runs, how long, how often it saves.
RESUME_FREE = ("resume", "out", "overwrite", "progress", "threads", "device", "track")
RESUME_FREE += ("iterations", "checkpoint_every", "checkpoint_minutes")
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
# SB3: bytes of one env object and its buffers in DummyVecEnv/SubprocVecEnv (a rough bound).
SB3_ENV_BYTES = 256 * 1024


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def adopt_resumed(config: Any) -> None:
    """Replace ``config``'s fields by those of ``config.resume``'s ``config.json``.

    A field left at its default takes the run's value; one given with a value other than the
    run's is an error, except :data:`RESUME_FREE` (``iterations`` extends the run).
    """
    folder = Path(config.resume)
    path = folder / CONFIG_FILE
    if not path.is_file() or not (folder / CHECKPOINT_FILE).is_file():
        missing = CONFIG_FILE if not path.is_file() else CHECKPOINT_FILE
        raise ConfigError(
            f"resume={config.resume!r} is invalid; it has no {missing} (expected the folder of a "
            f"run of a custom agent that saved a checkpoint)"
        )
    saved = json.loads(path.read_text())
    if config.out is not None and Path(config.out) != folder:
        raise ConfigError(
            f"out={config.out!r} is invalid with resume={config.resume!r}; a resumed run "
            f"continues in its own folder (leave out unset)"
        )
    conflicts = []
    for f in dataclasses.fields(config):
        if f.name not in saved:
            continue
        mine, default = _plain(getattr(config, f.name)), _plain(_default(f))
        if f.name in RESUME_FREE:
            if mine == default and f.name not in ("resume", "out"):
                object.__setattr__(config, f.name, _from_plain(f, saved[f.name]))
            continue
        if mine != default and mine != saved[f.name]:
            conflicts.append(
                f"{f.name}={getattr(config, f.name)!r} (the run has {saved[f.name]!r})"
            )
        object.__setattr__(config, f.name, _from_plain(f, saved[f.name]))
    if conflicts:
        raise ConfigError(
            f"resume={config.resume!r} is invalid with {'; '.join(conflicts)}: a resumed run keeps "
            f"its config.json; leave these unset, or start a new run"
        )
    object.__setattr__(config, "out", str(folder))


def _from_plain(f: dataclasses.Field, value: Any) -> Any:
    """A ``config.json`` value as the field holds it (JSON has lists where fields hold tuples)."""
    if isinstance(value, list) and isinstance(_default(f), tuple):
        return tuple(value)
    return value


def check_run_fields(config: Any) -> None:
    """Checkpoint cadence, the lr's upper bound, and batches whose gradient is always 0."""
    if config.checkpoint_every is not None:
        check_int("checkpoint_every", config.checkpoint_every, 1)
    if config.checkpoint_minutes is not None:
        check_number("checkpoint_minutes", config.checkpoint_minutes, low=0.0, low_open=True)
    if config.lr > MAX_LR:
        raise ConfigError(
            f"lr={config.lr!r} is invalid; expected at most {MAX_LR} (Adam moves each weight by "
            f"about lr per update: a larger lr only diverges)"
        )
    if config.agent == "reinforce" and config.batch_size == 1:
        zero = {"baseline": "mean"} if config.baseline == "mean" else {}
        if config.normalize_advantages:
            zero = {"normalize_advantages": True}
        if zero:
            ((name, value),) = zero.items()
            raise ConfigError(
                f"batch_size=1 is invalid with {name}={value!r}; the advantage of a single "
                f"episode minus the batch mean (or standardised) is 0, so the gradient is "
                f"identically 0: use batch_size >= 2, or baseline='none'"
            )


def machine_bytes() -> int:
    """This machine's physical memory in bytes (0 where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def estimate_bytes(config: Any, env: Any) -> int:
    """A rough upper bound on the memory of one update of ``config`` on ``env`` (unwrapped).

    Custom agents: per episode (reinforce, dpo completions) or example (supervised), its
    rollout tensors (L tokens, T actions/rewards/valid as int64, T x V masks) and the forward
    and backward pass over L positions (hidden activations 8 x width x layers floats, logits
    and their log-softmax and gradient 3 x V floats). SB3 agents: ``num_envs`` env objects
    (:data:`SB3_ENV_BYTES` each) and a rollout buffer of ``n_steps`` (default 2048) float32
    observations and V-long masks per env.
    """
    length, horizon, vocab = env.observation_length, env.max_new_tokens, env.tokenizer.vocab_size
    if config.is_sb3:
        n_steps = int(dict(config.sb3_kwargs).get("n_steps", 2048))
        per_env = SB3_ENV_BYTES + n_steps * (4 * length + vocab + 32)
        return config.num_envs * per_env
    episodes = config.batch_size * (config.group_size if config.agent == "dpo" else 1)
    rollout = 8 * (length + 4 * horizon) + horizon * vocab
    forward = 4 * length * (8 * config.width * config.layers + 3 * vocab)
    return episodes * (rollout + forward)


def check_memory(config: Any, env: Any) -> None:
    """Reject a batch or ``num_envs`` whose :func:`estimate_bytes` exceeds this machine's."""
    total = machine_bytes()
    need = estimate_bytes(config, env)
    if total and need > total:
        name = "num_envs" if config.is_sb3 else "batch_size"
        raise ConfigError(
            f"{name}={getattr(config, name)!r} is invalid; one update needs about "
            f"{need / 2**30:.1f} GiB (estimate) and this machine has {total / 2**30:.1f} GiB: "
            f"use a smaller {name}"
        )

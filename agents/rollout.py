"""Batched rollouts over the native vector env: one policy call per token for the whole batch.

Every env runs exactly one episode per rollout, from an explicit ``reset`` that pins its prompt,
until all of them have ended. After an env ends, the vector env (autoreset mode NEXT_STEP) spends
its next step on a reset and then starts a new episode; those steps are excluded with ``valid``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .policies import Policy, masked_logits


@dataclass
class Rollout:
    """One episode per row, padded to the env's ``max_new_tokens`` T.

    Attributes:
        tokens: (B, L) int64 reset observations with the sampled actions written after SEP.
        start: (B,) int64 SEP position; action t is predicted from position ``start + t``.
        actions: (B, T) int64 sampled actions (0 past the end).
        masks: (B, T, V) bool action masks the actions were sampled under: the env's mask is
            a constant, read once at reset, so this is a broadcast view of one (B, V) mask.
        rewards: (B, T) env per-step rewards, 0 past the end.
        valid: (B, T) bool, True on the episode's real steps.
        sequence_reward: (B,) the episode's sequence reward R.
        success: (B,) bool, R >= the env's success threshold.
        prompt_index: (B,) int64 prompt of each row.
        env_seconds: wall time spent inside the env's reset and step.
    """

    tokens: torch.Tensor
    start: torch.Tensor
    actions: torch.Tensor
    masks: torch.Tensor
    rewards: torch.Tensor
    valid: torch.Tensor
    sequence_reward: torch.Tensor
    success: torch.Tensor
    prompt_index: torch.Tensor
    env_seconds: float = 0.0

    @property
    def lengths(self) -> torch.Tensor:
        """(B,) number of generated tokens per episode (EOS included)."""
        return self.valid.sum(1)


def sep_positions(obs: np.ndarray, sep_id: int) -> np.ndarray:
    """Index of the first SEP in each row of (N, L) observations."""
    return (obs == sep_id).argmax(1)


def _final(infos: dict[str, Any], key: str, ended: np.ndarray) -> np.ndarray | None:
    """Values of a final-info key for the envs in ``ended``, or None if the env did not send it."""
    if key not in infos:
        return None
    return np.asarray(infos[key])[ended]


@torch.no_grad()
def collect_rollout(
    vec: Any,
    policy: Policy,
    prompt_index: np.ndarray,
    generator: torch.Generator | None = None,
    *,
    greedy: bool = False,
    seed: int | None = None,
    dtype: torch.dtype = torch.float32,
    prefix: list[list[int]] | None = None,
) -> Rollout:
    """Run one episode in every env of ``vec`` with ``policy`` and return the padded batch.

    Args:
        vec: a native TokenGen vector env (``gym.make_vec("TokenGen-v0", ...)``).
        policy: the network; runs on the device of its parameters.
        prompt_index: (num_envs,) int prompt pinned to each env.
        generator: torch generator on the policy's device for sampling (ignored when greedy).
        greedy: take the argmax action instead of sampling.
        seed: passed to ``vec.reset`` (None keeps the env's RNG stream).
        dtype: float dtype of the returned rewards.
        prefix: per env, completion tokens already generated (the env's prefix reset); the
            rollout then holds the continuation only, and ``start`` is each prefix's last
            position (VinePPO's Monte Carlo values: read its rewards, valid, sequence_reward).

    Returns:
        The :class:`Rollout`.
    """
    device = next(policy.parameters()).device
    base = getattr(vec, "unwrapped", vec)
    tok = base.tokenizer
    n, horizon = len(prompt_index), int(base.max_new_tokens)
    env_seconds = 0.0

    t0 = time.perf_counter()
    options: dict[str, Any] = {"prompt_index": np.asarray(prompt_index)}
    if prefix is not None:
        options["prefix"] = prefix
    obs, infos = vec.reset(seed=seed, options=options)
    env_seconds += time.perf_counter() - t0
    start_np = sep_positions(obs, tok.sep_id)
    if prefix is not None:  # decisions continue after the prefix
        start_np = start_np + np.array([len(p) for p in prefix], dtype=start_np.dtype)
    tokens = torch.from_numpy(obs).to(device).clone()  # (B, L); actions are written in
    start = torch.from_numpy(start_np).to(device)  # (B,)
    rows = torch.arange(n, device=device)
    last = tokens.shape[1] - 1

    # The allowed-token set is fixed for an env: one host-to-device copy per rollout, not per token.
    mask = torch.from_numpy(np.array(infos["action_mask"])).to(device).bool()  # (B, V), read-only
    mask = mask | ~mask.any(-1, keepdim=True)  # a row without allowed tokens samples from all
    actions = torch.zeros(n, horizon, dtype=torch.long, device=device)
    rewards = np.zeros((n, horizon))
    valid = np.zeros((n, horizon), dtype=bool)
    seq_reward = np.zeros(n)
    success = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)

    feats, state = policy.prefill(tokens, start)  # (B, D)
    for t in range(horizon):
        logits = masked_logits(policy.logits(feats), mask)  # (B, V)
        if greedy:
            action = logits.argmax(-1)
        else:
            action = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        actions[:, t] = action
        # Rows that ended early stop at the sequence's end (prefix rows have less budget left).
        pos = start + 1 + t if prefix is None else (start + 1 + t).clamp(max=last)
        tokens[rows, pos] = action

        t0 = time.perf_counter()
        obs, reward, term, trunc, infos = vec.step(action.cpu().numpy())  # the token's one sync
        env_seconds += time.perf_counter() - t0
        valid[:, t] = ~done
        rewards[:, t] = np.where(done, 0.0, reward)
        ended = (term | trunc) & ~done
        if ended.any():
            r = _final(infos, "sequence_reward", ended)
            s = _final(infos, "success", ended)
            seq_reward[ended] = r if r is not None else 0.0
            success[ended] = s if s is not None else False
        done |= term | trunc
        if done.all():
            break
        feats, state = policy.step(action, pos, state)

    valid_t = torch.from_numpy(valid).to(device)
    # Actions sampled after an env ended were ignored by it: restore PAD there, as in its obs.
    cols = torch.arange(tokens.shape[1], device=device)
    tokens[cols[None, :] > start[:, None] + valid_t.sum(1, keepdim=True)] = tok.pad_id
    return Rollout(
        tokens=tokens,
        start=start,
        actions=actions * valid_t,
        masks=mask[:, None].expand(-1, horizon, -1),  # (B, T, V) view, no copy
        rewards=torch.from_numpy(rewards).to(device=device, dtype=dtype),
        valid=valid_t,
        sequence_reward=torch.from_numpy(seq_reward).to(device=device, dtype=dtype),
        success=torch.from_numpy(success).to(device),
        prompt_index=torch.as_tensor(np.asarray(prompt_index), dtype=torch.long, device=device),
        env_seconds=env_seconds,
    )


def rollout_metrics(batch: Rollout, start: float, rolled: float, end: float) -> dict[str, float]:
    """Episode statistics and time shares of an iteration that sampled ``batch``.

    Args:
        batch: the iteration's rollout.
        start, rolled, end: ``time.perf_counter()`` before the rollout, after it (and after
            whatever prepares the update), and after the update.

    Returns:
        ``charts/success``, ``charts/sequence_reward`` (R), ``charts/episodic_return`` (the sum
        of the env's rewards), ``charts/episode_length`` and the ``perf/*`` time shares.
    """
    n_tokens = int(batch.valid.sum())
    seconds = end - start
    return {
        "charts/success": float(batch.success.float().mean()),
        "charts/sequence_reward": float(batch.sequence_reward.mean()),
        "charts/episodic_return": float(batch.rewards.sum(1).mean()),
        "charts/episode_length": n_tokens / batch.valid.shape[0],
        "perf/seconds": seconds,
        "perf/tokens_per_s": n_tokens / seconds,
        "perf/rollout_share": (rolled - start - batch.env_seconds) / seconds,
        "perf/env_share": batch.env_seconds / seconds,
        "perf/update_share": (end - rolled) / seconds,
    }

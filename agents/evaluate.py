"""One evaluation for every agent: success rate and mean sequence reward on fixed prompts.

Any agent plugs in through ``act(obs_batch, action_mask_batch) -> actions`` (numpy in, numpy
out), so torch policies and Stable-Baselines3 models are scored by the same loop. A torch
:class:`Policy` is decoded incrementally instead (``prefill`` then one ``step`` per token, the
rollout's loop), which gives the same actions without recomputing the prefix for every token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .policies import Policy, masked_logits
from .rollout import collect_rollout

Act = Callable[[np.ndarray, np.ndarray], np.ndarray]
EVAL_NUM_ENVS = 256  # the largest vector env an evaluation steps


@dataclass(frozen=True)
class EvalResult:
    """Scores of one evaluation.

    Attributes:
        success_rate: share of episodes with ``success`` in their final info.
        mean_reward: mean sequence reward R.
        episodes: number of episodes (one per evaluated prompt).
    """

    success_rate: float
    mean_reward: float
    episodes: int


def policy_act(policy: Policy, pad_id: int, *, greedy: bool = True, seed: int = 0) -> Act:
    """Wrap a policy as a stateless ``act`` that reads whole observations.

    The next token is predicted at each row's last non-PAD position (the env's layout has no
    PAD before the generated tokens). Sampling draws from a generator seeded with ``seed``.

    Args:
        policy: the network (its device is used).
        pad_id: the tokenizer's PAD id.
        greedy: argmax instead of sampling.
        seed: seed of the sampling generator.

    Returns:
        The ``act`` callable.
    """
    device = next(policy.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)

    @torch.no_grad()
    def act(obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        tokens = torch.as_tensor(obs, device=device)  # (N, L)
        mask = torch.as_tensor(np.array(action_mask), device=device).bool()  # (N, V); a copy:
        # the env's mask is read-only, and torch warns on a non-writable array
        last = (tokens != pad_id).sum(1) - 1  # (N,)
        feats = policy.features(tokens)[torch.arange(len(tokens), device=device), last]
        logits = masked_logits(policy.logits(feats), mask | ~mask.any(-1, keepdim=True))
        if greedy:
            return logits.argmax(-1).cpu().numpy()
        probs = logits.softmax(-1)  # (N, V)
        return torch.multinomial(probs, 1, generator=generator)[:, 0].cpu().numpy()

    return act


def evaluate(
    act: Act | Policy,
    env_kwargs: dict,
    *,
    split: str = "test",
    greedy: bool = True,
    num_prompts: int | None = None,
    num_envs: int = EVAL_NUM_ENVS,
    seed: int = 0,
) -> EvalResult:
    """Run one episode on each of the first ``num_prompts`` prompts of ``split``.

    Args:
        act: ``act(obs (N, L) int64, action_mask (N, V) int8) -> actions (N,)``, or a
            :class:`Policy` (decoded incrementally; the same actions as :func:`policy_act`).
        env_kwargs: keyword arguments of ``gym.make_vec("TokenGen-v0", ...)`` (split excluded).
        split: "test" or "train".
        greedy: only used when ``act`` is a Policy: argmax or seeded sampling.
        num_prompts: evaluate the first this many prompts (None: all of the split).
        num_envs: largest vector env to use.
        seed: env reset seed and, for a sampling Policy, the sampler's seed.

    Returns:
        The :class:`EvalResult`.

    Example:
        >>> evaluate(policy, {"task": "copy"}).success_rate  # doctest: +SKIP
        0.97
    """
    vec, total = _eval_env(env_kwargs, split, num_prompts, num_envs)
    try:
        return _evaluate_on(vec, total, act, greedy=greedy, seed=seed)
    finally:
        vec.close()


def _eval_env(
    env_kwargs: dict, split: str, num_prompts: int | None, num_envs: int
) -> tuple[gym.vector.VectorEnv, int]:
    """The vector env of an evaluation and the number of prompts it scores."""
    kwargs = {**env_kwargs, "split": split}
    probe = gym.make("TokenGen-v0", **kwargs).unwrapped
    total = probe.num_prompts if num_prompts is None else min(num_prompts, probe.num_prompts)
    return gym.make_vec("TokenGen-v0", num_envs=min(num_envs, total), **kwargs), total


def _evaluate_on(
    vec: gym.vector.VectorEnv, total: int, act: Act | Policy, *, greedy: bool, seed: int
) -> EvalResult:
    """One episode on each of the first `total` prompts of `vec`'s split (see `evaluate`)."""
    run_chunk = _run_chunk
    if isinstance(act, Policy):
        run_chunk = _policy_chunks(act, greedy=greedy, seed=seed)
    n = vec.num_envs
    rewards, successes = [], []
    for first in range(0, total, n):
        count = min(n, total - first)
        index = np.minimum(np.arange(first, first + n), total - 1)  # spare envs repeat a prompt
        r, s = run_chunk(vec, act, index, seed)
        rewards.append(r[:count])
        successes.append(s[:count])
    reward, success = np.concatenate(rewards), np.concatenate(successes)
    return EvalResult(float(success.mean()), float(reward.mean()), len(success))


def _run_chunk(
    vec: gym.vector.VectorEnv, act: Act, index: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One episode per env from pinned prompts; the sequence reward and success of each."""
    obs, infos = vec.reset(seed=seed, options={"prompt_index": index})
    n = len(index)
    reward, success = np.zeros(n), np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    while not done.all():
        actions = np.asarray(act(obs, infos["action_mask"]), dtype=np.int64)
        obs, _, term, trunc, infos = vec.step(actions)
        ended = (term | trunc) & ~done
        if ended.any():
            reward[ended] = np.asarray(infos["sequence_reward"])[ended]
            success[ended] = np.asarray(infos["success"])[ended]
        done |= term | trunc
    return reward, success


def _policy_chunks(policy: Policy, *, greedy: bool, seed: int) -> Callable[..., Any]:
    """``_run_chunk`` for a policy: the rollout's incremental decoding, one sampler per call of
    :func:`evaluate` (seeded with ``seed``, as :func:`policy_act`'s)."""
    device = next(policy.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)

    def run(
        vec: gym.vector.VectorEnv, _act: Any, index: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        batch = collect_rollout(
            vec, policy, index, generator, greedy=greedy, seed=seed, dtype=torch.float64
        )
        return batch.sequence_reward.cpu().numpy(), batch.success.cpu().numpy()

    return run


HELDOUT = "eval/heldout_"  # eval/heldout_greedy_success...: the test split, with eval_heldout


def evaluate_policy(
    policy: Policy,
    env_kwargs: dict,
    *,
    split: str = "test",
    num_prompts: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Greedy and sampled scores on ``split``, as namespaced metrics (``eval/greedy_success``):
    each what :func:`evaluate` gives, on one env built for both."""
    out = {}
    vec, total = _eval_env(env_kwargs, split, num_prompts, EVAL_NUM_ENVS)
    try:
        for mode in ("greedy", "sampled"):
            result = _evaluate_on(vec, total, policy, greedy=mode == "greedy", seed=seed)
            out[f"eval/{mode}_success"] = result.success_rate
            out[f"eval/{mode}_reward"] = result.mean_reward
    finally:
        vec.close()
    return out


def reached(success: float | None, target: float | None) -> bool:
    """True once a greedy success is at or above ``target`` (never when either is None).

    The one stopping rule of every agent's training loop (and of the SB3 callback).

    Example:
        >>> reached(0.95, 0.9), reached(0.95, None), reached(None, 0.9)
        (True, False, False)
    """
    return target is not None and success is not None and success >= target

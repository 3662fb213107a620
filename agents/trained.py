"""Use what you trained: load a run folder as a policy and generate completions with it.

``train(config)`` returns a :class:`TrainResult`: the final metrics (it reads like the dict it
used to be) plus the run folder and why the run stopped. :func:`load_policy` turns a run folder
(custom agents' ``checkpoint.pt`` or SB3's ``model.zip``) back into a policy whose
:meth:`TrainedPolicy.generate` maps prompts to completions, greedy by default.

Example:
    >>> from tokengym.agents import TrainConfig, load_policy, train
    >>> result = train(TrainConfig(agent="reinforce", task="target", target_success=0.9))
    >>> result.run_dir, result.stopped  # doctest: +SKIP
    (PosixPath('runs/reinforce-target-20261201-120000'), 'target')
    >>> policy = load_policy(result.run_dir)  # or load_policy("runs/reinforce-target-...")
    >>> policy.generate(["0"])  # doctest: +SKIP
    ['1']
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .checkpoint import load_checkpoint
from .device import resolve_device
from .evaluate import Act, EvalResult, evaluate, policy_act
from .policies import Policy

STOP_REASONS = ("target", "budget", "interrupted")


@dataclass(frozen=True)
class TrainResult(Mapping[str, float]):
    """What ``train(config)`` returns: the final metrics, the run folder, why the run stopped.

    It is a read-only mapping of the final metrics (``result["eval/greedy_success"]``), so code
    that treated ``train``'s return value as a dict keeps working.

    Attributes:
        metrics: the final metrics (the last evaluation, ``charts/episodes``, ...).
        run_dir: the run folder (``config.json``, ``metrics.jsonl``, the weights).
        stopped: "target" (greedy success reached ``target_success``) or "budget".
    """

    metrics: Mapping[str, float]
    run_dir: Path
    stopped: str = "budget"

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def load_policy(self, device: str | None = None) -> TrainedPolicy:
        """:func:`load_policy` of this run's folder."""
        return load_policy(self.run_dir, device=device)


def stop_reason(config: Any, success: float | None) -> tuple[str, str]:
    """Why a finished run stopped: ("target", "target 0.9 reached") or ("budget", "budget spent:
    600 iterations"), from its last greedy success; ``config`` is its TrainConfig."""
    target = config.target_success
    if target is not None and success is not None and success >= target:
        return "target", f"target {target:g} reached"
    unit = "env steps" if config.is_sb3 else "iterations"
    return "budget", f"budget spent: {config.budget} {unit}"


@dataclass
class TrainedPolicy:
    """A trained policy with the env it was trained on; made by :func:`load_policy`.

    Attributes:
        agent: the agent that trained it ("reinforce", "maskable_ppo", ...).
        env_kwargs: the ``gym.make("TokenGen-v0", ...)`` arguments of its training env.
        env: that env (unwrapped): its tokenizer, prompts and limits.
        model: the torch :class:`Policy` (custom agents) or the SB3 model.
        device: where the model runs.
    """

    agent: str
    env_kwargs: dict[str, Any]
    env: Any
    model: Any
    device: torch.device

    def act(self, *, greedy: bool = True, seed: int = 0) -> Act:
        """The ``act(obs (N, L), action_mask (N, V)) -> actions (N,)`` of this policy, for
        :func:`tokengym.agents.evaluate` or a loop of your own."""
        if isinstance(self.model, Policy):
            return policy_act(self.model, self.env.tokenizer.pad_id, greedy=greedy, seed=seed)
        from .sb3.act import sb3_act  # needs the sb3 extra

        return sb3_act(self.model, deterministic=greedy)  # samples with torch's global RNG

    @overload
    def generate(
        self,
        prompts: str,
        *,
        greedy: bool = ...,
        seed: int = ...,
        max_new_tokens: int | None = ...,
    ) -> str: ...
    @overload
    def generate(
        self,
        prompts: Sequence[str],
        *,
        greedy: bool = ...,
        seed: int = ...,
        max_new_tokens: int | None = ...,
    ) -> list[str]: ...
    def generate(
        self,
        prompts: str | Sequence[str],
        *,
        greedy: bool = True,
        seed: int = 0,
        max_new_tokens: int | None = None,
    ) -> str | list[str]:
        """Complete each prompt: token by token until EOS, a masked token or the budget.

        The observation is the env's layout, ``[BOS] prompt [SEP] generated``, so a prompt
        is scored as in training; it may be any text the tokenizer encodes.

        Args:
            prompts: one prompt (returns one completion) or a sequence of them (returns a list).
            greedy: argmax tokens (the default, as the evaluation scores); False samples.
            seed: seed of the sampling (the same seed gives the same completions).
            max_new_tokens: generation budget (default: the env's ``max_new_tokens``).

        Returns:
            The completions' text, EOS excluded.

        Example:
            >>> load_policy("runs/reinforce-copy").generate(["abc", "ba"])  # doctest: +SKIP
            ['abc', 'ba']
        """
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)
        budget = self.env.max_new_tokens if max_new_tokens is None else max_new_tokens
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"max_new_tokens={budget!r} is invalid; expected an int >= 1")
        if not texts:
            return []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # SB3 models sample with the global generator
            completions = self._generate(texts, budget, greedy, seed)
        return completions[0] if single else completions

    def _generate(self, texts: list[str], budget: int, greedy: bool, seed: int) -> list[str]:
        tok = self.env.tokenizer
        encoded = [tok.encode(t) for t in texts]
        longest = max(len(ids) for ids in encoded)
        # The trained width, or wider for longer prompts (a transformer's max_len still binds).
        width = max(self.env.observation_length, 2 + longest + budget)
        obs = np.full((len(texts), width), tok.pad_id, dtype=np.int64)  # (N, L)
        for row, ids in zip(obs, encoded, strict=True):
            row[: len(ids) + 2] = [tok.bos_id, *ids, tok.sep_id]
        allowed = np.asarray(self.env.problem.action_mask).astype(bool)  # (V,)
        masks = np.tile(allowed.astype(np.int8), (len(texts), 1))  # (N, V)
        act = self.act(greedy=greedy, seed=seed)
        position = np.array([len(ids) + 2 for ids in encoded])  # (N,) next generated slot
        generated: list[list[int]] = [[] for _ in texts]
        running = np.ones(len(texts), dtype=bool)
        for _ in range(budget):
            actions = np.asarray(act(obs, masks), dtype=np.int64)  # (N,)
            for i in np.flatnonzero(running):
                token = int(actions[i])
                if token == tok.eos_id or not allowed[token]:
                    running[i] = False
                    continue
                obs[i, position[i]] = token
                position[i] += 1
                generated[i].append(token)
            if not running.any():
                break
        return [tok.decode(ids) for ids in generated]

    def evaluate(self, split: str = "train", num_prompts: int | None = None) -> EvalResult:
        """Greedy success and mean reward on ``split`` of the training env (one episode per
        prompt), as the training loop scores it."""
        return evaluate(self.act(), self.env_kwargs, split=split, num_prompts=num_prompts)


def run_env_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``gym.make`` arguments of a run, from its ``config.json`` (as ``make_kwargs``)."""
    kwargs = dict(config.get("env_kwargs") or {})
    if config.get("task") is not None:
        kwargs["task"] = config["task"]
    if config.get("tokenizer") is not None:
        kwargs["tokenizer"] = config["tokenizer"]
    kwargs.update(reward_mode=config["reward_mode"], gamma=config["gamma"])
    return kwargs


def load_policy(run_dir: str | Path, device: str | None = None) -> TrainedPolicy:
    """Load the policy a run folder holds, with the env it was trained on.

    Args:
        run_dir: a folder written by ``train()`` / ``tokengym-train`` (its ``config.json`` and
            ``checkpoint.pt`` or, for SB3 agents, ``model.zip``).
        device: "cpu", "cuda", ... (default: the run's ``device``, "auto" picking CUDA when
            present).

    Returns:
        The :class:`TrainedPolicy`; ``generate(prompts)`` gives completions.

    Raises:
        FileNotFoundError: when the folder has no config.json or no weights.

    Example:
        >>> policy = load_policy("runs/reinforce-copy-20261201-120000", device="cpu")
        >>> policy.generate("abc")  # doctest: +SKIP
        'abc'
    """
    run_dir = Path(run_dir)
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run folder: it has no config.json")
    config = json.loads(config_file.read_text())
    env_kwargs = run_env_kwargs(config)
    env = gym.make("TokenGen-v0", **env_kwargs).unwrapped
    resolved = resolve_device(device if device is not None else config.get("device", "auto"))
    agent = config["agent"]
    if (run_dir / "checkpoint.pt").is_file():
        model: Any = load_checkpoint(run_dir / "checkpoint.pt", env).policy.to(resolved).eval()
    elif (run_dir / "model.zip").is_file():
        from .sb3.train import load_model  # needs the sb3 extra

        model = load_model(run_dir / "model.zip", agent, device=resolved)
    else:
        raise FileNotFoundError(
            f"{str(run_dir)!r} has no checkpoint.pt or model.zip (was it run with "
            f"--no-checkpoint, or interrupted before its first save?)"
        )
    return TrainedPolicy(agent, env_kwargs, env, model, resolved)

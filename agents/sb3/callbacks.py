"""An SB3 callback that writes the project's metric lines, evaluates, and shows progress."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from ..evaluate import EvalResult, reached
from ..signals import StopRequest

Sink = Callable[[int, dict[str, float]], None]  # MetricsWriter.write(step, metrics)
Evaluator = Callable[[], EvalResult]

# SB3 logger prefixes -> the project's namespaces ("train/value_loss" -> "losses/value_loss").
RENAMES = {"train/": "losses/", "rollout/exploration_rate": "charts/exploration_rate"}


class MetricsCallback(BaseCallback):
    """Episode statistics, SB3's losses and periodic greedy evaluations as metric lines.

    Every ``log_every`` env steps (checked after each vector step) one line goes to
    ``sink(step, metrics)``, step being SB3's ``num_timesteps`` (env steps = tokens):
    ``charts/env_steps``, ``charts/tokens``, ``charts/episodes``, ``charts/success``,
    ``charts/episodic_return`` and ``charts/episode_length`` (means over the episodes ended
    since the previous line), ``charts/train_seconds`` and ``time/fps`` (evaluations excluded)
    and SB3's latest ``losses/*``. Every ``eval_every`` steps (and at the end, by the caller)
    ``evaluator()`` adds ``eval/greedy_success`` and ``eval/greedy_reward``; the first
    evaluation with success >= ``target`` is recorded, and training stops there.

    Args:
        sink: receives each metric line, e.g. ``MetricsWriter(path).write``.
        log_every: env steps between lines.
        evaluator: runs one greedy evaluation of the current model.
        eval_every: env steps between evaluations (0: only the final one, by the caller).
        target: greedy success that ends training (its first crossing is recorded; None: no
            target, train for the whole budget).
        progress: show a tqdm bar over ``total``.
        total: the run's total env steps (for the bar).
        desc: the bar's label (the agent name).
        stop: a stop request (``signals.stop_on_signals``): once a signal set it, training
            stops after the current vector step.
    """

    def __init__(
        self,
        sink: Sink,
        log_every: int,
        evaluator: Evaluator,
        eval_every: int = 0,
        target: float | None = None,
        progress: bool = False,
        total: int = 0,
        desc: str = "sb3",
        stop: StopRequest | None = None,
    ) -> None:
        super().__init__()
        self.stop = stop or StopRequest()
        self.sink, self.log_every, self.evaluator = sink, log_every, evaluator
        self.eval_every, self.target = eval_every, target
        self.progress, self.total, self.desc = progress, total, desc
        self.episodes = 0
        self.steps_to_target = math.nan
        self.episodes_to_target = math.nan
        self.last: dict[str, float] = {}
        self._success: list[float] = []
        self._returns: list[float] = []
        self._lengths: list[float] = []
        self._bar: tqdm | None = None

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self._eval_seconds = 0.0
        self._start_step = self._last_log = self._last_eval = self.num_timesteps
        if self.progress:
            self._bar = tqdm(total=self.total, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        for info, done in zip(infos, dones, strict=True):
            if done:
                self.episodes += 1
                success = float(bool(info.get("success", False)))
                self._success.append(success)
                episode = info.get("episode", {})
                self._returns.append(float(episode.get("r", np.nan)))
                self._lengths.append(float(episode.get("l", np.nan)))
        if self._bar is not None:
            self._bar.update(len(dones))
        line: dict[str, float] = {}
        if self.eval_every and self.num_timesteps - self._last_eval >= self.eval_every:
            self._last_eval = self.num_timesteps
            line.update(self.evaluate())
        if line or self.num_timesteps - self._last_log >= self.log_every:
            self._last_log = self.num_timesteps
            self.write(line)
        # False stops SB3's learn: at the target, or after a SIGINT/SIGTERM
        return math.isnan(self.episodes_to_target) and self.stop.signum is None

    def evaluate(self) -> dict[str, float]:
        """Run the evaluator now; returns its ``eval/*`` metrics and records a target crossing."""
        t0 = time.perf_counter()
        result = self.evaluator()
        self._eval_seconds += time.perf_counter() - t0
        if reached(result.success_rate, self.target) and math.isnan(self.episodes_to_target):
            self.steps_to_target = float(self.num_timesteps)
            self.episodes_to_target = float(self.episodes)
        if self._bar is not None:
            self._bar.set_postfix(success=f"{result.success_rate:.3f}")
        return {
            "eval/greedy_success": result.success_rate,
            "eval/greedy_reward": result.mean_reward,
        }

    def write(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        """Send one metric line (episode stats since the last line, losses, ``extra``)."""
        seconds = time.perf_counter() - self._t0 - self._eval_seconds
        steps = float(self.num_timesteps)
        line = {
            "charts/env_steps": steps,
            "charts/tokens": steps,
            "charts/episodes": float(self.episodes),
            "charts/train_seconds": seconds,
            "time/fps": (self.num_timesteps - self._start_step) / max(seconds, 1e-9),
        }
        if self._success:
            line["charts/success"] = float(np.mean(self._success))
            line["charts/episodic_return"] = float(np.mean(self._returns))
            line["charts/episode_length"] = float(np.mean(self._lengths))
        self._success, self._returns, self._lengths = [], [], []
        for key, value in self.model.logger.name_to_value.items():
            for old, new in RENAMES.items():
                if key.startswith(old):
                    line[new + key[len(old) :]] = float(value)
        line.update(extra or {})
        self.last = line
        self.sink(self.num_timesteps, line)
        return line

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

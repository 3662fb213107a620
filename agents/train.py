"""``train(config)``: one run of any agent on TokenGen-v0, its loop, checkpoints and resume.

The command (``tokengym-train``, ``python -m tokengym.agents.train``) is ``main``, from the
torch-free :mod:`tokengym.agents.command`, which says what a run folder receives.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
from tqdm import tqdm

import tokengym  # noqa: F401  (registers TokenGen-v0)
from tokengym.errors import ConfigError

from . import train_state
from .base import Agent
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .command import main  # the command, for python -m tokengym.agents.train
from .config import TrainConfig
from .device import resolve_device
from .divergence import DivergenceError
from .dpo import DPOAgent
from .evaluate import HELDOUT, evaluate_policy, reached
from .metrics import RunLogger
from .policies import GRUConfig, Policy, TransformerConfig, build_policy
from .reinforce import ReinforceAgent
from .run import claim_folder, cut_metrics, end_run, new_run_folder, run_folder
from .signals import StopRequest, stop_on_signals
from .supervised import SupervisedAgent
from .trained import TrainResult, stop_reason

CHECKPOINT_FILE = "checkpoint.pt"


def make_policy(config: TrainConfig, vocab_size: int, max_len: int) -> Policy:
    """A new policy as ``config`` describes it (weights seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)  # weight init
    value_head = config.agent == "reinforce" and config.baseline == "value"
    if config.policy == "gru":
        policy_config: GRUConfig | TransformerConfig = GRUConfig(
            vocab_size, hidden_size=config.width, num_layers=config.layers, value_head=value_head
        )
    else:
        policy_config = TransformerConfig(
            vocab_size,
            max_len=max_len,
            d_model=config.width,
            n_layers=config.layers,
            n_heads=config.heads,
            value_head=value_head,
        )
    return build_policy(policy_config)


def check_init_policy(config: TrainConfig, checkpoint: Checkpoint) -> None:
    """Raise ``ConfigError`` when the policy fields of ``config`` differ from ``--init``'s."""
    pc = checkpoint.policy_config
    if isinstance(pc, GRUConfig):
        theirs = {"policy": "gru", "width": pc.hidden_size, "layers": pc.num_layers}
    else:
        theirs = {"policy": "transformer", "width": pc.d_model, "layers": pc.n_layers}
        theirs["heads"] = pc.n_heads
    differ = {k: v for k, v in theirs.items() if getattr(config, k) != v}
    if differ:
        mine = ", ".join(f"{k}={getattr(config, k)!r}" for k in differ)
        held = ", ".join(f"{k}={v!r}" for k, v in differ.items())
        raise ConfigError(
            f"{mine} is invalid with init={config.init!r}, whose policy has {held}: set "
            f"{'them' if len(differ) > 1 else 'it'} to the checkpoint's (config.json records "
            f"the policy trained)"
        )


def make_agent(config: TrainConfig) -> Agent:
    """The agent of ``config`` with its policy (``--init`` checked against the vocabulary and
    the policy fields)."""
    probe = gym.make("TokenGen-v0", **config.make_kwargs()).unwrapped
    if config.init is not None:  # raises on a different vocabulary or a corrupt file
        checkpoint = load_checkpoint(config.init, probe)
        check_init_policy(config, checkpoint)
        policy = checkpoint.policy
    else:
        policy = make_policy(config, probe.tokenizer.vocab_size, probe.observation_length)
    if config.agent == "supervised":
        return SupervisedAgent(policy, config)
    if config.agent == "dpo":
        return DPOAgent(policy, config)  # reference: the initial (or --init) policy
    return ReinforceAgent(policy, config)


def train(config: TrainConfig) -> TrainResult:
    """Train one run; return its final metrics, its run folder and why it stopped.

    Args:
        config: the run; SB3 agents (ppo, a2c, dqn, maskable_ppo) included.

    Returns:
        A :class:`TrainResult`: a mapping of the final metrics (the last evaluation,
        ``eval/greedy_success`` and the rest, ``charts/episodes``, ``charts/train_seconds``, the
        updates or env steps done), with ``run_dir`` (load it with :func:`load_policy`) and
        ``stopped`` ("target" or "budget").

    Raises:
        KeyboardInterrupt: ``signals.Interrupted`` after SIGINT or SIGTERM, once the weights
            and metrics so far are saved and the final line printed, so that a script stops
            as usual.
        DivergenceError: on a non-finite loss or gradient; the last finite weights are saved.
        ConfigError: when ``config.out`` holds a run (without resume or overwrite), or
            ``--init``'s policy differs from the config's.

    Example:
        >>> result = train(TrainConfig(agent="reinforce", task="target", target_success=0.9))
        >>> result["eval/greedy_success"] >= 0.9, result.stopped
        (True, 'target')
        >>> load_policy(result.run_dir).generate(["0"])  # doctest: +SKIP
        ['1']
    """
    if config.is_sb3:
        from .sb3.train import run_sb3  # needs the sb3 extra; sets (and restores) threads

        resolve_device(config.device)  # no CUDA: an error before the run folder exists
        out = run_folder(config)
        metrics = run_sb3(config, out)
        return TrainResult(metrics, out, stop_reason(config, metrics["eval/greedy_success"])[0])
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)  # 1 unless asked: more threads spin on a loaded CPU
    try:
        return _train_custom(config)
    finally:
        torch.set_num_threads(threads)


def _train_custom(config: TrainConfig) -> TrainResult:
    out = run_folder(config)
    claim_folder(out, config)
    agent = make_agent(config)  # every start-up error comes before the folder is written
    loop: dict[str, object] = {"train_seconds": 0.0, "evaluation": {}}
    if config.resume is not None:
        loop = _resume(agent, out)
    with stop_on_signals() as stop, new_run_folder(out, config) as logger:
        saver = Saver(agent, config, out)
        final, stopped_by, aborted, error = _train_loop(agent, config, logger, stop, saver, loop)
        if config.checkpoint and not aborted:
            saver.save()  # after a divergence: the weights before the refused update
        elif config.checkpoint and not saver.path.exists():
            saver.save(resumable=False)  # stopped mid-update: weights only, no resume
    if error is not None:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise error
    stopped, words = stop_reason(config, final.get("eval/greedy_success"))
    end_run(final, out, stopped_by, stopped=words)
    return TrainResult(final, out, stopped)


def _resume(agent: Agent, out: Path) -> dict[str, object]:
    """Load ``out``'s checkpoint into the rebuilt ``agent``; returns the loop's saved values."""
    checkpoint = load_checkpoint(out / CHECKPOINT_FILE, agent.base)
    if checkpoint.train_state is None:
        raise ConfigError(
            f"resume={str(out)!r} is invalid; its checkpoint.pt has no training state (written "
            f"before resume existed, or after a second signal stopped an update): start anew"
        )
    agent.policy.load_state_dict(checkpoint.policy.state_dict())
    train_state.restore(agent, checkpoint.train_state, checkpoint.optimizer_state)
    cut_metrics(out / "metrics.jsonl", agent.iteration)
    return dict(checkpoint.train_state["loop"])


class Saver:
    """Writes ``checkpoint.pt`` every ``checkpoint_every`` updates or ``checkpoint_minutes``."""

    def __init__(self, agent: Agent, config: TrainConfig, out: Path) -> None:
        self.agent, self.config, self.path = agent, config, out / CHECKPOINT_FILE
        self.loop: dict[str, object] = {}
        self.last_iteration, self.last_time = agent.iteration, time.monotonic()

    def due(self) -> bool:
        c, done = self.config, self.agent.iteration - self.last_iteration
        if not c.checkpoint or done == 0:
            return False
        by_count = c.checkpoint_every is not None and done >= c.checkpoint_every
        minutes = (time.monotonic() - self.last_time) / 60
        return by_count or (c.checkpoint_minutes is not None and minutes >= c.checkpoint_minutes)

    def save(self, resumable: bool = True) -> None:
        agent = self.agent
        save_checkpoint(
            self.path,
            policy=agent.policy,
            vocab=agent.base.tokenizer.vocab,
            agent=agent.name,
            agent_config=self.config.to_plain(),
            optimizer=agent.optimizer,
            env_kwargs=self.config.make_kwargs(),
            iteration=agent.iteration,
            train_state=train_state.capture(agent, self.loop) if resumable else None,
        )
        self.last_iteration, self.last_time = agent.iteration, time.monotonic()


def _train_loop(
    agent: Agent,
    config: TrainConfig,
    logger: RunLogger,
    stop: StopRequest,
    saver: Saver,
    loop: dict[str, object],
) -> tuple[dict[str, float], int | None, bool, DivergenceError | None]:
    """Update, evaluate every ``eval_every``, log, save periodically; stop at the budget, the
    target, a stop signal (after the update in progress) or a divergence.

    Returns the final metrics, the stop signal (or None), whether it stopped mid-update (a
    second signal) and the divergence (or None).
    """
    env_kwargs = config.make_kwargs()
    train_seconds = float(loop["train_seconds"])  # type: ignore[arg-type]
    evaluation: dict[str, float] = dict(loop["evaluation"])  # type: ignore[call-overload]
    stopped_by: int | None = None
    aborted = False
    error: DivergenceError | None = None
    final_episodes: dict[str, float] = {}
    target = "" if config.target_success is None else f" to {config.target_success:g}"
    bar = tqdm(
        total=config.iterations,
        initial=agent.iteration,
        disable=not config.progress,
        desc=config.agent + target,
    )
    shown: dict[str, str] = {}
    saver.loop = {"train_seconds": train_seconds, "evaluation": evaluation}
    try:
        for it in range(agent.iteration + 1, config.iterations + 1):
            try:
                metrics = agent.train_iteration()
            except DivergenceError as e:
                error = e
                break
            train_seconds += metrics["perf/seconds"]
            metrics["charts/train_seconds"] = train_seconds
            metrics["charts/SPS"] = metrics["perf/tokens_per_s"]
            if it % config.eval_every == 0 or it == config.iterations:
                agent.policy.eval()
                evaluation = evaluate_policy(
                    agent.policy,
                    env_kwargs,
                    split=config.eval_split,
                    num_prompts=config.eval_prompts,
                )
                if config.eval_heldout:  # the same policy on the prompts it never trains on
                    heldout = evaluate_policy(
                        agent.policy, env_kwargs, split="test", num_prompts=config.eval_prompts
                    )
                    evaluation |= {k.replace("eval/", HELDOUT, 1): v for k, v in heldout.items()}
                agent.policy.train()
                metrics.update(evaluation)
            _show_progress(bar, shown, metrics)
            logger.write(it, metrics)
            bar.update()
            saver.loop = {"train_seconds": train_seconds, "evaluation": evaluation}
            if stop.signum is not None:
                stopped_by = stop.signum
                break
            if reached(evaluation.get("eval/greedy_success"), config.target_success):
                final_episodes = {"eval/episodes_to_target": float(agent.episodes)}
                bar.total = bar.n  # stopped early: a full bar, no ETA for the unused budget
                break
            if saver.due():
                saver.save()
    except KeyboardInterrupt as e:  # a second signal (or Ctrl-C without handlers): mid-update
        stopped_by, aborted = getattr(e, "signum", signal.SIGINT), True
    finally:
        bar.close()
    final = {
        **evaluation,
        **final_episodes,
        "charts/episodes": float(agent.episodes),
        "charts/train_seconds": train_seconds,
        "iterations": float(agent.iteration),
    }
    return final, stopped_by, aborted, error


def _show_progress(bar: tqdm, shown: dict[str, str], metrics: dict[str, float]) -> None:
    """The bar's figures: greedy success once evaluated (the batch's success before), tokens/s,
    and the agent's main loss."""
    if "eval/greedy_success" in metrics:
        shown["success"] = f"{metrics['eval/greedy_success']:.3f}"
    elif "success" not in shown and "charts/success" in metrics:
        shown["batch_success"] = f"{metrics['charts/success']:.3f}"
    if "success" in shown:
        shown.pop("batch_success", None)
    shown["tok/s"] = f"{metrics['perf/tokens_per_s']:.3g}"
    loss = next((k for k in PROGRESS_LOSSES if k in metrics), None)
    if loss is not None:
        shown["loss"] = f"{metrics[loss]:.3g}"
    bar.set_postfix(shown, refresh=False)


PROGRESS_LOSSES = ("losses/policy_loss", "losses/nll", "losses/dpo", "losses/loss")


if __name__ == "__main__":
    sys.exit(main())

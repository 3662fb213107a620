"""Train any agent on TokenGen-v0: ``train(config)``, or ``tokengym-train`` on the command line.

    tokengym-train --agent reinforce --task copy --target-success 0.9
    python -m tokengym.agents.train --agent maskable_ppo --task target --total-timesteps 20000

A run folder (``--out``, default ``runs/<agent>-<task>-<time>``) receives ``config.json``,
``metrics.jsonl`` (plus a TensorBoard event file when tensorboard is installed) and the trained
weights (``checkpoint.pt``, or SB3's ``model.zip``); the command ends with a ``final ...`` line.
Ctrl-C saves the weights and metrics so far, prints that line and exits with 130.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import torch
from tqdm import tqdm

import tokengym  # noqa: F401  (registers TokenGen-v0)
from tokengym.errors import TokenGymError

from .base import Agent
from .checkpoint import VocabularyMismatchError, load_checkpoint, save_checkpoint
from .cli import build_parser, flag_words, parse_config
from .config import SECTIONS, TrainConfig
from .device import resolve_device
from .dpo import DPOAgent
from .evaluate import evaluate_policy, reached
from .metrics import RunLogger
from .policies import GRUConfig, Policy, TransformerConfig, build_policy
from .reinforce import ReinforceAgent
from .run import INTERRUPTED_EXIT, end_run, new_run_folder, run_folder
from .supervised import SupervisedAgent
from .trained import TrainResult, stop_reason


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


def make_agent(config: TrainConfig) -> Agent:
    """The agent of ``config`` with its policy (``--init`` checked against the vocabulary)."""
    probe = gym.make("TokenGen-v0", **config.make_kwargs()).unwrapped
    if config.init is not None:  # raises on a different vocabulary
        policy = load_checkpoint(config.init, probe).policy
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
        KeyboardInterrupt: after saving the weights and metrics so far and printing the final
            line, so that Ctrl-C stops a script as usual.

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
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    agent = make_agent(config)  # every start-up error comes before the folder exists
    out = run_folder(config)
    with new_run_folder(out, config) as logger:
        final, interrupted = _train_loop(agent, config, logger)
    if config.checkpoint:
        save_checkpoint(
            out / "checkpoint.pt",
            policy=agent.policy,
            vocab=agent.base.tokenizer.vocab,
            agent=agent.name,
            agent_config=config.to_plain(),
            optimizer=agent.optimizer,
            env_kwargs=config.make_kwargs(),
            iteration=agent.iteration,
        )
    stopped, words = stop_reason(config, final.get("eval/greedy_success"))
    end_run(final, out, interrupted, stopped=words)
    return TrainResult(final, out, stopped)


def _train_loop(
    agent: Agent, config: TrainConfig, logger: RunLogger
) -> tuple[dict[str, float], bool]:
    """Update, evaluate every ``eval_every``, log; stop at the budget, the target or Ctrl-C."""
    env_kwargs = config.make_kwargs()
    train_seconds = 0.0
    evaluation: dict[str, float] = {}
    interrupted = False
    final_episodes: dict[str, float] = {}
    target = "" if config.target_success is None else f" to {config.target_success:g}"
    bar = tqdm(total=config.iterations, disable=not config.progress, desc=config.agent + target)
    shown: dict[str, str] = {}
    try:
        for it in range(1, config.iterations + 1):
            metrics = agent.train_iteration()
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
                agent.policy.train()
                metrics.update(evaluation)
            _show_progress(bar, shown, metrics)
            logger.write(it, metrics)
            bar.update()
            if reached(evaluation.get("eval/greedy_success"), config.target_success):
                final_episodes = {"eval/episodes_to_target": float(agent.episodes)}
                bar.total = bar.n  # stopped early: a full bar, no ETA for the unused budget
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    final = {
        **evaluation,
        **final_episodes,
        "charts/episodes": float(agent.episodes),
        "charts/train_seconds": train_seconds,
        "iterations": float(agent.iteration),
    }
    return final, interrupted


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


def main(argv: list[str] | None = None) -> int:
    """The command: parse ``argv`` into a :class:`TrainConfig` and train; returns the status."""
    parser = build_parser(
        TrainConfig, prog="tokengym-train", description=__doc__, sections=SECTIONS
    )
    config = parse_config(TrainConfig, parser, argv)
    try:
        resolve_device(config.device)  # no CUDA: before anything else
        train(config)
    except KeyboardInterrupt:
        return INTERRUPTED_EXIT
    except (ValueError, TokenGymError, OSError) as e:
        message = _start_error(e, config)
        if message is None:
            raise
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    return 0


def _start_error(error: BaseException, config: TrainConfig) -> str | None:
    """The one-line message of an error found when the run starts, naming the option it comes
    from; None for other errors (a traceback is then the useful report)."""
    text = flag_words(str(error), TrainConfig)
    if isinstance(error, VocabularyMismatchError):
        return f"--init {config.init}: {text}"
    if isinstance(error, TokenGymError):
        return text
    if isinstance(error, OSError):
        out = str(run_folder(config).parent if config.out is None else config.out)
        if error.filename is not None and out.startswith(str(error.filename)[: len(out)]):
            return f"--out {out}: {error.strerror or text} ({error.filename})"
        return None
    if str(error).startswith("device="):  # resolve_device's own message
        return text
    return None


if __name__ == "__main__":
    sys.exit(main())

"""Train any agent on TokenGen-v0: ``train(config)``, or ``tokengym-train`` on the command line.

    tokengym-train --agent reinforce --task copy --target-success 0.9
    python -m tokengym.agents.train --agent maskable_ppo --task target --total-timesteps 20000

A run folder (``--out``, default ``runs/<agent>-<task>-<time>``) receives ``config.json``,
``metrics.jsonl`` (plus a TensorBoard event file when tensorboard is installed) and the trained
weights (``checkpoint.pt``, or SB3's ``model.zip``); the command ends with a ``final ...`` line.
Ctrl-C (SIGINT) or SIGTERM stops after the update in progress, saves the weights and metrics so
far, prints that line and exits with 130 (SIGINT) or 143 (SIGTERM); a second signal stops at
once and keeps the last saved checkpoint. Custom agents also save every ``checkpoint_every``
updates or ``checkpoint_minutes`` minutes, and ``--resume DIR`` continues such a run from its
last checkpoint. A non-finite loss or gradient stops the run (exit 1) with the last finite
weights saved; an ``--out`` that holds a run is refused unless ``--resume`` or ``--overwrite``.

In ``metrics.jsonl``, ``charts/episodic_return`` is CleanRL's undiscounted sum of the env's
rewards, and REINFORCE's ``charts/return`` the return at the first token that its gradient
weights (per ``--credit``, discounted by ``--gamma``): they differ under shaping or gamma < 1.
"""

from __future__ import annotations

from tokengym.errors import TokenGymError

from .cli import build_parser, flag_words, parse_config
from .config import SECTIONS, TrainConfig
from .signals import exit_code

# Nothing here imports torch until a run starts, so that ``--help`` prints at once.


def main(argv: list[str] | None = None) -> int:
    """The command: parse ``argv`` into a :class:`TrainConfig` and train; returns the status."""
    parser = build_parser(
        TrainConfig, prog="tokengym-train", description=__doc__, sections=SECTIONS
    )
    config = parse_config(TrainConfig, parser, argv)
    from .device import resolve_device
    from .divergence import DivergenceError
    from .train import train

    try:
        resolve_device(config.device)  # no CUDA: before anything else
        train(config)
    except KeyboardInterrupt as e:
        return exit_code(e)
    except DivergenceError:
        return 1  # its line is printed
    except (ValueError, TokenGymError, OSError) as e:  # found at the start: nothing written
        message = _start_error(e, config)
        if message is None:
            raise
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    return 0


def _start_error(error: BaseException, config: TrainConfig) -> str | None:
    """The one-line message of an error found when the run starts, naming the option it comes
    from; None for other errors (a traceback is then the useful report)."""
    from .checkpoint import VocabularyMismatchError
    from .run import run_folder

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

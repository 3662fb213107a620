"""Run a suite's specs: one JSONL row per finished run in ``<out>/runs.jsonl``, resumable.

Each run trains one agent for its fixed budget (never a wall-clock limit), with greedy test
evaluations every ``eval_every``; its row holds the spec, the learning curve (success and reward
against episodes, tokens and training seconds), episodes/tokens/seconds to the success threshold,
the final success, and the package versions and machine. A run whose id (the spec's hash) already
has an ``"ok"`` row is skipped, so an interrupted suite resumes where it stopped. The id hashes
the spec, not the agents' code: after changing an agent, use a fresh ``--out`` folder.

One runner at a time per folder: :func:`folder_lock` (``out/.lock``) refuses a second one,
naming the first one's PID. How runs execute is an :class:`executors.Executor` (this process,
worker processes, Ray); rows are built and read by ``rows.py``, below both.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from tokengym.errors import ConfigError

from .executors import Executor, make_executor
from .rows import (  # noqa: F401  (re-exported: the runner's API before rows.py)
    RUNS_FILE,
    VARYING_KEYS,
    append_row,
    curve,
    environment,
    failed_row,
    read_rows,
    repair_rows,
    run_spec,
    summarize,
)
from .run_spec import RunSpec
from .suites import Suite

if TYPE_CHECKING:
    from .ray_executor import RayOptions

LOCK_FILE = ".lock"
_HELD: set[Path] = set()  # folders whose lock this process holds (the lock is re-entrant)


class FolderLockedError(ConfigError):
    """The results folder is in use by another ``tokengym-bench run``."""


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s exclusive lock (``out/.lock``, with this process's PID) for the block.

    The lock is the OS's (``flock``): it goes with the process, even after ``kill -9``.

    Raises:
        FolderLockedError: naming the PID of the run that holds it.
    """
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    if key in _HELD:
        yield
        return
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise FolderLockedError(
                f"out={str(out)!r} is in use by another tokengym-bench run (PID {holder}); "
                f"wait for it to finish, or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)  # releases the lock


def select(suite: Suite, only: Iterable[str] | None = None) -> list[RunSpec]:
    """The suite's distinct specs, in question order, of the questions named in ``only``."""
    keys = set(suite.keys if only is None else only)
    unknown = sorted(keys - set(suite.keys))
    if unknown:
        raise ConfigError(f"only={unknown!r} is invalid for suite {suite.name!r}; "
                         f"expected some of {suite.keys}")  # fmt: skip
    specs = [s for q in suite.questions if q.key in keys for s in q.specs]
    return list(dict.fromkeys(specs))


def pending(suite: Suite, out: Path, only: Iterable[str] | None = None) -> list[RunSpec]:
    """The selected specs without an ``"ok"`` row in ``out`` yet (what a resume runs)."""
    done = {r["run_id"] for r in read_rows(out) if r.get("status") == "ok"}
    return [s for s in select(suite, only) if s.run_id not in done]


def run_suite(
    suite: Suite,
    out: Path,
    only: Iterable[str] | None = None,
    progress: bool = True,
    workers: int = 1,
    cluster: RayOptions | None = None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run the selected specs not finished yet, appending a row to ``runs.jsonl`` as each ends.

    Args:
        suite: the suite.
        out: the results folder (resume: finished runs there are skipped).
        only: question keys to run (None: all).
        progress: a bar over runs (and, with one worker, each run's own bar).
        workers: runs at once, each in its own process on 1 torch thread; rows are the same
            for any number (each run seeds everything it draws).
        cluster: run each spec as a Ray task instead (``workers`` must be 1); same rows.
        executor: how to run them (default: from ``workers`` and ``cluster``).

    Returns:
        The rows written by this call, in the order they finished.
    """
    with folder_lock(out):
        return _run_locked(suite, out, only, progress, workers, cluster, executor)


def _run_locked(
    suite: Suite,
    out: Path,
    only: Iterable[str] | None,
    progress: bool,
    workers: int,
    cluster: RayOptions | None,
    executor: Executor | None,
) -> list[dict[str, Any]]:
    repair_rows(out)  # a line cut by a kill: its run runs again
    todo = pending(suite, out, only)
    bar = tqdm(total=len(todo), desc=f"suite {suite.name}", unit="run", disable=not progress)
    rows = []
    own_bars = progress and workers == 1 and cluster is None
    if executor is None:
        executor = make_executor(workers, own_bars, cluster)
    for row in executor.rows(todo, out, suite.name):
        append_row(out, row)
        rows.append(row)
        bar.set_postfix_str(f"{row['spec']['agent']} seed={row['spec']['seed']} {row['status']}")
        bar.update()
    bar.close()
    return rows

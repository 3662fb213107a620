"""Executors: how the runner's pending specs become rows (a strategy the runner is given).

- :class:`InProcess`: one after another in this process.
- :class:`WorkerPool`: ``workers`` processes (spawned, 1 torch thread each). A worker that dies
  fails only the run it had (its row says how it died) and is replaced; workers end with the
  driver, even after ``kill -9`` of it.
- ``ray_executor.RayExecutor``: one Ray task per spec (``make_executor(cluster=...)``).

Every executor yields rows as runs finish; the driver alone writes them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .rows import failed_row, run_spec
from .run_spec import RunSpec

if TYPE_CHECKING:
    from .ray_executor import RayOptions

RunFunction = Callable[..., dict[str, Any]]  # run_spec(spec, out, suite, progress) -> row


class Executor(Protocol):
    """Runs specs and yields their rows as they finish."""

    def rows(self, specs: list[RunSpec], out: Path, suite: str) -> Iterator[dict[str, Any]]:
        """Rows of ``specs`` (one each, "ok" or "failed"), in the order they finish."""
        ...


class InProcess:
    """Runs each spec here, in order; ``progress`` shows each run's own bar."""

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress

    def rows(self, specs: list[RunSpec], out: Path, suite: str) -> Iterator[dict[str, Any]]:
        for spec in specs:
            yield run_spec(spec, out, suite, self.progress)


class WorkerCrashedError(RuntimeError):
    """A worker process died during a run (killed, out of memory, a crash in C code)."""


def _die_with_parent(parent: int) -> None:
    """In a worker: exit as soon as the driver is gone (Linux: at once, by the kernel)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # elsewhere, and as a fallback: poll the parent's pid
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _worker(
    parent: int, tasks: Connection, results: Connection, run: RunFunction, out: Path, suite: str
) -> None:
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    while True:
        spec = tasks.recv()
        if spec is None:
            return
        results.send(run(spec, out, suite, False))


class WorkerPool:
    """``workers`` spawned processes; one run each at a time.

    Args:
        workers: processes.
        run: what a worker calls per spec (``run_spec``; tests give one that crashes).
    """

    def __init__(self, workers: int, run: RunFunction = run_spec) -> None:
        self.workers, self.run = workers, run

    def rows(self, specs: list[RunSpec], out: Path, suite: str) -> Iterator[dict[str, Any]]:
        context = multiprocessing.get_context("spawn")  # no torch state copied into workers
        queue = list(reversed(specs))
        busy: dict[Any, tuple[Any, Connection, Connection, RunSpec | None]] = {}

        def start() -> None:
            task_recv, task_send = context.Pipe(duplex=False)
            result_recv, result_send = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker,
                args=(os.getpid(), task_recv, result_send, self.run, out, suite),
                daemon=True,
            )
            process.start()
            task_recv.close()
            result_send.close()
            spec = queue.pop()
            task_send.send(spec)
            busy[process.sentinel] = (process, task_send, result_recv, spec)

        try:
            while queue and len(busy) < self.workers:
                start()
            while busy:
                ready = wait([*(b[2] for b in busy.values()), *busy])
                for sentinel, (process, task_send, result_recv, spec) in list(busy.items()):
                    if result_recv not in ready and sentinel not in ready:
                        continue
                    try:
                        row = result_recv.recv()
                    except (EOFError, OSError):  # it died before sending a row
                        process.join()
                        del busy[sentinel]
                        yield failed_row(spec, suite, _crash(process))
                        if queue:
                            start()
                        continue
                    yield row
                    if queue:
                        next_spec = queue.pop()
                        try:
                            task_send.send(next_spec)
                        except OSError:  # it died just after its row: a fresh worker
                            queue.append(next_spec)
                            process.join()
                            del busy[sentinel]
                            start()
                            continue
                        busy[sentinel] = (process, task_send, result_recv, next_spec)
                    else:
                        task_send.send(None)
                        process.join()
                        del busy[sentinel]
        finally:  # an early stop (Ctrl-C, an error): no run goes on without the driver
            for process, *_ in busy.values():
                process.kill()
                process.join()


def _crash(process: Any) -> WorkerCrashedError:
    code = process.exitcode
    how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
    return WorkerCrashedError(f"the worker process (PID {process.pid}) died with {how}")


def make_executor(
    workers: int = 1, progress: bool = False, cluster: RayOptions | None = None
) -> Executor:
    """The executor of the command's flags: Ray, a worker pool, or this process."""
    if cluster is not None:
        from .ray_executor import RayExecutor  # ray only when asked for

        return RayExecutor(cluster)
    return InProcess(progress) if workers == 1 else WorkerPool(workers)

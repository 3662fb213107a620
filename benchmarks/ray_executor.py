"""Run a suite's specs as Ray tasks: ``tokengym-bench run --executor ray [--address auto]``.

Each pending run is one Ray task (``run_spec`` on ``cpus_per_run`` CPUs of any node); rows come
back to the driver as tasks finish, and the driver alone appends them to ``runs.jsonl``. A task
whose worker dies or that raises gives a ``failed`` row (no Ray retry: the next ``run`` of the
same folder is the retry). ``ray`` is imported only here, only when a suite runs on Ray.

Example:
    >>> from pathlib import Path
    >>> from tokengym.bench import runner
    >>> from tokengym.bench.suites import SUITES
    >>> smoke, local_ray = SUITES["smoke"], RayOptions()
    >>> rows = runner.run_suite(smoke, Path("out"), cluster=local_ray)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokengym._requires import require
from tokengym.errors import ConfigError
from tokengym.validation import check_number

from .rows import failed_row, run_spec
from .run_spec import RunSpec


def _check_resource(name: str, value: float, low_open: bool) -> None:
    check_number(name, value, low=0.0, low_open=low_open)
    if value > 1 and not float(value).is_integer():
        raise ConfigError(f"{name}={value!r} is invalid; expected a whole number above 1 (Ray)")


@dataclass(frozen=True)
class RayOptions:
    """Where the Ray tasks of a suite run and what each one reserves.

    Attributes:
        address: a running cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None starts a
            local instance on this machine (or uses the one this process already has).
        cpus_per_run: CPUs reserved per run (a run trains on 1 torch thread).
        gpus_per_run: GPUs reserved per run; above 0 the run trains on ``cuda``, not the CPU.

    Example:
        >>> RayOptions(address="auto", cpus_per_run=2).gpus_per_run
        0.0
    """

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        _check_resource("cpus_per_run", self.cpus_per_run, low_open=True)
        _check_resource("gpus_per_run", self.gpus_per_run, low_open=False)


def require_ray() -> None:
    """Raise ``MissingDependencyError`` with the ``pip install`` line when ray is absent."""
    require("ray", extra="ray", package=__name__)


class RayExecutor:
    """The :class:`executors.Executor` that runs each spec as a Ray task (:func:`execute_ray`)."""

    def __init__(self, options: RayOptions) -> None:
        self.options = options

    def rows(self, specs: list[RunSpec], out: Path, suite: str) -> Iterator[dict[str, Any]]:
        return execute_ray(specs, out, suite, self.options)


def execute_ray(
    specs: list[RunSpec], out: Path, suite: str, options: RayOptions
) -> Iterator[dict[str, Any]]:
    """Rows of ``specs`` as their Ray tasks finish (a dead worker or an error: a failed row).

    Connects to ``options.address``, or uses the Ray instance this process already has, or
    starts a local one on every CPU of this machine; it shuts down only an instance it started.
    Unfinished tasks are cancelled when the caller stops early (Ctrl-C).
    """
    if not specs:  # a finished suite: no Ray to start
        return
    require_ray()
    import ray
    from ray.exceptions import RayError

    started = not ray.is_initialized()
    if started:
        address = options.address or "local"  # "local": never attach to a cluster by accident
        ray.init(address, include_dashboard=False, logging_level=logging.WARNING)
    device = "cuda" if options.gpus_per_run > 0 else "cpu"
    task = ray.remote(run_spec).options(
        num_cpus=options.cpus_per_run, num_gpus=options.gpus_per_run, max_retries=0
    )
    out = out.resolve()  # workers do not share the driver's working directory
    running = {task.remote(spec, out, suite, False, device): spec for spec in specs}
    try:
        while running:
            [ref], _ = ray.wait(list(running), num_returns=1)
            spec = running.pop(ref)
            try:
                row = ray.get(ref)
            except RayError as e:  # the worker died or the task raised
                row = failed_row(spec, suite, e)
            yield row
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()

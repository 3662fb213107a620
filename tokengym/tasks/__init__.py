"""Built-in task families and custom datasets, looked up by name."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, unknown_name
from .arithmetic import AdditionTask, ParityTask
from .base import Example, GeneratedTask, RandomStringTask, Task
from .dataset import DatasetSource, DatasetTask, load_records
from .strings import CopyTask, ReverseTask, SortTask, TargetTask

TASKS: dict[str, type[GeneratedTask]] = {
    cls.name: cls for cls in (CopyTask, ReverseTask, SortTask, AdditionTask, ParityTask, TargetTask)
}


def _knob_names(cls: type) -> list[str]:
    return [name for name in cls.__dataclass_fields__ if not name.startswith("_")]


def task_knobs(task: object, dataset: object) -> tuple[str, list[str]] | None:
    """The knobs `make_task` accepts for these arguments, with what owns them; None where the
    task name is unknown (`make_task` raises that error)."""
    if dataset is not None:
        return "dataset", _knob_names(DatasetTask)[1:]  # `source` is the dataset argument
    if task is None:
        task = "copy"
    if isinstance(task, str):
        return (f"task {task!r}", _knob_names(TASKS[task])) if task in TASKS else None
    return f"task object {type(task).__name__}", []


def make_task(task: str | Task | None, dataset: DatasetSource | None = None, **knobs: Any) -> Task:
    """The task an environment runs: a registered name with its knobs, a task object, or data.

    Example:
        >>> make_task("copy", max_length=6).alphabet
        'abcde'
    """
    if dataset is not None:
        if task is not None:
            raise ConfigError(f"pass either task= or dataset=, not both (task={task!r})")
        cls: type = DatasetTask
        knobs = {"source": dataset, **knobs}
    elif isinstance(task, str):
        if task not in TASKS:
            raise unknown_name("task", task, TASKS)
        cls = TASKS[task]
    elif isinstance(task, Task):
        if knobs:
            raise ConfigError(
                f"task knobs {sorted(knobs)} only apply to a task given by name; set them on "
                f"the task object instead"
            )
        return task
    else:
        raise ConfigError(
            f"task must be one of {sorted(TASKS)} or a Task object, got {task!r}; or pass "
            f"dataset= for custom data"
        )
    allowed = _knob_names(cls)
    for knob in knobs:
        if knob not in allowed:
            raise unknown_name("argument", knob, allowed, f" for task {cls.name!r}")
    return cls(**knobs)


__all__ = [
    "TASKS",
    "AdditionTask",
    "CopyTask",
    "DatasetTask",
    "Example",
    "GeneratedTask",
    "ParityTask",
    "RandomStringTask",
    "ReverseTask",
    "SortTask",
    "TargetTask",
    "Task",
    "load_records",
    "make_task",
    "task_knobs",
]

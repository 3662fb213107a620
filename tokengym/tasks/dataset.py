"""Custom prompt datasets: a JSONL file or an in-memory list of {"prompt", "answer"} records."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, DatasetError
from .base import Example, check_int

RecordSource = str | os.PathLike | Sequence[Mapping[str, Any]]
DatasetSource = RecordSource | Mapping[str, RecordSource]


def _record(raw: object, where: str) -> Example:
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{where}: a record must be an object with a 'prompt', got {raw!r}")
    if "prompt" not in raw:
        raise DatasetError(f"{where}: missing key 'prompt' (keys: {sorted(raw)})")
    prompt, answer = raw["prompt"], raw.get("answer")
    if not isinstance(prompt, str):
        raise DatasetError(f"{where}: 'prompt' must be a string, got {prompt!r}")
    if answer is not None and not isinstance(answer, str):
        raise DatasetError(f"{where}: 'answer' must be a string or null, got {answer!r}")
    return Example(prompt, answer)


def load_records(source: RecordSource) -> list[Example]:
    """Reads records from a JSONL path or a list of dicts; errors name the file and line."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise DatasetError(f"dataset file {path!r} does not exist")
        examples = []
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
                examples.append(_record(raw, f"{path}:{number}"))
        where = path
    elif isinstance(source, Sequence):
        examples = [_record(raw, f"dataset[{i}]") for i, raw in enumerate(source)]
        where = "the dataset list"
    else:
        raise DatasetError(
            f"dataset must be a JSONL path, a list of {{'prompt', 'answer'}} dicts or a dict "
            f"with 'train' and 'test' entries, got {type(source).__name__}"
        )
    if not examples:
        raise DatasetError(f"{where} has no records")
    return examples


@dataclass(frozen=True)
class DatasetTask:
    """A task over user records; its default reward is exact match with the answer.

    Args:
        source: a JSONL path or list of records, split into train/test by `test_fraction`; or
            a mapping {"train": ..., "test": ...} of two such sources used as they are.
        data_seed: seed of the train/test split of a single source.
        test_fraction: share of a single source's records that go to the test split.
    """

    name = "dataset"
    default_reward = "exact"
    verifier_is_exact_match = False

    source: DatasetSource
    data_seed: int = 0
    test_fraction: float = 0.2
    _splits: tuple[list[Example], list[Example]] = field(
        init=False, repr=False, compare=False, default=([], [])
    )

    def __post_init__(self) -> None:
        check_int(self.name, "data_seed", self.data_seed, 0)
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(
                f"dataset: test_fraction must be in (0, 1), got {self.test_fraction!r}"
            )
        if isinstance(self.source, Mapping):
            missing = {"train", "test"} - set(self.source)
            if missing or len(self.source) != 2:
                raise DatasetError(
                    f"a dataset mapping needs exactly the keys 'train' and 'test', got "
                    f"{sorted(self.source)}"
                )
            splits = (load_records(self.source["train"]), load_records(self.source["test"]))
        else:
            splits = self._split(load_records(self.source))
        object.__setattr__(self, "_splits", splits)

    def _split(self, records: list[Example]) -> tuple[list[Example], list[Example]]:
        if len(records) < 2:
            raise DatasetError(
                f"a single dataset source is split into train and test and needs at least 2 "
                f"records, got {len(records)}; pass {{'train': ..., 'test': ...}} instead"
            )
        order = np.random.default_rng(self.data_seed).permutation(len(records))
        n_test = min(len(records) - 1, max(1, round(len(records) * self.test_fraction)))
        test = [records[i] for i in sorted(order[:n_test])]
        train = [records[i] for i in sorted(order[n_test:])]
        return train, test

    @property
    def train(self) -> list[Example]:
        return self._splits[0]

    @property
    def test(self) -> list[Example]:
        return self._splits[1]

    @property
    def alphabet(self) -> str:
        texts = [t for e in self.train + self.test for t in e if t is not None]
        return "".join(sorted(set("".join(texts))))

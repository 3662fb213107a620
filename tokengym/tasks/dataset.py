"""Custom prompt datasets: a JSONL file or an in-memory list of {"prompt", "answer"} records."""

from __future__ import annotations

import json
import os
import warnings
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


def _read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 file (a byte-order mark is allowed); errors name file and line."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}:{line}: the file is not UTF-8 (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None


# Parsed files by (path, modification time, size): envs and evaluations that share a dataset
# parse it once per process. A file that changes gets a new key and is parsed again.
_PARSED: dict[tuple[str, int, int], tuple[tuple[Example, ...], tuple[str, ...]]] = {}
_PARSED_LIMIT = 8  # files kept; the oldest entry goes first


def _parse_file(path: str) -> tuple[list[Example], list[str]]:
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        examples, origins = [], []
        for number, line in enumerate(_read_lines(path), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
            examples.append(_record(raw, f"{path}:{number}"))
            origins.append(f"{path}:{number}")
        if len(_PARSED) >= _PARSED_LIMIT:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[key] = (tuple(examples), tuple(origins))
    examples, origins = _PARSED[key]
    if origins and not origins[0].startswith(f"{path}:"):  # the same file by another name
        origins = tuple(f"{path}:{o.rsplit(':', 1)[1]}" for o in origins)
    return list(examples), list(origins)


def load_records(source: RecordSource) -> list[Example]:
    """Reads records from a JSONL path or a list of dicts; errors name the file and line."""
    return _load(source)[0]


def _load(source: RecordSource, name: str = "dataset") -> tuple[list[Example], list[str]]:
    """The records of `source`, with where each one comes from ("qa.jsonl:7", "dataset[6]")."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            raise DatasetError(f"dataset file {path!r} is a directory; pass a JSONL file")
        if not os.path.isfile(path):
            raise DatasetError(f"dataset file {path!r} does not exist")
        examples, origins = _parse_file(path)
        where = path
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        origins = [f"{name}[{i}]" for i in range(len(source))]
        examples = [_record(raw, where) for raw, where in zip(source, origins)]
        where = f"the {name} list"
    else:
        raise DatasetError(
            f"dataset must be a JSONL path, a list of {{'prompt', 'answer'}} dicts or a dict "
            f"with 'train' and 'test' entries, got {type(source).__name__}"
        )
    if not examples:
        raise DatasetError(f"{where} has no records")
    return examples, origins


def _warn_overlap(
    train: list[Example], train_origins: list[str], test: list[Example], test_origins: list[str]
) -> None:
    """Warns when a prompt is in both splits: test success would then measure memory."""
    first_train = {}
    for example, origin in zip(train, train_origins):
        first_train.setdefault(example.prompt, origin)
    shared = [(e.prompt, o) for e, o in zip(test, test_origins) if e.prompt in first_train]
    if shared:
        prompt, origin = shared[0]
        warnings.warn(
            f"{len(shared)} of {len(test)} test prompts are also train prompts, e.g. {prompt!r} "
            f"({first_train[prompt]} and {origin}): the test split does not measure "
            f"generalisation; remove the duplicates",
            UserWarning,
            stacklevel=6,
        )


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
    _origins: tuple[list[str], list[str]] = field(
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
            train, train_origins = _load(self.source["train"], "train")
            test, test_origins = _load(self.source["test"], "test")
        else:
            records, origins = _load(self.source)
            if len(records) < 2:
                raise DatasetError(
                    f"a single dataset source is split into train and test and needs at least "
                    f"2 records, got {len(records)}; pass {{'train': ..., 'test': ...}} instead"
                )
            order = np.random.default_rng(self.data_seed).permutation(len(records))
            n_test = min(len(records) - 1, max(1, round(len(records) * self.test_fraction)))
            test_rows, train_rows = sorted(order[:n_test]), sorted(order[n_test:])
            train, train_origins = (
                [records[i] for i in train_rows],
                [origins[i] for i in train_rows],
            )
            test, test_origins = [records[i] for i in test_rows], [origins[i] for i in test_rows]
        _warn_overlap(train, train_origins, test, test_origins)
        object.__setattr__(self, "_splits", (train, test))
        object.__setattr__(self, "_origins", (train_origins, test_origins))

    def origins(self, split: str) -> list[str]:
        """Where each record of `split` comes from: "qa.jsonl:7" or "dataset[6]"."""
        return self._origins[0 if split == "train" else 1]

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

"""Every task's verifier, table-tested; the generated splits; custom datasets."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from tokengym import TASKS, DatasetError, TokenGenEnv, exact_match, make_task
from tokengym.errors import ConfigError

VERIFIER_TABLE = [
    ("copy", "abca", "abca", 1.0),
    ("copy", "abca", "abc", 0.0),
    ("copy", "abca", "abcaa", 0.0),
    ("reverse", "abcd", "dcba", 1.0),
    ("reverse", "abcd", "abcd", 0.0),
    ("reverse", "aab", "baa", 1.0),
    ("sort", "cabd", "abcd", 1.0),
    ("sort", "cabd", "cabd", 0.0),
    ("sort", "bba", "abb", 1.0),
    ("addition", "17+5", "22", 1.0),
    ("addition", "17+5", "022", 0.0),
    ("addition", "99+99", "198", 1.0),
    ("addition", "0+0", "0", 1.0),
    ("addition", "0+0", "", 0.0),
    ("parity", "1101", "1", 1.0),
    ("parity", "1101", "0", 0.0),
    ("parity", "0000", "0", 1.0),
    ("parity", "0110", "01", 0.0),
    ("target", "abc", "ab", 1.0),
    ("target", "xyz", "ab", 1.0),
    ("target", "ab", "abc", 0.0),
]


@pytest.mark.parametrize(("name", "prompt", "completion", "expected"), VERIFIER_TABLE)
def test_verifier(name: str, prompt: str, completion: str, expected: float) -> None:
    assert make_task(name, train_size=2, test_size=1).verify(prompt, completion) == expected


@pytest.mark.parametrize("name", sorted(TASKS))
def test_verifier_is_exact_match_with_the_reference(name: str) -> None:
    """The vector env scores built-in tasks by comparing ids; that needs this equivalence."""
    task = make_task(name, train_size=20, test_size=5)
    assert task.verifier_is_exact_match
    alphabet = task.alphabet
    rng = np.random.default_rng(0)
    for prompt, answer in task.train:
        assert task.verify(prompt, answer) == 1.0
        for _ in range(5):
            completion = "".join(rng.choice(list(alphabet), size=rng.integers(0, 5)))
            assert task.verify(prompt, completion) == exact_match(prompt, completion, answer)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_splits_are_disjoint_sized_and_reproducible(name: str) -> None:
    task = make_task(name, train_size=50, test_size=20, data_seed=3)
    assert len(task.train) == 50 and len(task.test) == 20
    assert not {e.prompt for e in task.train} & {e.prompt for e in task.test}
    assert len({e.prompt for e in task.train}) == 50
    assert task.train == make_task(name, train_size=50, test_size=20, data_seed=3).train
    assert task.train != make_task(name, train_size=50, test_size=20, data_seed=4).train
    chars = set("".join(t for e in task.train + task.test for t in e))
    assert chars <= set(task.alphabet)


def test_difficulty_knobs_shape_the_prompts() -> None:
    task = make_task("copy", min_length=6, max_length=6, alphabet_size=3, train_size=30)
    assert {len(e.prompt) for e in task.train} == {6}
    assert set("".join(e.prompt for e in task.train)) <= set("abc")
    addition = make_task("addition", digits=3, train_size=200)
    operands = [int(x) for e in addition.train for x in e.prompt.split("+")]
    assert max(operands) < 1000 and max(operands) >= 100
    assert make_task("target", target="xyz").train[0].answer == "xyz"


def test_too_many_prompts_for_the_space_is_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        make_task("parity", min_length=2, max_length=3, train_size=10, test_size=3)
    assert str(err.value) == (
        "parity: train_size + test_size = 13 but these settings have only 12 distinct prompts; "
        "lower the sizes or raise the difficulty knobs"
    )


def test_the_whole_prompt_space_can_be_used() -> None:
    task = make_task("parity", min_length=2, max_length=3, train_size=10, test_size=2)
    prompts = {e.prompt for e in task.train + task.test}
    assert prompts == {"".join(bits) for n in (2, 3) for bits in itertools.product("01", repeat=n)}


def test_jsonl_dataset_with_explicit_splits(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text('{"prompt": "a", "answer": "b"}\n\n{"prompt": "c", "answer": null, "id": 7}\n')
    task = make_task(None, dataset={"train": str(train), "test": [{"prompt": "d", "answer": "e"}]})
    assert [tuple(e) for e in task.train] == [("a", "b"), ("c", None)]
    assert [tuple(e) for e in task.test] == [("d", "e")]
    assert task.alphabet == "abcde"


def test_single_source_is_split_by_test_fraction() -> None:
    records = [{"prompt": str(i), "answer": str(i)} for i in range(10)]
    task = make_task(None, dataset=records, test_fraction=0.3, data_seed=1)
    assert len(task.train) == 7 and len(task.test) == 3
    assert sorted(e.prompt for e in task.train + task.test) == sorted(str(i) for i in range(10))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"prompt": "a"}\n{"prompt": "b"\n',
            "data.jsonl:2: invalid JSON (Expecting ',' delimiter)",
        ),
        ('{"answer": "a"}\n', "data.jsonl:1: missing key 'prompt' (keys: ['answer'])"),
        ('{"prompt": 3}\n', "data.jsonl:1: 'prompt' must be a string, got 3"),
        (
            '{"prompt": "a", "answer": 1}\n',
            "data.jsonl:1: 'answer' must be a string or null, got 1",
        ),
        ("[1, 2]\n", "data.jsonl:1: a record must be an object with a 'prompt', got [1, 2]"),
        ("\n\n", "data.jsonl has no records"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError) as err:
        make_task(None, dataset=str(path))
    assert str(err.value) == message.replace("data.jsonl", str(path))


def test_dataset_errors() -> None:
    with pytest.raises(DatasetError, match=r"^the dataset list has no records$"):
        make_task(None, dataset=[])
    with pytest.raises(DatasetError, match="needs at least 2 records, got 1"):
        make_task(None, dataset=[{"prompt": "a"}])
    with pytest.raises(DatasetError, match="exactly the keys 'train' and 'test'"):
        make_task(None, dataset={"train": [{"prompt": "a"}]})
    with pytest.raises(DatasetError, match="does not exist"):
        make_task(None, dataset="/nonexistent/file.jsonl")
    with pytest.raises(DatasetError, match=r"dataset\[1\]: missing key 'prompt'"):
        make_task(None, dataset=[{"prompt": "a"}, {"text": "b"}])


def test_unknown_task_and_knob_names_suggest_the_closest() -> None:
    with pytest.raises(ValueError) as err:
        make_task("revrse")
    assert str(err.value) == (
        "unknown task 'revrse'. Did you mean 'reverse'? "
        "Known tasks: addition, copy, parity, reverse, sort, target."
    )
    with pytest.raises(ValueError) as err:
        make_task("addition", digit=3)
    assert str(err.value) == (
        "unknown argument 'digit' for task 'addition'. Did you mean 'digits'? "
        "Known arguments: data_seed, digits, test_size, train_size."
    )
    with pytest.raises(ConfigError, match=r"copy: alphabet_size must be in \[1, 26\], got 27"):
        make_task("copy", alphabet_size=27)
    with pytest.raises(ConfigError, match=r"copy: max_length must be >= 3, got 2"):
        make_task("copy", max_length=2)


def test_missing_answers_are_named_by_file_line(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    lines = [f'{{"prompt": "p{i}", "answer": "a{i}"}}' for i in range(9)]
    lines[5] = '{"prompt": "p5"}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as err:
        TokenGenEnv(dataset={"train": str(path), "test": [{"prompt": "q", "answer": "a"}]})
    assert str(err.value) == (
        f"reward 'exact' needs an answer for every prompt; train records {path}:6 have none "
        f"(use a reward callable and reward_mode='terminal')"
    )


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"prompt": "a", "answer": "b"}\n{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DatasetError) as err:
        make_task(None, dataset=str(path))
    assert str(err.value) == (
        f"{path}:2: the file is not UTF-8 (byte 0xe9 at offset 46); save it as UTF-8"
    )


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        '{"prompt": "a", "answer": "b"}\n{"prompt": "c", "answer": "d"}\n'.encode("utf-8-sig")
    )
    task = make_task(None, dataset=str(path), test_fraction=0.5)
    assert sorted(tuple(e) for e in task.train + task.test) == [("a", "b"), ("c", "d")]

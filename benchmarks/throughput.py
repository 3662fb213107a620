"""Environment throughput: single TokenGen-v0 vs CartPole-v1, native vector env vs SyncVectorEnv.

Run: `tokengym-bench run --only throughput` (numbers are steps per second; medians of repeats, with
every ratio taken from numbers measured in the same run).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import tokengym

DEFAULT_ENV: dict[str, Any] = {"task": "copy", "reward_mode": "dense"}


@dataclass(frozen=True)
class Throughput:
    """Steps per second of one environment setup (median over repeats)."""

    name: str
    steps_per_second: float
    repeats: list[float]


def _legal_actions(env_kwargs: dict[str, Any], count: int, seed: int) -> np.ndarray:
    """Uniform draws over the tokens the env's action mask allows (EOS included)."""
    mask = tokengym.TokenGenEnv(**env_kwargs).action_masks()
    return np.random.default_rng(seed).choice(np.flatnonzero(mask), size=count)


def _time_single(env: gym.Env, actions: list[Any]) -> float:
    env.reset(seed=0)
    step, reset = env.step, env.reset
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            reset()
    return len(actions) / (time.perf_counter() - start)


def _time_vector(env: gym.vector.VectorEnv, actions: np.ndarray) -> float:
    env.reset(seed=0)
    step = env.step
    start = time.perf_counter()
    for batch in actions:
        step(batch)
    return actions.size / (time.perf_counter() - start)


def _interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, Throughput]:
    """Medians over repeats taken round-robin, so that load on a noisy machine hits all alike."""
    for run in runs.values():
        run()  # warm-up
    values: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            values[name].append(run())
    return {name: Throughput(name, statistics.median(v), v) for name, v in values.items()}


def measure(
    env_kwargs: dict[str, Any] | None = None,
    single_steps: int = 100_000,
    num_envs: int = 1024,
    vector_steps: int = 200,
    sync_steps: int = 20,
    repeats: int = 5,
) -> dict[str, Throughput]:
    """Measures all four setups in one run; returns them by name."""
    kwargs = dict(DEFAULT_ENV if env_kwargs is None else env_kwargs)
    tokens = _legal_actions(kwargs, single_steps, seed=0)
    single_actions = [np.int64(a) for a in tokens]
    cartpole_actions = [np.int64(a) for a in np.random.default_rng(0).integers(0, 2, single_steps)]
    vector_actions = _legal_actions(kwargs, num_envs * vector_steps, 1).reshape(-1, num_envs)
    native = gym.make_vec("TokenGen-v0", num_envs=num_envs, copy=False, **kwargs)
    sync = gym.make_vec("TokenGen-v0", num_envs=num_envs, vectorization_mode="sync", **kwargs)
    single = gym.make("TokenGen-v0", **kwargs)
    cartpole = gym.make("CartPole-v1")
    runs = {
        "TokenGen-v0 (gym.make)": lambda: _time_single(single, single_actions),
        "CartPole-v1 (gym.make)": lambda: _time_single(cartpole, cartpole_actions),
        f"TokenGen native vector, N={num_envs}": lambda: _time_vector(native, vector_actions),
        f"TokenGen SyncVectorEnv, N={num_envs}": lambda: _time_vector(
            sync, vector_actions[:sync_steps]
        ),
    }
    return _interleaved(runs, repeats)


def table(results: dict[str, Throughput]) -> str:
    """A Markdown table with the two ratios the speed goals are about."""
    values = list(results.values())
    single, cartpole, native, sync = values
    lines = ["| setup | steps/s (median) |", "|---|---:|"]
    lines += [f"| {r.name} | {r.steps_per_second:,.0f} |" for r in values]
    lines += [
        "",
        f"TokenGen-v0 / CartPole-v1: {single.steps_per_second / cartpole.steps_per_second:.1f}x; "
        f"native vector / SyncVectorEnv: {native.steps_per_second / sync.steps_per_second:.1f}x",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- scaling (question 7, env part)
# Env steps/s against the number of sub-envs N and against the vocabulary size V, and the three
# speed goals of issue 17 as ratios measured in one process: `python -m tokengym.bench.throughput`.
SPECIALS = ["<pad>", "<bos>", "<sep>", "<eos>"]
EOS_RATE = 0.125  # share of EOS among the benchmark's actions; the rest is uniform over legal ids


def bpe_tokenizer(vocab_size: int, seed: int = 0, words: int = 400_000) -> Any:
    """A GPT-2-style byte-level BPE `tokenizers.Tokenizer` with `vocab_size` tokens, trained
    here on generated text (no download): `words` words of 1-8 Zipf-distributed letters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(1, 9, size=words)
    chars = "".join(letters[rng.zipf(1.3, size=int(lengths.sum())) % 26].tolist())
    ends = np.cumsum(lengths).tolist()
    words = [chars[a:b] for a, b in zip([0, *ends[:-1]], ends)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(
        [" ".join(words[i : i + 1000]) for i in range(0, len(words), 1000)], trainer
    )
    return tokenizer


def vocab_env_kwargs(
    vocab: str | int, tokenizers_by_size: dict[int, Any], words: int = 400_000
) -> dict[str, Any]:
    """The benchmark env (DEFAULT_ENV) with the char tokenizer or a BPE of `vocab` tokens."""
    if vocab == "char":
        return dict(DEFAULT_ENV)
    if vocab not in tokenizers_by_size:
        tokenizers_by_size[vocab] = bpe_tokenizer(int(vocab), words=words)
    return {**DEFAULT_ENV, "tokenizer": tokenizers_by_size[vocab]}


def batch_actions(env: Any, steps: int, seed: int) -> np.ndarray:
    """(steps, N) actions: EOS with probability EOS_RATE, else a uniform legal non-EOS id."""
    unwrapped = env.unwrapped if hasattr(env, "unwrapped") else env
    tok = unwrapped.tokenizer
    legal = np.flatnonzero(unwrapped.problem.action_mask)
    legal = legal[legal != tok.eos_id]
    rng = np.random.default_rng(seed)
    actions = rng.choice(legal, size=(steps, env.num_envs))
    actions[rng.random(actions.shape) < EOS_RATE] = tok.eos_id
    return actions


class BareBatch:
    """A bare numpy batch of the same V, L and EOS rate: the MDP's own work and nothing else.

    It writes the token, ends an episode on EOS or at the budget, pays 1 for an exact answer
    (a running count of tokens that match the reference) and puts a drawn prompt's template
    into the ended rows; no shaping, no checks of the actions, no infos. Compared with the
    native vector env at `copy=False`.
    """

    def __init__(self, native: Any) -> None:
        p = native.problem
        self.num_envs, self.max_new = native.num_envs, p.max_new_tokens
        self.eos_id = p.tokenizer.eos_id
        self.templates, self.starts = p.templates, p.generation_start
        self.references, self.lengths = p.reference_table, p.reference_lengths
        self.draws = np.random.default_rng(0).integers(0, p.num_prompts, size=1 << 20)
        self.rows = np.arange(self.num_envs)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.drawn = 0
        self.index = self.draws[: self.num_envs].copy()
        self.obs = self.templates[self.index].copy()
        self.start = self.starts[self.index].copy()
        self.position = np.zeros(self.num_envs, dtype=np.int64)
        self.matched = np.zeros(self.num_envs, dtype=np.int64)

    def step(self, actions: np.ndarray) -> tuple:
        position = self.position
        self.obs[self.rows, self.start + position] = actions
        expected = self.references[self.index, position]
        self.matched += (self.matched == position) & (expected == actions)
        position += 1
        eos = actions == self.eos_id
        done = eos | (position == self.max_new)
        length = self.lengths[self.index]
        rewards = (eos & (self.matched == length) & (position == length + 1)).astype(np.float64)
        rows = np.flatnonzero(done)
        if len(rows):
            self.drawn = (self.drawn + len(rows)) % (len(self.draws) - self.num_envs)
            index = self.draws[self.drawn : self.drawn + len(rows)]
            self.index[rows], self.start[rows] = index, self.starts[index]
            self.obs[rows] = self.templates[index]
            position[rows] = self.matched[rows] = 0
        return self.obs, rewards, done, np.zeros(self.num_envs, bool), {}


def _timed(run: Callable[[], float]) -> Callable[[], tuple[float, float]]:
    """`run` returning (steps/s, CPU seconds of this process during it)."""

    def timed() -> tuple[float, float]:
        cpu = time.process_time()
        rate = run()
        return rate, time.process_time() - cpu

    return timed


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, dict[str, Any]]:
    """Median steps/s and median CPU s of each run over `repeats` round-robin repeats.

    The objects alive before (earlier measurements' envs and tokenizers) are moved out of the
    garbage collector's reach while they run: otherwise a run that allocates dicts (the envs'
    infos) pays for traversing them, which the bare batch (numpy arrays only) never does.
    """
    timed = {name: _timed(run) for name, run in runs.items()}
    gc.collect()
    gc.freeze()
    try:
        for run in timed.values():
            run()  # warm-up
        values: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in timed.items():
                values[name].append(run())
    finally:
        gc.unfreeze()
    return {
        name: {
            "steps_per_second": statistics.median(r for r, _ in v),
            "cpu_seconds": statistics.median(c for _, c in v),
            "repeats": [r for r, _ in v],
        }
        for name, v in values.items()
    }


def vector_run(env: Any, steps: int, seed: int = 1) -> Callable[[], float]:
    actions = batch_actions(env, steps, seed)
    return lambda: _time_vector(env, actions)


def scaling(
    num_envs: tuple[int, ...] = (1, 16, 256, 1024, 4096, 16384),
    vocabs: tuple[str | int, ...] = ("char", 8000, 32000, 128000),
    env_steps: int = 2_000_000,
    max_steps: int = 2000,
    repeats: int = 5,
    vocab_num_envs: int = 1024,
    bpe_words: int = 400_000,
    made: dict[int, Any] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Native vector env steps/s against N (char tokenizer) and against V (N=`vocab_num_envs`):
    each step count is `env_steps / N` batches (at least 1), at most `max_steps`. `made` caches
    the BPE tokenizers by size (shared with `goals`)."""
    made = {} if made is None else made

    def env(n: int, vocab: str | int) -> Any:
        kwargs = vocab_env_kwargs(vocab, made, bpe_words)
        return gym.make_vec("TokenGen-v0", num_envs=n, copy=False, **kwargs)

    def steps(n: int) -> int:
        return max(1, min(max_steps, env_steps // n))

    by_n = {f"N={n}": vector_run(env(n, "char"), steps(n)) for n in num_envs}
    n = vocab_num_envs
    by_v = {f"V={v}": vector_run(env(n, v), steps(n)) for v in vocabs}
    return {"num_envs": interleaved(by_n, repeats), "vocab": interleaved(by_v, repeats)}


def goals(
    repeats: int = 7,
    num_envs: int = 1024,
    steps: int = 300,
    single_steps: int = 100_000,
    bpe_vocab: int = 32000,
    bpe_words: int = 400_000,
    small_num_envs: int = 64,
    made: dict[int, Any] | None = None,
) -> dict[str, Any]:
    """The three env speed goals of issue 17, each a ratio of medians measured interleaved.

    The bare batch does the MDP's own work: the token, the end, an exact-match reward paid on
    the last step, the reset; no infos. Its goal is measured on the native env doing the same
    work: the terminal reward (the env's default) and numeric infos (`text_infos=False`), at
    `num_envs` and at `small_num_envs`, where the fixed per-step cost weighs most. The native
    env's default text infos (a prompt, reference and completion string per row under the same
    keys on every step, as object arrays) and the benchmark's dense reward get their ratios
    beside it. The single env's goal is measured on `gym.make("TokenGen-v0")` at its defaults
    (task copy, terminal reward), the benchmark's dense reward beside it.
    """
    made = {} if made is None else made

    def vector(n: int, **kwargs: Any) -> Any:
        return gym.make_vec("TokenGen-v0", num_envs=n, copy=False, **{**DEFAULT_ENV, **kwargs})

    char = vector(num_envs)
    same_work = {"reward_mode": "terminal", "text_infos": False}
    bpe = vector(num_envs, **vocab_env_kwargs(bpe_vocab, made, bpe_words))
    small = vector(small_num_envs, **same_work)
    bare, small_bare = BareBatch(char.unwrapped), BareBatch(small.unwrapped)
    bare_actions = batch_actions(char, steps, 1)
    small_actions = batch_actions(small, steps * max(1, num_envs // small_num_envs), 1)
    # The defaults' task is DEFAULT_ENV's (copy), so the dense env allows the same tokens.
    single_actions = [np.int64(a) for a in _legal_actions({}, single_steps, seed=0)]
    cartpole_draws = np.random.default_rng(0).integers(0, 2, single_steps)
    cartpole_actions = [np.int64(a) for a in cartpole_draws]
    single, cartpole = gym.make("TokenGen-v0"), gym.make("CartPole-v1")
    dense_single = gym.make("TokenGen-v0", **DEFAULT_ENV)
    bpe_name, n, m = f"BPE {bpe_vocab:,}", num_envs, small_num_envs
    runs = {
        f"native vector, char, N={n}": vector_run(char, steps),
        f"native vector, {bpe_name}, N={n}": vector_run(bpe, steps),
        f"bare numpy batch, char, N={n}": lambda: _time_vector(bare, bare_actions),
        "TokenGen-v0 at its defaults (gym.make)": lambda: _time_single(single, single_actions),
        "CartPole-v1 (gym.make)": lambda: _time_single(cartpole, cartpole_actions),
        f"native vector, char, terminal, N={n}": vector_run(
            vector(n, reward_mode="terminal"), steps
        ),
        f"native vector, char, terminal, numeric infos, N={n}": vector_run(
            vector(n, **same_work), steps
        ),
        f"native vector, char, terminal, numeric infos, N={m}": lambda: _time_vector(
            small, small_actions
        ),
        f"bare numpy batch, char, N={m}": lambda: _time_vector(small_bare, small_actions),
        "TokenGen-v0, dense reward (gym.make)": lambda: _time_single(dense_single, single_actions),
    }
    results = interleaved(runs, repeats)
    rate = [r["steps_per_second"] for r in results.values()]
    return {
        "results": results,
        "ratios": {
            f"{bpe_name} / char (native vector, goal >= 0.5)": rate[1] / rate[0],
            f"native vector, the bare batch's work / bare numpy batch, N={n} (goal >= 0.5)": (
                rate[6] / rate[2]
            ),
            f"the same at N={m} (goal >= 0.5)": rate[7] / rate[8],
            "TokenGen-v0 / CartPole-v1 (gym.make, goal >= 3)": rate[3] / rate[4],
            f"native vector, terminal reward, text infos (the defaults) / bare, N={n}": (
                rate[5] / rate[2]
            ),
            f"native vector, dense reward, text infos / bare, N={n}": rate[0] / rate[2],
            "TokenGen-v0 with the dense reward / CartPole-v1 (gym.make)": rate[9] / rate[4],
        },
    }


def markdown(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| setup | steps/s (median) | CPU s (median) |", "|---|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['steps_per_second']:,.0f} | {r['cpu_seconds']:.3f} |")
    return lines


def measure_scaling(scaling_kwargs: dict[str, Any], goals_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Question 7's scaling record: `scaling(**scaling_kwargs)` and `goals(**goals_kwargs)`,
    sharing the BPE tokenizers they build."""
    made: dict[int, Any] = {}
    return {
        "scaling": scaling(**scaling_kwargs, made=made),
        "goals": goals(**goals_kwargs, made=made),
    }


def scaling_markdown(record: dict[str, Any]) -> list[str]:
    """The report's lines for a `measure_scaling` record: a table per measurement."""
    axes = {"num_envs": "the number of sub-envs N (char tokenizer)", "vocab": "vocabulary size"}
    lines: list[str] = []
    for axis, results in record["scaling"].items():
        lines += [f"Native vector env steps/s against {axes[axis]}:", "", *markdown(results), ""]
    lines += ["Speed goals (ratios of medians measured interleaved in one process):", ""]
    lines += [*markdown(record["goals"]["results"]), ""]
    lines += [f"- {name}: {value:.2f}x" for name, value in record["goals"]["ratios"].items()]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="env throughput: goals and scaling")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-scaling", action="store_true", help="only the three goals")
    args = parser.parse_args(argv)
    measured = goals(repeats=args.repeats)
    lines = [*markdown(measured["results"]), ""]
    lines += [f"- {name}: {value:.2f}x" for name, value in measured["ratios"].items()]
    if not args.no_scaling:
        for axis, results in scaling(repeats=args.repeats).items():
            lines += ["", f"Native vector env against {axis}:", "", *markdown(results)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

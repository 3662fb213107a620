"""The suites as plain data: which runs answer which question.

A :class:`RunSpec` (``run_spec.py``) is one training run (agent x task x reward mode x gamma x
credit x baseline x seed x budget); a :class:`Question` groups the runs that answer one question
of the setting and names the spec fields that tell its arms apart; a :class:`Suite` is the
questions plus the sizes of the throughput section. Runs shared by two questions (same spec)
run once.

Example:
    >>> [q.key for q in SUITES["quick"].questions]
    ['sl-vs-rl', 'credit']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tokengym.errors import ConfigError
from tokengym.validation import check_choice

from ..agents.config import AGENTS, SB3_AGENTS
from .credit_spec import CREDIT_EXACT, CreditExactSpec
from .run_spec import CREDIT_MODES, RunSpec, distinct, grid, task

THROUGHPUT = "throughput"  # the --only key of question 7

# Q4's baselines: the classic four (GRPO's group mean and VinePPO are estimator arms of their own).
SUITE_BASELINES = ("none", "mean", "rloo", "value")


@dataclass(frozen=True)
class Question:
    """The runs that answer one question, and the spec fields that name its arms.

    Attributes:
        key: the ``--only`` name, e.g. "credit".
        title: the report heading.
        arm: RunSpec fields or properties whose values label an arm (a table row, a curve).
        specs: the runs (every arm x every seed).
        note: one paragraph for the report: what the arms are, what to check.
        heldout: the report reads the runs' held-out curves (specs with ``heldout``), so
            another question's runs answer this one without training again.
    """

    key: str
    title: str
    arm: tuple[str, ...]
    specs: tuple[RunSpec, ...]
    note: str = ""
    heldout: bool = False

    def __post_init__(self) -> None:
        if not self.specs:
            raise ConfigError(f"specs of question {self.key!r} is empty; expected >= 1 RunSpec")
        if self.heldout and not all(spec.heldout for spec in self.specs):
            raise ConfigError(
                f"question {self.key!r} reads held-out curves; expected specs with heldout=True"
            )


@dataclass(frozen=True)
class Suite:
    """A named suite.

    Attributes:
        name: "quick", "full", ...
        questions: questions 1-5 (learning runs).
        credit_exact: the exact-credit section (``credit_exact.py``), ``--only credit-exact``;
            None: the suite has none.
        throughput: kwargs of ``throughput.measure`` (question 7, env steps/s).
        agent_throughput: agents whose training tokens/s question 7 measures.
        agent_measure: ``{"iterations": updates timed (custom agents), "total_timesteps": env
            steps timed (SB3 agents)}``.
        throughput_task: the task the agents' throughput is measured on.
        env_scaling: ``{"scaling": kwargs of throughput.scaling, "goals": kwargs of
            throughput.goals}`` (question 7, steps/s against N and V, and the speed goals);
            empty: full sizes.
    """

    name: str
    questions: tuple[Question, ...]
    throughput: Mapping[str, int] = field(default_factory=dict)
    agent_throughput: tuple[str, ...] = AGENTS
    agent_measure: Mapping[str, int] = field(
        default_factory=lambda: {"iterations": 20, "total_timesteps": 2048}
    )
    throughput_task: tuple[tuple[str, Any], ...] = (("task", "target"),)
    staged: Any = None  # a Staged: tuning + warm start first, its questions from the picks
    env_scaling: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    credit_exact: CreditExactSpec | None = None  # the exact-credit section (None: not run)

    def __post_init__(self) -> None:
        keys = [q.key for q in self.questions]
        if len(set(keys)) != len(keys) or THROUGHPUT in keys or CREDIT_EXACT in keys:
            raise ConfigError(
                f"questions={keys!r} is invalid; expected unique keys, not 'throughput' or "
                f"{CREDIT_EXACT!r}"
            )
        if self.credit_exact is not None and not isinstance(self.credit_exact, CreditExactSpec):
            raise ConfigError(
                f"credit_exact={self.credit_exact!r} is invalid; expected a CreditExactSpec or None"
            )
        for agent in self.agent_throughput:
            check_choice("agent_throughput", agent, AGENTS)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every ``--only`` key of the suite (stage 2's too, before it is resolved)."""
        keys = [q.key for q in self.questions]
        if self.staged is not None:
            later = ("sl-vs-rl", "ladder", "ladder-test", "gamma", "explore")
            keys += [k for k in (q.key for q in first_stage(self.staged)) if k not in keys]
            keys += [k for k in later if k not in keys]
        extra = () if self.credit_exact is None else (CREDIT_EXACT,)
        return (*keys, THROUGHPUT, *extra)

    def first_keys(self) -> tuple[str, ...]:
        """The ``--only`` keys of stage 1 (tuning, warm-start checkpoints)."""
        return () if self.staged is None else tuple(q.key for q in first_stage(self.staged))

    def resolve(self, rows: Mapping[str, Mapping[str, Any]]) -> Suite:
        """The suite with its stages as questions: stage 1 always, stage 2 once every tuning
        run has an ``ok`` row in ``rows`` (run id -> row)."""
        if self.staged is None:
            return self
        from .tuning import pick

        first = first_stage(self.staged)
        picks = {t.arm: pick(t, rows) for t in self.staged.tunings}
        later = [] if None in picks.values() else staged_questions(self.staged, picks)
        have = {q.key for q in (*first, *later)}
        kept = tuple(q for q in self.questions if q.key not in have)
        return replace(self, questions=(*first, *later, *kept), staged=None)


NOTES = {
    "sl-vs-rl": "The same train prompts: the supervised agent fits their reference answers "
    "(teacher forcing, one example = one episode), REINFORCE its own samples scored by R "
    "(final credit, leave-one-out baseline over 8 samples per prompt), online DPO the best vs "
    "the worst of 4 of its own samples per prompt (16 prompts x 4 = 64 completions per update, "
    "as many as REINFORCE). Success is greedy, on the train prompts (the objective J).",
    "credit": "REINFORCE at gamma 1 with a leave-one-out baseline. final: R on the last token, "
    "so G_t = R for every token; every_token: R on every token, G_t = (T - t + 1) R; dense: the "
    "env's potential-shaped rewards, G_t = R - Phi(s_t); progress: a share of 1 for each token "
    "that extends the matched answer, then R. trajectory (G_0 on every token) equals final at "
    "gamma 1 run for run, so it is left out here (question 3 has it at gamma < 1).",
    "gamma": "Each credit mode at gamma 1, 0.99, 0.9 and 0.5 (the env's and REINFORCE's "
    "discount), on answers of 1 or 2 tokens (+ EOS). trajectory at gamma 1 is final at gamma 1 "
    "(the same runs), so it appears once, as final.",
    "baseline": "REINFORCE, final credit, gamma 1: no baseline; the batch mean per step; "
    "leave-one-out over the 8 samples of each prompt; a learned value head.",
    "sb3": "REINFORCE (final credit, leave-one-out) and the SB3 agents with the same budget in "
    "env steps; SB3 agents use their own default hyper-parameters except lr (1e-3); every agent "
    "is scored by the same greedy evaluation.",
}


def learning_questions(
    base: RunSpec, seeds: tuple[int, ...], sb3_steps: int, keys: tuple[str, ...]
) -> list[Question]:
    """Questions 1-5 around a base REINFORCE spec (final credit, gamma 1), those in ``keys``.

    ``sb3_steps`` is question 5's budget in env steps (REINFORCE gets the iterations that
    cannot exceed it: ``batch_size`` episodes of at most 3 tokens each).
    """
    modes = ("final", "every_token", "dense", "progress")
    gammas = (1.0, 0.99, 0.9, 0.5)

    def q1() -> Question:
        sl = replace(base, agent="supervised")
        dpo = replace(base, agent="dpo", batch_size=base.batch_size // 4, group_size=4)
        specs = grid(sl, seeds) + grid(base, seeds) + grid(dpo, seeds)
        title = "Q1. Supervised vs REINFORCE vs DPO on the same prompts"
        return Question("sl-vs-rl", title, ("agent",), specs, NOTES["sl-vs-rl"])

    def q2() -> Question:
        specs = grid(base, seeds, credit_mode=modes)
        title = "Q2. Credit assignment (REINFORCE, gamma 1)"
        return Question("credit", title, ("credit_mode",), specs, NOTES["credit"])

    def q3() -> Question:
        specs = distinct(grid(base, seeds, credit_mode=tuple(CREDIT_MODES), gamma=gammas))
        title = "Q3. Credit mode x discount (REINFORCE)"
        return Question("gamma", title, ("credit_mode", "gamma"), specs, NOTES["gamma"])

    def q4() -> Question:
        specs = grid(base, seeds, baseline=SUITE_BASELINES)
        title = "Q4. Baselines (REINFORCE, final credit)"
        return Question("baseline", title, ("baseline",), specs, NOTES["baseline"])

    def q5() -> Question:
        reinforce = replace(base, iterations=sb3_steps // (base.batch_size * 3))
        sb3 = replace(
            base,
            agent=SB3_AGENTS[0],
            iterations=None,
            total_timesteps=sb3_steps,
            eval_every=sb3_steps // 20,
            lr=1e-3,
        )
        specs = grid(reinforce, seeds) + grid(sb3, seeds, agent=SB3_AGENTS)
        title = "Q5. REINFORCE vs SB3 at an equal env-step budget"
        return Question("sb3", title, ("agent",), specs, NOTES["sb3"])

    builders = {"sl-vs-rl": q1, "credit": q2, "gamma": q3, "baseline": q4, "sb3": q5}
    return [builders[k]() for k in keys]


# Copy of 1 or 2 letters over {a, b, c, d}: 20 prompts, 16 to train on. The answer is the
# prompt, so the policy must read it; answers of 1 or 2 letters (+ EOS) make credit over a
# variable number of tokens, and the discount, matter. REINFORCE learns it in seconds, not
# always: seeds differ, which is what the confidence intervals are for.
COPY = task("copy", min_length=1, max_length=2, alphabet_size=4, train_size=16, test_size=4)
# 1-digit sums (100 prompts, 80 to train on): an answer that must be computed, not copied.
ADDITION = task("addition", digits=1, train_size=80, test_size=20)
QUICK_BASE = RunSpec("reinforce", COPY, iterations=300, eval_every=15)
FULL_BASE = RunSpec("reinforce", COPY, iterations=400, eval_every=20)
FULL_SEEDS = tuple(range(10))

# --- the two-stage suites: tuned arms, a warm start, a ladder of answer lengths -------------
# Stage 1 runs each arm's tuning grid (seeds 900+, never reported) and the warm start's
# supervised checkpoints; stage 2 is built from the picks (``staged_questions``).
TUNING_SEEDS = (900, 901)
LADDER = {
    "1-2": task("copy", min_length=1, max_length=2, alphabet_size=4, train_size=16, test_size=4),
    "3-4": task("copy", min_length=3, max_length=4, alphabet_size=4, train_size=16, test_size=4),
    "6-8": task("copy", min_length=6, max_length=8, alphabet_size=4, train_size=16, test_size=4),
}
WARM_TASK = LADDER["3-4"]


def _prompts(spec_task: tuple[tuple[str, Any], ...]) -> set[str]:
    from tokengym.tasks import make_task

    knobs = dict(spec_task)
    made = make_task(knobs.pop("task"), **knobs)
    return {e.prompt for e in (*made.train, *made.test)}


def disjoint_task(rl_task: tuple[tuple[str, Any], ...], train_size: int = 64) -> tuple:
    """The warm start's supervised task: ``rl_task``'s family and knobs with the first
    ``data_seed`` whose train prompts share none with ``rl_task``'s train and test prompts."""
    taken = _prompts(rl_task)
    knobs = {k: v for k, v in rl_task if k not in ("train_size", "test_size", "data_seed")}
    name = knobs.pop("task")
    for seed in range(1, 1000):
        candidate = task(name, **knobs, train_size=train_size, test_size=1, data_seed=seed)
        made = _prompts(candidate)
        if not made & taken:
            return candidate
    raise ConfigError(f"no data_seed below 1000 gives prompts disjoint from {rl_task!r}")


@dataclass(frozen=True)
class Staged:
    """What a two-stage suite needs: the tunings, the warm-start runs, the seeds, the budget.

    Attributes:
        tunings: ``tuning.Tuning`` per tuned arm ("supervised", "final", "every_token", "dpo").
        warm: per evaluation seed, the supervised run whose checkpoint is the warm start.
        seeds: evaluation seeds.
        budget: sampled completions (examples) per run, as in the tuning.
        ladder: question 3's rungs (answer lengths -> task).
    """

    tunings: tuple[Any, ...]
    warm: tuple[RunSpec, ...]
    seeds: tuple[int, ...]
    budget: int
    ladder: Mapping[str, tuple[tuple[str, Any], ...]]


def first_stage(staged: Staged) -> list[Question]:
    """The questions of stage 1: one per tuned arm, and the warm start's supervised runs."""
    out = [
        Question(
            f"tune-{t.arm}",
            f"Tuning: {t.arm}",
            ("lr", "batch_size"),
            t.specs(),
            f"Grid on the tuning seeds {list(t.seeds)} (never reported), {t.budget:,} sampled "
            "completions (examples) per run whatever the batch; the pick (bold) has the best "
            "mean success over training. batch_size: completions (examples) per update; for DPO "
            "prompts per update, 4 completions each.",
        )
        for t in staged.tunings
    ]
    warm_note = (
        "The warm start: per seed, the supervised agent trained on 64 prompts disjoint from "
        "the RL prompts, stopped at a fixed number of updates chosen to land at 0.3-0.5 greedy "
        "success on its own prompts (the final column says where each landed)."
    )
    out.append(Question("warm-sl", "Warm start: the supervised checkpoints", ("agent",),
                        staged.warm, warm_note))  # fmt: skip
    return out


def staged_questions(staged: Staged, picks: Mapping[str, RunSpec]) -> list[Question]:
    """Stage 2 from the picks (arm -> tuned spec): Q1 SL vs RL vs DPO, Q2 the ladder (final vs
    every_token per answer length), Q3 the discount, Q4 exploration from scratch vs warm."""
    seeds = staged.seeds
    sl, fin, every, dpo = (picks[k] for k in ("supervised", "final", "every_token", "dpo"))
    # REINFORCE's runs score the test prompts too: Q2b reads them, and Q1's final run is the
    # ladder's first rung, Q3's gamma 1 its second and Q4's scratch run Q3's gamma 1
    fin, every = replace(fin, heldout=True), replace(every, heldout=True)
    chosen = ", ".join(f"{k}: lr {v.lr:g}, {v.batch_size} per update" for k, v in picks.items())
    q1 = Question(
        "sl-vs-rl",
        "Q1. Supervised vs REINFORCE vs DPO, tuned, on the same prompts",
        ("agent",),
        grid(sl, seeds) + grid(fin, seeds) + grid(dpo, seeds),
        f"{NOTES['sl-vs-rl']} Each arm at its tuned setting ({chosen}).",
    )
    ladder: list[RunSpec] = []
    for _, rung in staged.ladder.items():
        for spec in (fin, every):
            ladder += grid(replace(spec, task=rung), seeds)
    q2 = Question(
        "ladder",
        "Q2. final vs every_token credit along answer length (the ladder)",
        ("answer_length", "credit_mode"),
        tuple(ladder),
        "Copy over 4 letters with answers of 1-2, 3-4 and 6-8 letters (+ EOS), 16 train "
        "prompts each; REINFORCE at the tuned final and every_token settings.",
    )
    held_out = Question(
        "ladder-test",
        "Q2b. The ladder on held-out prompts",
        ("answer_length", "credit_mode"),
        tuple(ladder),
        "The runs of Q2, scored greedily at each of their evaluations on the 4 test prompts "
        "they never train on.",
        heldout=True,
    )
    gammas = (1.0, 0.9, 0.5)
    q3 = Question(
        "gamma",
        "Q3. The discount (REINFORCE, final credit, answers of 3-4 letters)",
        ("gamma",),
        grid(replace(fin, task=WARM_TASK), seeds, gamma=gammas),
        "gamma < 1 discounts R by gamma^(T-t): shorter correct answers score more, so it "
        "optimises E[gamma^T R] rather than J.",
    )
    scratch = replace(fin, task=WARM_TASK)
    explore = list(grid(scratch, seeds, entropy_coef=(0.0, 0.01)))
    for warm in staged.warm:
        start = replace(scratch, seed=warm.seed, init=warm.run_id)
        explore += [start, replace(start, entropy_coef=0.01), replace(start, kl_coef=0.05)]
        explore += [replace(dpo, task=WARM_TASK, seed=warm.seed, init=warm.run_id)]
    q4 = Question(
        "explore",
        "Q4. Exploration from scratch vs from a warm start (answers of 3-4 letters)",
        ("init_label", "variant"),
        tuple(explore),
        "REINFORCE (tuned final) with and without an entropy bonus of 0.01, from a random "
        "policy and from the warm start's checkpoint of the same seed; warm too: a KL penalty "
        "of 0.05 to that checkpoint, and DPO.",
    )
    return [q1, q2, held_out, q3, q4]


def make_staged(budget: int, seeds: tuple[int, ...], lrs: tuple[float, ...],
                completions: tuple[int, ...], warm_updates: int,
                tuning_seeds: tuple[int, ...]) -> Staged:  # fmt: skip
    """The staged part of a suite (tuning grid on ``LADDER['1-2']``)."""
    from .tuning import Tuning

    base = RunSpec("reinforce", LADDER["1-2"])
    arms = {
        "supervised": replace(base, agent="supervised"),
        "final": base,
        "every_token": replace(base, credit="every_token"),
        "dpo": replace(base, agent="dpo", group_size=4),
    }
    tunings = tuple(
        Tuning(name, spec, lrs, completions, budget, tuning_seeds) for name, spec in arms.items()
    )
    sl_task = disjoint_task(WARM_TASK)
    warm_base = RunSpec("supervised", sl_task, iterations=warm_updates, eval_every=2,
                        batch_size=64, checkpoint=True)  # fmt: skip
    return Staged(tunings, grid(warm_base, seeds), seeds, budget, LADDER)


# The warm start's supervised updates (64 examples each): measured on seeds 0-9, 8/10 land in
# 0.3-0.5 greedy success on their prompts (0.23-0.55); at 23 updates 8/10 too (0.25-0.41).
WARM_UPDATES = 24

# Question 7's scaling sizes: the full suite measures N from 1 to 16k and char/8k/32k/128k BPE
# (throughput.scaling's defaults); smoke and quick a few points and small BPEs (seconds).
SMOKE_SCALING: dict[str, dict[str, Any]] = {
    "scaling": {"num_envs": (1, 8), "vocabs": ("char", 300), "env_steps": 64, "max_steps": 8,
                "repeats": 1, "vocab_num_envs": 8, "bpe_words": 2_000},
    "goals": {"repeats": 1, "num_envs": 8, "steps": 4, "single_steps": 300, "bpe_vocab": 300,
              "bpe_words": 2_000, "small_num_envs": 2},
}  # fmt: skip
QUICK_SCALING: dict[str, dict[str, Any]] = {
    "scaling": {"num_envs": (1, 64, 1024), "vocabs": ("char", 2000), "env_steps": 100_000,
                "max_steps": 200, "repeats": 3, "bpe_words": 20_000},
    "goals": {"repeats": 3, "steps": 60, "single_steps": 20_000, "bpe_vocab": 2000,
              "bpe_words": 20_000},
}  # fmt: skip
# The goals' ratios sit near their bounds, so their runs are longer (about 0.1 s each) and more
# repeated than the scaling's: on this shared machine a 5-repeat ratio moved by up to 0.15.
FULL_SCALING: dict[str, dict[str, Any]] = {
    "scaling": {"repeats": 5},
    "goals": {"repeats": 9, "steps": 1000, "single_steps": 200_000},
}

# The exact-credit section (credit_exact.py) on the ladder's enumerable rung: the full suite
# measures every credit x baseline at 3 checkpoints; quick one checkpoint, fewer of each.
FULL_CREDIT_EXACT = CreditExactSpec(task=LADDER["1-2"])
QUICK_CREDIT_EXACT = CreditExactSpec(
    task=LADDER["1-2"],
    levels=(0.25,),
    credits=(("final", 1.0), ("every_token", 1.0), ("final", 0.5)),
    baselines=("none", "rloo", "value"),
    batch_sizes=(8, 64, 512),
    asymmetry_pairs=0,  # ~4 s a credit mode: the full suite's
)

SUITES: dict[str, Suite] = {
    # Seconds: CI and the tests (two seeds, two updates or 64 env steps per run).
    "smoke": Suite(
        "smoke",
        tuple(
            learning_questions(
                replace(QUICK_BASE, iterations=2, eval_every=1),
                (0, 1),
                64 * 3 * 2,
                ("sl-vs-rl", "credit", "sb3"),
            )
        ),
        {"repeats": 1, "single_steps": 300, "num_envs": 8, "vector_steps": 3, "sync_steps": 2},
        ("supervised", "reinforce"),
        {"iterations": 2, "total_timesteps": 64},
        env_scaling=SMOKE_SCALING,
    ),
    # Under 3 minutes on 2 cores with --workers 2: one question of every part at a small
    # budget: the tuning stage (2 learning rates), the warm start, Q1-Q4 on 2 seeds, Q7 (speed).
    "quick": Suite(
        "quick",
        (),
        {"repeats": 3, "single_steps": 30_000, "vector_steps": 60, "sync_steps": 6},
        agent_measure={"iterations": 10, "total_timesteps": 1024},
        env_scaling=QUICK_SCALING,
        staged=make_staged(5_120, (0, 1), (1e-3, 3e-3), (256,), 22, (900,)),
        credit_exact=QUICK_CREDIT_EXACT,
    ),
    # At most 75 minutes on 2 cores with --workers 2: every arm tuned (4 lrs x 3 batch sizes, 2
    # tuning seeds), Q1-Q4 on 20 evaluation seeds, Q5 (baselines) and Q6 (SB3) on 10, and
    # Q7 (throughput).
    "full": Suite(
        "full",
        tuple(
            replace(q, key=q.key, title=title)
            for q, title in zip(
                learning_questions(FULL_BASE, FULL_SEEDS, 20_160, ("baseline", "sb3")),
                (
                    "Q5. Baselines (REINFORCE, final credit)",
                    "Q6. REINFORCE vs SB3 at an equal env-step budget",
                ),
            )
        ),
        {"repeats": 15, "single_steps": 300_000, "vector_steps": 600, "sync_steps": 60},
        agent_measure={"iterations": 50, "total_timesteps": 8192},
        env_scaling=FULL_SCALING,
        staged=make_staged(
            25_600,
            tuple(range(20)),
            (3e-4, 1e-3, 3e-3, 1e-2),
            (64, 256, 512),
            WARM_UPDATES,
            TUNING_SEEDS,
        ),
        credit_exact=FULL_CREDIT_EXACT,
    ),
}

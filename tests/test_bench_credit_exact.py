"""The exact-credit section (benchmarks/credit_exact.py) on a tiny enumerable task.

Copy of 1 letter over {a, b}, one train prompt: 7 episodes, so every estimator's groups (of 2)
and the mean baseline's batches of 2 enumerate, and the unbiased rows must be exact to 1e-9.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from tokengym.agents.exact import Estimator, Exact, enumerate_task
from tokengym.agents.policies import GRUConfig, GRUPolicy
from tokengym.bench import credit_exact, credit_report, report, runner
from tokengym.bench.credit_spec import CREDIT_EXACT, CREDIT_EXACT_FILE, CreditExactSpec
from tokengym.bench.credit_stats import compact, sampled
from tokengym.bench.run_spec import RunSpec, task
from tokengym.bench.suites import SUITES

from tokengym.errors import ConfigError

TINY = task("copy", min_length=1, max_length=1, alphabet_size=2, train_size=1, test_size=1)
SPEC = CreditExactSpec(
    task=TINY,
    levels=(0.0, 0.5),
    credits=(("final", 1.0), ("every_token", 1.0), ("final", 0.5)),
    baselines=("none", "mean", "rloo", "value"),
    batch_sizes=(2, 4),
    group_size=2,
    train_batch=16,
    lr=1e-2,
    max_updates=50,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("exact")
    assert credit_exact.run(SPEC, out)
    return out


@pytest.fixture(scope="module")
def record(folder):
    return json.loads((folder / CREDIT_EXACT_FILE).read_text())


def rows(point):
    return {r["estimator"]: r for r in point["rows"]}


def test_checkpoints_are_kept_at_the_levels(record) -> None:
    points = record["checkpoints"]
    assert [p["level"] for p in points] == [0.0, 0.5] and record["missing_levels"] == []
    assert points[0]["updates"] == 0 and points[0]["J"] == pytest.approx(record["J_curve"][0])
    assert points[1]["J"] >= 0.5 > record["J_curve"][points[1]["updates"] - 1]
    assert record["episodes"] == 7 and record["prompts"] == 1


@pytest.mark.parametrize(
    ("name", "norm"),
    [("final, none", 1.0), ("final, rloo", 1.0), ("final, value", 1.0), ("final, mean", 0.5)],
)
def test_unbiased_rows_are_exact(record, name, norm) -> None:
    for point in record["checkpoints"]:
        bias = rows(point)[name]["bias"]
        assert bias["exact"] and bias["batch_size"] == 2  # mean: 1 - 1/B at B = 2
        assert bias["cosine"] == pytest.approx(1.0, abs=1e-9)
        assert bias["relative_norm"] == pytest.approx(norm, abs=1e-9)


@pytest.mark.parametrize("name", ["every_token, none", "final g=0.5, none", "final g=0.5, rloo"])
def test_biased_rows_are_not(record, name) -> None:
    for point in record["checkpoints"]:
        bias = rows(point)[name]["bias"]
        assert bias["exact"] and bias["cosine"] < 1 - 1e-3
        assert set(bias["objectives"]) >= {"E[R]", "E[T R]"}


def test_every_token_and_discounted_means_are_no_gradient_field(record) -> None:
    asym = record["checkpoints"][-1]["asymmetry"]
    assert asym["final"] < 1e-6  # grad J: a gradient field (finite-difference noise only)
    assert asym["every_token"] > 1e-3 and asym["final g=0.5"] > 1e-3
    assert record["checkpoints"][0]["asymmetry"] == {}  # the last checkpoint only


def test_exact_variance_falls_as_one_over_b_and_value_has_no_zero_advantage(record) -> None:
    for point in record["checkpoints"]:
        row = rows(point)["final, none"]
        two, four = row["batches"]["2"], row["batches"]["4"]
        assert two["exact"] and four["variance"] == pytest.approx(two["variance"] / 2, rel=1e-9)
        assert 0.0 <= two["batch_cosine_ci"][0] <= two["batch_cosine"] <= 1.0
        assert rows(point)["final, value"]["zero_advantage_share"] == 0.0


def test_factor_coordinates_are_an_isometry_and_monte_carlo_matches_exact_py() -> None:
    """grad J in node-factor coordinates has the norm of autograd's; ``sampled`` draws the
    batches of ``Exact.monte_carlo_stats`` and gives its variance and shares."""
    kwargs = dict(RunSpec("reinforce", TINY).env_kwargs)
    torch.manual_seed(0)

    tk = enumerate_task(kwargs)
    policy = GRUPolicy(GRUConfig(vocab_size=int(tk.masks.shape[-1]), hidden_size=16)).double()
    comp = compact(policy, tk)
    grad_j = Exact(policy, tk).objective_gradient()
    mine = comp.gradient_of(tk.sequence_reward)
    assert float(mine.norm()) == pytest.approx(float(grad_j.norm()), rel=1e-9)
    est = Estimator(baseline="rloo", group_size=2)
    ours = sampled(comp, est, comp.exact.values("final", 1.0), 4, mine, batches=1000, seed=5)
    theirs = comp.exact.monte_carlo_stats(est, 4, batches=1000, seed=5)
    assert ours.variance == pytest.approx(theirs.variance, rel=1e-9)
    assert ours.zero_advantage_share == pytest.approx(theirs.zero_advantage_share, abs=1e-12)
    assert ours.advantage_correlation == pytest.approx(theirs.advantage_correlation, abs=1e-9)


def test_report_renders_the_tables_sentences_and_plot(folder, record) -> None:
    (folder / report.SUITE_FILE).write_text(json.dumps({"name": "t", "questions": []}))
    text = report.build(folder)
    assert "## Credit measured exactly" in text and "- **Credit measured exactly.**" in text
    assert text.count("### J = ") == 2
    assert "| final, rloo | 1.000000 | 1.0000 | " in text
    assert "**What each biased estimator optimises instead of J**" in text
    assert "**Lowest-variance unbiased estimator" not in text  # no suite batch size here
    assert "![credit exact](credit_exact.png)" in text
    png = folder / credit_report.PLOT_FILE
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    low = credit_report.lowest_variance(record, (2, 4))
    assert len(low) == 2 and "B=2: " in low[0]


def test_resume_does_not_recompute(folder, monkeypatch) -> None:
    before = (folder / CREDIT_EXACT_FILE).read_bytes()

    def fail(spec):
        raise AssertionError("measured again")

    monkeypatch.setattr(credit_exact, "measure", fail)
    assert credit_exact.run(SPEC, folder) is False
    assert (folder / CREDIT_EXACT_FILE).read_bytes() == before
    assert not list(folder.glob("*.tmp"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"levels": (0.5, 0.25)}, "levels"),
        ({"levels": (1.0,)}, "levels"),
        ({"credits": (("final", 1.5),)}, "credits"),
        ({"credits": (("dense", 1.0),)}, "credits"),
        ({"baselines": ("vine",)}, "baselines"),
        ({"batch_sizes": (0,)}, "batch_sizes"),
        ({"mc_batches": 999}, "mc_batches"),
        ({"train_batch": 17}, "train_batch"),
        ({"task": (("min_length", 1),)}, "task"),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(change, field) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}="):
        replace(SPEC, **change)


def test_the_suites_carry_the_section() -> None:
    assert CREDIT_EXACT in SUITES["quick"].keys and CREDIT_EXACT in SUITES["full"].keys
    assert CREDIT_EXACT not in SUITES["smoke"].keys
    assert runner.select(SUITES["quick"], [CREDIT_EXACT]) == []  # no learning runs
    full = SUITES["full"].credit_exact
    assert full.levels == (0.0, 0.25, 0.5) and len(full.estimators()) == 20
    assert full.batch_sizes == (8, 16, 64, 256, 512) and full.mc_batches >= 1000

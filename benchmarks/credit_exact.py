"""Credit measured exactly: estimators' bias and variance against the exact grad J.

On a ladder task small enough to enumerate every completion (``LADDER["1-2"]``: copy 1-2 of 4
letters, 16 train prompts, 1,360 episodes), REINFORCE trains the suite's own policy (the GRU
every suite run trains, seeded like it) with a fixed, seeded schedule; J, the exact expected
success of the *sampling* policy on the train prompts, is computed after each update, and the
weights are kept when J first reaches each of the spec's levels (about 0, 0.25 and 0.5). At each
checkpoint (policy in float64) every estimator (credit mode x baseline) is measured against the
exact grad J: the cosine and relative norm of its expected gradient (its bias), the variance of
one batch's gradient at each batch size, the mean cosine of one batch's gradient with grad J,
the correlation of its advantages with the exact A(s_t, a_t) and its zero-advantage shares.
Exact (``Exact.estimator_stats``) where every batch or group can be enumerated, else Monte Carlo
(``credit_stats.sampled``) over ``mc_batches`` batches with 95% CIs. For the biased estimators
the cosine with the gradients of candidate objectives (E[T R], E[gamma^(T-1) R]) says what they
optimise instead. One ``credit_exact.json`` per results folder (present means done).
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..agents.checkpoint import write_atomic
from ..agents.exact import Estimator, cosine, enumerate_task, relative_norm
from .credit_spec import CREDIT_EXACT_FILE, CreditExactSpec, credit_label
from .credit_stats import asymmetry, compact, sampled
from .run_spec import RunSpec


def expected_success(policy: torch.nn.Module, task: Any) -> float:
    """J: the exact expected success (mean R) of the sampling policy on the train prompts."""
    from ..agents.exact import token_logprobs

    with torch.no_grad():
        logp = token_logprobs(policy, task).sum(1).double()
    return float((logp.exp() * task.sequence_reward).sum() / task.num_prompts)


def checkpoints(spec: CreditExactSpec, task: Any) -> tuple[list[dict[str, Any]], list[float]]:
    """Train REINFORCE (the suite's agent and policy) and keep the weights at each level.

    Returns:
        ([{"level", "J", "updates", "episodes", "policy"}], J after every update, update 0
        first). Levels not reached within ``max_updates`` are left out.
    """
    from ..agents.train import make_agent

    run = RunSpec("reinforce", spec.task, batch_size=spec.train_batch, lr=spec.lr,
                  seed=spec.seed, group_size=spec.group_size)  # fmt: skip
    agent = make_agent(run.train_config(Path(tempfile.gettempdir()) / "credit-exact-unused"))
    kept: list[dict[str, Any]] = []
    curve = [expected_success(agent.policy, task)]
    pending = list(spec.levels)
    for update in range(spec.max_updates + 1):
        if update:
            agent.train_iteration()
            curve.append(expected_success(agent.policy, task))
        while pending and curve[-1] >= pending[0]:
            kept.append({"level": pending.pop(0), "J": curve[-1], "updates": update,
                         "episodes": update * spec.train_batch,
                         "policy": copy.deepcopy(agent.policy).double()})  # fmt: skip
        if not pending:
            break
    return kept, curve


MAX_BATCHES = 200_000  # Exact.estimator_stats's default limit


def enumerable(task: Any, est: Estimator, batch: int, limit: int = MAX_BATCHES) -> bool:
    """Whether ``Exact.estimator_stats`` can enumerate ``est`` at ``batch`` (counted first:
    it would build every group before refusing)."""
    k = est.group_size
    groups = sum(len(task.episodes_of(x)) ** k for x in range(task.num_prompts))
    return groups ** (batch // k if est.couples_groups else 1) <= limit


def _exact_or_none(exact: Any, est: Estimator, batch: int) -> Any:
    if not enumerable(exact.task, est, batch):
        return None
    return exact.estimator_stats(est, batch, max_batches=MAX_BATCHES)


def objectives(comp: Any, gamma: float) -> dict[str, torch.Tensor]:
    """Gradients of the objectives an estimator may optimise: J = E[R], E[T R] (T: the
    answer's tokens, EOS included) and, for gamma < 1, E[gamma^(T-1) R]."""
    task = comp.exact.task
    r, length = task.sequence_reward, task.valid.sum(1).double()
    out = {"E[R]": comp.gradient_of(r), "E[T R]": comp.gradient_of(length * r)}
    if gamma < 1.0:
        out[f"E[{gamma:g}^(T-1) R]"] = comp.gradient_of(gamma ** (length - 1) * r)
    return out


def measure_checkpoint(
    spec: CreditExactSpec, point: dict[str, Any], task: Any, last: bool = False
) -> dict[str, Any]:
    """Every estimator's statistics at one checkpoint (see the module docstring); at the
    ``last`` one also each credit mode's gradient-field asymmetry."""
    comp = compact(point["policy"], task)
    exact = comp.exact
    grad_j = comp.gradient_of(task.sequence_reward)
    values = {pair: exact.values(*pair) for pair in dict.fromkeys(spec.credits)}
    rows = []
    for label, est in spec.estimators():
        vals = values[(est.credit, est.gamma)]
        sizes = [b for b in spec.batch_sizes if b % est.group_size == 0]
        cells: dict[str, Any] = {}
        for b in sizes:
            mc = sampled(comp, est, vals, b, grad_j, spec.mc_batches, spec.seed)
            ex = _exact_or_none(exact, est, b)
            cell = {"batch_cosine": mc.batch_cosine, "batch_cosine_ci": list(mc.batch_cosine_ci)}
            if ex is not None:
                cell |= {"exact": True, "variance": ex.variance, "mean": ex.expected_gradient}
                cell |= {"advantage_correlation": ex.advantage_correlation,
                         "zero_advantage_share": ex.zero_advantage_share,
                         "zero_group_share": ex.zero_group_share}  # fmt: skip
            else:
                cell |= {"exact": False, "variance": mc.variance,
                         "variance_ci": list(mc.variance_ci), "mean": mc.mean,
                         "projection": mc.projection, "projection_ci": list(mc.projection_ci),
                         "advantage_correlation": mc.advantage_correlation,
                         "zero_advantage_share": mc.zero_advantage_share,
                         "zero_group_share": mc.zero_group_share}  # fmt: skip
            cells[str(b)] = cell
        if not cells:
            continue
        # the bias: exact at the smallest enumerable size, else Monte Carlo at the largest
        exact_sizes = [b for b in cells if cells[b]["exact"]]
        at = exact_sizes[0] if exact_sizes else list(cells)[-1]
        if est.couples_groups:  # the mean baseline's bias depends on B: at 64 where measured
            at = "64" if "64" in cells else at
        mean = cells[at]["mean"]
        bias = {"batch_size": int(at), "exact": cells[at]["exact"], "cosine": cosine(mean, grad_j),
                "relative_norm": relative_norm(mean, grad_j)}  # fmt: skip
        if not cells[at]["exact"]:
            bias |= {"projection": cells[at]["projection"],
                     "projection_ci": cells[at]["projection_ci"]}  # fmt: skip
        targets = objectives(comp, est.gamma)
        bias["objectives"] = {
            name: {"cosine": cosine(mean, g), "relative_norm": relative_norm(mean, g)}
            for name, g in targets.items()
        }
        for cell in cells.values():
            cell.pop("mean")
        first = cells[next(iter(cells))]
        rows.append({
            "estimator": label, "credit": est.credit, "gamma": est.gamma,
            "baseline": est.baseline, "group_size": est.group_size,
            "scale_rewards": est.scale_rewards, "bias": bias, "batches": cells,
            "advantage_correlation": first["advantage_correlation"],
            "zero_advantage_share": first["zero_advantage_share"],
            "zero_group_share": first["zero_group_share"],
        })  # fmt: skip
    pairs = spec.credits if last and spec.asymmetry_pairs else ()
    fields = {
        credit_label(c, g): asymmetry(
            point["policy"], task, c, g, spec.asymmetry_pairs, seed=spec.seed
        )
        for c, g in pairs
    }
    return {
        "level": point["level"],
        "J": point["J"],
        "updates": point["updates"],
        "episodes": point["episodes"],
        "grad_j_norm": float(grad_j.norm()),
        "nodes": int(comp.factor.shape[0]),
        "asymmetry": fields,
        "rows": rows,
    }


def measure(spec: CreditExactSpec) -> dict[str, Any]:
    """The section's record: the spec, the training curve and every checkpoint's rows."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        task = enumerate_task(dict(RunSpec("reinforce", spec.task).env_kwargs))
        kept, curve = checkpoints(spec, task)
        points = [measure_checkpoint(spec, p, task, p is kept[-1]) for p in kept]
    finally:
        torch.set_num_threads(threads)
    missing = [lv for lv in spec.levels if lv not in [p["level"] for p in kept]]
    return {
        "spec": asdict(spec),
        "episodes": len(task.prompt),
        "prompts": task.num_prompts,
        "J_curve": curve,
        "missing_levels": missing,
        "checkpoints": points,
        "wall_seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
    }


def run(spec: CreditExactSpec, out: Path) -> bool:
    """Measure into ``out/credit_exact.json`` unless it is there (resume); True if measured."""
    path = out / CREDIT_EXACT_FILE
    if path.exists():
        return False
    write_atomic(path, (json.dumps(measure(spec), indent=1) + "\n").encode())
    return True

"""Fast exact and sampled estimator statistics in the score vectors' own coordinates.

Every gradient of the exact-credit section is a combination ``sum_r c_r s_r`` of the score
vectors ``s_r = grad log pi(a_t | s_t)`` of the enumerated steps. Many steps share one
(prompt, prefix, action) node, hence one score vector: the 1,360 episodes of the suite's copy
task have 3,984 steps but 1,344 distinct nodes. :func:`compact` computes the nodes' Jacobian
once, its Gram matrix ``G`` and a factor ``F`` with ``F F^T = G`` (eigen-decomposition), and
hands ``F`` to :class:`~tokengym.agents.exact.Exact` as its Jacobian: every inner product, norm,
cosine and covariance trace is the one of the network's parameters (an isometry), at 1,344
coordinates instead of 76,040.

:func:`sampled` is :meth:`Exact.monte_carlo_stats` (the same draws for the same seed) that
scatters each batch's coefficients onto the nodes and multiplies once, so 1,000 batches of 512
cost a fraction of a second; it also returns each batch's cosine with a reference gradient.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..agents.advantages import estimate_advantages, token_weights
from ..agents.exact import Z95, ZERO, EnumeratedTask, Estimator, Exact, ExactValues, flat_grad
from ..agents.policies import masked_logits


@dataclass(frozen=True)
class Compact:
    """An :class:`Exact` whose Jacobian is the node factor, and the node map.

    Attributes:
        exact: the Exact (its ``jacobian()`` is (N, T, r) in factor coordinates).
        node: (N, T) int64 node of each step (0 past the end: its coefficient is 0).
        factor: (n, r) F, one row per node.
    """

    exact: Exact
    node: torch.Tensor
    factor: torch.Tensor

    def gradient_of(self, weights: torch.Tensor) -> torch.Tensor:
        """(r,) ``E[f(x, y) sum_t grad log pi(a_t|s_t)]`` = grad E[f] for per-episode ``weights``
        f (N,): the score-function identity summed exactly over the enumerated episodes."""
        ex = self.exact
        coef = (ex.weight * weights)[:, None] * ex.task.valid  # (N, T)
        return (coef.flatten() @ ex.jacobian().flatten(0, 1)).detach()


def compact(policy: torch.nn.Module, task: EnumeratedTask) -> Compact:
    """The :class:`Compact` of ``policy`` (float64) on an enumerated ``task``."""
    exact = Exact(policy, task)
    nodes: dict[tuple[int, tuple[int, ...]], int] = {}
    node = torch.zeros(task.actions.shape, dtype=torch.long)
    grads: list[torch.Tensor] = []
    for e in range(len(task.prompt)):
        p, length = int(task.prompt[e]), int(task.valid[e].sum())
        acts = task.actions[e, :length].tolist()
        keys = [(p, tuple(acts[: t + 1])) for t in range(length)]
        if all(k in nodes for k in keys):
            node[e, :length] = torch.tensor([nodes[k] for k in keys])
            continue
        seq = [task.bos_id, *task.prompt_ids[p], task.sep_id, *acts]
        start = len(task.prompt_ids[p]) + 1
        logits = policy(torch.tensor([seq]))[0, start : start + length]  # (t, V)
        logp = masked_logits(logits, task.masks[e, :length]).log_softmax(-1)
        chosen = logp[torch.arange(length), task.actions[e, :length]]
        for t, k in enumerate(keys):
            if k not in nodes:
                nodes[k] = len(grads)
                grads.append(flat_grad(chosen[t], policy).detach())
            node[e, t] = nodes[k]
    jac = torch.stack(grads)  # (n, P)
    gram = jac @ jac.T  # (n, n)
    del jac
    vals, vecs = torch.linalg.eigh(gram)
    factor = vecs * vals.clamp(min=0.0).sqrt()  # (n, n): F F^T = G
    exact._jacobian = factor[node] * task.valid[..., None]  # (N, T, n)
    exact._gram = None
    full_rows = node.flatten()
    mask = task.valid.flatten().to(gram.dtype)
    exact._gram = gram[full_rows[:, None], full_rows[None, :]] * mask[:, None] * mask[None, :]
    return Compact(exact, node, factor)


@dataclass
class Sampled:
    """What :func:`sampled` measures over its batches (95% CIs from the batches' spread).

    Attributes:
        mean: (r,) mean batch gradient; ``projection``: its component along ``reference``
            over ``|reference|`` with a CI (1 for an unbiased estimator).
        variance: trace of the batch gradient's covariance, with ``variance_ci``.
        batch_cosine: mean over batches of one batch's cosine with ``reference`` (a batch with
            a zero gradient counts 0), with ``batch_cosine_ci``.
        advantage_correlation, zero_advantage_share, zero_group_share: as in ``EstimatorStats``.
    """

    mean: torch.Tensor
    projection: float
    projection_ci: tuple[float, float]
    variance: float
    variance_ci: tuple[float, float]
    batch_cosine: float
    batch_cosine_ci: tuple[float, float]
    advantage_correlation: float
    zero_advantage_share: float
    zero_group_share: float
    batches: int


def _ci(x: torch.Tensor) -> tuple[float, float, float]:
    m = float(x.mean())
    half = Z95 * float(x.std()) / np.sqrt(len(x))
    return m, m - half, m + half


def sampled(
    comp: Compact,
    est: Estimator,
    values: ExactValues,
    batch_size: int,
    reference: torch.Tensor,
    batches: int = 1000,
    seed: int = 0,
    chunk: int = 2**21,
) -> Sampled:
    """Monte Carlo statistics of ``est`` over ``batches`` batches of ``batch_size`` episodes.

    Args:
        comp: from :func:`compact`.
        est: the estimator (``batch_size`` must be a multiple of its ``group_size``).
        values: ``exact.values(est.credit, est.gamma)`` (V for value baselines, exact A).
        reference: (r,) the gradient the batches are compared with (grad J).
        chunk: batch-steps per pass (memory).
    """
    ex, task, k = comp.exact, comp.exact.task, est.group_size
    if est.gae_lambda is not None:
        raise ValueError("sampled() measures A = G - b estimators; gae_lambda must be None")
    if batch_size % k:
        raise ValueError(
            f"batch_size={batch_size} is not a multiple of group_size={est.group_size}"
        )
    idx = ex.sample_batches(est.group_size, batch_size, batches, seed)
    g_all = ex.returns(est.credit, est.gamma).detach()
    horizon = task.horizon
    step = max(1, chunk // (batch_size * horizon))
    grads, corr, zeros, zero_groups = [], torch.zeros(6, dtype=torch.float64), [], []
    for lo in range(0, batches, step):
        ix = idx[lo : lo + step]  # (m, B)
        valid = task.valid[ix]  # (m, B, T)
        adv = estimate_advantages(
            g_all[ix],
            valid,
            baseline=est.baseline,
            group_size=est.group_size,
            values=values.v[ix],
            gamma=est.gamma,
            scale_rewards=est.scale_rewards,
            normalize_advantages=est.normalize_advantages,
        )
        coef = adv * token_weights(valid, est.loss_agg_mode, horizon, adv.dtype)  # (m, B, T)
        dense = torch.zeros(len(ix), comp.factor.shape[0], dtype=torch.float64)
        dense.scatter_add_(1, comp.node[ix].flatten(1), coef.flatten(1))
        grads.append(dense @ comp.factor)  # (m, r)
        a_exact, w = values.a[ix], valid.to(torch.float64)
        sums = [w, w * adv, w * a_exact, w * adv**2, w * a_exact**2, w * adv * a_exact]
        corr += torch.stack([x.sum() for x in sums])
        zero = ((adv.abs() <= ZERO) | ~valid).all(-1)  # (m, B)
        zeros.append(zero.to(torch.float64).mean(1))
        zero_groups.append(zero.unflatten(1, (-1, est.group_size)).all(-1).double().mean(1))
    g = torch.cat(grads)  # (M, r)
    mean = g.mean(0)
    ref_norm = reference.norm()
    proj = g @ reference / ref_norm**2  # (M,)
    norms = g.norm(dim=1)
    cos = torch.where(norms > 0, g @ reference / (norms.clamp(min=1e-300) * ref_norm), 0.0)
    comp_var = g.var(0)
    variance = float(comp_var.sum())
    dev = ((g - mean) ** 2).sum(1) * len(g) / (len(g) - 1)
    half = Z95 * float(dev.std()) / np.sqrt(len(g))
    s, sx, sy, sxx, syy, sxy = corr.tolist()
    sd = np.sqrt(max(sxx / s - (sx / s) ** 2, 0.0) * max(syy / s - (sy / s) ** 2, 0.0))
    p_mean, p_lo, p_hi = _ci(proj)
    c_mean, c_lo, c_hi = _ci(cos)
    return Sampled(
        mean=mean,
        projection=p_mean,
        projection_ci=(p_lo, p_hi),
        variance=variance,
        variance_ci=(variance - half, variance + half),
        batch_cosine=c_mean,
        batch_cosine_ci=(c_lo, c_hi),
        advantage_correlation=(sxy / s - sx / s * sy / s) / sd if sd > 1e-15 else float("nan"),
        zero_advantage_share=float(torch.cat(zeros).mean()),
        zero_group_share=float(torch.cat(zero_groups).mean()),
        batches=batches,
    )


def asymmetry(
    policy: torch.nn.Module,
    task: EnumeratedTask,
    credit: str,
    gamma: float,
    pairs: int = 2,
    eps: float = 1e-4,
    seed: int = 0,
) -> float:
    """Whether the plain estimator's mean ``g(theta)`` is the gradient of any objective.

    A field is a gradient exactly when its Jacobian is symmetric; this measures
    ``|u^T Dg v - v^T Dg u| / (|u^T Dg v| + |v^T Dg u|)`` for random directions u, v (central
    differences of the exact ``Exact.surrogate_gradient``, float64), the largest over ``pairs``
    pairs: finite-difference noise (~1e-6 or less) for a gradient field such as grad J, order
    1 for a field that is no objective's gradient.
    """
    params = [p for p in policy.parameters() if p.requires_grad]
    size = sum(p.numel() for p in params)
    gen = torch.Generator().manual_seed(seed)

    def field_at(shift: torch.Tensor) -> torch.Tensor:
        moved = copy.deepcopy(policy)
        with torch.no_grad():
            offset = 0
            for p in (q for q in moved.parameters() if q.requires_grad):
                p.add_(shift[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        return Exact(moved, task).surrogate_gradient(credit, gamma).detach()

    worst = 0.0
    for _ in range(pairs):
        u, v = (torch.randn(size, generator=gen, dtype=torch.float64) for _ in range(2))
        u, v = u / u.norm(), v / v.norm()
        duv = float((field_at(eps * u) - field_at(-eps * u)) @ v) / (2 * eps)
        dvu = float((field_at(eps * v) - field_at(-eps * v)) @ u) / (2 * eps)
        worst = max(worst, abs(duv - dvu) / max(abs(duv) + abs(dvu), 1e-300))
    return worst

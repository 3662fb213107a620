"""Exact quantities of a task small enough to enumerate every completion.

Prompts are uniform over the train split (rho), transitions append the token, and R is a
deterministic function of (prompt, completion), so every expectation over ``x ~ rho, y ~ pi`` is a
finite sum over the enumerated episodes. :func:`enumerate_task` lists them (by stepping the env);
:class:`Exact` holds a policy's log-probabilities on them and computes:

- ``objective()`` J and ``objective_gradient()`` grad J (autograd through the exact sum);
- ``surrogate_gradient(credit, gamma)``: the mean of ``sum_t grad log pi(a_t|s_t) G_t`` for a credit
  mode whose G_t is not the return of a fixed objective (every_token, gamma < 1);
- ``values(credit, gamma)``: V(s_t), Q(s_t, a_t) and A(s_t, a_t) of every visited prefix;
- ``estimator_stats(estimator, batch_size)``: an estimator's expected gradient, the trace of its
  covariance at that batch size, the correlation of its per-token advantages with the exact
  A(s_t, a_t), and its shares of zero-advantage samples and groups. Exact by enumerating every
  batch (or every group, for estimators that treat groups independently) when there are at most
  ``max_batches`` of them; :meth:`Exact.monte_carlo_stats` estimates the same from sampled
  batches, with 95% confidence intervals.

The estimator is evaluated through the training code's own pure functions
(``returns.returns``, ``advantages.estimate_advantages``, ``advantages.token_weights``), so what is
measured is what trains. Baselines that read values (``"value"``, ``"vine"``) get the exact V here.

Example:
    >>> task = enumerate_task({"dataset": data, "max_new_tokens": 2})  # doctest: +SKIP
    >>> exact = Exact(policy.double(), task)  # doctest: +SKIP
    >>> grad_j = exact.objective_gradient()  # doctest: +SKIP
    >>> stats = exact.estimator_stats(Estimator(baseline="rloo", group_size=2), batch_size=8)
    >>> cosine(stats.expected_gradient, grad_j)  # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .advantages import estimate_advantages, token_weights
from .policies import Policy, masked_logits
from .returns import returns, step_rewards

Z95 = 1.959963984540054  # two-sided 95% normal quantile
ZERO = 1e-12  # an advantage at most this in magnitude counts as zero


@dataclass(frozen=True)
class EnumeratedTask:
    """Every episode of every train prompt, padded to the env's ``max_new_tokens`` T.

    Attributes:
        env_kwargs: the ``gym.make("TokenGen-v0", ...)`` arguments.
        prompt: (N,) int64 prompt index of each episode.
        actions: (N, T) int64 tokens (0 past the end).
        valid: (N, T) bool real steps.
        masks: (N, T, V) bool legal actions at each step.
        rewards: (N, T) float64 the env's per-step rewards.
        sequence_reward: (N,) float64 R.
        prompt_ids: token ids of each prompt.
        bos_id, sep_id: the tokenizer's BOS and SEP.
    """

    env_kwargs: dict[str, Any]
    prompt: torch.Tensor
    actions: torch.Tensor
    valid: torch.Tensor
    masks: torch.Tensor
    rewards: torch.Tensor
    sequence_reward: torch.Tensor
    prompt_ids: list[list[int]]
    bos_id: int
    sep_id: int

    @property
    def num_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]

    def episodes_of(self, prompt: int) -> torch.Tensor:
        """Indices of the episodes of one prompt."""
        return torch.nonzero(self.prompt == prompt)[:, 0]


def enumerate_task(env_kwargs: dict[str, Any], max_episodes: int = 100_000) -> EnumeratedTask:
    """Step the env through every completion of every train prompt.

    Args:
        env_kwargs: the env's arguments (the train split is enumerated).
        max_episodes: refuse tasks with more episodes than this.

    Returns:
        The :class:`EnumeratedTask`.
    """
    env = gym.make("TokenGen-v0", **env_kwargs).unwrapped
    horizon = int(env.max_new_tokens)
    found: list[tuple[int, list[int], list[np.ndarray], list[float], float]] = []

    def replay(i: int, prefix: list[int]) -> Any:
        env.reset(options={"prompt_index": i})
        out = None
        for a in prefix:
            out = env.step(a)
        return out

    def walk(i: int, prefix: list[int], masks: list[np.ndarray], rewards: list[float]) -> None:
        replay(i, prefix)
        mask = np.asarray(env.action_masks(), dtype=bool)
        for a in np.flatnonzero(mask):
            replay(i, prefix)
            _, reward, term, trunc, info = env.step(int(a))
            actions, seen = [*prefix, int(a)], [*rewards, float(reward)]
            if term or trunc:
                found.append((i, actions, [*masks, mask], seen, float(info["sequence_reward"])))
                if len(found) > max_episodes:
                    raise ValueError(
                        f"the task has more than max_episodes={max_episodes} episodes; "
                        f"enumerate a smaller one"
                    )
            else:
                walk(i, actions, [*masks, mask], seen)

    for i in range(env.num_prompts):
        walk(i, [], [], [])
    n, vocab = len(found), env.tokenizer.vocab_size
    actions = torch.zeros(n, horizon, dtype=torch.long)
    valid = torch.zeros(n, horizon, dtype=torch.bool)
    masks = torch.ones(n, horizon, vocab, dtype=torch.bool)
    rewards = torch.zeros(n, horizon, dtype=torch.float64)
    for e, (_, acts, ms, rs, _) in enumerate(found):
        length = len(acts)
        actions[e, :length] = torch.tensor(acts)
        valid[e, :length] = True
        masks[e, :length] = torch.from_numpy(np.stack(ms))
        rewards[e, :length] = torch.tensor(rs, dtype=torch.float64)
    return EnumeratedTask(
        env_kwargs=dict(env_kwargs),
        prompt=torch.tensor([f[0] for f in found], dtype=torch.long),
        actions=actions,
        valid=valid,
        masks=masks,
        rewards=rewards,
        sequence_reward=torch.tensor([f[4] for f in found], dtype=torch.float64),
        prompt_ids=[list(map(int, p)) for p in env.prompt_ids],
        bos_id=int(env.tokenizer.bos_id),
        sep_id=int(env.tokenizer.sep_id),
    )


def token_logprobs(policy: Policy, task: EnumeratedTask) -> torch.Tensor:
    """(N, T) ``log pi(a_t | s_t)`` of every episode (0 past the end), with gradient.

    Episodes of equal total length run as one unpadded batch, so no padding is involved.
    """
    rows, cols, pieces = [], [], []
    lengths = task.valid.sum(1)
    keys = [(int(task.prompt[e]), int(lengths[e])) for e in range(len(lengths))]
    by_size: dict[int, list[int]] = {}
    for e, (p, length) in enumerate(keys):
        by_size.setdefault(len(task.prompt_ids[p]) + length, []).append(e)
    for members in by_size.values():
        seqs, starts, steps = [], [], []
        for e in members:
            p, length = keys[e]
            seqs.append([task.bos_id, *task.prompt_ids[p], task.sep_id, *task.actions[e, :length]])
            starts.append(len(task.prompt_ids[p]) + 1)
            steps.append(length)
        logits = policy(torch.tensor(seqs))  # (n, L, V)
        for j, e in enumerate(members):
            at = logits[j, starts[j] : starts[j] + steps[j]]  # (t, V)
            logp = masked_logits(at, task.masks[e, : steps[j]]).log_softmax(-1)
            pieces.append(logp[torch.arange(steps[j]), task.actions[e, : steps[j]]])
            rows += [e] * steps[j]
            cols += list(range(steps[j]))
    dtype = next(policy.parameters()).dtype
    out = torch.zeros(task.actions.shape, dtype=dtype)
    return out.index_put((torch.tensor(rows), torch.tensor(cols)), torch.cat(pieces))


def completion_logprobs(policy: Policy, env: Any, prompt: int, actions: list[int]) -> torch.Tensor:
    """(t,) ``log pi(a_t | s_t)`` of one completion, the sequence run on its own (no padding).

    Args:
        policy: the network.
        env: the (unwrapped) TokenGen env whose prompt and constant action mask are used.
        prompt: prompt index.
        actions: the completion's token ids.
    """
    tok = env.tokenizer
    seq = [tok.bos_id, *env.prompt_ids[prompt], tok.sep_id, *actions]
    start = len(env.prompt_ids[prompt]) + 1
    logits = policy(torch.tensor([seq]))[0, start : start + len(actions)]  # (t, V)
    logp = masked_logits(logits, torch.as_tensor(env.action_masks())).log_softmax(-1)
    return logp[torch.arange(len(actions)), torch.tensor(actions)]


@dataclass(frozen=True)
class ExactValues:
    """Exact values of a credit mode's returns on every enumerated step.

    Attributes:
        v: (N, T) V(s_t) = E[G_t | s_t] at each episode's step t (0 past the end).
        q: (N, T) Q(s_t, a_t) = E[G_t | s_t, a_t].
        a: (N, T) A(s_t, a_t) = Q - V.
        prefix: V of every visited prefix, keyed by (prompt index, tuple of token ids).
    """

    v: torch.Tensor
    q: torch.Tensor
    a: torch.Tensor
    prefix: dict[tuple[int, tuple[int, ...]], float]


@dataclass(frozen=True)
class Estimator:
    """A policy-gradient estimator: the TrainConfig fields it reads, with their meaning there.

    The gradient of one batch is ``sum_{b,t} c_{b,t} A_{b,t} grad log pi(a_t|s_t)`` with the
    advantages A of ``advantages.estimate_advantages`` and the weights c of
    ``advantages.token_weights``. Baselines ``"value"`` and ``"vine"`` read the exact V.
    """

    credit: str = "final"
    gamma: float = 1.0
    baseline: str = "none"
    group_size: int = 1
    scale_rewards: str = "none"
    normalize_advantages: bool = False
    gae_lambda: float | None = None
    loss_agg_mode: str = "seq-mean-token-sum"

    @classmethod
    def from_config(cls, config: Any) -> Estimator:
        """The estimator a ``TrainConfig`` (or anything with the same fields) trains with."""
        names = [f for f in cls.__dataclass_fields__ if hasattr(config, f)]
        return cls(**{f: getattr(config, f) for f in names})

    @property
    def couples_groups(self) -> bool:
        """True when a sample's weight depends on groups other than its own."""
        return (
            self.baseline == "mean"
            or self.scale_rewards == "batch"
            or self.normalize_advantages
            or self.loss_agg_mode == "token-mean"
        )


@dataclass
class EstimatorStats:
    """What :meth:`Exact.estimator_stats` and :meth:`Exact.monte_carlo_stats` return.

    Attributes:
        expected_gradient: (P,) the mean gradient of one batch.
        variance: trace of the covariance of one batch's gradient (sum of per-parameter
            variances) at ``batch_size``.
        advantage_correlation: Pearson correlation, over sampled valid tokens, of the estimator's
            per-token advantage with the exact A(s_t, a_t) (nan when either is constant).
        zero_advantage_share: share of sampled episodes whose advantage is 0 on every token.
        zero_group_share: share of groups in which every episode has zero advantage.
        exact: True when computed by enumeration (no CI).
        batches: batches enumerated (exact) or sampled (Monte Carlo).
        gradient_stderr: (P,) standard error of each component (Monte Carlo only).
        variance_ci: 95% CI of ``variance`` (Monte Carlo only).
    """

    expected_gradient: torch.Tensor
    variance: float
    advantage_correlation: float
    zero_advantage_share: float
    zero_group_share: float
    exact: bool
    batches: int
    gradient_stderr: torch.Tensor | None = None
    variance_ci: tuple[float, float] | None = None
    extra: dict[str, float] = field(default_factory=dict)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of the angle between two flat gradients."""
    return float(a @ b / (a.norm() * b.norm()))


def relative_norm(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a| / |b|``: 1 - 1/B for the mean baseline, for example."""
    return float(a.norm() / b.norm())


def flat_grad(scalar: torch.Tensor, policy: Policy) -> torch.Tensor:
    """The gradient of ``scalar`` w.r.t. every parameter, flattened in ``parameters()`` order."""
    params = [p for p in policy.parameters() if p.requires_grad]
    grads = torch.autograd.grad(scalar, params, retain_graph=True, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)]
    )


class Exact:
    """A policy's exact quantities on an enumerated task (see the module docstring).

    Args:
        policy: the network (float64 recommended: the checks are at 1e-9).
        task: from :func:`enumerate_task`.
    """

    def __init__(self, policy: Policy, task: EnumeratedTask) -> None:
        self.policy, self.task = policy, task
        self.logp = token_logprobs(policy, task)  # (N, T), with gradient
        self.seq_logp = self.logp.sum(1)  # (N,)
        # (N,) probability of each episode under rho x pi (rho uniform over prompts)
        self.weight = self.seq_logp.detach().exp() / task.num_prompts
        self._jacobian: torch.Tensor | None = None
        self._gram: torch.Tensor | None = None

    # ------------------------------------------------------------------ objective and values
    def objective(self, reward: str = "sequence", gamma: float = 1.0) -> torch.Tensor:
        """J = E[R] (``reward="sequence"``) or E[sum_k gamma^k r_k] of the env's rewards
        (``reward="env"``), as a scalar with gradient."""
        prob = self.seq_logp.exp() / self.task.num_prompts  # (N,)
        if reward == "sequence":
            value = self.task.sequence_reward
        elif reward == "env":
            disc = gamma ** torch.arange(self.task.horizon, dtype=torch.float64)
            value = (self.task.rewards * disc).sum(1)
        else:
            raise ValueError(f"reward={reward!r} is invalid; expected 'sequence' or 'env'")
        return (prob * value.to(prob.dtype)).sum()

    def objective_gradient(self, reward: str = "sequence", gamma: float = 1.0) -> torch.Tensor:
        """(P,) grad J."""
        return flat_grad(self.objective(reward, gamma), self.policy)

    def returns(self, credit: str, gamma: float) -> torch.Tensor:
        """(N, T) G_t of a credit mode (``returns.returns``) on every episode."""
        t = self.task
        return returns(t.rewards, gamma, credit, t.sequence_reward, t.valid).to(self.logp.dtype)

    def surrogate_gradient(self, credit: str, gamma: float) -> torch.Tensor:
        """(P,) ``E[sum_t grad log pi(a_t|s_t) G_t]``: the mean of the plain estimator."""
        g = self.returns(credit, gamma)
        total = (self.weight[:, None] * self.logp * g * self.task.valid).sum()
        return flat_grad(total, self.policy)

    def values(self, credit: str, gamma: float) -> ExactValues:
        """V(s_t) = E[G_t | s_t], Q(s_t, a_t) = E[G_t | s_t, a_t] and A = Q - V on every step."""
        g = self.returns(credit, gamma).detach()
        t = self.task
        mass: dict[tuple, float] = {}
        total: dict[tuple, float] = {}
        keys_v, keys_q = [], []
        for e in range(len(t.prompt)):
            acts = tuple(int(a) for a in t.actions[e, : int(t.valid[e].sum())])
            p = float(self.weight[e])
            for step in range(len(acts)):
                kv = (int(t.prompt[e]), acts[:step])
                kq = (int(t.prompt[e]), acts[: step + 1], "q")
                keys_v.append((e, step, kv))
                keys_q.append((e, step, kq))
                for k in (kv, kq):
                    mass[k] = mass.get(k, 0.0) + p
                    total[k] = total.get(k, 0.0) + p * float(g[e, step])
        v = torch.zeros_like(g)
        q = torch.zeros_like(g)
        for (e, step, kv), (_, _, kq) in zip(keys_v, keys_q):
            v[e, step] = total[kv] / mass[kv]
            q[e, step] = total[kq] / mass[kq]
        prefix = {(kv[0], kv[1]): total[kv] / mass[kv] for _, _, kv in keys_v}
        return ExactValues(v=v, q=q, a=(q - v) * t.valid, prefix=prefix)

    # ------------------------------------------------------------------ estimators
    def jacobian(self) -> torch.Tensor:
        """(N, T, P) ``grad log pi(a_t|s_t)`` of every step (0 past the end).

        Each episode runs on its own (a small graph per backward pass): about 1 ms a step for
        the policies of the tests, so ~5 s for the 1,360 episodes of the suite's copy task.
        """
        if self._jacobian is None:
            t = self.task
            n, horizon = self.logp.shape
            params = [p for p in self.policy.parameters() if p.requires_grad]
            size = sum(p.numel() for p in params)
            if n * horizon * size > 400_000_000:
                raise ValueError(
                    f"the Jacobian would hold {n * horizon * size} numbers; use a smaller policy "
                    f"or task"
                )
            jac = torch.zeros(n, horizon, size, dtype=self.logp.dtype)
            for e in range(n):
                p, length = int(t.prompt[e]), int(t.valid[e].sum())
                seq = [t.bos_id, *t.prompt_ids[p], t.sep_id, *t.actions[e, :length].tolist()]
                start = len(t.prompt_ids[p]) + 1
                logits = self.policy(torch.tensor([seq]))[0, start : start + length]  # (t, V)
                logp = masked_logits(logits, t.masks[e, :length]).log_softmax(-1)
                chosen = logp[torch.arange(length), t.actions[e, :length]]
                for step in range(length):
                    jac[e, step] = flat_grad(chosen[step], self.policy)
            self._jacobian = jac
        return self._jacobian

    def gram(self) -> torch.Tensor:
        """(N * T, N * T) inner products of the steps' score vectors, ``J J^T``."""
        if self._gram is None:
            jac = self.jacobian().flatten(0, 1)
            self._gram = jac @ jac.T
        return self._gram

    def _groups(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every group of k episodes of one prompt: (M, k) indices and (M,) probabilities."""
        idx, prob = [], []
        for x in range(self.task.num_prompts):
            eps = self.task.episodes_of(x)
            w = self.weight[eps] * self.task.num_prompts  # pi(y | x), sums to 1
            for combo in itertools.product(range(len(eps)), repeat=k):
                idx.append(eps[list(combo)])
                prob.append(torch.prod(w[list(combo)]) / self.task.num_prompts)
        return torch.stack(idx), torch.stack(prob)

    def estimator_stats(
        self, estimator: Estimator, batch_size: int, max_batches: int = 200_000
    ) -> EstimatorStats:
        """Exact statistics of ``estimator`` on batches of ``batch_size`` episodes.

        A batch is ``batch_size / group_size`` groups, each a prompt drawn from rho and
        ``group_size`` completions of it. An estimator that treats groups independently is
        enumerated over one group (its batch gradient is a mean of iid group gradients, so the
        variance is divided by the number of groups); otherwise every batch is enumerated.

        Raises:
            ValueError: more than ``max_batches`` batches (use :meth:`monte_carlo_stats`).
        """
        k = estimator.group_size
        if batch_size % k:
            raise ValueError(f"batch_size={batch_size} is not a multiple of group_size={k}")
        groups = batch_size // k
        idx, prob = self._groups(k)
        size = len(idx) ** (groups if estimator.couples_groups else 1)
        if size > max_batches:
            raise ValueError(
                f"{size} batches to enumerate exceed max_batches={max_batches}; use "
                f"monte_carlo_stats"
            )
        if estimator.couples_groups and groups > 1:
            combos = list(itertools.product(range(len(idx)), repeat=groups))
            sel = torch.tensor(combos)  # (M, G)
            idx = idx[sel].flatten(1)  # (M, G * k)
            prob = prob[sel].prod(1)
            return self._stats(estimator, idx, prob, exact=True, groups=1)
        return self._stats(estimator, idx, prob, exact=True, groups=groups)

    def monte_carlo_stats(
        self, estimator: Estimator, batch_size: int, batches: int = 1000, seed: int = 0
    ) -> EstimatorStats:
        """The statistics of :meth:`estimator_stats` from ``batches`` sampled batches, with CIs."""
        k = estimator.group_size
        if batch_size % k:
            raise ValueError(f"batch_size={batch_size} is not a multiple of group_size={k}")
        idx = self.sample_batches(k, batch_size, batches, seed)
        prob = torch.full((batches,), 1.0 / batches, dtype=self.logp.dtype)
        return self._stats(estimator, idx, prob, exact=False, groups=1)

    def sample_batches(
        self, group_size: int, batch_size: int, batches: int, seed: int
    ) -> torch.Tensor:
        """(batches, batch_size) episode indices: per group a prompt from rho, then
        ``group_size`` completions of it from pi, from one seeded generator."""
        rng = np.random.default_rng(seed)
        groups = batch_size // group_size
        prompts = rng.integers(0, self.task.num_prompts, (batches, groups))
        idx = np.zeros((batches, groups, group_size), dtype=np.int64)
        for x in range(self.task.num_prompts):
            eps = self.task.episodes_of(x).numpy()
            p = (self.weight[eps] * self.task.num_prompts).numpy()
            hit = prompts == x
            idx[hit] = rng.choice(eps, size=(int(hit.sum()), group_size), p=p / p.sum())
        return torch.from_numpy(idx.reshape(batches, batch_size))

    def _stats(
        self,
        est: Estimator,
        idx: torch.Tensor,
        prob: torch.Tensor,
        *,
        exact: bool,
        groups: int,
        chunk: int = 4096,
    ) -> EstimatorStats:
        """Statistics over batches ``idx`` (M, B) weighted by ``prob`` (M,) (summing to 1)."""
        t = self.task
        g_all = self.returns(est.credit, est.gamma).detach()  # (N, T)
        exact_values = self.values(est.credit, est.gamma)
        needs_rewards = est.gae_lambda is not None
        r_all = (
            step_rewards(t.rewards, est.credit, t.sequence_reward, t.valid).to(g_all.dtype)
            if needs_rewards
            else None
        )
        jac = self.jacobian().flatten(0, 1)  # (N * T, P)
        gram = self.gram()  # (N * T, N * T)
        horizon = t.horizon
        if not exact:  # the gathered (m, B * T, P) scores stay near 16M numbers
            chunk = max(1, min(chunk, 2**24 // (idx.shape[1] * horizon * jac.shape[1])))
        dense_mean = torch.zeros(jac.shape[0], dtype=jac.dtype)  # E[coefficient] per step
        second = torch.zeros((), dtype=jac.dtype)  # E[|g|^2]
        kept: list[torch.Tensor] = []  # Monte Carlo: each batch's gradient
        corr = torch.zeros(5, dtype=jac.dtype)  # sum w, w*x, w*y, w*x*x, w*y*y
        cross = torch.zeros((), dtype=jac.dtype)
        zero_samples = torch.zeros((), dtype=jac.dtype)
        zero_groups = torch.zeros((), dtype=jac.dtype)
        for lo in range(0, len(idx), chunk):
            ix, w = idx[lo : lo + chunk], prob[lo : lo + chunk]  # (m, B), (m,)
            valid = t.valid[ix]  # (m, B, T)
            adv = estimate_advantages(
                g_all[ix],
                valid,
                baseline=est.baseline,
                group_size=est.group_size,
                values=exact_values.v[ix],
                step_rewards=None if r_all is None else r_all[ix],
                gamma=est.gamma,
                gae_lambda=est.gae_lambda,
                scale_rewards=est.scale_rewards,
                normalize_advantages=est.normalize_advantages,
            )
            coef = (adv * token_weights(valid, est.loss_agg_mode, horizon, adv.dtype)).flatten(1)
            rows = (ix[..., None] * horizon + torch.arange(horizon)).flatten(1)  # (m, B * T)
            dense_mean.index_add_(0, rows.flatten(), (w[:, None] * coef).flatten())
            sub = gram[rows[:, :, None], rows[:, None, :]]  # (m, BT, BT)
            second += (w * torch.einsum("mr,mrs,ms->m", coef, sub, coef)).sum()
            if not exact:
                kept.append(torch.einsum("mr,mrp->mp", coef, jac[rows]))
            a_exact = exact_values.a[ix]
            tw = w[:, None, None] * valid  # token weights for the correlation
            corr += torch.stack(
                [
                    tw.sum(),
                    (tw * adv).sum(),
                    (tw * a_exact).sum(),
                    (tw * adv**2).sum(),
                    (tw * a_exact**2).sum(),
                ]
            )
            cross += (tw * adv * a_exact).sum()
            zero = ((adv.abs() <= ZERO) | ~valid).all(-1)  # (m, B)
            zero_samples += (w[:, None] * zero).sum() / zero.shape[1]
            per_group = zero.unflatten(1, (-1, est.group_size)).all(-1)  # (m, G)
            zero_groups += (w[:, None] * per_group).sum() / per_group.shape[1]
        mean = dense_mean @ jac  # (P,)
        variance = float(second - mean @ mean) / groups
        s, sx, sy, sxx, syy = corr.tolist()
        cov = cross.item() / s - (sx / s) * (sy / s)
        sd = np.sqrt(max(sxx / s - (sx / s) ** 2, 0.0) * max(syy / s - (sy / s) ** 2, 0.0))
        stats = EstimatorStats(
            expected_gradient=mean,
            variance=variance,
            advantage_correlation=cov / sd if sd > 1e-15 else float("nan"),
            zero_advantage_share=float(zero_samples),
            zero_group_share=float(zero_groups),
            exact=exact,
            batches=len(idx),
        )
        if not exact:
            m = len(idx)
            grads = torch.cat(kept)  # (M, P)
            comp_var = grads.var(0)  # (P,) unbiased
            stats.gradient_stderr = (comp_var / m).sqrt()
            stats.variance = float(comp_var.sum())
            dev = ((grads - grads.mean(0)) ** 2).sum(1) * m / (m - 1)  # (M,) mean: variance
            half = Z95 * float(dev.std()) / np.sqrt(m)
            stats.variance_ci = (stats.variance - half, stats.variance + half)
        return stats

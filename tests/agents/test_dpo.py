"""DPO: the loss by hand, its gradient against enumeration, pairs, padding, determinism, learning.

The tiny task of ``conftest.py`` (two prompts, seven completions each, edit-similarity reward)
makes every preference pair enumerable, so the DPO gradient can be written out exactly.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents import train
from tokengym.agents.dpo import DPOAgent, offline_pairs, preference_pairs
from tokengym.agents.losses import Decisions, dpo_loss, sequence_logp
from tokengym.agents.policies import GRUConfig, GRUPolicy, masked_logits
from tokengym.agents.reinforce import rollout_decisions
from tokengym.agents.rollout import collect_rollout
from tokengym.agents.supervised import minibatch, reference_decisions

from tests.helpers import train_config
from tokengym.errors import ConfigError

COPY = {"task": "copy", "min_length": 1, "max_length": 3, "train_size": 40, "test_size": 20}


# ---------------------------------------------------------------------------------------------
# The loss on numbers worked out by hand
# ---------------------------------------------------------------------------------------------

# Two pairs, beta = 0.5. Log-ratios h_c = logp_c - ref_c = (0.5, 0.0), h_r = (-1.0, 0.5),
# h = h_c - h_r = (1.5, -0.5), beta * h = (0.75, -0.25).
PAIRS = {
    "policy_chosen": torch.tensor([-1.0, -2.0], dtype=torch.float64),
    "policy_rejected": torch.tensor([-3.0, -1.5], dtype=torch.float64),
    "ref_chosen": torch.tensor([-1.5, -2.0], dtype=torch.float64),
    "ref_rejected": torch.tensor([-2.0, -2.0], dtype=torch.float64),
}


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        # (-log sigmoid(0.75) - log sigmoid(-0.25)) / 2 = (0.386871006 + 0.825939420) / 2
        ("sigmoid", 0.6064052129968718),
        # ((1.5 - 1/(2*0.5))^2 + (-0.5 - 1)^2) / 2 = (0.25 + 2.25) / 2
        ("ipo", 1.25),
    ],
)
def test_dpo_loss_equals_the_hand_computed_value(loss, expected) -> None:
    value, stats = dpo_loss(**PAIRS, beta=0.5, loss=loss)
    assert value.item() == pytest.approx(expected, rel=1e-15)
    assert stats["losses/dpo"].item() == pytest.approx(expected, rel=1e-15)
    assert stats["rewards/chosen"].item() == 0.125  # mean(0.5 * (0.5, 0.0))
    assert stats["rewards/rejected"].item() == -0.125  # mean(0.5 * (-1.0, 0.5))
    assert stats["rewards/margins"].item() == 0.25  # mean(0.75, -0.25)
    assert stats["rewards/accuracies"].item() == 0.5  # first pair ranked right, second wrong
    assert stats["logps/chosen"].item() == -1.5
    assert stats["logps/rejected"].item() == -2.25


def test_dpo_loss_gradient_wrt_log_probs_is_minus_beta_sigmoid() -> None:
    """d/d logp_c of -log sigmoid(beta h) is -beta sigmoid(-beta h) / P, and minus that for r."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in PAIRS.items()}
    dpo_loss(**leaves, beta=0.5)[0].backward()
    weight = [-0.5 * (1 / (1 + math.exp(0.75))) / 2, -0.5 * (1 / (1 + math.exp(-0.25))) / 2]
    torch.testing.assert_close(leaves["policy_chosen"].grad.tolist(), weight)
    torch.testing.assert_close(leaves["policy_rejected"].grad.tolist(), [-w for w in weight])
    torch.testing.assert_close(leaves["ref_chosen"].grad.tolist(), [-w for w in weight])


def test_dpo_loss_rejects_an_unknown_variant() -> None:
    with pytest.raises(ValueError, match=r"loss='hinge' is invalid; expected one of \('sigmoid'"):
        dpo_loss(**PAIRS, loss="hinge")


# ---------------------------------------------------------------------------------------------
# Pairs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rewards", "group_size", "chosen", "rejected"),
    [
        ([0.0, 1.0, 0.5, 0.5], 2, [1], [0]),  # the second group is a tie: skipped
        ([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], 3, [], []),  # both groups ties
        ([0.2, 0.9, 0.1, 0.9, 0.3, 0.0, 0.4, 0.0], 4, [1, 6], [2, 5]),  # first best, first worst
        ([0.0, 0.5, 1.0], 3, [2], [0]),
    ],
)
def test_preference_pairs_take_best_and_worst_and_skip_ties(
    rewards, group_size, chosen, rejected
) -> None:
    c, r = preference_pairs(torch.tensor(rewards), group_size)
    assert c.tolist() == chosen
    assert r.tolist() == rejected


def test_offline_pairs_are_the_reference_answer_against_a_sampled_completion(make_policy) -> None:
    # One-letter answers over {a, b}: a uniform-ish policy often samples the answer itself.
    kwargs = {"task": "target", "target": "a", "alphabet_size": 2, "max_length": 7}
    kwargs.update(train_size=60, test_size=4)
    env = gym.make("TokenGen-v0", **kwargs)
    base = env.unwrapped
    policy = make_policy("gru", base.tokenizer.vocab_size)
    chosen, rejected = offline_pairs(kwargs, policy, torch.Generator().manual_seed(5), seed=5)

    # The same draw, made independently: the rejected rows are exactly these samples.
    vec = gym.make_vec("TokenGen-v0", num_envs=60, **kwargs)
    sampled = collect_rollout(vec, policy, np.arange(60), torch.Generator().manual_seed(5), seed=5)
    eos, a = base.tokenizer.eos_id, base.reference_ids[0][0]
    is_answer = (sampled.valid.sum(1) == 2) & (sampled.actions[:, 0] == a)
    is_answer &= sampled.actions[:, 1] == eos
    keep = torch.nonzero(~is_answer)[:, 0]
    assert 0 < int(is_answer.sum()) < 60  # some identical pairs were dropped, not all
    assert chosen.tokens.shape[0] == rejected.tokens.shape[0] == len(keep)
    assert (chosen.valid.sum(1) == 2).all()
    assert (chosen.actions[:, 0] == a).all() and (chosen.actions[:, 1] == eos).all()
    full = rollout_decisions(sampled)
    assert torch.equal(rejected.tokens, full.tokens[keep])
    assert torch.equal(rejected.actions, full.actions[keep, : rejected.actions.shape[1]])
    assert torch.equal(rejected.valid, full.valid[keep, : rejected.valid.shape[1]])
    assert torch.equal(chosen.start, rejected.start)
    prompt_part = torch.arange(base.observation_length)[None, :] <= chosen.start[:, None]
    assert torch.equal(chosen.tokens[prompt_part], rejected.tokens[prompt_part])


# ---------------------------------------------------------------------------------------------
# Gradient against enumeration, padding, EOS
# ---------------------------------------------------------------------------------------------


def completions(env) -> list[list[int]]:
    """Every completion of at most two tokens: EOS; x EOS; x y."""
    tok = env.tokenizer
    letters = [i for i in range(tok.vocab_size) if env.action_masks()[i] and i != tok.eos_id]
    return [
        [tok.eos_id],
        *([x, tok.eos_id] for x in letters),
        *(list(p) for p in itertools.product(letters, repeat=2)),
    ]


def unpadded_logp(policy, env, prompt: int, actions: list[int]) -> torch.Tensor:
    """log p(actions | prompt), the sequence run on its own (no padding, no batch)."""
    tok = env.tokenizer
    seq = [tok.bos_id, *env.prompt_ids[prompt], tok.sep_id, *actions]
    start = len(env.prompt_ids[prompt]) + 1
    logits = policy(torch.tensor([seq]))[0, start : start + len(actions)]  # (t, V)
    logp = masked_logits(logits, torch.as_tensor(env.action_masks())).log_softmax(-1)
    return logp[torch.arange(len(actions)), torch.tensor(actions)].sum()


def scored(env, prompt: int, actions: list[int]) -> float:
    env.reset(options={"prompt_index": prompt})
    for a in actions:
        *_, info = env.step(a)
    return float(info["sequence_reward"])


def padded(env, rows: list[tuple[int, list[int]]]) -> Decisions:
    """(prompt, completion) rows as one padded batch laid out like the env's observations."""
    tok, horizon = env.tokenizer, env.max_new_tokens
    tokens = torch.full((len(rows), env.observation_length), tok.pad_id)
    actions = torch.zeros(len(rows), horizon, dtype=torch.long)
    valid = torch.zeros(len(rows), horizon, dtype=torch.bool)
    start = torch.zeros(len(rows), dtype=torch.long)
    for i, (p, acts) in enumerate(rows):
        seq = [tok.bos_id, *env.prompt_ids[p], tok.sep_id, *acts]
        tokens[i, : len(seq)] = torch.tensor(seq)
        start[i] = len(env.prompt_ids[p]) + 1
        actions[i, : len(acts)] = torch.tensor(acts)
        valid[i, : len(acts)] = True
    return Decisions(tokens, start, actions, torch.as_tensor(env.action_masks()), valid)


def flat_grad(policy) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in policy.parameters()]).clone()


@pytest.mark.parametrize("loss", ["sigmoid", "ipo"])
def test_dpo_gradient_matches_the_analytic_gradient_over_every_pair(
    loss, policy_kind, tiny_kwargs, make_policy, vocab_size
) -> None:
    """Every ordered pair (y_c, y_r) with R(y_c) > R(y_r) of both prompts, padded into one batch,
    against grad = (1/P) sum_i l'(h_i) (grad log pi(y_c,i) - grad log pi(y_r,i)) with
    l'(h) = -beta sigmoid(-beta h) (sigmoid) or 2 (h - 1/(2 beta)) (ipo), each log-probability
    computed on its own unpadded sequence."""
    kwargs = tiny_kwargs("terminal")
    env = gym.make("TokenGen-v0", **kwargs).unwrapped
    reference = make_policy(policy_kind, vocab_size(**kwargs)).double()
    policy = make_policy(policy_kind, vocab_size(**kwargs)).double()
    with torch.no_grad():  # a policy away from the reference: h != 0, weights differ per pair
        for p in policy.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    pairs = []
    for prompt in range(env.num_prompts):
        ys = [(y, scored(env, prompt, y)) for y in completions(env)]
        pairs += [(prompt, c, r) for (c, rc), (r, rr) in itertools.product(ys, ys) if rc > rr]
    assert len(pairs) == 29  # of 98 ordered pairs; the rest are ties or the wrong way round
    beta = 0.7

    chosen = padded(env, [(p, c) for p, c, _ in pairs])
    rejected = padded(env, [(p, r) for p, _, r in pairs])
    with torch.no_grad():
        ref_c, ref_r = sequence_logp(reference, chosen), sequence_logp(reference, rejected)
    policy.zero_grad()
    value, _ = dpo_loss(
        sequence_logp(policy, chosen),
        sequence_logp(policy, rejected),
        ref_c,
        ref_r,
        beta=beta,
        loss=loss,
    )
    value.backward()
    batched = flat_grad(policy)

    policy.zero_grad()
    total = torch.zeros((), dtype=torch.float64)
    for i, (p, c, r) in enumerate(pairs):
        lc, lr = unpadded_logp(policy, env, p, c), unpadded_logp(policy, env, p, r)
        with torch.no_grad():
            h = (lc - unpadded_logp(reference, env, p, c)) - (
                lr - unpadded_logp(reference, env, p, r)
            )
            weight = (
                -beta * torch.sigmoid(-beta * h) if loss == "sigmoid" else 2 * (h - 1 / (2 * beta))
            )
        assert torch.isclose(h, (lc - ref_c[i]) - (lr - ref_r[i]), rtol=1e-12, atol=1e-12)
        total = total + weight * (lc - lr) / len(pairs)
    total.backward()
    analytic = flat_grad(policy)
    assert analytic.norm() > 1e-3
    torch.testing.assert_close(batched, analytic, rtol=1e-9, atol=1e-12)


def test_online_estimator_mean_matches_the_enumerated_expectation(
    tiny_kwargs, make_policy, vocab_size
) -> None:
    """With group_size 2, the online loss is, in expectation over the sampled pairs,
    sum_x sum_{y1,y2} pi(y1|x) pi(y2|x) [R1 != R2] l(best, worst) / the same sum without l:
    a mean over non-tied pairs. Its gradient is checked against the average of 30 online
    updates' gradients (batches of 512 groups, so the ratio's bias is small)."""
    kwargs = tiny_kwargs("terminal")
    env = gym.make("TokenGen-v0", **kwargs).unwrapped
    reference = make_policy("gru", vocab_size(**kwargs)).double()
    policy = make_policy("gru", vocab_size(**kwargs)).double()
    with torch.no_grad():
        for p in policy.parameters():
            p.mul_(3.0)  # sharper than the reference: the pairs' weights differ
    beta = 0.5

    weights, rows_c, rows_r = [], [], []
    for prompt in range(env.num_prompts):
        ys = completions(env)
        with torch.no_grad():
            prob = [unpadded_logp(policy, env, prompt, y).exp() for y in ys]
        for i, j in itertools.product(range(len(ys)), repeat=2):
            r1, r2 = scored(env, prompt, ys[i]), scored(env, prompt, ys[j])
            if r1 != r2:
                best, worst = (ys[i], ys[j]) if r1 > r2 else (ys[j], ys[i])
                weights.append(prob[i] * prob[j])
                rows_c.append((prompt, best))
                rows_r.append((prompt, worst))
    w = torch.stack(weights)  # (pairs,)
    chosen, rejected = padded(env, rows_c), padded(env, rows_r)
    with torch.no_grad():
        ref_c, ref_r = sequence_logp(reference, chosen), sequence_logp(reference, rejected)
    h = (sequence_logp(policy, chosen) - ref_c) - (sequence_logp(policy, rejected) - ref_r)
    policy.zero_grad()
    ((w / w.sum()) * -torch.nn.functional.logsigmoid(beta * h)).sum().backward()
    exact = flat_grad(policy)

    vec = gym.make_vec("TokenGen-v0", num_envs=1024, **kwargs)
    gen = torch.Generator().manual_seed(1)
    prompts = np.repeat(np.arange(2), 512)  # groups of 2 consecutive rows share a prompt
    total = torch.zeros_like(exact)
    for b in range(30):
        batch = collect_rollout(vec, policy, prompts, gen, seed=b, dtype=torch.float64)
        c, r = preference_pairs(batch.sequence_reward, 2)
        d = rollout_decisions(batch)
        dc, dr = minibatch(d, c), minibatch(d, r)
        with torch.no_grad():
            rc, rr = sequence_logp(reference, dc), sequence_logp(reference, dr)
        policy.zero_grad()
        dpo_loss(sequence_logp(policy, dc), sequence_logp(policy, dr), rc, rr, beta=beta)[
            0
        ].backward()
        total += flat_grad(policy)
    rel = (total / 30 - exact).norm() / exact.norm()
    assert exact.norm() > 1e-2
    assert rel < 0.05, f"relative error {rel:.4f}"


def scramble_padding(d: Decisions, vocab: int, seed: int) -> Decisions:
    """Random ids at every position after each sequence's last real token."""
    last = d.start + d.valid.sum(1)  # (B,)
    pad = torch.arange(d.tokens.shape[1])[None, :] > last[:, None]
    noise = torch.randint(0, vocab, d.tokens.shape, generator=torch.Generator().manual_seed(seed))
    assert pad.any()
    return dataclasses.replace(d, tokens=torch.where(pad, noise, d.tokens))


def test_dpo_padding_changes_neither_loss_nor_gradient(policy_kind, make_policy) -> None:
    vec = gym.make_vec("TokenGen-v0", num_envs=64, **COPY, reward="edit")
    vocab = vec.unwrapped.tokenizer.vocab_size
    policy = make_policy(policy_kind, vocab).double()
    reference = make_policy(policy_kind, vocab).double()
    batch = collect_rollout(vec, policy, np.arange(64) // 4, torch.Generator().manual_seed(0))
    c, r = preference_pairs(batch.sequence_reward, 4)
    d = rollout_decisions(batch)
    assert len(c) > 4

    def loss_and_grad(dc: Decisions, dr: Decisions):
        policy.zero_grad()
        ref_c, ref_r = sequence_logp(reference, dc), sequence_logp(reference, dr)
        value, _ = dpo_loss(sequence_logp(policy, dc), sequence_logp(policy, dr), ref_c, ref_r)
        value.backward()
        return value.detach(), [p.grad.clone() for p in policy.parameters()]

    dc, dr = minibatch(d, c), minibatch(d, r)
    a = loss_and_grad(dc, dr)
    b = loss_and_grad(scramble_padding(dc, vocab, 3), scramble_padding(dr, vocab, 4))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_sequence_logp_counts_eos_and_nothing_after_it(make_policy) -> None:
    env = gym.make("TokenGen-v0", **COPY)
    policy = make_policy("gru", env.unwrapped.tokenizer.vocab_size).double()
    d = reference_decisions(env)  # every row: reference then EOS, then padding
    lengths = d.valid.sum(1)  # (N,)
    with torch.no_grad():
        full = sequence_logp(policy, d)
        no_eos = sequence_logp(
            policy,
            dataclasses.replace(
                d,
                valid=d.valid & (torch.arange(d.valid.shape[1])[None, :] < (lengths - 1)[:, None]),
            ),
        )
        logits = policy(d.tokens)  # (N, L, V)
        rows = torch.arange(len(lengths))
        at_eos = masked_logits(logits[rows, d.start + lengths - 1], d.masks).log_softmax(-1)
    eos = env.unwrapped.tokenizer.eos_id
    assert (d.actions[rows, lengths - 1] == eos).all()
    torch.testing.assert_close(full - no_eos, at_eos[:, eos], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_size": 1}, "group_size=1 is invalid; expected an int >= 2"),
        ({"group_size": 2.0}, "group_size=2.0 is invalid; expected an int >= 1"),
        ({"beta": 0.0}, "beta=0.0 is invalid; expected a finite number > 0.0"),
        ({"beta": True}, "beta=True is invalid; expected a finite number > 0.0"),
        ({"dpo_loss": "hinge"}, "dpo_loss='hinge' is invalid; expected one of ('sigmoid', 'ipo')"),
        (
            {"dpo_mode": "mixed"},
            "dpo_mode='mixed' is invalid; expected one of ('online', 'offline')",
        ),
        ({"baseline": "rloo"}, "baseline='rloo' does not apply to agent 'dpo'"),
    ],
)
def test_dpo_config_validation(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        train_config("dpo", COPY, **kwargs)


def test_dpo_defaults() -> None:
    config = train_config("dpo", COPY)
    assert (config.batch_size, config.group_size, config.lr, config.beta) == (64, 4, 2e-3, 0.2)
    assert (config.dpo_loss, config.dpo_mode) == ("sigmoid", "online")


def _agent(make_policy, vocab: int, mode: str) -> DPOAgent:
    env = {**COPY, "reward": "edit"}
    config = train_config("dpo", env, batch_size=16, group_size=4, dpo_mode=mode, seed=3)
    return DPOAgent(make_policy("gru", vocab), config)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_same_seed_gives_bit_identical_parameters(mode, make_policy, vocab_size) -> None:
    vocab = vocab_size(**COPY)

    def run() -> list[torch.Tensor]:
        agent = _agent(make_policy, vocab, mode)
        for _ in range(3):
            agent.train_iteration()
        return [p.detach().clone() for p in agent.policy.parameters()]

    first, second = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(first, second))
    start = [p.detach() for p in make_policy("gru", vocab).parameters()]
    assert not all(torch.equal(x, y) for x, y in zip(first, start))  # it did train


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_agent_surface_and_metrics(mode, make_policy, vocab_size) -> None:
    agent = _agent(make_policy, vocab_size(**COPY), mode)
    metrics = agent.train_iteration()
    metrics = agent.train_iteration()
    assert agent.name == "dpo" and agent.iteration == 2
    assert agent.episodes == (2 * 16 * 4 if mode == "online" else 2 * 16)
    assert isinstance(agent.optimizer, torch.optim.Adam)
    assert agent.base.tokenizer.vocab == gym.make("TokenGen-v0", **COPY).unwrapped.tokenizer.vocab
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        assert math.isfinite(metrics[key])
    assert metrics["perf/seconds"] > 0 and metrics["charts/episodes"] == agent.episodes
    assert all("/" in key for key in metrics)
    # the reference is frozen and is the initial policy
    start = [p.detach() for p in make_policy("gru", vocab_size(**COPY)).parameters()]
    assert all(torch.equal(x, y) for x, y in zip(agent.reference.parameters(), start))
    assert not any(p.requires_grad for p in agent.reference.parameters())


def test_a_batch_of_ties_takes_no_step(tiny_kwargs, make_policy, vocab_size) -> None:
    kwargs = {**tiny_kwargs("terminal"), "reward": lambda prompt, completion, reference: 0.5}
    policy = make_policy("gru", vocab_size(**kwargs))
    before = [p.detach().clone() for p in policy.parameters()]
    agent = DPOAgent(policy, train_config("dpo", kwargs, batch_size=8, group_size=2))
    metrics = agent.train_iteration()
    assert metrics["charts/pairs"] == 0.0 and math.isnan(metrics["losses/dpo"])
    assert all(torch.equal(x, y) for x, y in zip(before, agent.policy.parameters()))
    assert agent.episodes == 16 and agent.iteration == 1


def test_reference_argument_is_copied_and_frozen(make_policy, vocab_size) -> None:
    vocab = vocab_size(**COPY)
    reference = GRUPolicy(GRUConfig(vocab, embed_size=8, hidden_size=16))
    agent = DPOAgent(make_policy("gru", vocab), train_config("dpo", COPY), reference)
    assert agent.reference is not reference
    assert all(
        torch.equal(x, y) for x, y in zip(agent.reference.parameters(), reference.parameters())
    )


# ---------------------------------------------------------------------------------------------
# Learning with the default config
# ---------------------------------------------------------------------------------------------

# Copy of one or two letters over eight: 72 prompts, 52 to train on, 20 unseen ones to test on;
# the answer is the prompt, so a policy must read it. R is the edit similarity (success is still
# the exact answer), so the groups rarely tie before the first exact copy.
SHORT_COPY = {
    "task": "copy",
    "min_length": 1,
    "max_length": 2,
    "alphabet_size": 8,
    "train_size": 52,
    "test_size": 20,
    "reward": "edit",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_kwargs", "iterations", "every"),
    [({"task": "target"}, 100, 5), (SHORT_COPY, 600, 25)],
    ids=["target", "short-copy"],
)
def test_online_dpo_with_defaults_learns(env_kwargs, iterations, every, tmp_path) -> None:
    config = train_config(
        "dpo",
        env_kwargs,
        iterations=iterations,
        eval_every=every,
        target_success=0.9,
        out=str(tmp_path),
    )
    assert train(config)["eval/greedy_success"] >= 0.9

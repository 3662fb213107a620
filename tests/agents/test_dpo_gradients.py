"""DPO against exact computations: its gradient over every pair, the online estimator's mean,
padding and EOS.

The tiny task of ``conftest.py`` (two prompts, seven completions each, edit-similarity reward)
makes every preference pair enumerable, so the DPO gradient can be written out exactly.
"""

from __future__ import annotations

import dataclasses
import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents.dpo import preference_pairs
from tokengym.agents.exact import completion_logprobs
from tokengym.agents.losses import Decisions, dpo_loss, sequence_logp
from tokengym.agents.policies import masked_logits
from tokengym.agents.reinforce import rollout_decisions
from tokengym.agents.rollout import collect_rollout
from tokengym.agents.supervised import minibatch, reference_decisions

COPY = {"task": "copy", "min_length": 1, "max_length": 3, "train_size": 40, "test_size": 20}


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
    return completion_logprobs(policy, env, prompt, actions).sum()


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
